// `vm list` reads incrementally: the first list of a session seeds a property collector filter
// kept on the host (the session outlives the process), later lists ask it only for what changed
// (WaitForUpdatesEx from the cached version). Each incremental result is compared with a plain
// read (a fresh CESO_HOME: no session, no cache) after VMs are created, deleted, powered,
// renamed and re-marked; expired sessions, stale versions, faults, a damaged cache file and
// concurrent lists all end in the plain read's result. Needs the built CLI (npm run build).
import { chmodSync, copyFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSimulatorWorkspace, requireBuiltCli, runCli, simulatorConfig, workspace, type CesoWorkspace, type CliResult, type SimulatorWorkspace } from '../support/cli.js';
import type { PropertyRequest, Simulator } from '../support/simulator.js';
import { VimClient } from '../../src/esxi/vim/client.js';
import { waitForTask } from '../../src/esxi/vim/task.js';
import { asMoRef } from '../../src/esxi/soap/xml.js';
import { findVm } from '../../src/esxi/ops/inventory.js';

type Json = Record<string, unknown>;
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfA2dC6WcGxPx0sN1yKq0mYkq0X8oZ5yN8dGd1cV2wL ops@example';

describe('vm list reads incrementally through a filter kept in the session', { timeout: 240_000 }, () => {
  let bed: SimulatorWorkspace;
  let sim: Simulator;
  let env: Record<string, string>;
  let client: VimClient;

  const run = (environment: Record<string, string>, ...args: string[]): Promise<CliResult> => runCli(args, { env: environment, timeoutMs: 90_000 });
  const ok = (result: CliResult): CliResult => {
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    return result;
  };
  const ceso = async (...args: string[]): Promise<CliResult> => ok(await run(env, ...args));
  const list = async (): Promise<Json[]> => (await ceso('vm', 'list', '--json', '--via', 'api')).json<Json[]>();
  /** What a list with no session and no cache answers: one plain RetrievePropertiesEx. */
  const plainList = async (): Promise<Json[]> => {
    const fresh: CesoWorkspace = workspace();
    try {
      fresh.writeConfig(simulatorConfig(sim));
      return ok(await run({ ...fresh.env, SIM_PASSWORD: sim.password }, 'vm', 'list', '--json', '--via', 'api')).json<Json[]>();
    } finally {
      fresh.cleanup();
    }
  };
  const vmReads = async (): Promise<PropertyRequest[]> => (await sim.propertyRequests()).filter((request) => request.paths.VirtualMachine?.includes('config.uuid') === true);
  const cacheDirectory = (): string => join(bed.ws.home, 'list-cache');
  const cacheFile = (): string => {
    const files = readdirSync(cacheDirectory()).filter((name) => name.endsWith('.json'));
    expect(files).toHaveLength(1);
    return join(cacheDirectory(), files[0] as string);
  };
  /** The list answered from the cache (no plain read) and equal to a plain read. */
  const expectIncrementalEqualsPlain = async (label: string): Promise<Json[]> => {
    await sim.control('property-requests');
    const incremental = await list();
    expect(await vmReads(), `${label}: no plain read`).toHaveLength(0);
    expect(incremental, label).toEqual(await plainList());
    return incremental;
  };
  const task = async (method: string, vm: string, args: Record<string, string> = {}): Promise<void> => {
    const { ref } = await findVm(client, { name: vm });
    const started = asMoRef(await client.invoke(method, ref, args));
    if (started === undefined) throw new Error(`${method} returned no task`);
    await waitForTask(client, started, { description: `${method} ${vm}`, timeoutMs: 60_000 });
  };

  beforeAll(async () => {
    requireBuiltCli();
    bed = await openSimulatorWorkspace({ mode: 'esx', vms: 3 });
    ({ sim, env } = bed);
    client = VimClient.create({ host: sim.host, port: sim.port, user: sim.user, password: sim.password, insecure: false, thumbprint: sim.thumbprintSha256, timeoutMs: 30_000, connectTimeoutMs: 10_000 });
    await sim.control('extra-config', { random: { 'guestinfo.userdata': 4096 } });
    await sim.control('extra-config', { vms: ['vm-0001'], set: { 'ceso.managed': 'true', 'ceso.pool': 'web', 'ceso.poolState': 'ready' } });
  }, 120_000);

  afterAll(async () => {
    client?.close();
    await bed?.close();
  });

  it('seeds the cache with the first list (0600 in a 0700 directory), then reads only changes', async () => {
    await sim.control('property-requests');
    const first = await list();
    expect(await vmReads()).toHaveLength(1);
    expect(statSync(cacheDirectory()).mode & 0o777).toBe(0o700);
    expect(statSync(cacheFile()).mode & 0o777).toBe(0o600);
    expect(first.find((vm) => vm.name === 'vm-0001')).toMatchObject({ managed: true, pool: 'web', poolState: 'ready' });
    expect(await expectIncrementalEqualsPlain('unchanged')).toEqual(first);
  });

  it('follows created, deleted, powered, renamed and re-marked VMs, each list equal to a plain read', async () => {
    await ceso('vm', 'create', 'inc1', '--ssh-key', KEY, '--ttl', '2h', '--json');
    const created = await expectIncrementalEqualsPlain('created');
    expect(created.find((vm) => vm.name === 'inc1')).toMatchObject({ managed: true, status: 'running' });

    await ceso('vm', 'power', 'inc1', 'off', '--json');
    expect((await expectIncrementalEqualsPlain('powered off')).find((vm) => vm.name === 'inc1')).toMatchObject({ status: 'stopped' });

    await task('Rename_Task', 'vm-0003', { newName: 'vm-0003-renamed' });
    expect((await expectIncrementalEqualsPlain('renamed')).map((vm) => vm.name)).toContain('vm-0003-renamed');

    await sim.control('extra-config', { vms: ['vm-0002'], set: { 'ceso.managed': 'true', 'ceso.expiresAt': '2031-01-01T00:00:00.000Z' } });
    await sim.control('extra-config', { vms: ['vm-0001'], set: { 'ceso.pool': '', 'ceso.poolState': '' } });
    const remarked = await expectIncrementalEqualsPlain('markers changed and removed');
    expect(remarked.find((vm) => vm.name === 'vm-0002')).toMatchObject({ managed: true, expiresAt: '2031-01-01T00:00:00.000Z' });
    expect(remarked.find((vm) => vm.name === 'vm-0001')).toMatchObject({ managed: true, pool: null, poolState: null });

    await ceso('vm', 'delete', 'inc1', '--yes', '--force', '--json');
    expect((await expectIncrementalEqualsPlain('deleted')).map((vm) => vm.name)).not.toContain('inc1');
  });

  it('an expired session, a stale version, a fault or a damaged file: the plain read answers and the cache is seeded again', async () => {
    const stale = join(bed.ws.home, 'stale-list-cache.json');
    const cases: Array<[string, () => Promise<void>, string]> = [
      ['stale version', async () => copyFileSync(stale, cacheFile()), 'InvalidCollectorVersion'],
      ['expired session', () => sim.control('expire-sessions'), 'ManagedObjectNotFound'],
      ['RequestCanceled', () => sim.control('fail', { method: 'WaitForUpdatesEx', fault: 'RequestCanceled' }), 'RequestCanceled'],
      ['ManagedObjectNotFound', () => sim.control('fail', { method: 'WaitForUpdatesEx', fault: 'ManagedObjectNotFound' }), 'ManagedObjectNotFound'],
      ['damaged file', async () => writeFileSync(cacheFile(), '{"format":1,"vms":'), ''],
    ];
    rmSync(stale, { force: true });
    for (const [label, breakIt, why] of cases) {
      if (label === 'stale version') copyFileSync(cacheFile(), stale);
      await sim.control('extra-config', { vms: ['vm-0002'], set: { 'ceso.pool': label } });
      if (label === 'stale version') await list(); // a new version: the copy's is stale now
      await breakIt();
      rmSync(stale, { force: true });
      await sim.control('extra-config', { vms: ['vm-0001'], set: { 'ceso.pool': label } });
      await sim.control('property-requests');
      const result = await ceso('vm', 'list', '--json', '--via', 'api', '--log-level', 'debug');
      expect(await vmReads(), `${label}: one plain read`).toHaveLength(1);
      expect(result.stderr, label).toContain(why === '' ? '' : 'list cache discarded');
      expect(result.stderr, label).toContain(why);
      expect(result.json<Json[]>(), label).toEqual(await plainList());
      expect(result.json<Json[]>().find((vm) => vm.name === 'vm-0001'), label).toMatchObject({ pool: label });
      await expectIncrementalEqualsPlain(`${label}: seeded again`);
    }
  });

  it('a host that refuses keyed paths gets plain reads and no cache', async () => {
    await sim.control('keyed-paths', { mode: 'refuse' });
    try {
      expect(await list()).toEqual(await plainList());
      expect(readdirSync(cacheDirectory()).filter((name) => name.endsWith('.json'))).toEqual([]);
    } finally {
      await sim.control('keyed-paths', { mode: 'support' });
    }
    await list(); // seeds again
    await expectIncrementalEqualsPlain('support again');
  });

  it('concurrent lists serialize on the cache (or read plainly) and all answer the same', async () => {
    await sim.control('extra-config', { vms: ['vm-0001'], set: { 'ceso.expiresAt': '2032-02-02T00:00:00.000Z' } });
    const results = await Promise.all([1, 2, 3, 4].map(() => list()));
    const plain = await plainList();
    for (const result of results) expect(result).toEqual(plain);
    await expectIncrementalEqualsPlain('after the race');
  });

  it('the cache file is the user’s alone even when its directory was opened up', async () => {
    chmodSync(cacheDirectory(), 0o755);
    await sim.control('extra-config', { vms: ['vm-0002'], set: { 'ceso.pool': 'c' } });
    await list();
    expect(statSync(cacheDirectory()).mode & 0o777).toBe(0o700);
  });
});
