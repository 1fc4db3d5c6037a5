import type { DeleteOutcome, GuestWaitOptions, GuestWaitOutcome, HostBackend, MarkedVm, MarkerChange, Mutation, PowerOutcome } from '../core/backend.js';
import { CesoError } from '../core/errors.js';
import type {
  BackupEntry,
  BackupListRequest,
  BackupOptions,
  BackupOutcome,
  BackupRequest,
  RestoreOptions,
  RestoreOutcome,
  RestoreRequest,
  RestoreTarget,
} from '../core/backup.js';
import type { ImportOutcome, ImportRequest } from '../core/import.js';
import type { ReconfigureOptions, ReconfigureOutcome, ReconfigureRequest } from '../core/reconfigure.js';
import type { CloneRequest, CreateRequest, DeleteRequest, PowerRequest } from '../core/requests.js';
import type { TemplateInfo } from '../core/templates.js';
import type { VmDetails, VmSelector, VmSummary } from '../core/vm.js';
import type { ApiEndpoint } from '../config/resolve.js';
import { VimClient } from './vim/client.js';
import { getVm, getVmByRef, listMarkedVms, listVms } from './ops/inventory.js';
import type { ProvisionState } from './ops/provision.js';
import { deleteMutation, powerMutation } from '../core/mutations.js';
import type {
  SnapshotCreateOutcome,
  SnapshotCreateRequest,
  SnapshotDeleteOutcome,
  SnapshotDeleteRequest,
  SnapshotDeleteTarget,
  SnapshotRevertOutcome,
  SnapshotRevertRequest,
  SnapshotTree,
} from '../core/snapshots.js';

/** The vSphere API path: every operation goes through one logged-in VimClient. */
export class ApiBackend implements HostBackend {
  readonly via = 'api' as const;

  constructor(
    readonly client: VimClient,
    /** The HTTP call timeout, which bounds each WaitForUpdatesEx of a guest wait. */
    private readonly callTimeoutMs = 30_000,
  ) {}

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
      endpoint.timeoutMs,
    );
  }

  listVms(): Promise<VmSummary[]> {
    return listVms(this.client);
  }

  getVm(selector: VmSelector): Promise<VmDetails> {
    return getVm(this.client, selector);
  }

  listMarkedVms(): Promise<MarkedVm[]> {
    return listMarkedVms(this.client);
  }

  async planSetMarkers(change: MarkerChange): Promise<Mutation<{ name: string; id: string }>> {
    const { planSetMarkers } = await import('./ops/markers.js');
    return planSetMarkers(this.client, change);
  }

  async planCreate(request: CreateRequest, options: { diskFromDefaults: boolean }): Promise<Mutation<VmDetails>> {
    const { planCreate } = await import('./ops/provision.js');
    const plan = await planCreate(this.client, request, options.diskFromDefaults);
    return { plan, finish: () => this.created(plan.state) };
  }

  async planClone(request: CloneRequest): Promise<Mutation<VmDetails>> {
    const { planClone } = await import('./ops/provision.js');
    const plan = await planClone(this.client, request);
    return { plan, finish: () => this.created(plan.state) };
  }

  async planDelete(request: DeleteRequest): Promise<Mutation<DeleteOutcome> & { target: VmDetails }> {
    const { planDelete } = await import('./ops/lifecycle.js');
    const { plan, target } = await planDelete(this.client, request);
    return deleteMutation(plan, target);
  }

  async planPower(request: PowerRequest): Promise<Mutation<PowerOutcome>> {
    const { planPower } = await import('./ops/lifecycle.js');
    return powerMutation(await planPower(this.client, request));
  }

  async planReconfigure(request: ReconfigureRequest, options?: ReconfigureOptions): Promise<Mutation<ReconfigureOutcome>> {
    const { planReconfigure } = await import('./ops/reconfigure.js');
    return planReconfigure(this.client, request, options);
  }

  async listTemplates(options: { defaultTemplate?: string }): Promise<TemplateInfo[]> {
    const { listTemplates } = await import('./ops/templates.js');
    return listTemplates(this.client, options);
  }

  async planImport(request: ImportRequest): Promise<Mutation<ImportOutcome>> {
    const { planImport } = await import('./ops/import.js');
    return planImport(this.client, request);
  }

  async waitForGuest(selector: VmSelector, options: GuestWaitOptions): Promise<GuestWaitOutcome> {
    const { waitForGuest } = await import('./ops/guest-wait.js');
    return waitForGuest(this.client, selector, options, { callTimeoutMs: this.callTimeoutMs });
  }

  async listSnapshots(selector: VmSelector): Promise<SnapshotTree> {
    const { listSnapshots } = await import('./ops/snapshots.js');
    return listSnapshots(this.client, selector);
  }

  async planSnapshotCreate(request: SnapshotCreateRequest): Promise<Mutation<SnapshotCreateOutcome>> {
    const { planSnapshotCreate } = await import('./ops/snapshots.js');
    return planSnapshotCreate(this.client, request);
  }

  async planSnapshotRevert(request: SnapshotRevertRequest): Promise<Mutation<SnapshotRevertOutcome>> {
    const { planSnapshotRevert } = await import('./ops/snapshots.js');
    return planSnapshotRevert(this.client, request);
  }

  async planSnapshotDelete(request: SnapshotDeleteRequest): Promise<Mutation<SnapshotDeleteOutcome> & { target: SnapshotDeleteTarget }> {
    const { planSnapshotDelete } = await import('./ops/snapshots.js');
    return planSnapshotDelete(this.client, request);
  }

  private async created(state: ProvisionState): Promise<VmDetails> {
    if (state.vm === undefined) throw new CesoError('INTERNAL', 'the plan made no VM');
    return state.created ?? getVmByRef(this.client, state.vm);
  }

  async listBackups(request: BackupListRequest): Promise<BackupEntry[]> {
    const { listBackups } = await import('./ops/backup.js');
    return listBackups(this.client, request);
  }

  async planBackup(request: BackupRequest, options?: BackupOptions): Promise<Mutation<BackupOutcome>> {
    const { planBackup } = await import('./ops/backup.js');
    return planBackup(this.client, request, options);
  }

  async planRestore(request: RestoreRequest, options?: RestoreOptions): Promise<Mutation<RestoreOutcome> & { target: RestoreTarget }> {
    const { planRestore } = await import('./ops/backup.js');
    return planRestore(this.client, request, options);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
