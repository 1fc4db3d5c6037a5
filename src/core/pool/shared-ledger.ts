/**
 * The pool's ledger when several machines share it (state.backend: postgres): each hand-out is
 * one short transaction in the database that claims a ready VM with FOR UPDATE SKIP LOCKED, and
 * every take-back is conditional on the lease id (the fence), so two machines never lease one VM
 * and a late holder changes nothing. The VM's markers are still written (outside the
 * transaction, never across an ESXi task): they stay the record a host can be rebuilt from, and
 * what pool status shows. Times come from the database's clock.
 */
import { randomUUID } from 'node:crypto';
import type { HostBackend } from '../backend.js';
import { CesoError } from '../errors.js';
import { perform } from '../operations.js';
import { MARKERS } from '../vm.js';
import { current, type Lease, type LeaseRequest, type LeaseTarget, type LockProvider, type PoolLedger } from './ledger.js';
import { leaseExpired, leaseMarkers, membersOf, NO_LEASE, type PoolMember } from './members.js';

/** What the shared ledger needs of the state store (state/postgres.ts implements it). */
export interface PoolLeaseStore {
  /**
   * Claims one of the candidates (ready VMs) that no current lease holds, in one transaction:
   * a new lease id and epoch, times from the database. null when every candidate is taken.
   */
  claimPoolVm(request: { host: string; pool: string; candidates: ReadonlyArray<{ id: string; name: string }>; holder: string; durationMs: number; leaseId: string }): Promise<{ vmId: string; epoch: number; leasedAt: string; expiresAt: string } | null>;
  /** Ends the lease if it is still `leaseId` (and, with onlyIfExpired, past its end): false when it is not. */
  endPoolLease(request: { host: string; vmId: string; leaseId: string; onlyIfExpired?: boolean }): Promise<boolean>;
}

const POOL_LOCK_WAIT_MS = 120_000;

export class SharedLedger implements PoolLedger {
  constructor(
    private readonly backend: HostBackend,
    private readonly pool: string,
    private readonly host: string,
    private readonly store: PoolLeaseStore,
    private readonly locks: LockProvider,
  ) {}

  async members(): Promise<PoolMember[]> {
    return membersOf(await this.backend.listMarkedVms(), this.pool);
  }

  async handOut(request: LeaseRequest, usable: (member: PoolMember) => boolean): Promise<Lease | null> {
    const ready = (await this.members()).filter((member) => member.state === 'ready' && member.powerState === 'poweredOn' && usable(member));
    if (ready.length === 0) return null;
    const leaseId = randomUUID();
    const claimed = await this.store.claimPoolVm({ host: this.host, pool: this.pool, candidates: ready.map(({ id, name }) => ({ id, name })), holder: request.holder, durationMs: request.durationMs, leaseId });
    if (claimed === null) return null;
    const chosen = ready.find((member) => member.id === claimed.vmId) as PoolMember;
    const lease: Lease = { pool: this.pool, vm: chosen.name, id: chosen.id, ip: chosen.ip, leaseId, holder: request.holder, leasedAt: claimed.leasedAt, expiresAt: claimed.expiresAt };
    try {
      await this.write(chosen, leaseMarkers(lease));
    } catch (error) {
      await this.store.endPoolLease({ host: this.host, vmId: chosen.id, leaseId }).catch(() => false);
      throw error;
    }
    return lease;
  }

  async takeBack(target: LeaseTarget): Promise<PoolMember> {
    const member = current(await this.members(), target, this.pool);
    const leaseId = member.leaseId as string;
    if (!(await this.store.endPoolLease({ host: this.host, vmId: member.id, leaseId }))) {
      throw new CesoError('LEASE_NOT_HELD', `the lease of ${member.name} in pool ${this.pool} was ended meanwhile (by another machine); nothing was changed`, {
        hint: 'The lease was released already, or it expired and was reclaimed: acquire a new one with ceso pool acquire',
        details: { pool: this.pool, vm: member.name },
      });
    }
    await this.write(member, { [MARKERS.poolState]: 'resetting', ...NO_LEASE });
    return { ...member, state: 'resetting', holder: null, leaseId: null, leasedAt: null, leaseExpiresAt: null };
  }

  async reclaim(seen: PoolMember, now: Date): Promise<PoolMember | null> {
    const member = (await this.members()).find((candidate) => candidate.id === seen.id);
    if (member === undefined || member.state !== 'leased' || member.leaseId !== seen.leaseId || !leaseExpired(member, now)) return null;
    if (member.leaseId !== null && !(await this.store.endPoolLease({ host: this.host, vmId: member.id, leaseId: member.leaseId, onlyIfExpired: true }))) return null;
    await this.write(member, { [MARKERS.poolState]: 'resetting', ...NO_LEASE });
    return { ...member, state: 'resetting', holder: null, leaseId: null, leasedAt: null, leaseExpiresAt: null };
  }

  async exclusive<R>(run: () => Promise<R>): Promise<R> {
    const lock = await this.locks.take(`pool:${this.pool}`, POOL_LOCK_WAIT_MS);
    try {
      return await run();
    } finally {
      await lock.release();
    }
  }

  private async write(member: PoolMember, set: Record<string, string | null>): Promise<void> {
    await perform(await this.backend.planSetMarkers({ vm: { name: member.name, id: member.id }, set }), { dryRun: false });
  }
}
