/**
 * `--via auto`: the API first; SSH only when the API cannot be reached.
 *
 * Switches on HOST_UNREACHABLE only (connection refused or reset, connect or TLS-handshake
 * timeout, HTTP 502/503/504 from the API), never on a business error (not found, exists,
 * invalid state), never on AUTH_FAILED or TLS_UNTRUSTED (a trust decision, not an outage), and
 * never once a change may have started: list, info and the plan* calls only read, so they may
 * switch; a plan the API built keeps its API steps and is executed by the API. Once switched,
 * the rest of the invocation stays on SSH. `via` tells which path served the last call.
 */
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
} from './backup.js';
import type { DeleteOutcome, GuestWaitOptions, GuestWaitOutcome, HostBackend, MarkedVm, MarkerChange, Mutation, PowerOutcome } from './backend.js';
import { CesoError, isCesoError } from './errors.js';
import { logger } from './log.js';
import type { CloneRequest, CreateRequest, DeleteRequest, PowerRequest } from './requests.js';
import type { ImportOutcome, ImportRequest } from './import.js';
import type { ReconfigureOptions, ReconfigureOutcome, ReconfigureRequest } from './reconfigure.js';
import type { TemplateInfo } from './templates.js';
import type { Via, VmDetails, VmSelector, VmSummary } from './vm.js';
import type {
  SnapshotCreateOutcome,
  SnapshotCreateRequest,
  SnapshotDeleteOutcome,
  SnapshotDeleteRequest,
  SnapshotDeleteTarget,
  SnapshotRevertOutcome,
  SnapshotRevertRequest,
  SnapshotTree,
} from './snapshots.js';

// An unknown or changed SSH host key is not "unusable": it may be an impostor, and keeps its own code.
const SSH_UNUSABLE = new Set(['HOST_UNREACHABLE', 'AUTH_FAILED', 'NO_PERMISSION', 'CONFIG_INVALID']);

/** Whether an error from the API path means the API could not be reached (and nothing was asked of it). */
export function isUnreachable(error: unknown): boolean {
  return isCesoError(error) && error.code === 'HOST_UNREACHABLE';
}

export class FallbackBackend implements HostBackend {
  private secondary: HostBackend | undefined;
  private opening: Promise<HostBackend> | undefined;
  private current: HostBackend;

  constructor(
    private readonly primary: HostBackend,
    private readonly openSecondary: () => Promise<HostBackend>,
    private readonly describe: { primary: string; secondary: string } = { primary: 'the API', secondary: 'SSH' },
  ) {
    this.current = primary;
  }

  get via(): Via {
    return this.current.via;
  }

  private async attempt<R>(operation: string, call: (backend: HostBackend) => Promise<R>): Promise<R> {
    if (this.secondary !== undefined) return call(this.secondary);
    try {
      this.current = this.primary;
      return await call(this.primary);
    } catch (error) {
      if (!isUnreachable(error)) throw error;
      const apiError = error as CesoError;
      logger().warn(
        { reason: apiError.details?.reason ?? null, error: apiError.message },
        `${this.describe.primary} is unreachable (${apiError.message}); switching to ${this.describe.secondary} for ${operation}`,
      );
      const secondary = await this.switchOver();
      try {
        return await call(secondary);
      } catch (sshError) {
        // SSH that cannot even be used (unreachable, no or refused credentials, no config) must not
        // hide the outage that sent ceso there: report both, as the host being unreachable.
        if (isCesoError(sshError) && SSH_UNUSABLE.has(sshError.code)) {
          throw new CesoError('HOST_UNREACHABLE', `${this.describe.primary} is unreachable (${apiError.message}) and ${this.describe.secondary} could not be used (${sshError.message})`, {
            hint: `Check that the host is up and hostd answers (port 443)${sshError.hint === undefined ? '' : `; for the SSH fallback: ${sshError.hint}`}`,
            details: { reason: apiError.details?.reason ?? null, api: apiError.toJSON(), ssh: sshError.toJSON() },
            cause: sshError,
          });
        }
        throw sshError;
      }
    }
  }

  private async switchOver(): Promise<HostBackend> {
    this.opening ??= this.openSecondary();
    this.secondary = await this.opening;
    this.current = this.secondary;
    return this.secondary;
  }

