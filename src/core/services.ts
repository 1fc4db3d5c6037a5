import type { DeleteOutcome, HostBackend, Mutation, PowerOutcome } from './backend.js';
import { CesoError } from './errors.js';
import type { ImportOutcome, ImportRequest } from './import.js';
import type { TemplateInfo } from './templates.js';
import { perform } from './operations.js';
import type { RenderedPlan } from './plan.js';
import type { Policy } from './policy.js';
import type { CloneRequest, CreateRequest, DeleteRequest, PowerRequest } from './requests.js';
import type { VmDetails, VmSummary } from './vm.js';

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

export async function planImportTemplate({ backend, policy }: Services, request: ImportRequest): Promise<Mutation<ImportOutcome>> {
  policy.checkImport();
  return backend.planImport(request);
}

export function listTemplates({ backend }: Services, options: { defaultTemplate?: string }): Promise<TemplateInfo[]> {
  return backend.listTemplates(options);
}

/** Managed VMs whose ceso.expiresAt has passed: the only ones `vm reap` may delete. */
export async function expiredVms({ backend }: Services, now = new Date()): Promise<{ expired: VmSummary[]; checked: number }> {
  const vms = await backend.listVms();
  const expired = vms.filter((vm) => vm.managed && vm.expiresAt !== null && Number.isFinite(Date.parse(vm.expiresAt)) && Date.parse(vm.expiresAt) <= now.getTime());
  return { expired, checked: vms.length };
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
