/**
 * A pool's VMs as their markers describe them. The markers on the VMs are the pool's record: a
 * pool survives the machine that made it, and `pool status` on any machine reads the same.
 */
import type { MarkedVm } from '../backend.js';
import type { LockHolder } from '../lock.js';
import { MARKERS, type PowerState } from '../vm.js';
import { POOL_STATES, type PoolVmState } from './spec.js';

export interface PoolMember {
  name: string;
  id: string;
  /** The state the markers give; 'failed' also for a marker ceso does not know. */
  state: PoolVmState;
  powerState: PowerState | null;
  ip: string | null;
  holder: string | null;
  leaseId: string | null;
  leasedAt: string | null;
  leaseExpiresAt: string | null;
  resets: number;
}

export function membersOf(vms: readonly MarkedVm[], pool: string): PoolMember[] {
  return vms.filter((vm) => vm.markers[MARKERS.pool] === pool).map(memberOf);
}

export function memberOf(vm: MarkedVm): PoolMember {
  const marker = (key: string): string | null => {
    const value = vm.markers[key];
    return value === undefined || value === '' ? null : value;
  };
  const state = marker(MARKERS.poolState);
  const resets = Number(marker(MARKERS.poolResets) ?? '0');
  return {
    name: vm.name,
    id: vm.id,
    state: (POOL_STATES as readonly string[]).includes(state ?? '') ? (state as PoolVmState) : 'failed',
    powerState: vm.powerState,
    ip: vm.ip,
    holder: marker(MARKERS.leaseHolder),
    leaseId: marker(MARKERS.leaseId),
    leasedAt: marker(MARKERS.leasedAt),
    leaseExpiresAt: marker(MARKERS.leaseExpiresAt),
    resets: Number.isInteger(resets) && resets >= 0 ? resets : 0,
  };
}

/** A lease whose end has passed, or that has no readable end (every lease must end). */
export function leaseExpired(member: PoolMember, now: Date): boolean {
  if (member.state !== 'leased') return false;
  const end = member.leaseExpiresAt === null ? Number.NaN : Date.parse(member.leaseExpiresAt);
  return !Number.isFinite(end) || end <= now.getTime();
}

/**
 * A VM in a passing state (building, resetting) whose worker is gone: no live ceso process holds
 * its lock. pool fill and pool reap repair it; a failed VM is always repaired.
 */
export function needsRepair(member: PoolMember, worker: LockHolder | null): boolean {
  if (member.state === 'failed') return worker === null;
  return (member.state === 'building' || member.state === 'resetting') && worker === null;
}

export type PoolCounts = Record<PoolVmState, number>;

export function countStates(members: readonly PoolMember[]): PoolCounts {
  const counts = Object.fromEntries(POOL_STATES.map((state) => [state, 0])) as PoolCounts;
  for (const member of members) counts[member.state] += 1;
  return counts;
}

export function describeCounts(counts: PoolCounts): string {
  const parts = POOL_STATES.filter((state) => counts[state] > 0).map((state) => `${counts[state]} ${state}`);
  return parts.length === 0 ? 'no VMs' : parts.join(', ');
}

/** The markers of a lease, and what clears them (null removes a marker). */
export function leaseMarkers(lease: { leaseId: string; holder: string; leasedAt: string; expiresAt: string }): Record<string, string> {
  return {
    [MARKERS.poolState]: 'leased',
    [MARKERS.leaseId]: lease.leaseId,
    [MARKERS.leaseHolder]: lease.holder,
    [MARKERS.leasedAt]: lease.leasedAt,
    [MARKERS.leaseExpiresAt]: lease.expiresAt,
  };
}

export const NO_LEASE: Record<string, null> = {
  [MARKERS.leaseId]: null,
  [MARKERS.leaseHolder]: null,
  [MARKERS.leasedAt]: null,
  [MARKERS.leaseExpiresAt]: null,
};