  listVms(): Promise<VmSummary[]> {
    return this.attempt('vm list', (backend) => backend.listVms());
  }

  listMarkedVms(): Promise<MarkedVm[]> {
    return this.attempt('pool read', (backend) => backend.listMarkedVms());
  }

  planSetMarkers(change: MarkerChange): Promise<Mutation<{ name: string; id: string }>> {
    return this.attempt('pool marker change', (backend) => backend.planSetMarkers(change));
  }

  getVm(selector: VmSelector): Promise<VmDetails> {
    return this.attempt('vm info', (backend) => backend.getVm(selector));
  }

  planCreate(request: CreateRequest, options: { diskFromDefaults: boolean }): Promise<Mutation<VmDetails>> {
    return this.attempt('vm create', (backend) => backend.planCreate(request, options));
  }

  planClone(request: CloneRequest): Promise<Mutation<VmDetails>> {
    return this.attempt('vm clone', (backend) => backend.planClone(request));
  }

  planDelete(request: DeleteRequest): Promise<Mutation<DeleteOutcome> & { target: VmDetails }> {
    return this.attempt('vm delete', (backend) => backend.planDelete(request));
  }

  planPower(request: PowerRequest): Promise<Mutation<PowerOutcome>> {
    return this.attempt('vm power', (backend) => backend.planPower(request));
  }

  planReconfigure(request: ReconfigureRequest, options?: ReconfigureOptions): Promise<Mutation<ReconfigureOutcome>> {
    return this.attempt('vm reconfigure', (backend) => backend.planReconfigure(request, options));
  }

  listTemplates(options: { defaultTemplate?: string }): Promise<TemplateInfo[]> {
    return this.attempt('template list', (backend) => backend.listTemplates(options));
  }

  planImport(request: ImportRequest): Promise<Mutation<ImportOutcome>> {
    return this.attempt('template import', (backend) => backend.planImport(request));
  }

  /** Reads only, so it may switch; a wait that switches goes on over SSH for the time that is left. */
  waitForGuest(selector: VmSelector, options: GuestWaitOptions): Promise<GuestWaitOutcome> {
    const started = Date.now();
    return this.attempt('the guest wait', async (backend) => {
      const outcome = await backend.waitForGuest(selector, { ...options, timeoutMs: Math.max(0, options.timeoutMs - (Date.now() - started)) });
      return outcome.waitedMs === null ? outcome : { ...outcome, waitedMs: Date.now() - started };
    });
  }

  listSnapshots(selector: VmSelector): Promise<SnapshotTree> {
    return this.attempt('vm snapshot list', (backend) => backend.listSnapshots(selector));
  }

  planSnapshotCreate(request: SnapshotCreateRequest): Promise<Mutation<SnapshotCreateOutcome>> {
    return this.attempt('vm snapshot create', (backend) => backend.planSnapshotCreate(request));
  }

  planSnapshotRevert(request: SnapshotRevertRequest): Promise<Mutation<SnapshotRevertOutcome>> {
    return this.attempt('vm snapshot revert', (backend) => backend.planSnapshotRevert(request));
  }

  planSnapshotDelete(request: SnapshotDeleteRequest): Promise<Mutation<SnapshotDeleteOutcome> & { target: SnapshotDeleteTarget }> {
    return this.attempt('vm snapshot delete', (backend) => backend.planSnapshotDelete(request));
  }

  listBackups(request: BackupListRequest): Promise<BackupEntry[]> {
    return this.attempt('backup list', (backend) => backend.listBackups(request));
  }

  planBackup(request: BackupRequest, options?: BackupOptions): Promise<Mutation<BackupOutcome>> {
    return this.attempt('vm backup', (backend) => backend.planBackup(request, options));
  }

  planRestore(request: RestoreRequest, options?: RestoreOptions): Promise<Mutation<RestoreOutcome> & { target: RestoreTarget }> {
    return this.attempt('vm restore', (backend) => backend.planRestore(request, options));
  }

  async close(): Promise<void> {
    const secondary = this.opening === undefined ? undefined : await this.opening.catch(() => undefined);
    await Promise.allSettled([this.primary.close(), ...(secondary === undefined ? [] : [secondary.close()])]);
  }
}
