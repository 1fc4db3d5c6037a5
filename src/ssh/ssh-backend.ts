/** The SSH path: every operation over one lazily opened SSH connection, with vim-cmd and vmkfstools. */
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
import type { SshEndpoint } from '../config/resolve.js';
import { SshConnection, type RemoteShell } from './connection.js';
import type { SshContext } from './context.js';
import { getVm, listMarkedVms, listVms } from './ops/inventory.js';
import { planDelete, planPower } from './ops/lifecycle.js';
import { planClone, planCreate, type SshProvisionState } from './ops/provision.js';
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

export class SshBackend implements HostBackend {
  readonly via = 'ssh' as const;
  private readonly context: SshContext;

  constructor(shell: RemoteShell, volumesRoot: string) {
    this.context = { shell, volumesRoot };
  }

  static open(endpoint: SshEndpoint): SshBackend {
    return new SshBackend(new SshConnection(endpoint), endpoint.volumesRoot);
  }

  /** SSH commands run so far (the connection is opened by the first). */
  get execCount(): number {
    return this.context.shell.execCount;
  }

  listVms(): Promise<VmSummary[]> {
    return listVms(this.context);
  }

  getVm(selector: VmSelector): Promise<VmDetails> {
    return getVm(this.context, selector);
  }

  listMarkedVms(): Promise<MarkedVm[]> {
    return listMarkedVms(this.context);
  }

  /** A running VM's .vmx belongs to its VMX process: vim-cmd has no call that changes its extraConfig. */
  async planSetMarkers(change: MarkerChange): Promise<Mutation<{ name: string; id: string }>> {
    throw new CesoError('NOT_SUPPORTED', `changing ceso's markers on "${change.vm.name}" needs the vSphere API: over SSH only a powered-off VM's .vmx can be edited, and vim-cmd cannot change a running VM's extraConfig`, {
      hint: 'Run it with --via api (or auto) once the API answers; over SSH pool status and the VM commands still work',
    });
  }

  async planCreate(request: CreateRequest, options: { diskFromDefaults: boolean }): Promise<Mutation<VmDetails>> {
    const plan = await planCreate(this.context, request, options.diskFromDefaults);
    return { plan, finish: () => this.created(plan.state) };
  }

  async planClone(request: CloneRequest): Promise<Mutation<VmDetails>> {
    const plan = await planClone(this.context, request);
    return { plan, finish: () => this.created(plan.state) };
  }

  async planDelete(request: DeleteRequest): Promise<Mutation<DeleteOutcome> & { target: VmDetails }> {
    const { plan, target } = await planDelete(this.context, request);
    return deleteMutation(plan, target);
  }

  async planPower(request: PowerRequest): Promise<Mutation<PowerOutcome>> {
    return powerMutation(await planPower(this.context, request));
  }

  async planReconfigure(request: ReconfigureRequest, options?: ReconfigureOptions): Promise<Mutation<ReconfigureOutcome>> {
    const { planReconfigure } = await import('./ops/reconfigure.js');
    return planReconfigure(this.context, request, options);
  }

  async listTemplates(options: { defaultTemplate?: string }): Promise<TemplateInfo[]> {
    const { listTemplates } = await import('./ops/templates.js');
    return listTemplates(this.context, options);
  }

  /** The NFC upload an import needs exists only in the API; vim-cmd has no import. */
  async planImport(_request: ImportRequest): Promise<Mutation<ImportOutcome>> {
    throw new CesoError('NOT_SUPPORTED', 'template import needs the vSphere API (an NFC lease for the disk upload); the SSH path cannot import', {
      hint: 'Run it with --via api (or auto) once the API answers; over SSH only template list works',
    });
  }

  async waitForGuest(selector: VmSelector, options: GuestWaitOptions): Promise<GuestWaitOutcome> {
    const { waitForGuest } = await import('./ops/guest-wait.js');
    return waitForGuest(this.context, selector, options);
  }

  async listSnapshots(selector: VmSelector): Promise<SnapshotTree> {
    const { listSnapshots } = await import('./ops/snapshots.js');
    return listSnapshots(this.context, selector);
  }

  async planSnapshotCreate(request: SnapshotCreateRequest): Promise<Mutation<SnapshotCreateOutcome>> {
    const { planSnapshotCreate } = await import('./ops/snapshots.js');
    return planSnapshotCreate(this.context, request);
  }

  async planSnapshotRevert(request: SnapshotRevertRequest): Promise<Mutation<SnapshotRevertOutcome>> {
    const { planSnapshotRevert } = await import('./ops/snapshots.js');
    return planSnapshotRevert(this.context, request);
  }

  async planSnapshotDelete(request: SnapshotDeleteRequest): Promise<Mutation<SnapshotDeleteOutcome> & { target: SnapshotDeleteTarget }> {
    const { planSnapshotDelete } = await import('./ops/snapshots.js');
    return planSnapshotDelete(this.context, request);
  }

  private async created(state: SshProvisionState): Promise<VmDetails> {
    if (state.vmid === undefined) throw new CesoError('INTERNAL', 'the plan made no VM');
    return getVm(this.context, { id: state.vmid });
  }

  async listBackups(request: BackupListRequest): Promise<BackupEntry[]> {
    const { listBackups } = await import('./ops/backup.js');
    return listBackups(this.context, request);
  }

  async planBackup(request: BackupRequest, options?: BackupOptions): Promise<Mutation<BackupOutcome>> {
    const { planBackup } = await import('./ops/backup.js');
    return planBackup(this.context, request, options);
  }

  async planRestore(request: RestoreRequest, options?: RestoreOptions): Promise<Mutation<RestoreOutcome> & { target: RestoreTarget }> {
    const { planRestore } = await import('./ops/backup.js');
    return planRestore(this.context, request, options);
  }

  async close(): Promise<void> {
    await this.context.shell.close();
  }
}
