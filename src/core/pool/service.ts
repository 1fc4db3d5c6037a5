/**
 * The warm pool (`ceso pool …`): VMs built from a template, powered on, ready (cloud-init done),
 * then frozen in a golden snapshot WITH memory; a release reverts to it, so the VM comes back
 * running with its address in seconds. Lifecycle of a member (ceso.poolState):
 *
 *   building --(ready, golden snapshot)--> ready --(acquire)--> leased --(release, reap)--> resetting --> ready
 *
 * The golden snapshot is taken while the VM's markers say `resetting`, so a VM reverted by a
 * process that died before it finished reads `resetting` too. Work on a VM (build, reset, delete)
 * holds the VM's lock; a building or resetting VM whose lock nobody holds lost its worker, and
 * pool fill and pool reap repair it (reset again, or delete and build anew). A VM reset maxResets
 * times, or whose revert fails, is rebuilt from the template under the same name.
 */
import type { DefaultsConfig } from '../../config/schema.js';
import type { HostBackend } from '../backend.js';
import { CesoError, isCesoError } from '../errors.js';
import { perform, type DryRunResult } from '../operations.js';
import type { LockHolder } from '../lock.js';
import type { RenderedPlan } from '../plan.js';
import { MARKERS } from '../vm.js';
import { current, writeMarkers, type Lease, type LeaseTarget, type LockProvider, type PoolLedger } from './ledger.js';
import { countStates, describeCounts, leaseExpired, membersOf, needsRepair, NO_LEASE, type PoolCounts, type PoolMember } from './members.js';
import { freeMemberNames, GOLDEN_SNAPSHOT, memberCreateRequest, type PoolSpec } from './spec.js';

export interface PoolContext {
  backend: HostBackend;
  spec: PoolSpec;
  ledger: PoolLedger;
  locks: LockProvider;
  defaults: Partial<DefaultsConfig>;
  /** How long to wait for a VM another process works on (--lock-timeout). */
  lockTimeoutMs: number;
  /** Progress lines for a terminal. */
  report?: (line: string) => void;
  signal?: AbortSignal;
  now?: () => Date;
}

export interface FailedVm {
  name: string;
  error: { code: string; message: string };
}

// ---- status ------------------------------------------------------------------------------------

export interface PoolVmStatus {
  name: string;
  id: string;
  state: PoolMember['state'];
  powerState: PoolMember['powerState'];
  ip: string | null;
  holder: string | null;
  leasedAt: string | null;
  leaseExpiresAt: string | null;
  /** A lease past its end, not reclaimed yet (pool reap does). */
  expired: boolean;
  resets: number;
  /** Building or resetting with no live ceso process at work on it: pool fill or pool reap repairs it. */
  stale: boolean;
  /** The ceso process at work on it now, if any. */
  worker: { pid: number; hostname: string; command: string; since: string } | null;
}

export interface PoolStatus {
  pool: string;
  template: string;
  size: number;
  max: number;
  counts: PoolCounts;
  vms: PoolVmStatus[];
}

export async function poolStatus(context: PoolContext): Promise<PoolStatus> {
  const now = (context.now ?? (() => new Date()))();
  const [members, working] = await Promise.all([context.ledger.members(), context.locks.workers()]);
  return {
    pool: context.spec.name,
    template: context.spec.template,
    size: context.spec.size,
    max: context.spec.max,
    counts: countStates(members),
    // The lease id is the holder's fence token: it is never shown to others.
    vms: members.map((member) => {
      const worker = working(member.name);
      return {
        name: member.name,
        id: member.id,
        state: member.state,
        powerState: member.powerState,
        ip: member.ip,
        holder: member.holder,
        leasedAt: member.leasedAt,
        leaseExpiresAt: member.leaseExpiresAt,
        expired: leaseExpired(member, now),
        resets: member.resets,
        stale: needsRepair(member, worker),
        worker,
      };
    }),
  };
}

