// The warm pool (ceso pool …) against the simulator, through the real CLI: fill builds linked
// clones frozen in a golden memory snapshot, acquire hands each VM out once (also under
// concurrency), release reverts and makes the VM ready again, a stale lease is fenced, expired
// leases are reclaimed, killed runs are repaired, failures leave nothing behind.
// Needs the built CLI (npm run build).
import type { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSimulatorWorkspace, requireBuiltCli, runCli, simulatorConfig, sshConfig, withoutPath, type CliResult, type SimulatorWorkspace } from '../support/cli.js';
import type { Simulator } from '../support/simulator.js';
import { startSshServer, type SshServer } from '../support/sshd.js';

const TEMPLATE = 'ubuntu-22.04-template';

interface Lease { pool: string; vm: string; id: string; ip: string | null; leaseId: string; holder: string; leasedAt: string; expiresAt: string }
interface PoolVm { name: string; id: string; state: string; holder: string | null; leaseExpiresAt: string | null; expired: boolean; resets: number; stale: boolean; worker: unknown; ip: string | null; powerState: string | null }
interface Status { counts: Record<string, number>; vms: PoolVm[] }
interface Snapshot { name: string; memory: boolean; powerState: string | null; children: Snapshot[] }

const POOLS = [
  'pools:',
  '  bench: {size: 3, max: 4, lease: 1h}',
  '  short: {size: 1, max: 2, lease: 1h, maxResets: 1}',
  '  full: {size: 1, linked: false}',
  '  nosuch: {size: 1, template: no-such-template}',
  'security: {pools: [bench], poolAdmin: [short]}',
  '',
].join('\n');

