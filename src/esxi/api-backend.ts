import type { HostBackend } from '../core/backend.js';
import type { VmDetails, VmSelector, VmSummary } from '../core/vm.js';
import type { ApiEndpoint } from '../config/resolve.js';
import { VimClient } from './vim/client.js';
import { getVm, listVms } from './ops/inventory.js';

/** The vSphere API path: every operation goes through one logged-in VimClient. */
export class ApiBackend implements HostBackend {
  readonly via = 'api' as const;

  constructor(readonly client: VimClient) {}

  static open(endpoint: ApiEndpoint, sessionDirectory: string | undefined): ApiBackend {
    return new ApiBackend(
      VimClient.create({
        host: endpoint.host,
        port: endpoint.port,
        user: endpoint.user,
        password: endpoint.password,
        insecure: endpoint.insecure,
        ...(endpoint.thumbprint === undefined ? {} : { thumbprint: endpoint.thumbprint }),
        timeoutMs: endpoint.timeoutMs,
        connectTimeoutMs: endpoint.connectTimeoutMs,
        ...(sessionDirectory === undefined ? {} : { sessionDirectory }),
      }),
    );
  }

  listVms(): Promise<VmSummary[]> {
    return listVms(this.client);
  }

  getVm(selector: VmSelector): Promise<VmDetails> {
    return getVm(this.client, selector);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