// ---- acquire -----------------------------------------------------------------------------------

export interface AcquireRequest {
  holder: string;
  leaseMs: number;
  /** How long to wait for a ready VM; 0 fails at once with POOL_EMPTY. */
  waitMs: number;
}

export async function acquire(context: PoolContext, request: AcquireRequest): Promise<Lease> {
  const deadline = Date.now() + request.waitMs;
  let delay = 200;
  for (let attempt = 0; ; attempt += 1) {
    // A VM someone works on outside the pool (vm delete, vm power) is not handed out.
    const working = await context.locks.workers();
    const lease = await context.ledger.handOut({ holder: request.holder, durationMs: request.leaseMs }, (member) => working(member.name) === null);
    if (lease !== null) return lease;
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw poolEmpty(context, await context.ledger.members(), request.waitMs);
    await sleep(Math.min(remaining, delay), context.signal);
    if (context.signal?.aborted === true) throw new CesoError('INTERRUPTED', `interrupted while waiting for a ready VM of pool ${context.spec.name}`);
    delay = Math.min(delay * 1.5, 2000);
  }
}

function poolEmpty(context: PoolContext, members: readonly PoolMember[], waitMs: number): CesoError {
  const { name } = context.spec;
  const counts = countStates(members);
  const waited = waitMs > 0 ? ` after waiting ${Math.round(waitMs / 1000)} s` : '';
  return new CesoError('POOL_EMPTY', `pool ${name} has no ready VM${waited} (${describeCounts(counts)})`, {
    hint: counts.building + counts.resetting > 0 ? `Wait for one with --wait SECONDS` : `Build more with: ceso pool fill ${name} (or wait with --wait SECONDS)`,
    details: { pool: name, counts },
  });
}

export function planAcquire(context: PoolContext, members: readonly PoolMember[], request: AcquireRequest): DryRunResult {
  const chosen = members.find((member) => member.state === 'ready' && member.powerState === 'poweredOn');
  if (chosen === undefined && request.waitMs === 0) throw poolEmpty(context, members, 0);
  return dryRun(context, 'pool acquire', [
    {
      id: 'lease',
      description: `lease ${chosen?.name ?? 'the first VM that becomes ready'} to ${request.holder} for ${Math.round(request.leaseMs / 1000)} s (ceso.poolState=leased, a new lease id, holder, expiry)`,
      method: 'ReconfigVM_Task',
      object: chosen === undefined ? '<the first ready VM>' : `VirtualMachine:${chosen.id}`,
    },
  ]);
}

// ---- release and reset ---------------------------------------------------------------------------

export interface ResetOutcome {
  pool: string;
  vm: string;
  id: string;
  /** revert: back to the golden snapshot; rebuild: deleted and built anew from the template. */
  method: 'revert' | 'rebuild';
  /** Why it was rebuilt rather than reverted. */
  reason: string | null;
  state: 'ready';
  ip: string | null;
  resets: number;
}

export async function release(context: PoolContext, target: LeaseTarget): Promise<ResetOutcome> {
  // Fenced once before waiting for the VM (a reap at work on it must not turn a stale lease into LOCKED) ...
  const seen = current(await context.ledger.members(), target, context.spec.name);
  const lock = await context.locks.take(seen.name, context.lockTimeoutMs);
  try {
    // ... and again under the pool's lock, where it counts.
    const member = await context.ledger.takeBack(target.leaseId === undefined ? { vm: seen.name } : { vm: seen.name, leaseId: target.leaseId });
    return await reset(context, member);
  } finally {
    await lock.release();
  }
}

