// The published JSON contract, end to end: every command is run as a process with --json on the
// API path (success, --dry-run and errors: not found, invalid input, conflict, auth failure,
// policy, unreachable) and on the SSH path (--via ssh), and every output is validated against
// the GENERATED files under schema/ with a real JSON Schema validator (Ajv, draft 2020-12).
// Needs the built CLI and schema/ (npm run build).
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../../src/core/errors.js';
import { generateSchemaFiles } from '../../src/contract/generate.js';
import { ROOT, requireBuiltCli, runCli, simulatorConfig, workspace, type CesoWorkspace, type CliResult, openSimulatorWorkspace, type SimulatorWorkspace } from '../support/cli.js';
import type { Simulator } from '../support/simulator.js';
import { buildOva } from '../support/ova.js';
import { startSshServer, type SshServer } from '../support/sshd.js';
import { startPostgres } from '../support/postgres.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfA2dC6WcGxPx0sN1yKq0mYkq0X8oZ5yN8dGd1cV2wL contract@example';
const SCHEMA_DIR = join(ROOT, 'schema');
/** The snapshot commands that change a VM: each must dry-run, and run on both paths. */
const SNAPSHOT_CHANGES = ['vm snapshot create', 'vm snapshot revert', 'vm snapshot delete'];
/** The pool commands that change VMs: each must dry-run. */
const POOL_CHANGES = ['pool fill', 'pool acquire', 'pool release', 'pool reap', 'pool destroy'];
const POOLS = 'pools:\n  c-pool: {size: 1, max: 2, lease: 1h, linked: false}\n';

