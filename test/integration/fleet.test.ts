// Many hosts at once (--host a,b,…, --all-hosts) and `ceso metrics`: two simulated hosts and one
// that is down (connection refused), configured as named hosts of one config. Outputs are checked
// against the hosts themselves (the govmomi oracle), the generated JSON Schemas (Ajv) and
// Prometheus's own `promtool check metrics`. Needs the built CLI and schema/ (npm run build).
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireVmLock } from '../../src/core/lock.js';
import { ERROR_CODES, type ErrorCode } from '../../src/core/errors.js';
import { ROOT, requireBuiltCli, runCli, type CliResult } from '../support/cli.js';
import { openFleetWorkspace, type FleetWorkspace } from '../support/fleet.js';

type Json = Record<string, unknown>;
interface HostEntry {
  host: string;
  ok: boolean;
  vms?: Array<Json & { name: string; powerState: string | null }>;
  error?: { code: ErrorCode; message: string; hint?: string };
  reaped?: Array<{ name: string; deleted: boolean; error: { code: string } | null }>;
  plans?: unknown[];
  dryRun?: boolean;
}
interface Family {
  name: string;
  type: string;
  help: string;
  samples: Array<{ name: string; labels: Record<string, string>; value: number }>;
}

function schema(id: string): ValidateFunction {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  return ajv.compile(JSON.parse(readFileSync(join(ROOT, 'schema', `${id}.json`), 'utf8')) as Json);
}

/** promtool's verdict on an exposition: exit 0 and no lint findings. */
function promtool(text: string): { code: number | null; output: string } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

