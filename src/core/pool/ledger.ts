/**
 * Who holds which pool VM: the one place leases are handed out and taken back. Every change of a
 * lease re-reads the VM's markers under the pool's lock and checks the lease is still the one it
 * acts for (the fence), so a late holder never resets a VM that someone else now holds.
 *
 * LocalLedger keeps the record on the VMs (markers) and serializes hand-outs with a pool-wide
 * lock file (core/lock.ts) on this machine. A ledger shared between machines implements the same
 * interface; the markers stay the record a host can be rebuilt from.
 */
import { randomUUID } from 'node:crypto';
import type { HostBackend } from '../backend.js';
import { CesoError } from '../errors.js';
import type { LockHolder } from '../lock.js';
import { perform } from '../operations.js';
import { MARKERS } from '../vm.js';
import { leaseExpired, leaseMarkers, membersOf, NO_LEASE, type PoolMember } from './members.js';

export interface LeaseRequest {
  holder: string;
  durationMs: number;
}

export interface Lease {
  pool: string;
  vm: string;
  id: string;
  ip: string | null;
  leaseId: string;
  holder: string;
  leasedAt: string;
  expiresAt: string;
}

/** Which lease a release names: the VM's current one, or exactly this lease id. */
export interface LeaseTarget {
  vm?: string;
  leaseId?: string;
}

export interface PoolLedger {
  /** The pool's VMs as recorded now. */
  members(): Promise<PoolMember[]>;
  /** One ready VM leased to the holder, atomically (never one VM twice); null when none is ready. */
  handOut(request: LeaseRequest, usable: (member: PoolMember) => boolean): Promise<Lease | null>;
  /** Ends the lease the target names if it is still current: the VM is then resetting. LEASE_NOT_HELD otherwise. */
  takeBack(target: LeaseTarget): Promise<PoolMember>;
  /** Ends an expired lease (reap) if it is still the one seen: the VM is resetting; null when it changed meanwhile. */
  reclaim(seen: PoolMember, now: Date): Promise<PoolMember | null>;
  /** Runs `run` while no lease can be handed out or taken back (destroy). */
  exclusive<R>(run: () => Promise<R>): Promise<R>;
}

export interface LockProvider {
  /** Takes a lock of this host's namespace (a VM's name, or "pool:<name>"), waiting up to timeoutMs. */
  take(name: string, timeoutMs: number): Promise<{ release(): void | Promise<void> }>;
  /** Who holds which lock of the namespace now (reads only): a lookup by name, null when free. */
  workers(): Promise<(name: string) => LockHolder | null>;
}

/** Hand-outs take milliseconds; a fill or destroy may hold the pool lock longer. */
const POOL_LOCK_WAIT_MS = 120_000;

/** Sets or removes ceso.* markers on one VM (one ReconfigVM_Task). */
export async function writeMarkers(backend: HostBackend, vm: { name: string; id: string }, set: Record<string, string | null>): Promise<void> {
  await perform(await backend.planSetMarkers({ vm: { name: vm.name, id: vm.id }, set }), { dryRun: false });
}

/** What both ledgers share: the record on the VMs' markers, and the pool-wide lock. */
export abstract class MarkerLedger implements PoolLedger {
  constructor(
    protected readonly backend: HostBackend,
    protected readonly pool: string,
    private readonly locks: LockProvider,
  ) {}

  abstract handOut(request: LeaseRequest, usable: (member: PoolMember) => boolean): Promise<Lease | null>;
  abstract takeBack(target: LeaseTarget): Promise<PoolMember>;
  abstract reclaim(seen: PoolMember, now: Date): Promise<PoolMember | null>;

  async members(): Promise<PoolMember[]> {
    return membersOf(await this.backend.listMarkedVms(), this.pool);
  }

  async exclusive<R>(run: () => Promise<R>): Promise<R> {
    const lock = await this.locks.take(`pool:${this.pool}`, POOL_LOCK_WAIT_MS);
    try {
      return await run();
    } finally {
      await lock.release();
    }
  }

