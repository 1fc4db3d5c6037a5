// --via auto: the API first, SSH only when the API cannot be reached and nothing has changed.
import { describe, expect, it, vi } from 'vitest';
import type { HostBackend, Mutation } from '../../src/core/backend.js';
import { CesoError } from '../../src/core/errors.js';
import { FallbackBackend } from '../../src/core/fallback.js';
import { configureLogger } from '../../src/core/log.js';
import type { Via, VmDetails, VmSummary } from '../../src/core/vm.js';

function fakeBackend(via: Via, behaviour: { error?: CesoError } = {}): HostBackend & { calls: string[]; closed: boolean } {
  const calls: string[] = [];
  const answer = async <T>(name: string, value: T): Promise<T> => {
    calls.push(name);
    if (behaviour.error !== undefined) throw behaviour.error;
    return value;
  };
  const vm = { name: 'web1', id: via === 'api' ? 'vm-1' : '1' } as VmDetails;
  const mutation = (name: string): Promise<Mutation<VmDetails>> =>
    answer(name, { plan: { operation: name, target: 'web1', via, steps: [], warnings: [], state: {} }, finish: async () => vm });
  return {
    via,
    calls,
    closed: false,
    listVms: () => answer('listVms', [{ name: 'web1', id: vm.id } as VmSummary]),
    getVm: () => answer('getVm', vm),
    listMarkedVms: () => answer('listMarkedVms', []),
    planSetMarkers: () => mutation('set markers') as never,
    planCreate: () => mutation('create'),
    planClone: () => mutation('clone'),
    planDelete: async () => ({ ...(await mutation('delete')), target: vm }) as never,
    planPower: () => mutation('power') as never,
    planReconfigure: () => mutation('reconfigure') as never,
    listTemplates: () => answer('listTemplates', []),
    planImport: () => mutation('import') as never,
    waitForGuest: (_selector, options) =>
      answer('waitForGuest', { name: 'web1', id: vm.id, ip: '10.0.0.5', ready: null, waitedMs: options.until === 'now' ? null : 5, powerState: 'poweredOn', toolsStatus: 'guestToolsRunning' }),
    listSnapshots: () => answer('listSnapshots', { vm: { name: 'web1', id: vm.id }, current: null, snapshots: [] }),
    planSnapshotCreate: () => mutation('snapshot create') as never,
    planSnapshotRevert: () => mutation('snapshot revert') as never,
    planSnapshotDelete: async () => ({ ...(await mutation('snapshot delete')), target: { vm: { name: 'web1', id: vm.id }, deleted: [] } }) as never,
    listBackups: () => answer('listBackups', []),
    planBackup: () => mutation('backup') as never,
    planRestore: async () => ({ ...(await mutation('restore')), target: { backup: '[datastore1] backups/web1/web1-20261201T120000Z', vm: null, inPlace: false, replaced: [] } }) as never,
    async close() {
      this.closed = true;
    },
  };
}

configureLogger('fatal');

const unreachable = (reason: string): CesoError => new CesoError('HOST_UNREACHABLE', `127.0.0.1:1: ${reason}`, { details: { reason } });

