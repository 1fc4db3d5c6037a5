import { describe, expect, it } from 'vitest';
import { configFileSchema } from '../../src/config/schema.js';
import { current } from '../../src/core/pool/ledger.js';
import { countStates, leaseExpired, memberOf, needsRepair, type PoolMember } from '../../src/core/pool/members.js';
import { fillNeeds } from '../../src/core/pool/service.js';
import { freeMemberNames, memberCreateRequest, parseLease, poolSpec } from '../../src/core/pool/spec.js';
import type { MarkedVm } from '../../src/core/backend.js';

const file = configFileSchema.parse({ pools: { bench: { size: 3, max: 4, lease: '90s' }, open: { size: 2, template: 't2', linked: false, ttl: '1d' } } });

function member(name: string, state: PoolMember['state'], extra: Partial<PoolMember> = {}): PoolMember {
  return { name, id: `vm-${name}`, state, powerState: 'poweredOn', ip: null, holder: null, leaseId: null, leasedAt: null, leaseExpiresAt: null, resets: 0, ...extra };
}

const alive = { pid: 1, hostname: 'here', command: 'ceso pool fill', since: '' };

describe('pool spec', () => {
  it('reads the config, with the defaults and the template of defaults.template', () => {
    const spec = poolSpec(file, 'bench', { template: 'ubuntu' });
    expect(spec).toMatchObject({ name: 'bench', template: 'ubuntu', size: 3, max: 4, linked: true, leaseMs: 90_000, maxResets: 25, parallel: 4, readyTimeoutMs: 600_000 });
    expect(poolSpec(file, 'open', {})).toMatchObject({ template: 't2', max: 4, linked: false });
  });

  it('names an unknown pool, a pool without template, and max below size', () => {
    expect(() => poolSpec(file, 'nope', {})).toThrow(expect.objectContaining({ code: 'POOL_NOT_FOUND', hint: expect.stringContaining('bench, open') }));
    expect(() => poolSpec(file, 'bench', {})).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    const small = configFileSchema.parse({ pools: { p: { size: 5, max: 2, template: 't' } } });
    expect(() => poolSpec(small, 'p', {})).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('max (2)') }));
    expect(() => configFileSchema.parse({ pools: { Bad_Name: { size: 1 } } })).toThrow();
  });

  it('parses leases in s, m, h, d, w and refuses zero or other forms', () => {
    expect(parseLease('90s')).toBe(90_000);
    expect(parseLease('2h')).toBe(7_200_000);
    expect(parseLease('1w')).toBe(604_800_000);
    for (const bad of ['0s', '2', 'forever', '1.5h', '-1h']) expect(() => parseLease(bad)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });

  it('picks the lowest free member names', () => {
    expect(freeMemberNames('bench', new Set(['bench-001', 'bench-003']), 3)).toEqual(['bench-002', 'bench-004', 'bench-005']);
  });

  it('builds the create request of a member: DHCP, the pool markers, linked, the TTL', () => {
    const { request } = memberCreateRequest(poolSpec(file, 'open', {}), 'open-001', {});
    expect(request).toMatchObject({ name: 'open-001', template: 't2', linked: false, powerOn: true, markers: { 'ceso.pool': 'open', 'ceso.poolState': 'building' } });
    expect(request.guest.ipCidr).toBeUndefined();
    expect(request.expiresAt).toBeDefined();
  });
});

describe('pool members', () => {
  it('reads the markers; an unknown state is failed; resets default to 0', () => {
    const vm = { name: 'b-1', id: 'vm-1', powerState: 'poweredOn', ip: '10.0.0.2', markers: { 'ceso.pool': 'b', 'ceso.poolState': 'weird', 'ceso.poolResets': 'x' } } as unknown as MarkedVm;
    expect(memberOf(vm)).toMatchObject({ state: 'failed', resets: 0, ip: '10.0.0.2', holder: null });
  });

  it('a lease without a readable end counts as expired; only leased VMs expire', () => {
    const now = new Date('2026-12-01T12:00:00Z');
    expect(leaseExpired(member('a', 'leased', { leaseExpiresAt: '2026-12-01T11:59:59Z' }), now)).toBe(true);
    expect(leaseExpired(member('a', 'leased', { leaseExpiresAt: '2026-12-01T12:00:01Z' }), now)).toBe(false);
    expect(leaseExpired(member('a', 'leased'), now)).toBe(true);
    expect(leaseExpired(member('a', 'ready', { leaseExpiresAt: '2020-01-01T00:00:00Z' }), now)).toBe(false);
  });

  it('needs repair: passing states without a live worker, and failed ones', () => {
    expect(needsRepair(member('a', 'building'), null)).toBe(true);
    expect(needsRepair(member('a', 'resetting'), alive)).toBe(false);
    expect(needsRepair(member('a', 'failed'), null)).toBe(true);
    expect(needsRepair(member('a', 'ready'), null)).toBe(false);
    expect(needsRepair(member('a', 'leased'), null)).toBe(false);
  });

  it('fill builds up to size ready VMs, counting live builds and repairs, never past max', () => {
    const spec = poolSpec(file, 'bench', { template: 't' });
    const none = (): null => null;
    expect(fillNeeds(spec, [], none)).toEqual({ repair: [], build: 3 });
    expect(fillNeeds(spec, [member('b1', 'ready'), member('b2', 'leased')], none).build).toBe(2);
    // max 4: two leased and one ready leave room for one more
    expect(fillNeeds(spec, [member('b1', 'leased'), member('b2', 'leased'), member('b3', 'ready')], none).build).toBe(1);
    // a live build counts as coming; a stale one is repaired (deleted) and rebuilt
    const live = fillNeeds(spec, [member('b1', 'building')], (name) => (name === 'b1' ? alive : null));
    expect(live).toEqual({ repair: [], build: 2 });
    const stale = fillNeeds(spec, [member('b1', 'building'), member('b2', 'resetting')], none);
    expect(stale.repair.map((item) => item.name)).toEqual(['b1', 'b2']);
    expect(stale.build).toBe(2);
    expect(countStates([member('a', 'ready'), member('b', 'ready'), member('c', 'failed')])).toEqual({ building: 0, ready: 2, leased: 0, resetting: 0, failed: 1 });
  });
});

describe('the lease fence', () => {
  const members = [member('b1', 'leased', { leaseId: 'L1', holder: 'x' }), member('b2', 'ready')];

  it('finds the lease by id or by the leased VM', () => {
    expect(current(members, { leaseId: 'L1' }, 'p').name).toBe('b1');
    expect(current(members, { vm: 'b1' }, 'p').name).toBe('b1');
    expect(current(members, { vm: 'b1', leaseId: 'L1' }, 'p').name).toBe('b1');
  });

  it('refuses a lease that is not current, naming what the VM is now', () => {
    expect(() => current(members, { leaseId: 'L0' }, 'p')).toThrow(expect.objectContaining({ code: 'LEASE_NOT_HELD' }));
    expect(() => current(members, { vm: 'b1', leaseId: 'L0' }, 'p')).toThrow(expect.objectContaining({ code: 'LEASE_NOT_HELD', message: expect.stringContaining('another lease') }));
    expect(() => current(members, { vm: 'b2' }, 'p')).toThrow(expect.objectContaining({ code: 'LEASE_NOT_HELD', message: expect.stringContaining('ready') }));
    expect(() => current(members, { vm: 'zz' }, 'p')).toThrow(expect.objectContaining({ code: 'VM_NOT_FOUND' }));
  });
});