export function planRelease(context: PoolContext, members: readonly PoolMember[], target: LeaseTarget): DryRunResult {
  const member = current(members, target, context.spec.name);
  const rebuild = member.resets + 1 > context.spec.maxResets;
  return dryRun(context, 'pool release', [
    { id: 'end-lease', description: `end the lease of ${member.holder ?? 'its holder'} on ${member.name} (ceso.poolState=resetting)`, method: 'ReconfigVM_Task', object: `VirtualMachine:${member.id}` },
    ...(rebuild ? rebuildSteps(context, member.name, `it was reset ${member.resets} times (maxResets ${context.spec.maxResets})`) : resetSteps(member)),
  ]);
}

function resetSteps(member: { name: string; id: string }): DryRunStep[] {
  return [
    { id: 'revert', description: `revert ${member.name} to ${GOLDEN_SNAPSHOT} (it comes back running from memory)`, method: 'RevertToSnapshot_Task', object: `<${GOLDEN_SNAPSHOT} of ${member.name}>` },
    { id: 'wait-ip', description: `wait until ${member.name} reports its address again`, method: 'WaitForUpdatesEx', object: `VirtualMachine:${member.id}` },
    { id: 'mark-ready', description: `mark ${member.name} ready (ceso.poolState=ready, ceso.poolResets + 1)`, method: 'ReconfigVM_Task', object: `VirtualMachine:${member.id}` },
  ];
}

/** Back to the golden snapshot, or rebuilt; the caller holds the VM's lock and has it `resetting`. */
async function reset(context: PoolContext, member: PoolMember): Promise<ResetOutcome> {
  const { spec } = context;
  const vm = { name: member.name, id: member.id };
  if (member.resets + 1 > spec.maxResets) return rebuild(context, member, `it was reset ${member.resets} times (maxResets ${spec.maxResets})`);
  try {
    context.report?.(`${member.name}: reverting to ${GOLDEN_SNAPSHOT}`);
    await perform(await context.backend.planSnapshotRevert({ vm, snapshot: GOLDEN_SNAPSHOT, powerOn: true }), { dryRun: false, ...signalOf(context) });
    const guest = await context.backend.waitForGuest(vm, { until: 'ip', timeoutMs: spec.readyTimeoutMs, ...signalOf(context) });
    // The revert brought back the markers of the golden moment: the count is written anew.
    await setMarkers(context, vm, { [MARKERS.poolState]: 'ready', [MARKERS.poolResets]: String(member.resets + 1), ...NO_LEASE });
    return { pool: spec.name, vm: member.name, id: member.id, method: 'revert', reason: null, state: 'ready', ip: guest.ip, resets: member.resets + 1 };
  } catch (error) {
    if (isCesoError(error) && error.code === 'INTERRUPTED') throw error;
    return rebuild(context, member, `the reset failed: ${describe(error)}`);
  }
}

async function rebuild(context: PoolContext, member: PoolMember, reason: string): Promise<ResetOutcome> {
  context.report?.(`${member.name}: rebuilding (${reason})`);
  await deleteMember(context, { name: member.name, id: member.id });
  const built = await buildLocked(context, member.name);
  return { pool: context.spec.name, vm: built.name, id: built.id, method: 'rebuild', reason, state: 'ready', ip: built.ip, resets: 0 };
}

function rebuildSteps(context: PoolContext, name: string, reason: string): DryRunStep[] {
  return [{ id: `delete-${name}`, description: `delete ${name} (${reason})`, method: 'Destroy_Task', object: `<${name}>` }, ...buildSteps(context, name)];
}

// ---- fill ----------------------------------------------------------------------------------------

export interface BuiltVm {
  name: string;
  id: string;
  ip: string | null;
}

export interface RepairOutcome {
  name: string;
  /** What was wrong, and what was done about it. */
  was: PoolMember['state'];
  action: 'reset' | 'rebuilt' | 'deleted';
}

export interface FillOutcome {
  pool: string;
  built: BuiltVm[];
  failed: FailedVm[];
  repaired: RepairOutcome[];
  counts: PoolCounts;
}

