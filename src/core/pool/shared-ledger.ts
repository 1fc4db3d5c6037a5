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
import { current, MarkerLedger, type Lease, type LeaseRequest, type LeaseTarget, type LockProvider } from './ledger.js';
import { leaseMarkers, type PoolMember } from './members.js';

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

export class SharedLedger extends MarkerLedger {
  constructor(
    backend: HostBackend,
    pool: string,
    private readonly host: string,
    private readonly store: PoolLeaseStore,
    locks: LockProvider,
  ) {
    super(backend, pool, locks);
  }

  async handOut(request: LeaseRequest, usable: (member: PoolMember) => boolean): Promise<Lease | null> {
    const ready = await this.candidates(usable);
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
    return this.markResetting(member);
  }

  async reclaim(seen: PoolMember, now: Date): Promise<PoolMember | null> {
    const member = await this.stillExpired(seen, now);
    if (member === null) return null;
    if (member.leaseId !== null && !(await this.store.endPoolLease({ host: this.host, vmId: member.id, leaseId: member.leaseId, onlyIfExpired: true }))) return null;
    return this.markResetting(member);
  }
}
