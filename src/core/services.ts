import type { DeleteOutcome, HostBackend, Mutation, PowerOutcome } from './backend.js';
import type { BackupEntry, BackupListRequest, BackupOutcome, BackupRequest, RestoreOutcome, RestoreRequest, RestoreTarget } from './backup.js';
import { CesoError, invalidInput } from './errors.js';
import type { ImportOutcome, ImportRequest } from './import.js';
import type { TemplateInfo } from './templates.js';
import { perform } from './operations.js';
import type { RenderedPlan } from './plan.js';
import type { Policy } from './policy.js';
import type { ReconfigureOutcome, ReconfigureRequest } from './reconfigure.js';
import type { CloneRequest, CreateRequest, DeleteRequest, PowerRequest } from './requests.js';
import type { VmDetails, VmSelector, VmSummary } from './vm.js';
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

/**
 * The operations commands call: the policy first (restricted mode), then the backend's plan.
 * Running the plan is the caller's (BaseCommand.runMutation), so dry runs and real runs share it.
 */
export interface Services {
  backend: HostBackend;
  policy: Policy;
}

export async function planCreateVm({ backend, policy }: Services, request: CreateRequest, options: { diskFromDefaults: boolean }): Promise<Mutation<VmDetails>> {
  await policy.checkProvision(backend, request);
  return backend.planCreate(request, options);
}

export async function planCloneVm({ backend, policy }: Services, request: CloneRequest): Promise<Mutation<VmDetails>> {
  await policy.checkProvision(backend, request);
  return backend.planClone(request);
}

export async function planDeleteVm({ backend, policy }: Services, request: DeleteRequest, yes: boolean): Promise<Mutation<DeleteOutcome> & { target: VmDetails }> {
  policy.checkFlags({ force: request.force, yes, destructive: true });
  await policy.checkManaged(backend, request.vm, 'delete');
  return backend.planDelete(request);
}

export async function planPowerVm({ backend, policy }: Services, request: PowerRequest): Promise<Mutation<PowerOutcome>> {
  await policy.checkManaged(backend, request.vm, 'power');
  return backend.planPower(request);
}

/**
 * A reconfigure: the size limits first, then the plan; the managedOnly rule is checked on the VM
 * the plan reads (no extra round trip), before anything is decided.
 */
export async function planReconfigureVm({ backend, policy }: Services, request: ReconfigureRequest): Promise<Mutation<ReconfigureOutcome>> {
  policy.checkReconfigure(request);
  return backend.planReconfigure(request, { authorize: (vm) => policy.checkManagedVm(vm, 'reconfigure') });
}

export async function planImportTemplate({ backend, policy }: Services, request: ImportRequest): Promise<Mutation<ImportOutcome>> {
  policy.checkImport();
  return backend.planImport(request);
}

/** Snapshots: anyone may list them (like vm info); restricted mode changes only managed VMs, and a delete needs --yes there. */
export function listSnapshots({ backend }: Services, selector: VmSelector): Promise<SnapshotTree> {
  return backend.listSnapshots(selector);
}

export async function planSnapshotCreate({ backend, policy }: Services, request: SnapshotCreateRequest): Promise<Mutation<SnapshotCreateOutcome>> {
  await policy.checkManaged(backend, request.vm, 'snapshot');
  return backend.planSnapshotCreate(request);
}

export async function planSnapshotRevert({ backend, policy }: Services, request: SnapshotRevertRequest): Promise<Mutation<SnapshotRevertOutcome>> {
  await policy.checkManaged(backend, request.vm, 'revert');
  return backend.planSnapshotRevert(request);
}

export async function planSnapshotDelete({ backend, policy }: Services, request: SnapshotDeleteRequest, yes: boolean): Promise<Mutation<SnapshotDeleteOutcome> & { target: SnapshotDeleteTarget }> {
  policy.checkFlags({ yes, destructive: true });
  await policy.checkManaged(backend, request.vm, 'delete snapshots of');
  return backend.planSnapshotDelete(request);
}