/** What fill will do: repairs, then builds until `size` VMs are ready (at most `max` VMs in all). */
export function fillNeeds(spec: PoolSpec, members: readonly PoolMember[], worker: (name: string) => LockHolder | null): { repair: PoolMember[]; build: number } {
  const repair = members.filter((member) => needsRepair(member, worker(member.name)));
  const deleted = repair.filter((member) => member.state !== 'resetting').length;
  const counts = countStates(members);
  // repaired resetting VMs become ready; repaired building/failed ones are deleted and count as needed
  const ready = counts.ready + repair.filter((member) => member.state === 'resetting').length;
  const inFlight = members.filter((member) => (member.state === 'building' || member.state === 'resetting') && worker(member.name) !== null).length;
  const total = members.length - deleted;
  return { repair, build: Math.max(0, Math.min(spec.size - ready - inFlight, spec.max - total)) };
}

/** What fill finds on the host: the template checked, the members, what to repair and the names to build. */
async function surveyFill(context: PoolContext): Promise<{ members: PoolMember[]; repair: PoolMember[]; names: string[] }> {
  const { spec } = context;
  await checkTemplate(context);
  const vms = await context.backend.listMarkedVms();
  const members = membersOf(vms, spec.name);
  const { repair, build } = fillNeeds(spec, members, await context.locks.workers());
  return { members, repair, names: freeMemberNames(spec.name, new Set(vms.map((vm) => vm.name)), build) };
}

export async function fill(context: PoolContext): Promise<FillOutcome> {
  // One fill of a pool at a time: a second would count the same gaps and build them twice.
  const lock = await context.locks.take(`fill:${context.spec.name}`, context.lockTimeoutMs);
  try {
    return await fillLocked(context);
  } finally {
    await lock.release();
  }
}

async function fillLocked(context: PoolContext): Promise<FillOutcome> {
  const { spec } = context;
  const { repair, names } = await surveyFill(context);
  const failed: FailedVm[] = [];
  const repaired = await repairAll(context, repair, failed);
  const built: BuiltVm[] = [];
  let stop = false;
  await runBounded(names, spec.parallel, async (name) => {
    if (stop || context.signal?.aborted === true) return;
    try {
      built.push(await build_(context, name));
    } catch (error) {
      // After a failure no new build starts (a full datastore fails them all); those running finish.
      stop = true;
      failed.push({ name, error: errorOf(error) });
      if (isCesoError(error) && error.code === 'INTERRUPTED') throw error;
    }
  });
  built.sort((a, b) => a.name.localeCompare(b.name));
  const outcome: FillOutcome = { pool: spec.name, built, failed, repaired, counts: countStates(await context.ledger.members()) };
  if (failed.length > 0 && outcome.counts.ready < spec.size) {
    const first = failed[0] as FailedVm;
    throw new CesoError(first.error.code as never, `pool fill ${spec.name}: ${failed.length} of ${names.length + repair.length} builds failed, ${outcome.counts.ready} of ${spec.size} VMs ready; ${first.name}: ${first.error.message}`, {
      hint: 'Failed builds were deleted again; fix the cause and run pool fill again',
      details: outcome as never,
    });
  }
  return outcome;
}

export async function planFill(context: PoolContext): Promise<DryRunResult> {
  const { spec } = context;
  const { members, repair, names } = await surveyFill(context);
  const warnings = names.length === 0 && repair.length === 0 ? [`pool ${spec.name} already has ${countStates(members).ready} ready VMs (size ${spec.size}): nothing to build`] : [];
  return dryRun(context, 'pool fill', [...repair.flatMap((member) => repairSteps(context, member)), ...names.flatMap((name) => buildSteps(context, name))], warnings);
}