describe('FallbackBackend', () => {
  it('uses the API while it answers and never opens SSH', async () => {
    const api = fakeBackend('api');
    const open = vi.fn(async () => fakeBackend('ssh'));
    const backend = new FallbackBackend(api, open);
    expect(await backend.listVms()).toEqual([{ name: 'web1', id: 'vm-1' }]);
    expect(backend.via).toBe('api');
    expect(open).not.toHaveBeenCalled();
    await backend.close();
    expect(api.closed).toBe(true);
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'connect-timeout', 'http-503'])('switches to SSH when the API is unreachable (%s), once, and says so', async (reason) => {
    const api = fakeBackend('api', { error: unreachable(reason) });
    const ssh = fakeBackend('ssh');
    const open = vi.fn(async () => ssh);
    const backend = new FallbackBackend(api, open);
    expect(await backend.getVm({ name: 'web1' })).toMatchObject({ id: '1' });
    expect(backend.via).toBe('ssh');
    const mutation = await backend.planCreate({} as never, { diskFromDefaults: true });
    expect(mutation.plan.via).toBe('ssh');
    expect(api.calls).toEqual(['getVm']);
    expect(ssh.calls).toEqual(['getVm', 'create']);
    expect(open).toHaveBeenCalledTimes(1);
    await backend.close();
    expect(api.closed && ssh.closed).toBe(true);
  });

  it.each([
    new CesoError('VM_NOT_FOUND', 'no VM is named "x"'),
    new CesoError('VM_EXISTS', 'exists'),
    new CesoError('INVALID_POWER_STATE', 'off'),
    new CesoError('AUTH_FAILED', 'the host rejected the user name or password'),
    new CesoError('TLS_UNTRUSTED', 'certificate not trusted'),
    new CesoError('TIMEOUT', 'no answer within 30 s'),
    new CesoError('HOST_FAULT', 'fault'),
  ])('never switches after $code', async (error) => {
    const open = vi.fn(async () => fakeBackend('ssh'));
    const backend = new FallbackBackend(fakeBackend('api', { error }), open);
    await expect(backend.listVms()).rejects.toBe(error);
    expect(open).not.toHaveBeenCalled();
    expect(backend.via).toBe('api');
  });

  it('leaves a plan the API built with the API: executing it is not retried over SSH', async () => {
    const api = fakeBackend('api');
    const open = vi.fn(async () => fakeBackend('ssh'));
    const backend = new FallbackBackend(api, open);
    const mutation = await backend.planDelete({ vm: { name: 'web1' }, force: false });
    expect(mutation.plan.via).toBe('api');
    expect(backend.via).toBe('api');
    expect(open).not.toHaveBeenCalled();
  });

  it('passes the snapshot operations through: reads switch to SSH when the API is unreachable, API plans stay on the API', async () => {
    const down = new FallbackBackend(fakeBackend('api', { error: unreachable('ECONNREFUSED') }), async () => fakeBackend('ssh'));
    expect(await down.listSnapshots({ name: 'web1' })).toEqual({ vm: { name: 'web1', id: '1' }, current: null, snapshots: [] });
    expect(down.via).toBe('ssh');
    expect((await down.planSnapshotRevert({ vm: { name: 'web1' }, powerOn: true })).plan.via).toBe('ssh');
    const open = vi.fn(async () => fakeBackend('ssh'));
    const up = new FallbackBackend(fakeBackend('api'), open);
    expect((await up.planSnapshotCreate({ vm: { name: 'web1' }, name: 's', memory: false, quiesce: false })).plan.via).toBe('api');
    expect((await up.planSnapshotDelete({ vm: { name: 'web1' }, snapshot: 's', children: false, all: false })).target).toEqual({ vm: { name: 'web1', id: 'vm-1' }, deleted: [] });
    expect(open).not.toHaveBeenCalled();
    const refused = new FallbackBackend(fakeBackend('api', { error: new CesoError('SNAPSHOT_NOT_FOUND', 'no snapshot') }), open);
    await expect(refused.planSnapshotRevert({ vm: { name: 'web1' }, powerOn: true })).rejects.toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });
    expect(open).not.toHaveBeenCalled();
  });

  it('plans a reconfigure on SSH only when the API is unreachable, passing the options through', async () => {
    const authorize = vi.fn();
    const request = { vm: { name: 'web1' }, cpu: 4, addDisks: [] };
    const ssh = fakeBackend('ssh');
    const spy = vi.spyOn(ssh, 'planReconfigure');
    const down = new FallbackBackend(fakeBackend('api', { error: unreachable('ECONNREFUSED') }), async () => ssh);
    expect((await down.planReconfigure(request, { authorize })).plan.via).toBe('ssh');
    expect(spy).toHaveBeenCalledWith(request, { authorize });
    const open = vi.fn(async () => fakeBackend('ssh'));
    const refused = new FallbackBackend(fakeBackend('api', { error: new CesoError('CONFLICT', 'a disk cannot shrink') }), open);
    await expect(refused.planReconfigure(request)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(open).not.toHaveBeenCalled();
  });

  it('reports both failures when SSH cannot be reached either', async () => {
    const backend = new FallbackBackend(fakeBackend('api', { error: unreachable('connection refused') }), async () =>
      fakeBackend('ssh', { error: new CesoError('HOST_UNREACHABLE', '127.0.0.1:22: SSH connection refused') }),
    );
    await expect(backend.listVms()).rejects.toMatchObject({ code: 'HOST_UNREACHABLE', message: expect.stringContaining('SSH connection refused') });
  });

  it('passes an untrusted SSH host key through unchanged', async () => {
    const refused = new CesoError('SSH_HOST_KEY_UNTRUSTED', 'unknown key');
    const backend = new FallbackBackend(fakeBackend('api', { error: unreachable('connection refused') }), async () => fakeBackend('ssh', { error: refused }));
    await expect(backend.listVms()).rejects.toBe(refused);
  });

  it('reports the API outage, with both causes, when SSH cannot be used', async () => {
    const noCredentials = new CesoError('AUTH_FAILED', 'no SSH credentials');
    const backend = new FallbackBackend(fakeBackend('api', { error: unreachable('connection refused') }), async () => fakeBackend('ssh', { error: noCredentials }));
    const error = (await backend.listVms().catch((e: unknown) => e)) as CesoError;
    expect(error.code).toBe('HOST_UNREACHABLE');
    expect(error.message).toContain('connection refused');
    expect(error.message).toContain('no SSH credentials');
  });

  it('passes a guest wait through, switching to SSH when the API is unreachable, with the time that is left', async () => {
    const api = fakeBackend('api', { error: unreachable('ECONNREFUSED') });
    const ssh = fakeBackend('ssh');
    const wait = vi.spyOn(ssh, 'waitForGuest');
    const backend = new FallbackBackend(api, async () => ssh);
    const outcome = await backend.waitForGuest({ name: 'web1' }, { until: 'ip', timeoutMs: 60_000 });
    expect(outcome).toMatchObject({ id: '1', ip: '10.0.0.5' });
    expect(typeof outcome.waitedMs).toBe('number');
    expect(backend.via).toBe('ssh');
    expect(api.calls).toEqual(['waitForGuest']);
    expect(wait.mock.calls[0]?.[1].timeoutMs).toBeLessThanOrEqual(60_000);
    expect(await backend.waitForGuest({ name: 'web1' }, { until: 'now', timeoutMs: 0 })).toMatchObject({ waitedMs: null });
  });
});