/** Backups: anyone may list them; restricted mode backs up managed VMs only (checked on the VM the plan reads). */
export function listBackups({ backend }: Services, request: BackupListRequest): Promise<BackupEntry[]> {
  return backend.listBackups(request);
}

export function planBackup({ backend, policy }: Services, request: BackupRequest): Promise<Mutation<BackupOutcome>> {
  return backend.planBackup(request, { authorize: (vm) => policy.checkManagedVm(vm, 'back up') });
}

/** A restore: in place is destructive (--yes in restricted mode); the rest is checked on the manifest the plan reads. */
export async function planRestore({ backend, policy }: Services, request: RestoreRequest, yes: boolean): Promise<Mutation<RestoreOutcome> & { target: RestoreTarget }> {
  if (request.inPlace) policy.checkFlags({ yes, destructive: true });
  const mutation = await backend.planRestore(request, { authorize: (manifest, target) => policy.checkRestore(backend, request, manifest, target) });
  const named = request.backup.vm;
  const actual = mutation.target.vm?.name;
  if (request.inPlace && named !== null && actual !== undefined && actual !== named) {
    await mutation.close?.();
    throw invalidInput(`the backup is of ${actual}, not ${named}: name it as ${actual}@STAMP for --in-place`);
  }
  return mutation;
}

export function listTemplates({ backend }: Services, options: { defaultTemplate?: string }): Promise<TemplateInfo[]> {
  return backend.listTemplates(options);
}

/** Managed VMs whose ceso.expiresAt has passed: the only ones `vm reap` may delete. */
export async function expiredVms({ backend }: Services, now = new Date()): Promise<{ expired: VmSummary[]; checked: number }> {
  const vms = await backend.listVms();
  const expired = vms.filter((vm) => isExpired(vm, now));
  return { expired, checked: vms.length };
}

/** A managed VM whose ceso.expiresAt has passed (vm reap deletes it; ceso metrics counts it). */
export function isExpired(vm: VmSummary, now: Date): boolean {
  return vm.managed && vm.expiresAt !== null && Number.isFinite(Date.parse(vm.expiresAt)) && Date.parse(vm.expiresAt) <= now.getTime();
}

export interface ReapEntry {
  name: string;
  id: string;
  expiresAt: string;
  deleted: boolean;
  error: { code: string; message: string } | null;
}

export interface ReapResult {
  dryRun: boolean;
  checked: number;
  reaped: ReapEntry[];
  plans: RenderedPlan[];
}

/**
 * Deletes the managed VMs whose expiry has passed, one by one (powered off first: an expired VM
 * is deleted whatever its state), reporting each; one failure does not stop the others.
 */
export async function reapExpired(services: Services, options: { dryRun: boolean; now?: Date; lock?: <R>(vm: string, run: () => Promise<R>) => Promise<R> }): Promise<ReapResult> {
  const { expired, checked } = await expiredVms(services, options.now);
  const result: ReapResult = { dryRun: options.dryRun, checked, reaped: [], plans: [] };
  const lock = options.lock ?? (<R>(_vm: string, run: () => Promise<R>) => run());
  for (const vm of expired) {
    const entry: ReapEntry = { name: vm.name, id: vm.id, expiresAt: vm.expiresAt ?? '', deleted: false, error: null };
    try {
      await lock(vm.name, async () => {
        const mutation = await services.backend.planDelete({ vm: { name: vm.name, id: vm.id }, force: true });
        const outcome = await perform(mutation, { dryRun: options.dryRun });
        if ('dryRun' in outcome) result.plans.push(outcome.plan);
        else entry.deleted = true;
      });
    } catch (error) {
      const failure = error instanceof CesoError ? error : new CesoError('INTERNAL', String(error));
      entry.error = { code: failure.code, message: failure.message };
    }
    result.reaped.push(entry);
  }
  return result;
}