async function checkTemplate(context: PoolContext): Promise<void> {
  const { spec } = context;
  let template;
  try {
    template = await context.backend.getVm({ name: spec.template });
  } catch (error) {
    if (isCesoError(error) && error.code === 'VM_NOT_FOUND') {
      throw new CesoError('TEMPLATE_NOT_FOUND', `pool ${spec.name}: its template "${spec.template}" does not exist on this host`, {
        hint: `Import one (ceso template import) or set pools.${spec.name}.template; see ceso template list`,
      });
    }
    throw error;
  }
  if (template.powerState !== 'poweredOff') {
    throw new CesoError('INVALID_POWER_STATE', `pool ${spec.name}: its template "${spec.template}" is ${template.powerState ?? 'in an unknown power state'}; a template must be powered off`, {
      hint: `Power it off first: ceso vm power ${spec.template} shutdown`,
    });
  }
}

function buildSteps(context: PoolContext, name: string): DryRunStep[] {
  const { spec } = context;
  return [
    { id: `create-${name}`, description: `create ${name} as a ${spec.linked ? 'linked' : 'full'} clone of ${spec.template}, markers ceso.pool=${spec.name} ceso.poolState=building, power on`, method: 'CreateVM_Task', object: `<${name}>` },
    { id: `wait-${name}`, description: `wait until cloud-init reports ${name} ready`, method: 'WaitForUpdatesEx', object: `<${name}>` },
    { id: `golden-${name}`, description: `snapshot ${name} as ${GOLDEN_SNAPSHOT} with memory, then mark it ready`, method: 'CreateSnapshot_Task', object: `<${name}>` },
  ];
}

/** Builds one member: the caller holds nothing; the VM's lock is held while it is built. */
async function build_(context: PoolContext, name: string): Promise<BuiltVm> {
  const lock = await context.locks.take(name, 0);
  try {
    return await buildLocked(context, name);
  } finally {
    await lock.release();
  }
}

/** create (linked by default), power on, ready, golden snapshot with memory, ready. A failed build is deleted again. */
async function buildLocked(context: PoolContext, name: string): Promise<BuiltVm> {
  const { spec, backend } = context;
  const { request, diskFromDefaults } = memberCreateRequest(spec, name, context.defaults);
  context.report?.(`${name}: creating from ${spec.template}`);
  // The first linked clone takes the template's base snapshot: creates of one template one at a time.
  const created = await withLock(context, spec.linked ? spec.template : undefined, async () => {
    const result = await perform(await backend.planCreate(request, { diskFromDefaults }), { dryRun: false, ...signalOf(context) });
    return result as Exclude<typeof result, DryRunResult>;
  });
  const vm = { name: created.name, id: created.id };
  try {
    context.report?.(`${name}: waiting for cloud-init`);
    const guest = await backend.waitForGuest(vm, { until: 'ready', timeoutMs: spec.readyTimeoutMs, ...signalOf(context) });
    await setMarkers(context, vm, { [MARKERS.poolState]: 'resetting' });
    context.report?.(`${name}: taking ${GOLDEN_SNAPSHOT}`);
    await perform(await backend.planSnapshotCreate({ vm, name: GOLDEN_SNAPSHOT, description: `ceso pool ${spec.name}: what every reset returns to`, memory: true, quiesce: false }), { dryRun: false, ...signalOf(context) });
    await setMarkers(context, vm, { [MARKERS.poolState]: 'ready' });
    return { name: vm.name, id: vm.id, ip: guest.ip };
  } catch (error) {
    await deleteMember(context, vm).catch((cleanup: unknown) => {
      context.report?.(`${name}: could not delete the failed build: ${describe(cleanup)}`);
    });
    throw error;
  }
}

// ---- reap and repair -----------------------------------------------------------------------------

export interface ReapOutcome {
  pool: string;
  /** Leases past their end, taken back and reset. */
  reclaimed: ResetOutcome[];
  repaired: RepairOutcome[];
  failed: FailedVm[];
  counts: PoolCounts;
}