/** Polls `probe` until it returns a value, at most `ms` (bounded: tests never wait forever). */
async function until<T>(probe: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

for (const mode of ['esx', 'vpx'] as const) {
  describe(`warm pool over the API (${mode})`, { timeout: 300_000 }, () => {
    let bed: SimulatorWorkspace | undefined;
    let sim: Simulator;
    let env: Record<string, string>;
    const ceso = (...args: string[]): Promise<CliResult> => runCli(args, { env, timeoutMs: 120_000 });
    const ok = (result: CliResult): CliResult => {
      expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
      return result;
    };
    const status = async (pool = 'bench'): Promise<Status> => ok(await ceso('pool', 'status', pool, '--json')).json<Status>();
    const vmState = async (name: string, pool = 'bench'): Promise<PoolVm | undefined> => (await status(pool)).vms.find((vm) => vm.name === name);

    beforeAll(async () => {
      requireBuiltCli();
      bed = await openSimulatorWorkspace({ mode, vms: 1 }, POOLS);
      ({ sim, env } = bed);
    });
    afterAll(async () => {
      await bed?.close();
    });

    it('refuses an unknown pool, a missing template and a running template, changing nothing', async () => {
      const before = await sim.listFiles();
      const unknown = await ceso('pool', 'fill', 'nope', '--json');
      expect(unknown.code).toBe(3);
      expect(unknown.json<{ error: { code: string; hint: string } }>().error).toMatchObject({ code: 'POOL_NOT_FOUND', hint: expect.stringContaining('bench') });
      const missing = await ceso('pool', 'fill', 'nosuch', '--json');
      expect(missing.code).toBe(3);
      expect(missing.json<{ error: { code: string } }>().error.code).toBe('TEMPLATE_NOT_FOUND');
      const running = ok(await ceso('vm', 'list', '--json')).json<Array<{ name: string; powerState: string }>>().find((vm) => vm.powerState === 'poweredOn');
      expect(running).toBeDefined();
      bed!.ws.writeConfig(simulatorConfig(sim, POOLS.replace('template: no-such-template', `template: ${running!.name}`)));
      const hot = await ceso('pool', 'fill', 'nosuch', '--json');
      expect(hot.code).toBe(4);
      expect(hot.json<{ error: { code: string; hint: string } }>().error).toMatchObject({ code: 'INVALID_POWER_STATE', hint: expect.stringContaining('power') });
      bed!.ws.writeConfig(simulatorConfig(sim, POOLS));
      const badLease = await ceso('pool', 'acquire', 'bench', '--lease', '0s', '--json');
      expect(badLease.code).toBe(2);
      expect(await sim.listFiles()).toEqual(before);
    });

    it('concurrent first linked creates of one template take ONE base snapshot, which every child uses', async () => {
      const names = ['race-1', 'race-2', 'race-3'];
      const made = await Promise.all(names.map((name) => ceso('vm', 'create', name, '--linked', '--no-power-on', '--json')));
      const parents = made.map((result) => ok(result).json<{ disks: Array<{ parent: string | null }> }>().disks[0]?.parent);
      expect(new Set(parents).size).toBe(1);
      const tree = ok(await ceso('vm', 'snapshot', 'list', TEMPLATE, '--json')).json<{ snapshots: Snapshot[] }>();
      expect(tree.snapshots.map((snapshot) => snapshot.name)).toEqual(['ceso-linked-base']);
      for (const name of names) ok(await ceso('vm', 'delete', name, '--yes', '--json'));
    });

    it('fill --dry-run plans size builds and changes nothing', async () => {
      const before = await sim.listFiles();
      const plan = ok(await ceso('pool', 'fill', 'bench', '--dry-run', '--json')).json<{ dryRun: true; plan: { steps: Array<{ id: string }> } }>();
      expect(plan.plan.steps.map((step) => step.id)).toEqual(['bench-001', 'bench-002', 'bench-003'].flatMap((name) => [`create-${name}`, `wait-${name}`, `golden-${name}`]));
      expect(await sim.listFiles()).toEqual(before);
    });

    it('fill builds size linked clones, each ready and frozen in a golden snapshot with memory', async () => {
      const filled = ok(await ceso('pool', 'fill', 'bench', '--json')).json<{ built: Array<{ name: string; ip: string | null }>; failed: unknown[]; counts: Record<string, number> }>();
      expect(filled.built.map((vm) => vm.name)).toEqual(['bench-001', 'bench-002', 'bench-003']);
      expect(filled.built.every((vm) => vm.ip !== null)).toBe(true);
      expect(filled).toMatchObject({ failed: [], counts: { ready: 3, leased: 0, building: 0, resetting: 0, failed: 0 } });
      for (const name of ['bench-001', 'bench-002', 'bench-003']) {
        const info = ok(await ceso('vm', 'info', name, '--json')).json<{ linked: boolean; pool: string; poolState: string; markers: Record<string, string>; status: string }>();
        expect(info).toMatchObject({ linked: true, pool: 'bench', poolState: 'ready', status: 'running' });
        const tree = ok(await ceso('vm', 'snapshot', 'list', name, '--json')).json<{ snapshots: Snapshot[] }>();
        expect(tree.snapshots).toMatchObject([{ name: 'ceso-golden', memory: true, powerState: 'poweredOn' }]);
      }
      // the parallel builds shared the template's one base snapshot
      const base = ok(await ceso('vm', 'snapshot', 'list', TEMPLATE, '--json')).json<{ snapshots: Snapshot[] }>();
      expect(base.snapshots.map((snapshot) => snapshot.name)).toEqual(['ceso-linked-base']);
      // a second fill has nothing to do
      expect(ok(await ceso('pool', 'fill', 'bench', '--json')).json<{ built: unknown[] }>().built).toEqual([]);
      const list = ok(await ceso('vm', 'list', '--json')).json<Array<{ name: string; pool: string | null; poolState: string | null }>>();
      expect(list.filter((vm) => vm.pool === 'bench').map((vm) => vm.poolState)).toEqual(['ready', 'ready', 'ready']);
    });

    it('acquire hands out a ready VM; release reverts it and it is ready again; a second release is LEASE_NOT_HELD', async () => {
      const lease = ok(await ceso('pool', 'acquire', 'bench', '--holder', 'job-1', '--lease', '30m', '--json')).json<Lease>();
      expect(lease).toMatchObject({ pool: 'bench', vm: 'bench-001', holder: 'job-1' });
      expect(lease.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(Date.parse(lease.expiresAt) - Date.parse(lease.leasedAt)).toBe(30 * 60_000);
      const leased = await vmState('bench-001');
      expect(leased).toMatchObject({ state: 'leased', holder: 'job-1', leaseExpiresAt: lease.expiresAt, expired: false });
      expect(JSON.stringify(await status())).not.toContain(lease.leaseId);

      const released = ok(await ceso('pool', 'release', 'bench', '--lease', lease.leaseId, '--json')).json<{ method: string; state: string; resets: number; ip: string | null }>();
      expect(released).toMatchObject({ method: 'revert', state: 'ready', resets: 1 });
      expect(released.ip).not.toBeNull();
      expect(await vmState('bench-001')).toMatchObject({ state: 'ready', holder: null, leaseExpiresAt: null, resets: 1, powerState: 'poweredOn' });

      const markersBefore = ok(await ceso('vm', 'info', 'bench-001', '--json')).json<{ markers: unknown }>().markers;
      const again = await ceso('pool', 'release', 'bench', '--lease', lease.leaseId, '--json');
      expect(again.code).toBe(4);
      expect(again.json<{ error: { code: string } }>().error.code).toBe('LEASE_NOT_HELD');
      const byName = await ceso('pool', 'release', 'bench', 'bench-002', '--json');
      expect(byName.json<{ error: { code: string; message: string } }>().error).toMatchObject({ code: 'LEASE_NOT_HELD', message: expect.stringContaining('ready') });
      expect(ok(await ceso('vm', 'info', 'bench-001', '--json')).json<{ markers: unknown }>().markers).toEqual(markersBefore);
    });

    it('pool acquire --idempotency-key: a retry gets the same lease (replayed), never a second VM; another request is a conflict', async () => {
      const first = ok(await ceso('pool', 'acquire', 'bench', '--idempotency-key', `job-${mode}`, '--json')).json<Lease & { replayed: boolean }>();
      const again = ok(await ceso('pool', 'acquire', 'bench', '--idempotency-key', `job-${mode}`, '--json')).json<Lease & { replayed: boolean }>();
      expect(first.replayed).toBe(false);
      expect(again).toMatchObject({ vm: first.vm, leaseId: first.leaseId, replayed: true });
      expect((await status()).counts).toMatchObject({ leased: 1, ready: 2 });
      const other = await ceso('pool', 'acquire', 'bench', '--idempotency-key', `job-${mode}`, '--holder', 'someone-else', '--json');
      expect(other.code).toBe(4);
      expect(other.json<{ error: { code: string } }>().error.code).toBe('IDEMPOTENCY_CONFLICT');
      ok(await ceso('pool', 'release', 'bench', '--lease', first.leaseId, '--json'));
    });

    it('concurrent acquires never hand out one VM twice: exactly one lease per ready VM, POOL_EMPTY for the rest', async () => {
      const results = await Promise.all(Array.from({ length: 7 }, (_, index) => ceso('pool', 'acquire', 'bench', '--holder', `racer-${index}`, '--json')));
      const leases = results.filter((result) => result.code === 0).map((result) => result.json<Lease>());
      const empty = results.filter((result) => result.code === 4 && result.json<{ error: { code: string } }>().error.code === 'POOL_EMPTY');
      expect(leases).toHaveLength(3);
      expect(new Set(leases.map((lease) => lease.vm)).size).toBe(3);
      expect(empty).toHaveLength(4);
      const now = await status();
      expect(now.counts).toMatchObject({ leased: 3, ready: 0 });
      for (const lease of leases) expect(now.vms.find((vm) => vm.name === lease.vm)?.holder).toBe(lease.holder);
      // --wait gets the VM a release gives back
      const waiting = ceso('pool', 'acquire', 'bench', '--wait', '60', '--holder', 'patient', '--json');
      ok(await ceso('pool', 'release', 'bench', (leases[0] as Lease).vm, '--json'));
      const got = ok(await waiting).json<Lease>();
      expect(got).toMatchObject({ vm: (leases[0] as Lease).vm, holder: 'patient' });
      for (const lease of [...leases.slice(1), got]) ok(await ceso('pool', 'release', 'bench', '--lease', lease.leaseId, '--json'));
      expect((await status()).counts).toMatchObject({ ready: 3, leased: 0 });
    });

    it('reap takes back an expired lease; the late holder is then fenced off and changes nothing', async () => {
      const lease = ok(await ceso('pool', 'acquire', 'bench', '--holder', 'late', '--lease', '1s', '--json')).json<Lease>();
      await until(async () => ((await vmState(lease.vm))?.expired === true ? true : undefined), 10_000, 'the lease to expire');
      const planned = ok(await ceso('pool', 'reap', 'bench', '--dry-run', '--json')).json<{ plan: { steps: Array<{ id: string }> } }>();
      expect(planned.plan.steps[0]?.id).toBe(`reclaim-${lease.vm}`);
      expect((await vmState(lease.vm))?.state).toBe('leased');
      const reaped = ok(await ceso('pool', 'reap', 'bench', '--json')).json<{ reclaimed: Array<{ vm: string; method: string }> }>();
      expect(reaped.reclaimed).toMatchObject([{ vm: lease.vm, method: 'revert' }]);
      const after = await vmState(lease.vm);
      expect(after).toMatchObject({ state: 'ready', holder: null });
      // someone else holds it now; the late holder's release must not reset it
      const next = ok(await ceso('pool', 'acquire', 'bench', '--holder', 'next', '--json')).json<Lease>();
      expect(next.vm).toBe(lease.vm);
      const late = await ceso('pool', 'release', 'bench', '--lease', lease.leaseId, '--json');
      expect(late.code).toBe(4);
      expect(late.json<{ error: { code: string } }>().error.code).toBe('LEASE_NOT_HELD');
      expect(await vmState(lease.vm)).toMatchObject({ state: 'leased', holder: 'next', resets: after!.resets });
      ok(await ceso('pool', 'release', 'bench', '--lease', next.leaseId, '--json'));
    });

    it('rebuilds a VM reset maxResets times, and one whose revert fails', async () => {
      ok(await ceso('pool', 'fill', 'short', '--json'));
      const first = ok(await ceso('pool', 'acquire', 'short', '--json')).json<Lease>();
      expect(ok(await ceso('pool', 'release', 'short', '--lease', first.leaseId, '--json')).json<{ method: string; resets: number }>()).toMatchObject({ method: 'revert', resets: 1 });
      const second = ok(await ceso('pool', 'acquire', 'short', '--json')).json<Lease>();
      const rebuilt = ok(await ceso('pool', 'release', 'short', '--lease', second.leaseId, '--json')).json<{ method: string; reason: string; resets: number; id: string }>();
      expect(rebuilt).toMatchObject({ method: 'rebuild', resets: 0, reason: expect.stringContaining('maxResets') });
      expect(rebuilt.id).not.toBe(second.id);
      expect(await vmState(second.vm, 'short')).toMatchObject({ state: 'ready', resets: 0 });

      const third = ok(await ceso('pool', 'acquire', 'short', '--json')).json<Lease>();
      await sim.control('fail', { method: 'RevertToSnapshot_Task', fault: 'InvalidState', times: 1 });
      const failedRevert = ok(await ceso('pool', 'release', 'short', '--lease', third.leaseId, '--json')).json<{ method: string; reason: string }>();
      expect(failedRevert).toMatchObject({ method: 'rebuild', reason: expect.stringContaining('reset failed') });
      expect((await status('short')).counts).toMatchObject({ ready: 1 });
      const tree = ok(await ceso('vm', 'snapshot', 'list', third.vm, '--json')).json<{ snapshots: Snapshot[] }>();
      expect(tree.snapshots).toMatchObject([{ name: 'ceso-golden', memory: true }]);
    });

    it('a process killed mid-reset leaves a stale resetting VM that status explains and reap repairs', async () => {
      const lease = ok(await ceso('pool', 'acquire', 'bench', '--holder', 'doomed', '--json')).json<Lease>();
      const diskOf = async (): Promise<string | undefined> => ok(await ceso('vm', 'info', lease.vm, '--json')).json<{ disks: Array<{ file: string }> }>().disks[0]?.file;
      // the running point before the revert: the revert puts a new delta on top of the golden snapshot
      const diskBefore = await diskOf();
      // long enough that a loaded machine's polls see the release at work
      await sim.control('delay', { method: 'RevertToSnapshot_Task', ms: 12_000 });
      let child: ReturnType<typeof spawn> | undefined;
      const running = runCli(['pool', 'release', 'bench', '--lease', lease.leaseId, '--json'], { env, timeoutMs: 60_000, onSpawn: (spawned) => (child = spawned) });
      await until(async () => {
        const vm = await vmState(lease.vm);
        return vm?.state === 'resetting' && vm.worker !== null ? true : undefined;
      }, 30_000, 'the release to start resetting');
      child!.kill('SIGKILL');
      await running;
      // the host finishes the revert the dead process asked for (a new delta disk on top of the golden snapshot)
      await until(async () => ((await diskOf()) !== diskBefore ? true : undefined), 60_000, 'the revert to land on the host');
      await sim.control('reset');
      const stale = await vmState(lease.vm);
      expect(stale).toMatchObject({ state: 'resetting', stale: true, worker: null, holder: null });
      // nobody can acquire it meanwhile
      const others = (await status()).vms.filter((vm) => vm.state === 'ready').length;
      const leases: Lease[] = [];
      for (let index = 0; index < others; index += 1) leases.push(ok(await ceso('pool', 'acquire', 'bench', '--json')).json<Lease>());
      expect(leases.map((item) => item.vm)).not.toContain(lease.vm);
      expect((await ceso('pool', 'acquire', 'bench', '--json')).code).toBe(4);
      const reaped = ok(await ceso('pool', 'reap', 'bench', '--json')).json<{ repaired: Array<{ name: string; was: string; action: string }> }>();
      expect(reaped.repaired).toEqual([{ name: lease.vm, was: 'resetting', action: 'reset' }]);
      expect(await vmState(lease.vm)).toMatchObject({ state: 'ready', stale: false, powerState: 'poweredOn' });
      for (const item of leases) ok(await ceso('pool', 'release', 'bench', '--lease', item.leaseId, '--json'));
    });

    it('a process killed mid-acquire (holding the pool lock) does not block the next acquire, and leased nothing', async () => {
      const before = await status();
      // the acquire's read of the pool is slowed down: it is killed holding the pool's lock, before any write
      await sim.control('delay', { method: 'RetrievePropertiesEx', ms: 3000 });
      let child: ReturnType<typeof spawn> | undefined;
      const locks = join(bed!.ws.home, 'locks');
      const running = runCli(['pool', 'acquire', 'bench', '--json'], { env, timeoutMs: 60_000, onSpawn: (spawned) => (child = spawned) });
      await until(async () => (existsSync(locks) && readdirSync(locks).some((name) => name.includes('pool_bench')) ? true : undefined), 20_000, 'the pool lock');
      child!.kill('SIGKILL');
      await running;
      await sim.control('reset');
      expect(readdirSync(locks).some((name) => name.includes('pool_bench'))).toBe(true);
      expect(await status()).toEqual(before);
      const next = ok(await ceso('pool', 'acquire', 'bench', '--json')).json<Lease>();
      expect((await status()).counts).toMatchObject({ ready: 2, leased: 1 });
      ok(await ceso('pool', 'release', 'bench', '--lease', next.leaseId, '--json'));
      expect((await status()).counts).toMatchObject({ ready: 3, leased: 0 });
    });

    it('a full datastore during fill: the failed builds are deleted and counted, nothing is left', async () => {
      const before = await sim.listFiles();
      await sim.control('datastore', { freeGB: 0 });
      const result = await ceso('pool', 'fill', 'full', '--json');
      await sim.control('reset');
      expect(result.code).toBe(4);
      const error = result.json<{ error: { code: string; details: { failed: Array<{ name: string }>; built: unknown[] } } }>().error;
      expect(error.code).toBe('INSUFFICIENT_SPACE');
      expect(error.details).toMatchObject({ built: [], failed: [{ name: 'full-001' }] });
      expect((await status('full')).vms).toEqual([]);
      expect(await sim.listFiles()).toEqual(before);
    });

    it('two fills of one pool at once: one builds, the other waits its turn or is LOCKED; the pool never overshoots', async () => {
      const results = await Promise.all([ceso('pool', 'fill', 'full', '--json'), ceso('pool', 'fill', 'full', '--json')]);
      for (const result of results) {
        expect([0, 4], result.stdout).toContain(result.code);
        if (result.code === 4) expect(result.json<{ error: { code: string; message: string } }>().error).toMatchObject({ code: 'LOCKED', message: expect.stringContaining('pool fill') });
      }
      expect(results.some((result) => result.code === 0)).toBe(true);
      expect((await status('full')).vms.map((vm) => [vm.name, vm.state])).toEqual([['full-001', 'ready']]);
      ok(await ceso('pool', 'destroy', 'full', '--yes', '--json'));
    });

    it('restricted mode: agents acquire, release and read the pools they are given; fill and destroy need poolAdmin', async () => {
      const agent = { ...env, CESO_MODE: 'restricted' };
      const run = (...args: string[]): Promise<CliResult> => runCli(args, { env: agent, timeoutMs: 120_000 });
      expect((await run('pool', 'status', 'bench', '--json')).code).toBe(0);
      const lease = (await run('pool', 'acquire', 'bench', '--json')).json<Lease & { mode: string }>();
      expect(lease.mode).toBe('restricted');
      expect((await run('pool', 'release', 'bench', '--lease', lease.leaseId, '--json')).code).toBe(0);
      for (const args of [['pool', 'fill', 'bench'], ['pool', 'destroy', 'bench', '--yes'], ['pool', 'reap', 'bench'], ['pool', 'acquire', 'full']]) {
        const denied = await run(...args, '--json');
        expect(denied.code, args.join(' ')).toBe(7);
        expect(denied.json<{ error: { code: string } }>().error.code).toBe('POLICY_DENIED');
      }
      expect((await run('pool', 'reap', 'short', '--json')).code).toBe(0);
      expect((await status()).counts).toMatchObject({ ready: 3, leased: 0 });
    });

    it('destroy deletes every VM of the pool, leased ones too; the template and its base stay', async () => {
      ok(await ceso('pool', 'acquire', 'bench', '--json'));
      const plan = ok(await ceso('pool', 'destroy', 'bench', '--dry-run', '--json')).json<{ plan: { steps: unknown[] } }>();
      expect(plan.plan.steps).toHaveLength(3);
      expect((await ceso('pool', 'destroy', 'bench', '--json')).code).toBe(2);
      expect(ok(await ceso('pool', 'destroy', 'bench', '--yes', '--json')).json<{ deleted: string[] }>().deleted).toEqual(['bench-001', 'bench-002', 'bench-003']);
      expect(ok(await ceso('pool', 'destroy', 'short', '--yes', '--json')).json<{ deleted: string[] }>().deleted).toHaveLength(1);
      const list = ok(await ceso('vm', 'list', '--json')).json<Array<{ name: string; pool: string | null }>>();
      expect(list.filter((vm) => vm.pool !== null)).toEqual([]);
      expect(list.map((vm) => vm.name)).toContain(TEMPLATE);
      const files = await sim.listFiles();
      expect(files.some((file) => file.startsWith('bench-'))).toBe(false);
    });
  });
}

describe('warm pool over SSH', { timeout: 240_000 }, () => {
  let bed: SimulatorWorkspace | undefined;
  let sshd: SshServer | undefined;
  let env: Record<string, string>;
  const ceso = (...args: string[]): Promise<CliResult> => runCli(args, { env, timeoutMs: 120_000 });

  beforeAll(async () => {
    requireBuiltCli();
    bed = await openSimulatorWorkspace({ mode: 'esx', vms: 1 });
    sshd = await startSshServer({ sim: bed.sim });
    bed.ws.writeConfig(`${sshConfig(bed.sim, sshd)}pools:\n  bench: {size: 2}\n`);
    env = bed.env;
  });
  afterAll(async () => {
    await sshd?.stop();
    await bed?.close();
  });

  it('status over SSH reads the same pool as the API; changes over SSH are NOT_SUPPORTED and change nothing', async () => {
    expect((await ceso('pool', 'fill', 'bench', '--via', 'api', '--json')).code).toBe(0);
    expect((await ceso('pool', 'acquire', 'bench', '--via', 'api', '--holder', 'x', '--json')).code).toBe(0);
    const api = (await ceso('pool', 'status', 'bench', '--via', 'api', '--json')).json<Record<string, unknown>>();
    const ssh = (await ceso('pool', 'status', 'bench', '--via', 'ssh', '--json')).json<Record<string, unknown>>();
    expect(ssh.via).toBe('ssh');
    expect(withoutPath(ssh)).toEqual(withoutPath(api));
    const before = await bed!.sim.listFiles();
    for (const args of [['pool', 'acquire', 'bench'], ['pool', 'release', 'bench', 'bench-001'], ['pool', 'fill', 'bench'], ['pool', 'reap', 'bench']]) {
      const refused = await ceso(...args, '--via', 'ssh', '--json');
      expect(refused.code, `${args.join(' ')}: ${refused.stdout}`).toBe(8);
      expect(refused.json<{ error: { code: string; hint: string } }>().error).toMatchObject({ code: 'NOT_SUPPORTED', hint: expect.stringContaining('--via api') });
    }
    expect(await bed!.sim.listFiles()).toEqual(before);
    expect((await ceso('pool', 'status', 'bench', '--via', 'api', '--json')).json<Record<string, unknown>>()).toEqual(api);
    const destroyed = (await ceso('pool', 'destroy', 'bench', '--yes', '--via', 'ssh', '--json')).json<{ deleted: string[]; via: string }>();
    expect(destroyed).toMatchObject({ deleted: ['bench-001', 'bench-002'], via: 'ssh' });
  });
});