/** `name{labels} value` lines of an exposition, by series. */
function samplesOf(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

describe('several hosts at once, and ceso metrics', () => {
  let bed: FleetWorkspace;
  let validateList: ValidateFunction;
  let validateReap: ValidateFunction;
  let validateMetrics: ValidateFunction;
  let validateError: ValidateFunction;
  const ceso = (...args: string[]): Promise<CliResult> => runCli(args, { env: bed.env, timeoutMs: 90_000 });
  const label = (result: CliResult): string => `exit ${result.code}\n${result.stdout.slice(0, 3000)}\n${result.stderr.slice(-2000)}`;
  const oracleList = (index: number): Promise<Array<{ name: string; powerState: string }>> => bed.sims[index]!.oracle('list');

  beforeAll(async () => {
    requireBuiltCli();
    validateList = schema('vm-list');
    validateReap = schema('vm-reap');
    validateMetrics = schema('metrics');
    validateError = schema('error');
    bed = await openFleetWorkspace(2, { vms: [2, 3], down: true });
    // lab1: an expired managed VM; lab2: two VMs of a warm pool (the markers pool VMs carry).
    await bed.sims[0]!.oracle('set-extra', 'vm-0001', 'ceso.managed=true', 'ceso.expiresAt=2020-01-01T00:00:00.000Z');
    await bed.sims[1]!.oracle('set-extra', 'vm-0002', 'ceso.managed=true', 'ceso.pool=web', 'ceso.poolState=ready');
    await bed.sims[1]!.oracle('set-extra', 'vm-0003', 'ceso.managed=true', 'ceso.pool=web', 'ceso.poolState=leased');
  }, 120_000);

  afterAll(async () => {
    await bed?.close();
  });

  it('vm list --all-hosts: every host in config order, the down one with its error and hint; exit 5; the schema holds', async () => {
    const result = await ceso('vm', 'list', '--all-hosts', '--json');
    expect(result.code, label(result)).toBe(5);
    const output = result.json<{ hosts: HostEntry[]; mode: string }>();
    expect(validateList(output), JSON.stringify(validateList.errors)).toBe(true);
    expect(output.mode).toBe('standard');
    expect(output.hosts.map((entry) => [entry.host, entry.ok])).toEqual([['lab1', true], ['lab2', true], ['lab3', false]]);
    for (const index of [0, 1]) {
      const listed = output.hosts[index]!.vms!;
      expect(listed.map((vm) => vm.name).sort()).toEqual((await oracleList(index)).map((vm) => vm.name).sort());
      expect(listed.every((vm) => vm.via === 'api')).toBe(true);
    }
    expect(output.hosts[2]!.error).toMatchObject({ code: 'HOST_UNREACHABLE', message: expect.stringContaining('connection refused'), hint: expect.any(String) });
  });

  it('--host a alone keeps the single-host shape; --host b,a lists in the order named and exits 0', async () => {
    const single = await ceso('vm', 'list', '--host', 'lab2', '--json');
    expect(single.code, label(single)).toBe(0);
    const vms = single.json<Json[]>();
    expect(Array.isArray(vms)).toBe(true);
    expect(validateList(vms)).toBe(true);
    const both = await ceso('vm', 'list', '--host', 'lab2,lab1', '--json');
    expect(both.code, label(both)).toBe(0);
    const hosts = both.json<{ hosts: HostEntry[] }>().hosts;
    expect(hosts.map((entry) => entry.host)).toEqual(['lab2', 'lab1']);
    // The fan-out's entry holds the same VMs as the single-host run (which stamps mode on each).
    expect(hosts[0]!.vms).toEqual(vms.map(({ mode: _mode, ...vm }) => vm));
  });

  it('pool status --all-hosts: the pool’s VMs on each host, the down host with its error; exit 5; the schema holds', async () => {
    bed.configure({ extra: 'pools:\n  web: {size: 2, template: ubuntu-22.04-template}' });
    try {
      const result = await ceso('pool', 'status', 'web', '--all-hosts', '--json');
      expect(result.code, label(result)).toBe(5);
      const output = result.json<{ hosts: Array<Json & { host: string; ok: boolean }> }>();
      expect(schema('pool-status')(output)).toBe(true);
      expect(output.hosts.map((host) => [host.host, host.ok])).toEqual([['lab1', true], ['lab2', true], ['lab3', false]]);
      expect(output.hosts[0]).toMatchObject({ counts: { ready: 0, leased: 0 }, vms: [], via: 'api' });
      expect(output.hosts[1]).toMatchObject({ counts: { ready: 1, leased: 1 }, vms: [{ name: 'vm-0002', state: 'ready' }, { name: 'vm-0003', state: 'leased', expired: true }] });
      expect(output.hosts[2]).toMatchObject({ error: { code: 'HOST_UNREACHABLE' } });
      const table = await ceso('pool', 'status', 'web', '--host', 'lab2,lab1');
      expect(table.stdout).toMatch(/== lab2: 1 ready, 1 leased[\s\S]*vm-0003[\s\S]*== lab1: no VMs/);
    } finally {
      bed.configure();
    }
  });

  it('the table groups by host: a section per host, the failed host with its error; exit 5', async () => {
    const result = await ceso('vm', 'list', '--all-hosts');
    expect(result.code, label(result)).toBe(5);
    const sections = result.stdout.split('\n').filter((line) => line.startsWith('== '));
    expect(sections).toEqual(['== lab1: 3 VM(s)', '== lab2: 4 VM(s)', '== lab3: failed (HOST_UNREACHABLE, exit 5)']);
    expect(result.stdout).toMatch(/== lab3: failed[^\n]*\nError: [^\n]*connection refused[^\n]*\nHint: /);
  });

  it('a bad selection fails before any host is contacted and changes nothing', async () => {
    for (const [args, code] of [
      [['--host', 'lab1,nope'], 'HOST_NOT_CONFIGURED'],
      [['--host', 'lab1', '--all-hosts'], 'INVALID_INPUT'],
      [['--host', 'lab1,'], 'INVALID_INPUT'],
    ] as Array<[string[], ErrorCode]>) {
      for (const command of [['vm', 'list'], ['vm', 'reap'], ['metrics']]) {
        const result = await ceso(...command, ...args, '--json');
        expect(result.code, label(result)).toBe(ERROR_CODES[code].exit);
        expect(validateError(result.json())).toBe(true);
        expect(result.json<{ error: { code: string } }>().error.code).toBe(code);
      }
    }
    expect((await oracleList(0)).map((vm) => vm.name)).toContain('vm-0001');
  });

  it('each host has its own timeouts: a slow host fails alone, the other answers', async () => {
    bed.configure({ esxi: { lab2: { timeoutSeconds: 1 } } });
    // slow in both reads a list makes: the plain one and the incremental one (list-cache.ts)
    await bed.sims[1]!.control('delay', { method: 'RetrievePropertiesEx', ms: 4000 });
    await bed.sims[1]!.control('delay', { method: 'WaitForUpdatesEx', ms: 4000 });
    try {
      const result = await ceso('vm', 'list', '--host', 'lab1,lab2', '--via', 'api', '--json');
      const hosts = result.json<{ hosts: HostEntry[] }>().hosts;
      expect(hosts[0], label(result)).toMatchObject({ host: 'lab1', ok: true });
      expect(hosts[1], label(result)).toMatchObject({ host: 'lab2', ok: false });
      expect(result.code).toBe(ERROR_CODES[hosts[1]!.error!.code].exit);
      expect(result.code).not.toBe(0);
    } finally {
      await bed.sims[1]!.control('reset');
      bed.configure();
    }
  });

  it('ceso metrics --all-hosts: promtool passes; counts agree with the hosts; the down host is ceso_host_up 0; exit 5', async () => {
    const result = await ceso('metrics', '--all-hosts');
    expect(result.code, label(result)).toBe(5);
    expect(result.stderr).toContain('Warning: lab3: HOST_UNREACHABLE');
    expect(promtool(result.stdout)).toEqual({ code: 0, output: '' });
    const samples = samplesOf(result.stdout);
    expect(samples.get('ceso_host_up{host="lab1"}')).toBe(1);
    expect(samples.get('ceso_host_up{host="lab2"}')).toBe(1);
    expect(samples.get('ceso_host_up{host="lab3"}')).toBe(0);
    for (const [index, host] of ['lab1', 'lab2'].entries()) {
      const vms = await oracleList(index);
      for (const state of ['poweredOn', 'poweredOff', 'suspended']) {
        expect(samples.get(`ceso_vms{host="${host}",power_state="${state}"}`), `${host} ${state}`).toBe(vms.filter((vm) => vm.powerState === state).length);
      }
    }
    expect([...samples.keys()].some((series) => series.startsWith('ceso_vms{host="lab3"'))).toBe(false);
    expect(samples.get('ceso_vms_managed{host="lab1"}')).toBe(1);
    expect(samples.get('ceso_vms_expired{host="lab1"}')).toBe(1);
    expect(samples.get('ceso_vms_managed{host="lab2"}')).toBe(2);
    expect(samples.get('ceso_vms_expired{host="lab2"}')).toBe(0);
    expect(samples.get('ceso_pool_vms{pool="web",host="lab2",state="ready"}')).toBe(1);
    expect(samples.get('ceso_pool_vms{pool="web",host="lab2",state="leased"}')).toBe(1);
    expect(samples.get('ceso_pool_vms{pool="web",host="lab2",state="building"}')).toBe(0);
    expect(samples.get('ceso_build_info{version="0.1.0"}')).toBe(1);
    // No per-VM labels: no VM name appears in any series.
    expect([...samples.keys()].filter((series) => /vm-000\d|template/.test(series))).toEqual([]);
  });

  it('ceso metrics --json: the same samples as the text, each host’s answer; the schema holds', async () => {
    const text = await ceso('metrics', '--host', 'lab1,lab3');
    const result = await ceso('metrics', '--host', 'lab1,lab3', '--json');
    expect(result.code, label(result)).toBe(5);
    const output = result.json<{ hosts: HostEntry[]; metrics: Family[]; textfile: string | null }>();
    expect(validateMetrics(output), JSON.stringify(validateMetrics.errors)).toBe(true);
    expect(output.hosts).toMatchObject([{ host: 'lab1', ok: true, via: 'api', vms: 3 }, { host: 'lab3', ok: false, error: { code: 'HOST_UNREACHABLE' } }]);
    expect(output.textfile).toBeNull();
    const fromJson = new Map(
      output.metrics.flatMap((family) => family.samples.map((sample) => [`${sample.name}{${Object.entries(sample.labels).map(([name, value]) => `${name}="${value}"`).join(',')}}`.replace('{}', ''), sample.value] as const)),
    );
    expect(fromJson).toEqual(samplesOf(text.stdout));
    expect(output.metrics.map((family) => family.name)).toEqual([
      'ceso_host_up',
      'ceso_vms',
      'ceso_vms_managed',
      'ceso_vms_expired',
      'ceso_pool_vms',
      'ceso_operation_duration_seconds',
      'ceso_operations_total',
      'ceso_build_info',
    ]);
  });

  it('ceso metrics --textfile: written atomically (no temporary file left), the same text, nothing on stdout; a missing directory is exit 2', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'ceso-textfile-'));
    try {
      const path = join(directory, 'ceso.prom');
      const printed = await ceso('metrics', '--all-hosts');
      const written = await ceso('metrics', '--all-hosts', '--textfile', path);
      expect(written.code, label(written)).toBe(5);
      expect(written.stdout).toBe('');
      expect(readdirSync(directory)).toEqual(['ceso.prom']);
      const content = readFileSync(path, 'utf8');
      expect(content).toBe(printed.stdout);
      expect(promtool(content)).toEqual({ code: 0, output: '' });
      const json = await ceso('metrics', '--host', 'lab1,lab2', '--textfile', path, '--json');
      expect(json.code, label(json)).toBe(0);
      expect(json.json<{ textfile: string }>().textfile).toBe(path);

      const missing = join(directory, 'no-such-dir', 'ceso.prom');
      const failed = await ceso('metrics', '--textfile', missing, '--json');
      expect(failed.code, label(failed)).toBe(2);
      expect(failed.json<{ error: { code: string } }>().error.code).toBe('INVALID_INPUT');
      expect(existsSync(join(directory, 'no-such-dir'))).toBe(false);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('vm reap over hosts: per-host results, each host under its own locks, one audit record per host', async () => {
    await bed.sims[1]!.oracle('set-extra', 'vm-0001', 'ceso.managed=true', 'ceso.expiresAt=2020-01-01T00:00:00.000Z');
    const planned = await ceso('vm', 'reap', '--all-hosts', '--dry-run', '--json');
    expect(planned.code, label(planned)).toBe(5);
    const plannedOutput = planned.json<{ hosts: HostEntry[] }>();
    expect(validateReap(plannedOutput), JSON.stringify(validateReap.errors)).toBe(true);
    expect(plannedOutput.hosts).toMatchObject([
      { host: 'lab1', ok: true, dryRun: true, reaped: [{ name: 'vm-0001', deleted: false, error: null }] },
      { host: 'lab2', ok: true, dryRun: true, reaped: [{ name: 'vm-0001', deleted: false, error: null }] },
      { host: 'lab3', ok: false, error: { code: 'HOST_UNREACHABLE' } },
    ]);

    // Both hosts have a vm-0001: holding lab1's lock stops lab1's reap of it, not lab2's.
    const lock = await acquireVmLock({ home: bed.ws.home, host: bed.sims[0]!.hostPort, vm: 'vm-0001', command: 'test', timeoutMs: 0 });
    let reaped: CliResult;
    try {
      reaped = await ceso('vm', 'reap', '--host', 'lab1,lab2', '--json');
    } finally {
      lock.release();
    }
    expect(reaped.code, label(reaped)).toBe(8);
    const hosts = reaped.json<{ hosts: HostEntry[] }>().hosts;
    expect(validateReap({ hosts, mode: 'standard' })).toBe(true);
    expect(hosts).toMatchObject([
      { host: 'lab1', ok: true, reaped: [{ name: 'vm-0001', deleted: false, error: { code: 'LOCKED' } }] },
      { host: 'lab2', ok: true, reaped: [{ name: 'vm-0001', deleted: true, error: null }] },
    ]);
    expect((await oracleList(1)).map((vm) => vm.name)).not.toContain('vm-0001');

    const human = await ceso('vm', 'reap', '--all-hosts');
    expect(human.code, label(human)).toBe(5);
    expect(human.stdout).toMatch(/== lab1: 1 expired of 3 VM\(s\)\n[^]*vm-0001[^\n]*deleted/);
    expect(human.stdout).toContain('== lab2: 0 expired of 3 VM(s)');
    expect((await oracleList(0)).map((vm) => vm.name)).not.toContain('vm-0001');

    const audit = (await ceso('audit', '--json')).json<Array<{ command: string; host: string; dryRun: boolean; outcome: string; errorCode: string | null; via: string | null }>>();
    // (the refused selections above are audited too, without a host: they failed before resolving one)
    const reaps = audit.filter((record) => record.command === 'vm reap' && !record.dryRun && record.host !== '');
    expect(reaps.map((record) => [record.host.replace(/ \(.*\)$/, ''), record.outcome, record.errorCode])).toEqual([
      ['lab1', 'success', null],
      ['lab2', 'success', null],
      ['lab1', 'success', null],
      ['lab2', 'success', null],
      ['lab3', 'error', 'HOST_UNREACHABLE'],
    ]);
    expect(reaps[0]!.host).toBe(`lab1 (${bed.sims[0]!.hostPort})`);
  });

  it('ceso metrics counts the audited changes per host (dry runs excluded) in ceso_operations_total and the histogram', async () => {
    const result = await ceso('metrics', '--all-hosts');
    expect(promtool(result.stdout)).toEqual({ code: 0, output: '' });
    const samples = samplesOf(result.stdout);
    expect(samples.get('ceso_operations_total{op="vm reap",outcome="success",host="lab1"}')).toBe(2);
    expect(samples.get('ceso_operations_total{op="vm reap",outcome="success",host="lab2"}')).toBe(2);
    expect(samples.get('ceso_operations_total{op="vm reap",outcome="error",host="lab3"}')).toBe(1);
    expect(samples.get('ceso_operation_duration_seconds_count{op="vm reap",outcome="success",host="lab1",via="api"}')).toBe(2);
    expect(samples.get('ceso_operation_duration_seconds_bucket{op="vm reap",outcome="success",host="lab1",via="api",le="+Inf"}')).toBe(2);
    expect(samples.get('ceso_operation_duration_seconds_bucket{op="vm reap",outcome="success",host="lab1",via="api",le="3600"}')).toBe(2);
    // Only the hosts asked for.
    const one = samplesOf((await ceso('metrics', '--host', 'lab2')).stdout);
    expect([...one.keys()].filter((series) => series.includes('host="lab1"'))).toEqual([]);
    expect(one.get('ceso_operations_total{op="vm reap",outcome="success",host="lab2"}')).toBe(2);
  });
});