type Json = Record<string, unknown>;
type Expected = 'success' | 'dryRun' | ErrorCode;
interface SchemaIndex {
  commands: Array<{ command: string; id: string; summary: string }>;
  error: string;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

describe('the JSON contract (generated schema/ files) holds for real outputs', () => {
  let index: SchemaIndex;
  const validators = new Map<string, ValidateFunction>();
  let errorValidator: ValidateFunction;
  /** What each command was seen to print: success, dryRun, error. */
  const seen = new Map<string, Set<'success' | 'dryRun' | 'error'>>();
  const viaSeen = new Map<string, Set<string>>();

  let sim: Simulator;
  let sshd: SshServer;
  let ws: CesoWorkspace;
  let bed: SimulatorWorkspace | undefined;
  let env: Record<string, string>;
  let foreign: string;

  /**
   * Runs `ceso <command> ...args --json`, checks the exit code and validates stdout against the
   * command's result schema (or, for an expected error code, the error schema).
   */
  async function check(command: string, args: string[], expected: Expected, runEnv: Record<string, string> = env): Promise<Json & Json[]> {
    const result: CliResult = await runCli([...command.split(' '), ...args, '--json'], { env: runEnv, timeoutMs: 90_000 });
    const label = `ceso ${command} ${args.join(' ')} (exit ${result.code})\n${result.stdout.slice(0, 3000)}\n${result.stderr.slice(-2000)}`;
    const output = result.json<Json & Json[]>();
    const entry = index.commands.find((candidate) => candidate.command === command);
    expect(entry, `no schema for ${command} in schema/index.json`).toBeDefined();
    let kind: 'success' | 'dryRun' | 'error';
    if (expected === 'success' || expected === 'dryRun') {
      expect(result.code, label).toBe(0);
      const validate = validators.get(entry!.id)!;
      expect(validate(output), `${label}\n${JSON.stringify(validate.errors, null, 2)}`).toBe(true);
      expect((output as Json).dryRun === true, label).toBe(expected === 'dryRun');
      kind = expected;
    } else {
      expect(errorValidator(output), `${label}\n${JSON.stringify(errorValidator.errors, null, 2)}`).toBe(true);
      expect((output as unknown as { error: { code: string } }).error.code, label).toBe(expected);
      expect(result.code, label).toBe(ERROR_CODES[expected].exit);
      kind = 'error';
    }
    seen.set(command, (seen.get(command) ?? new Set()).add(kind));
    if (kind !== 'error') {
      const via = [output].flat().map((item) => (item as Json).via ?? ((item as Json).plan as Json | undefined)?.via);
      for (const value of via) if (typeof value === 'string') viaSeen.set(command, (viaSeen.get(command) ?? new Set()).add(value));
    }
    return output;
  }

  beforeAll(async () => {
    requireBuiltCli();
    if (!existsSync(join(SCHEMA_DIR, 'index.json'))) {
      throw new Error('build the CLI and its schemas first: npm run build (scripts/build-schemas.mjs writes schema/)');
    }
    index = readJson<SchemaIndex>(join(SCHEMA_DIR, 'index.json'));
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    for (const { id } of index.commands) validators.set(id, ajv.compile(readJson<Json>(join(SCHEMA_DIR, `${id}.json`))));
    errorValidator = ajv.compile(readJson<Json>(join(SCHEMA_DIR, index.error)));

    bed = await openSimulatorWorkspace({ mode: 'esx', vms: 2 }, POOLS);
    ({ sim, ws, env } = bed);
  }, 120_000);

  afterAll(async () => {
    await sshd?.stop();
    await bed?.close();
  });

  it('the files under schema/ are what src/contract generates now', () => {
    const generated = generateSchemaFiles();
    const onDisk = Object.fromEntries(readdirSync(SCHEMA_DIR).map((name) => [name, readJson<Json>(join(SCHEMA_DIR, name))]));
    expect(onDisk, 'schema/ is stale: run npm run build').toEqual(JSON.parse(JSON.stringify(generated)));
  });

  it('every command of the CLI has a schema', () => {
    const manifest = readJson<{ commands: Record<string, unknown> }>(join(ROOT, 'oclif.manifest.json'));
    const commands = Object.keys(manifest.commands).map((id) => id.replaceAll(':', ' '));
    const missing = commands.filter((command) => !index.commands.some((entry) => entry.command === command));
    expect(missing, 'add an entry per command in src/contract/registry.ts').toEqual([]);
  });

  it('ceso schema: lists, prints one command’s schemas, refuses an unknown command (no host needed)', async () => {
    const none = workspace();
    try {
      const list = await check('schema', [], 'success', none.env);
      expect(list.commands).toEqual(index.commands);
      for (const spelling of [['vm', 'list'], ['vm-list'], ['vm:list']]) {
        const one = await check('schema', spelling, 'success', none.env);
        expect(one).toMatchObject({ command: 'vm list', id: 'vm-list', result: readJson(join(SCHEMA_DIR, 'vm-list.json')), error: readJson(join(SCHEMA_DIR, 'error.json')) });
        expect(one.mode).toBeUndefined();
      }
      const unknown = await check('schema', ['vm', 'frobnicate'], 'INVALID_INPUT', none.env);
      expect((unknown.error as { details: { commands: string[] } }).details.commands).toEqual(index.commands.map((entry) => entry.command));
      const human = await runCli(['schema', 'vm', 'info'], { env: none.env });
      expect(human.code).toBe(0);
      expect(JSON.parse(human.stdout)).toMatchObject({ id: 'vm-info' });
    } finally {
      none.cleanup();
    }
  });

  it('vm list and vm info (API): every VM with mode and via; not found; invalid input', async () => {
    const vms = await check('vm list', [], 'success');
    expect(vms.length).toBeGreaterThan(0);
    expect(vms.every((vm) => vm.mode === 'standard' && vm.via === 'api')).toBe(true);
    foreign = String(vms.find((vm) => vm.managed === false)?.name);
    for (const vm of vms) await check('vm info', [String(vm.name), '--id', String(vm.id)], 'success');
    await check('vm info', ['no-such-vm'], 'VM_NOT_FOUND');
    await check('vm list', ['--bogus'], 'INVALID_INPUT');
    await check('vm info', [], 'INVALID_INPUT');
  });

  it('template list (API): the default template, fit; invalid input', async () => {
    const templates = await check('template list', [], 'success');
    expect(templates).toEqual([expect.objectContaining({ name: sim.template, fit: true, unfitReasons: [], via: 'api', mode: 'standard' })]);
    await check('template list', ['--bogus'], 'INVALID_INPUT');
  });

  it('template import (API): dry run, success, missing file, damaged package, conflict; NOT_SUPPORTED over SSH', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ceso-contract-ova-'));
    try {
      const fixture = await buildOva(dir, { capacityMiB: 16, dataMiB: 1 });
      const plan = await check('template import', [fixture.ova, '--name', 'c-tpl', '--dry-run'], 'dryRun');
      expect((plan.plan as Json).via).toBe('api');
      const imported = await check('template import', [fixture.ova, '--name', 'c-tpl'], 'success');
      expect(imported).toMatchObject({ name: 'c-tpl', bytesUploaded: fixture.vmdkBytes, dropped: [{ name: 'serial0', kind: 'serial port' }] });
      await check('template import', [fixture.ova, '--name', 'c-tpl'], 'VM_EXISTS');
      await check('template import', [join(dir, 'missing.ova'), '--name', 'c-tpl2'], 'NOT_FOUND');
      await check('template import', [fixture.vmdk, '--name', 'c-tpl2'], 'INVALID_INPUT');
      await check('template import', [fixture.ova, '--name', 'c-tpl2', '--via', 'ssh'], 'NOT_SUPPORTED');
      await check('vm delete', ['c-tpl', '--force', '--yes'], 'success');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('vm create (API): dry run, success, invalid input, conflict, missing template', async () => {
    await check('vm create', ['c-web', '--ssh-key', KEY, '--dry-run'], 'dryRun');
    const vm = await check('vm create', ['c-web', '--ip', '10.0.0.5/24', '--gateway', '10.0.0.1', '--ssh-key', KEY, '--ttl', '2h'], 'success');
    expect(vm).toMatchObject({ name: 'c-web', via: 'api', mode: 'standard', managed: true });
    await check('vm create', ['bad name'], 'INVALID_INPUT');
    await check('vm create', ['c-web2', '--cpu', '0'], 'INVALID_INPUT');
    await check('vm create', ['c-web', '--ssh-key', KEY], 'VM_EXISTS');
    await check('vm create', ['c-web3', '--template', 'no-such-template', '--ssh-key', KEY], 'TEMPLATE_NOT_FOUND');
  });

  it('vm ip (API): now, --wait ip, a stopped VM, not found', async () => {
    expect(await check('vm ip', ['c-web'], 'success')).toMatchObject({ name: 'c-web', via: 'api', waitedMs: null });
    expect(await check('vm ip', ['c-web', '--wait', 'ip'], 'success')).toMatchObject({ ip: '10.0.0.5' });
    await check('vm ip', ['no-such-vm'], 'VM_NOT_FOUND');
    await check('vm ip', ['c-web', '--wait', 'soon'], 'INVALID_INPUT');
  });

  it('vm power (API): dry run, changes, already in state, wrong state, invalid action', async () => {
    await check('vm power', ['c-web', 'off', '--dry-run'], 'dryRun');
    expect(await check('vm power', ['c-web', 'off'], 'success')).toMatchObject({ changed: true, powerState: 'poweredOff' });
    expect(await check('vm power', ['c-web', 'off'], 'success')).toMatchObject({ changed: false });
    await check('vm power', ['c-web', 'reset'], 'INVALID_POWER_STATE');
    await check('vm power', ['c-web', 'explode'], 'INVALID_INPUT');
    await check('vm power', ['no-such-vm', 'on'], 'VM_NOT_FOUND');
  });

  it('vm snapshot create, list, revert, delete (API): dry runs, successes, not found, conflicts, invalid input', async () => {
    await check('vm snapshot create', ['c-web', 'c-snap', '--dry-run'], 'dryRun');
    expect(await check('vm snapshot create', ['c-web', 'c-snap', '--description', 'contract'], 'success')).toMatchObject({ name: 'c-web', via: 'api', mode: 'standard', snapshot: { name: 'c-snap', memory: false } });
    await check('vm snapshot create', ['c-web', 'c-snap'], 'SNAPSHOT_EXISTS');
    await check('vm snapshot create', ['c-web', 'a/b'], 'INVALID_INPUT');
    await check('vm snapshot create', ['c-web', 'c-q', '--quiesce'], 'TOOLS_NOT_RUNNING');
    expect(await check('vm snapshot list', ['c-web'], 'success')).toMatchObject({ vm: { name: 'c-web' }, via: 'api', mode: 'standard', snapshots: [{ name: 'c-snap', children: [] }] });
    await check('vm snapshot list', ['no-such-vm'], 'VM_NOT_FOUND');
    await check('vm snapshot revert', ['c-web', '--dry-run'], 'dryRun');
    expect(await check('vm snapshot revert', ['c-web', 'c-snap'], 'success')).toMatchObject({ name: 'c-web', via: 'api', snapshot: { name: 'c-snap' } });
    await check('vm snapshot revert', ['c-web', 'no-such-snapshot'], 'SNAPSHOT_NOT_FOUND');
    await check('vm snapshot delete', ['c-web', 'c-snap', '--dry-run'], 'dryRun');
    await check('vm snapshot delete', ['c-web', 'c-snap'], 'CONFIRMATION_REQUIRED');
    expect(await check('vm snapshot delete', ['c-web', 'c-snap', '--yes'], 'success')).toMatchObject({ name: 'c-web', via: 'api', deleted: [{ name: 'c-snap' }] });
    await check('vm snapshot delete', ['c-web', 'c-snap', '--yes'], 'SNAPSHOT_NOT_FOUND');
  });

  it('vm reconfigure (API): dry run, success, nothing to change, refused shrink, not found, invalid input', async () => {
    await check('vm reconfigure', ['c-web', '--cpu', '3', '--add-disk', '1', '--dry-run'], 'dryRun');
    expect(await check('vm reconfigure', ['c-web', '--cpu', '3', '--add-disk', '1', '--annotation', 'contract'], 'success')).toMatchObject({ name: 'c-web', via: 'api', mode: 'standard', cpu: 3, changed: ['cpu', 'disks[1]', 'annotation'] });
    expect(await check('vm reconfigure', ['c-web', '--cpu', '3'], 'success')).toMatchObject({ changed: [] });
    await check('vm reconfigure', ['c-web', '--disk', '1'], 'CONFLICT');
    await check('vm reconfigure', ['no-such-vm', '--cpu', '2'], 'VM_NOT_FOUND');
    await check('vm reconfigure', ['c-web', '--memory-mb', '1001'], 'CONFLICT');
    await check('vm reconfigure', ['c-web', '--memory-mb', 'lots'], 'INVALID_INPUT');
  });

  it('vm clone (API): dry run, success, source running, source missing', async () => {
    await check('vm clone', ['c-web', 'c-copy', '--dry-run'], 'dryRun');
    expect(await check('vm clone', ['c-web', 'c-copy', '--no-power-on'], 'success')).toMatchObject({ name: 'c-copy', via: 'api', status: 'stopped' });
    await check('vm power', ['c-copy', 'on'], 'success');
    await check('vm clone', ['c-copy', 'c-copy2'], 'INVALID_POWER_STATE');
    await check('vm clone', ['no-such-vm', 'c-copy3'], 'VM_NOT_FOUND');
  });

  it('vm delete (API): dry run, confirmation, not managed, running, success', async () => {
    await check('vm delete', ['c-copy', '--yes'], 'INVALID_POWER_STATE');
    await check('vm delete', [foreign, '--yes'], 'NOT_MANAGED');
    await check('vm power', ['c-copy', 'off'], 'success');
    await check('vm delete', ['c-copy', '--dry-run'], 'dryRun');
    await check('vm delete', ['c-copy'], 'CONFIRMATION_REQUIRED');
    expect(await check('vm delete', ['c-copy', '--yes'], 'success')).toMatchObject({ name: 'c-copy', deleted: true, via: 'api' });
    await check('vm delete', ['c-copy', '--yes'], 'VM_NOT_FOUND');
  });

  it('vm backup, backup list, vm restore (API): dry runs, successes, errors', async () => {
    await check('vm backup', [foreign, '--dry-run'], 'dryRun');
    const made = await check('vm backup', [foreign, '--keep', '2'], 'success');
    expect(made).toMatchObject({ name: foreign, via: 'api', mode: 'standard', backup: { complete: true } });
    await check('vm backup', ['no-such-vm'], 'VM_NOT_FOUND');
    await check('vm backup', [foreign, '--keep', '0'], 'INVALID_INPUT');
    expect((await check('backup list', [], 'success')).map((backup) => backup.path)).toContain((made.backup as Json).path);
    await check('backup list', ['--to', '[datastore1] ../x'], 'INVALID_INPUT');
    await check('vm restore', [`${foreign}@latest`, '--name', 'c-restored', '--dry-run'], 'dryRun');
    expect(await check('vm restore', [`${foreign}@latest`, '--name', 'c-restored'], 'success')).toMatchObject({ name: 'c-restored', inPlace: false, via: 'api', managed: true });
    await check('vm restore', [`${foreign}@20200101T000000Z`, '--name', 'c-restored2'], 'BACKUP_NOT_FOUND');
    await check('vm delete', ['c-restored', '--yes'], 'success');
  });

  it('vm reap (API): nothing expired, dry run, reaped, invalid input', async () => {
    expect(await check('vm reap', [], 'success')).toMatchObject({ reaped: [] });
    await sim.oracle('set-extra', 'c-web', 'ceso.expiresAt=2020-01-01T00:00:00.000Z');
    const planned = await check('vm reap', ['--dry-run'], 'dryRun');
    expect(planned).toMatchObject({ dryRun: true, reaped: [{ name: 'c-web', deleted: false, error: null }] });
    expect(planned.plans).toHaveLength(1);
    expect(await check('vm reap', [], 'success')).toMatchObject({ dryRun: false, reaped: [{ name: 'c-web', deleted: true }] });
    await check('vm reap', ['--bogus'], 'INVALID_INPUT');
  });

  it('pool status, fill, acquire, release, reap, destroy (API): dry runs, successes, errors', async () => {
    expect(await check('pool status', ['c-pool'], 'success')).toMatchObject({ pool: 'c-pool', vms: [], via: 'api' });
    await check('pool status', ['no-such-pool'], 'POOL_NOT_FOUND');
    await check('pool fill', ['c-pool', '--dry-run'], 'dryRun');
    expect(await check('pool fill', ['c-pool'], 'success')).toMatchObject({ built: [{ name: 'c-pool-001' }], counts: { ready: 1 } });
    await check('pool fill', ['no-such-pool'], 'POOL_NOT_FOUND');
    await check('pool acquire', ['c-pool', '--dry-run'], 'dryRun');
    const lease = await check('pool acquire', ['c-pool', '--holder', 'contract'], 'success');
    expect(lease).toMatchObject({ pool: 'c-pool', vm: 'c-pool-001', holder: 'contract' });
    await check('pool acquire', ['c-pool'], 'POOL_EMPTY');
    await check('pool acquire', ['c-pool', '--lease', 'forever'], 'INVALID_INPUT');
    await check('pool release', ['c-pool', '--lease', String(lease.leaseId), '--dry-run'], 'dryRun');
    expect(await check('pool release', ['c-pool', '--lease', String(lease.leaseId)], 'success')).toMatchObject({ vm: 'c-pool-001', method: 'revert', state: 'ready' });
    await check('pool release', ['c-pool', '--lease', String(lease.leaseId)], 'LEASE_NOT_HELD');
    await check('pool reap', ['c-pool', '--dry-run'], 'dryRun');
    expect(await check('pool reap', ['c-pool'], 'success')).toMatchObject({ reclaimed: [], repaired: [] });
    await check('pool reap', ['no-such-pool'], 'POOL_NOT_FOUND');
    await check('pool destroy', ['c-pool', '--dry-run'], 'dryRun');
    await check('pool destroy', ['c-pool'], 'CONFIRMATION_REQUIRED');
    expect(await check('pool destroy', ['c-pool', '--yes'], 'success')).toMatchObject({ deleted: ['c-pool-001'] });
  });

  it('the fan-out shape (--all-hosts) of vm list and vm reap; metrics: text snapshot as samples, a bad --textfile', async () => {
    const listed = await check('vm list', ['--all-hosts'], 'success');
    expect(listed).toMatchObject({ mode: 'standard', hosts: [{ host: 'default', ok: true }] });
    expect(await check('vm reap', ['--all-hosts'], 'success')).toMatchObject({ mode: 'standard', hosts: [{ host: 'default', ok: true, dryRun: false, reaped: [] }] });
    expect(await check('metrics', [], 'success')).toMatchObject({ mode: 'standard', hosts: [{ host: 'default', ok: true, via: 'api' }], textfile: null });
    await check('metrics', ['--textfile', join(ws.home, 'no-such-dir', 'ceso.prom')], 'INVALID_INPUT');
    await check('metrics', ['--host', 'default,nope'], 'HOST_NOT_CONFIGURED');
  });

  it('audit: the records of the changes above; invalid --since', async () => {
    // Validated whatever it holds; once every mutation is audited, the records of the tests above.
    await check('audit', [], 'success');
    await check('audit', ['--since', '1h'], 'success');
    await check('audit', ['--since', 'yesterday-ish'], 'INVALID_INPUT');
  });

  it('failures before the host answers: auth, unreachable, no config, unknown host', async () => {
    const badAuth = { ...env, SIM_PASSWORD: 'wrong-password' };
    await check('vm list', [], 'AUTH_FAILED', badAuth);
    await check('vm create', ['c-auth', '--ssh-key', KEY, '--dry-run'], 'AUTH_FAILED', badAuth);
    const other = workspace();
    try {
      await check('vm info', ['x'], 'CONFIG_NOT_FOUND', { CESO_HOME: other.home });
      await check('vm info', ['x'], 'CONFIG_INVALID', other.env);
      other.writeConfig(simulatorConfig({ ...sim, port: 1 }).replace(/thumbprint: .*\n/, 'connectTimeoutSeconds: 5\n  thumbprint: "' + sim.thumbprintSha256 + '"\n'));
      await check('vm list', ['--via', 'api'], 'HOST_UNREACHABLE', { ...other.env, SIM_PASSWORD: sim.password });
      await check('vm list', ['--host', 'nowhere'], 'HOST_NOT_CONFIGURED');
    } finally {
      other.cleanup();
    }
  });

  it('config init and config validate (no host needed)', async () => {
    const other = workspace();
    try {
      const path = join(other.home, 'starter.yaml');
      expect(await check('config init', ['--config', path], 'success', other.env)).toMatchObject({ configPath: path, overwritten: false });
      await check('config init', ['--config', path], 'CONFLICT', other.env);
      expect(await check('config init', ['--config', path, '--force'], 'success', other.env)).toMatchObject({ overwritten: true });
      expect(await check('config validate', [], 'success')).toMatchObject({ valid: true, mode: 'standard' });
      other.writeConfig('esxi: {host: 127.0.0.1, port: "x"}\nbogus: 1\n');
      await check('config validate', [], 'CONFIG_INVALID', other.env);
    } finally {
      other.cleanup();
    }
  });

  it('lock list, lock release, state migrate, --idempotency-key: local and postgres backends (no host needed)', async () => {
    expect(await check('lock list', [], 'success')).toMatchObject({ backend: 'local', locks: [] });
    expect(await check('state migrate', [], 'success')).toMatchObject({ backend: 'local', applied: [] });
    await check('lock release', ['0123456789abcdef', '--force'], 'NOT_FOUND');
    await check('lock release', ['0123456789abcdef'], 'INVALID_INPUT');
    const pg = await startPostgres();
    const shared = workspace();
    try {
      const url = await pg.createDatabase('contract');
      shared.writeConfig(simulatorConfig(sim, 'state:\n  backend: postgres\n  url: ${CESO_STATE_URL}\n'));
      const pgEnv = { ...shared.env, SIM_PASSWORD: sim.password, CESO_STATE_URL: url };
      expect(await check('state migrate', ['--dry-run'], 'dryRun', pgEnv)).toMatchObject({ backend: 'postgres', fromVersion: 0, applied: [{ version: 1 }, { version: 2 }] });
      expect(await check('state migrate', [], 'success', pgEnv)).toMatchObject({ backend: 'postgres', fromVersion: 0, toVersion: 2 });
      await pg.query(
        "INSERT INTO ceso_locks (id, host, vm, holder_user, holder_machine, holder_pid, command, expires_at) VALUES ('c0ffee', 'h:443', 'c-vm', 'u', 'm', 1, 'ceso vm power', now() - interval '1 minute')",
        [],
        'contract',
      );
      expect(await check('lock list', [], 'success', pgEnv)).toMatchObject({ backend: 'postgres', locks: [{ id: 'c0ffee', state: 'expired' }] });
      expect(await check('lock release', ['c0ffee', '--force'], 'success', pgEnv)).toMatchObject({ released: { id: 'c0ffee', vm: 'c-vm' } });
      await check('lock release', ['c0ffee', '--force'], 'POLICY_DENIED', { ...pgEnv, CESO_MODE: 'restricted' });
      const first = await check('vm create', ['c-idem', '--no-power-on', '--idempotency-key', 'contract-1'], 'success', pgEnv);
      expect(await check('vm create', ['c-idem', '--no-power-on', '--idempotency-key', 'contract-1'], 'success', pgEnv)).toMatchObject({ id: first.id, replayed: true });
      await check('vm create', ['c-idem2', '--no-power-on', '--idempotency-key', 'contract-1'], 'IDEMPOTENCY_CONFLICT', pgEnv);
      expect(await check('vm delete', ['c-idem', '--yes', '--idempotency-key', 'contract-2'], 'success', pgEnv)).toMatchObject({ replayed: false });
      await pg.query("INSERT INTO ceso_schema_migrations (version, name) VALUES (99, 'future')", [], 'contract');
      await check('lock list', [], 'STATE_SCHEMA_NEWER', pgEnv);
      const closed = { ...pgEnv, CESO_STATE_URL: `postgres://ceso:${pg.password}@127.0.0.1:1/contract` };
      await check('state migrate', [], 'STATE_UNREACHABLE', closed);
      await check('lock list', [], 'STATE_UNREACHABLE', closed);
    } finally {
      shared.cleanup();
      await pg.stop();
    }
  });

  it('host trust: shows (and with the pin in place, reports) the certificate; unreachable host', async () => {
    const shown = await check('host trust', ['--via', 'api'], 'success');
    expect(shown).toMatchObject({ thumbprintSha256: sim.thumbprintSha256, pinned: true, mode: 'standard' });
    const other = workspace();
    try {
      other.writeConfig(simulatorConfig({ ...sim, port: 1 }));
      await check('host trust', [], 'HOST_UNREACHABLE', { ...other.env, SIM_PASSWORD: sim.password });
    } finally {
      other.cleanup();
    }
  });

  it('restricted mode: "mode": "restricted" in results, POLICY_DENIED errors', async () => {
    const restricted = { ...env, CESO_MODE: 'restricted' };
    const vms = await check('vm list', [], 'success', restricted);
    expect(vms.every((vm) => vm.mode === 'restricted')).toBe(true);
    expect(await check('vm info', [foreign], 'success', restricted)).toMatchObject({ mode: 'restricted' });
    await check('vm delete', [foreign, '--yes'], 'POLICY_DENIED', restricted);
    await check('vm power', [foreign, 'off'], 'POLICY_DENIED', restricted);
    await check('vm reconfigure', [foreign, '--cpu', '2'], 'POLICY_DENIED', restricted);
    await check('vm snapshot create', [foreign, 'x'], 'POLICY_DENIED', restricted);
    await check('vm snapshot delete', [foreign, '--all'], 'POLICY_DENIED', restricted);
  });

  describe('over SSH (--via ssh)', () => {
    const ssh = (command: string, args: string[], expected: Expected): Promise<Json & Json[]> => check(command, [...args, '--via', 'ssh'], expected);

    beforeAll(async () => {
      sshd = await startSshServer({ sim });
      const section = (entries: Record<string, unknown>): string => Object.entries(entries).map(([key, value]) => `  ${key}: ${JSON.stringify(value)}`).join('\n');
      ws.writeConfig(
        `${simulatorConfig(sim, POOLS)}ssh:\n${section({ host: '127.0.0.1', port: sshd.port, user: sshd.user, keyPath: sshd.privateKeyPath, knownHosts: sshd.knownHostsPath, volumesRoot: sshd.volumesRoot })}\n`,
      );
    }, 120_000);

    it('host trust reads the SSH host key too', async () => {
      expect(await check('host trust', [], 'success')).toMatchObject({ sshHostKey: { fingerprint: sshd.hostKeyFingerprint } });
    });

    it('vm list and vm info', async () => {
      const vms = await ssh('vm list', [], 'success');
      expect(vms.every((vm) => vm.via === 'ssh' && vm.mode === 'standard')).toBe(true);
      for (const vm of vms) await ssh('vm info', [String(vm.name), '--id', String(vm.id)], 'success');
      await ssh('vm info', ['no-such-vm'], 'VM_NOT_FOUND');
      expect((await ssh('template list', [], 'success')).every((template) => template.via === 'ssh')).toBe(true);
    });

    it('pool status works; pool changes are NOT_SUPPORTED (they write markers on running VMs)', async () => {
      expect(await ssh('pool status', ['c-pool'], 'success')).toMatchObject({ pool: 'c-pool', via: 'ssh' });
      await ssh('pool acquire', ['c-pool'], 'NOT_SUPPORTED');
    });

    it('vm snapshot create, list, revert, delete: dry runs, successes and errors', async () => {
      await ssh('vm snapshot create', [foreign, 's-snap', '--memory', '--dry-run'], 'dryRun');
      expect(await ssh('vm snapshot create', [foreign, 's-snap', '--memory'], 'success')).toMatchObject({ via: 'ssh', name: foreign, snapshot: { name: 's-snap' } });
      await ssh('vm snapshot create', [foreign, 's-snap'], 'SNAPSHOT_EXISTS');
      expect(await ssh('vm snapshot list', [foreign], 'success')).toMatchObject({ via: 'ssh', snapshots: [{ name: 's-snap' }] });
      await ssh('vm snapshot list', ['no-such-vm'], 'VM_NOT_FOUND');
      await ssh('vm snapshot revert', [foreign, 's-snap', '--dry-run'], 'dryRun');
      expect(await ssh('vm snapshot revert', [foreign], 'success')).toMatchObject({ via: 'ssh', name: foreign, snapshot: { name: 's-snap' } });
      await ssh('vm snapshot revert', [foreign, 'no-such-snapshot'], 'SNAPSHOT_NOT_FOUND');
      await ssh('vm snapshot delete', [foreign, '--all', '--dry-run'], 'dryRun');
      expect(await ssh('vm snapshot delete', [foreign, '--all', '--yes'], 'success')).toMatchObject({ via: 'ssh', deleted: [{ name: 's-snap' }] });
      await ssh('vm snapshot delete', [foreign, 's-snap', '--yes'], 'SNAPSHOT_NOT_FOUND');
    });

    it('vm backup, backup list, vm restore', async () => {
      expect(((await ssh('vm backup', [foreign, '--dry-run'], 'dryRun')).plan as Json).via).toBe('ssh');
      expect(await ssh('vm backup', [foreign, '--keep', '2'], 'success')).toMatchObject({ via: 'ssh', backup: { complete: true } });
      await ssh('vm backup', ['no-such-vm'], 'VM_NOT_FOUND');
      expect((await ssh('backup list', [], 'success')).every((backup) => backup.via === 'ssh')).toBe(true);
      await ssh('vm restore', [`${foreign}@latest`, '--name', 's-restored', '--dry-run'], 'dryRun');
      expect(await ssh('vm restore', [`${foreign}@latest`, '--name', 's-restored'], 'success')).toMatchObject({ via: 'ssh', name: 's-restored' });
      await ssh('vm restore', ['nobody@latest', '--name', 's-restored2'], 'BACKUP_NOT_FOUND');
      await ssh('vm delete', ['s-restored', '--yes'], 'success');
    });

    it('vm create, power, clone, delete: dry runs, successes and errors', async () => {
      const plan = await ssh('vm create', ['s-web', '--ssh-key', KEY, '--dry-run'], 'dryRun');
      expect((plan.plan as Json).via).toBe('ssh');
      expect(await ssh('vm create', ['s-web', '--ssh-key', KEY, '--ttl', '1d'], 'success')).toMatchObject({ via: 'ssh', managed: true });
      await ssh('vm create', ['s-web', '--ssh-key', KEY], 'VM_EXISTS');
      await ssh('vm create', ['s-web2', '--datastore', 'no-such-datastore', '--ssh-key', KEY], 'DATASTORE_NOT_FOUND');

      await ssh('vm power', ['s-web', 'off', '--dry-run'], 'dryRun');
      expect(await ssh('vm power', ['s-web', 'off'], 'success')).toMatchObject({ via: 'ssh', powerState: 'poweredOff' });
      await ssh('vm power', ['s-web', 'reset'], 'INVALID_POWER_STATE');
      expect(await ssh('vm ip', ['s-web'], 'success')).toMatchObject({ via: 'ssh', ip: null, powerState: 'poweredOff' });
      await ssh('vm ip', ['s-web', '--wait', 'ip'], 'INVALID_POWER_STATE');

      await ssh('vm reconfigure', ['s-web', '--cpu', '3', '--disk', '30', '--dry-run'], 'dryRun');
      expect(await ssh('vm reconfigure', ['s-web', '--cpu', '3', '--disk', '30'], 'success')).toMatchObject({ via: 'ssh', cpu: 3, changed: ['cpu', 'disks[0].capacityGB'] });
      await ssh('vm reconfigure', ['s-web', '--disk', '10'], 'CONFLICT');
      await ssh('vm reconfigure', ['no-such-vm', '--cpu', '2'], 'VM_NOT_FOUND');

      await ssh('vm clone', ['s-web', 's-copy', '--dry-run'], 'dryRun');
      expect(await ssh('vm clone', ['s-web', 's-copy', '--no-power-on'], 'success')).toMatchObject({ via: 'ssh', name: 's-copy' });

      await ssh('vm delete', ['s-copy', '--dry-run'], 'dryRun');
      await ssh('vm delete', [foreign, '--yes'], 'NOT_MANAGED');
      expect(await ssh('vm delete', ['s-copy', '--yes'], 'success')).toMatchObject({ via: 'ssh', deleted: true });
      expect(await ssh('vm delete', ['s-web', '--yes'], 'success')).toMatchObject({ via: 'ssh', deleted: true });
    }, 180_000);
  });

  it('every command was seen to succeed and to fail, every mutation to dry-run, the vm commands on both paths', () => {
    const missing: string[] = [];
    for (const { command } of index.commands) {
      const kinds = seen.get(command) ?? new Set();
      for (const kind of ['success', 'error'] as const) if (!kinds.has(kind)) missing.push(`${command}: ${kind}`);
      if (['vm create', 'vm clone', 'vm delete', 'vm power', 'vm reap', 'vm reconfigure', 'template import', 'vm backup', 'vm restore', ...SNAPSHOT_CHANGES, ...POOL_CHANGES].includes(command) && !kinds.has('dryRun')) missing.push(`${command}: dryRun`);
      if (['vm list', 'vm info', 'vm create', 'vm clone', 'vm delete', 'vm power', 'vm reconfigure', 'template list', 'vm snapshot list', 'vm backup', 'backup list', 'vm restore', 'pool status', ...SNAPSHOT_CHANGES].includes(command)) {
        for (const via of ['api', 'ssh']) if (!viaSeen.get(command)?.has(via)) missing.push(`${command}: via ${via}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