export async function reap(context: PoolContext): Promise<ReapOutcome> {
  const now = (context.now ?? (() => new Date()))();
  const members = await context.ledger.members();
  const failed: FailedVm[] = [];
  const reclaimed: ResetOutcome[] = [];
  for (const member of members.filter((candidate) => leaseExpired(candidate, now))) {
    try {
      const outcome = await withMemberLock(context, member.name, async () => {
        const taken = await context.ledger.reclaim(member, now);
        return taken === null ? null : reset(context, taken);
      });
      if (outcome !== null) reclaimed.push(outcome);
    } catch (error) {
      if (!isLocked(error)) failed.push({ name: member.name, error: errorOf(error) });
    }
  }
  const working = await context.locks.workers();
  const repaired = await repairAll(context, members.filter((member) => needsRepair(member, working(member.name))), failed);
  const outcome = { pool: context.spec.name, reclaimed, repaired, failed, counts: countStates(await context.ledger.members()) };
  if (failed.length > 0) {
    const first = failed[0] as FailedVm;
    throw new CesoError(first.error.code as never, `pool reap ${context.spec.name}: ${failed.length} VMs could not be repaired; ${first.name}: ${first.error.message}`, {
      hint: 'Run pool status to see them; pool reap tries again',
      details: outcome as never,
    });
  }
  return outcome;
}

export async function planReap(context: PoolContext): Promise<DryRunResult> {
  const now = (context.now ?? (() => new Date()))();
  const members = await context.ledger.members();
  const steps: DryRunStep[] = [];
  for (const member of members.filter((candidate) => leaseExpired(candidate, now))) {
    steps.push({ id: `reclaim-${member.name}`, description: `take back ${member.name} from ${member.holder ?? 'its holder'} (lease ended ${member.leaseExpiresAt ?? 'without an end'})`, method: 'ReconfigVM_Task', object: `VirtualMachine:${member.id}` }, ...resetSteps(member));
  }
  const working = await context.locks.workers();
  for (const member of members.filter((candidate) => needsRepair(candidate, working(candidate.name)))) steps.push(...repairSteps(context, member));
  return dryRun(context, 'pool reap', steps, steps.length === 0 ? [`pool ${context.spec.name}: no expired lease and nothing to repair`] : []);
}

function repairSteps(context: PoolContext, member: PoolMember): DryRunStep[] {
  return member.state === 'resetting'
    ? resetSteps(member)
    : [{ id: `delete-${member.name}`, description: `delete ${member.name} (${member.state}, its worker is gone)`, method: 'Destroy_Task', object: `VirtualMachine:${member.id}` }];
}

/** Stale resetting VMs are reset again; stale building and failed VMs are deleted (fill builds anew). */
async function repairAll(context: PoolContext, members: readonly PoolMember[], failed: FailedVm[]): Promise<RepairOutcome[]> {
  const repaired: RepairOutcome[] = [];
  for (const member of members) {
    try {
      const outcome = await withMemberLock(context, member.name, async (): Promise<RepairOutcome | null> => {
        const now = (await context.ledger.members()).find((candidate) => candidate.id === member.id);
        if (now === undefined || now.state !== member.state) return null; // someone else repaired it meanwhile
        if (member.state === 'resetting') {
          const reset_ = await reset(context, now);
          return { name: member.name, was: member.state, action: reset_.method === 'revert' ? 'reset' : 'rebuilt' };
        }
        await deleteMember(context, { name: member.name, id: member.id });
        return { name: member.name, was: member.state, action: 'deleted' };
      });
      if (outcome !== null) repaired.push(outcome);
    } catch (error) {
      // Another process is at work on it (a release, a concurrent reap): it is theirs to finish.
      if (!isLocked(error)) failed.push({ name: member.name, error: errorOf(error) });
    }
  }
  return repaired;
}

// ---- destroy -------------------------------------------------------------------------------------

export interface DestroyOutcome {
  pool: string;
  deleted: string[];
  failed: FailedVm[];
}