  /** The ready, running VMs a hand-out may give, as the markers say now. */
  protected async candidates(usable: (member: PoolMember) => boolean): Promise<PoolMember[]> {
    return (await this.members()).filter((member) => member.state === 'ready' && member.powerState === 'poweredOn' && usable(member));
  }

  /** The member as `seen` by reap, re-read: still leased under that lease, and past its end; else null. */
  protected async stillExpired(seen: PoolMember, now: Date): Promise<PoolMember | null> {
    const member = (await this.members()).find((candidate) => candidate.id === seen.id);
    return member === undefined || member.state !== 'leased' || member.leaseId !== seen.leaseId || !leaseExpired(member, now) ? null : member;
  }

  protected write(member: PoolMember, set: Record<string, string | null>): Promise<void> {
    return writeMarkers(this.backend, member, set);
  }

  /** The lease ended: the VM is resetting and nobody's. */
  protected async markResetting(member: PoolMember): Promise<PoolMember> {
    await this.write(member, { [MARKERS.poolState]: 'resetting', ...NO_LEASE });
    return { ...member, state: 'resetting', holder: null, leaseId: null, leasedAt: null, leaseExpiresAt: null };
  }
}

export class LocalLedger extends MarkerLedger {
  constructor(
    backend: HostBackend,
    pool: string,
    locks: LockProvider,
    private readonly now: () => Date = () => new Date(),
  ) {
    super(backend, pool, locks);
  }

  async handOut(request: LeaseRequest, usable: (member: PoolMember) => boolean): Promise<Lease | null> {
    return this.exclusive(async () => {
      const chosen = (await this.candidates(usable))[0];
      if (chosen === undefined) return null;
      const leasedAt = this.now();
      const lease: Lease = {
        pool: this.pool,
        vm: chosen.name,
        id: chosen.id,
        ip: chosen.ip,
        leaseId: randomUUID(),
        holder: request.holder,
        leasedAt: leasedAt.toISOString(),
        expiresAt: new Date(leasedAt.getTime() + request.durationMs).toISOString(),
      };
      await this.write(chosen, leaseMarkers(lease));
      return lease;
    });
  }

  async takeBack(target: LeaseTarget): Promise<PoolMember> {
    return this.exclusive(async () => this.markResetting(current(await this.members(), target, this.pool)));
  }

  async reclaim(seen: PoolMember, now: Date): Promise<PoolMember | null> {
    return this.exclusive(async () => {
      const member = await this.stillExpired(seen, now);
      return member === null ? null : this.markResetting(member);
    });
  }
}

/** The member whose lease the target names, if that lease is current; LEASE_NOT_HELD otherwise. */
export function current(members: readonly PoolMember[], target: LeaseTarget, pool: string): PoolMember {
  const member = target.vm !== undefined ? members.find((candidate) => candidate.name === target.vm) : members.find((candidate) => candidate.leaseId === target.leaseId);
  if (member === undefined && target.vm !== undefined) {
    throw new CesoError('VM_NOT_FOUND', `"${target.vm}" is not a VM of pool ${pool}`, { hint: `See the pool's VMs with: ceso pool status ${pool}` });
  }
  const leaseMatches = target.leaseId === undefined || member?.leaseId === target.leaseId;
  if (member === undefined || member.state !== 'leased' || !leaseMatches) {
    const what = target.leaseId === undefined ? `"${target.vm}"` : `lease ${target.leaseId}`;
    const now = member === undefined ? 'no VM holds it' : member.state === 'leased' ? `${member.name} is leased under another lease now` : `${member.name} is ${member.state}`;
    throw new CesoError('LEASE_NOT_HELD', `${what} of pool ${pool} is not leased: ${now}; nothing was changed`, {
      hint: 'The lease was released already, or it expired and was reclaimed: acquire a new one with ceso pool acquire',
      details: { pool, ...(member === undefined ? {} : { vm: member.name, state: member.state }) },
    });
  }
  return member;
}