export async function destroy(context: PoolContext): Promise<DestroyOutcome> {
  return context.ledger.exclusive(async () => {
    const members = await context.ledger.members();
    const deleted: string[] = [];
    const failed: FailedVm[] = [];
    for (const member of members) {
      try {
        await withMemberLock(context, member.name, () => deleteMember(context, { name: member.name, id: member.id }), context.lockTimeoutMs);
        deleted.push(member.name);
      } catch (error) {
        failed.push({ name: member.name, error: errorOf(error) });
      }
    }
    const outcome = { pool: context.spec.name, deleted, failed };
    if (failed.length > 0) {
      const first = failed[0] as FailedVm;
      throw new CesoError(first.error.code as never, `pool destroy ${context.spec.name}: ${failed.length} of ${members.length} VMs were not deleted; ${first.name}: ${first.error.message}`, {
        hint: 'Run it again once they are free (see pool status)',
        details: outcome as never,
      });
    }
    return outcome;
  });
}

export async function planDestroy(context: PoolContext): Promise<DryRunResult> {
  const members = await context.ledger.members();
  return dryRun(
    context,
    'pool destroy',
    members.map((member) => ({ id: `delete-${member.name}`, description: `power off and delete ${member.name} (${member.state}${member.holder === null ? '' : `, leased to ${member.holder}`})`, method: 'Destroy_Task', object: `VirtualMachine:${member.id}` })),
    members.length === 0 ? [`pool ${context.spec.name} has no VMs`] : [],
  );
}

// ---- shared --------------------------------------------------------------------------------------

async function deleteMember(context: PoolContext, vm: { name: string; id: string }): Promise<void> {
  try {
    await perform(await context.backend.planDelete({ vm, force: true }), { dryRun: false });
  } catch (error) {
    if (isCesoError(error) && error.code === 'VM_NOT_FOUND') return;
    throw error;
  }
}

function setMarkers(context: PoolContext, vm: { name: string; id: string }, set: Record<string, string | null>): Promise<void> {
  return writeMarkers(context.backend, vm, set);
}

/** Work on a VM another ceso process is not at work on (skipped with LOCKED when it is). */
async function withMemberLock<R>(context: PoolContext, name: string, run: () => Promise<R>, timeoutMs = 0): Promise<R> {
  const lock = await context.locks.take(name, timeoutMs);
  try {
    return await run();
  } finally {
    await lock.release();
  }
}

async function withLock<R>(context: PoolContext, name: string | undefined, run: () => Promise<R>): Promise<R> {
  if (name === undefined) return run();
  return withMemberLock(context, name, run, Math.max(context.lockTimeoutMs, 600_000));
}

/** Runs `work` over the items, at most `limit` at once. */
async function runBounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next] as T;
      next += 1;
      await work(item);
    }
  });
  await Promise.all(workers);
}

interface DryRunStep {
  id: string;
  description: string;
  method: string;
  object: string;
}

function dryRun(context: PoolContext, operation: string, steps: DryRunStep[], warnings: string[] = []): DryRunResult {
  const plan: RenderedPlan = {
    operation,
    target: context.spec.name,
    via: context.backend.via,
    steps: steps.map((step, index) => ({ step: index + 1, id: step.id, description: step.description, kind: 'api', method: step.method, object: step.object, arguments: {} })),
    warnings,
  };
  return { dryRun: true, plan };
}

function signalOf(context: PoolContext): { signal?: AbortSignal } {
  return context.signal === undefined ? {} : { signal: context.signal };
}

function isLocked(error: unknown): boolean {
  return isCesoError(error) && error.code === 'LOCKED';
}

function errorOf(error: unknown): { code: string; message: string } {
  return isCesoError(error) ? { code: error.code, message: error.message } : { code: 'INTERNAL', message: describe(error) };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, Math.max(0, ms));
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export type { Lease, LeaseTarget };
