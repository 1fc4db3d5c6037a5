// `ceso vm snapshot create|list|revert|delete` as a process, over the API (the simulator over
// HTTPS) and over SSH (the real sshd test bed whose vim-cmd acts on the same inventory): plans
// with the exact calls and commands, the same JSON on both paths apart from `via`, delta disks
// appearing and disappearing on the datastore, the power state a revert brings back, errors
// (unknown VM or snapshot, duplicate, ambiguous, quiesce without Tools, a host fault in the
// middle, Ctrl-C) that leave the VM as it was, and every output validated against schema/.
// Needs the built CLI and schema/ (npm run build).
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../../src/core/errors.js';
import { ROOT, requireBuiltCli, runCli, sshConfig, withoutPath, workspace, type CesoWorkspace, type CliResult } from '../support/cli.js';
import { startSimulator, type Simulator } from '../support/simulator.js';
import { startSshServer, type SshServer } from '../support/sshd.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc3Zt0h6m9O6m8yq0Jc2kq9Wm6V8rB3p2wq1cQm2XyZ snapshot-test';
const q = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

type Json = Record<string, unknown>;
interface Node {
  id: string;
  name: string;
  path: string;
  description: string | null;
  createdAt: string | null;
  powerState: string | null;
  memory: boolean;
  quiesced: boolean | null;
  children: Node[];
}
interface Tree {
  vm: { name: string; id: string };
  current: string | null;
  snapshots: Node[];
  via: string;
  mode: string;
}
interface Step {
  id: string;
  kind: string;
  method?: string;
  object?: string;
  arguments?: Json;
  command?: string;
  description: string;
}
interface ErrorOut {
  error: { code: string; message: string; hint?: string; details?: Json };
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

const flat = (nodes: Node[]): Node[] => nodes.flatMap((node) => [node, ...flat(node.children)]);

describe('vm snapshot over the API and over SSH', { timeout: 240_000 }, () => {
  let sim: Simulator;
  let sshd: SshServer;
  let ws: CesoWorkspace;
  let env: Record<string, string>;
  const validators = new Map<string, ValidateFunction>();
  let errorValidator: ValidateFunction;
  /** The simulator's vmid of the VM under test (the same over the API and SSH). */
  let vmId = '';

  /** Runs ceso; with --json validates the output against the command's schema (or the error schema). */
  async function ceso(...args: string[]): Promise<CliResult> {
    const result = await runCli(args, { env, timeoutMs: 90_000 });
    if (args.includes('--json') && args[0] === 'vm' && args[1] === 'snapshot') {
      const output = result.json<Json>();
      const validate = result.code === 0 ? validators.get(`vm-snapshot-${args[2]}`) : errorValidator;
      expect(validate, `no schema for vm snapshot ${args[2]}`).toBeDefined();
      expect(validate!(output), `${args.join(' ')}\n${result.stdout}\n${JSON.stringify(validate!.errors, null, 2)}`).toBe(true);
    }
    return result;
  }
  const ok = <T = Json>(result: CliResult): T => {
    expect(result.code, `${result.stdout}\n${result.stderr.slice(-3000)}`).toBe(0);
    return result.json<T>();
  };
  const fails = (result: CliResult, code: ErrorCode): ErrorOut['error'] => {
    expect(result.code, `${result.stdout}\n${result.stderr.slice(-2000)}`).toBe(ERROR_CODES[code].exit);
    const { error } = result.json<ErrorOut>();
    expect(error.code, result.stdout).toBe(code);
    return error;
  };
  const files = async (vm: string): Promise<string[]> => (await sim.listFiles()).filter((file) => file.startsWith(`${vm}/`)).map((file) => file.slice(vm.length + 1));
  const deltas = (names: string[]): string[] => names.filter((name) => /-\d{6}(-sesparse|-delta)?\.vmdk$/.test(name));
  const list = async (vm: string, via: 'api' | 'ssh' = 'api'): Promise<Tree> => ok<Tree>(await ceso('vm', 'snapshot', 'list', vm, '--json', '--via', via));
  const info = async (vm: string, via: 'api' | 'ssh' = 'api'): Promise<Json & { disks: Array<{ file: string }>; powerState: string }> =>
    ok(await ceso('vm', 'info', vm, '--json', '--via', via));

  beforeAll(async () => {
    requireBuiltCli();
    const index = readJson<{ commands: Array<{ id: string }>; error: string }>(join(ROOT, 'schema/index.json'));
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    for (const { id } of index.commands) validators.set(id, ajv.compile(readJson(join(ROOT, 'schema', `${id}.json`))));
    errorValidator = ajv.compile(readJson(join(ROOT, 'schema', index.error)));
    sim = await startSimulator({ mode: 'esx', vms: 1 });
    sshd = await startSshServer({ sim });
    ws = workspace();
    ws.writeConfig(sshConfig(sim, sshd));
    env = { ...ws.env, SIM_PASSWORD: sim.password };
    const made = ok<{ id: string }>(await runCli(['vm', 'create', 'sn1', '--ssh-key', KEY, '--json'], { env, timeoutMs: 90_000 }));
    vmId = made.id;
    ok(await runCli(['vm', 'create', 'sn2', '--ssh-key', KEY, '--no-power-on', '--json'], { env, timeoutMs: 90_000 }));
  }, 180_000);

  afterAll(async () => {
    await sshd?.stop();
    await sim?.stop();
    ws?.cleanup();
  });

  it('plans a create with the exact API call and the exact vim-cmd command, changing nothing', async () => {
    const before = await sim.listFiles();
    const api = ok<{ dryRun: true; plan: { via: string; steps: Step[] } }>(await ceso('vm', 'snapshot', 'create', 'sn1', 'base', '--description', "it's the base", '--dry-run', '--json'));
    expect(api.plan.via).toBe('api');
    expect(api.plan.steps.map((step) => step.id)).toEqual(['create-snapshot', 'check-snapshot']);
    expect(api.plan.steps[0]).toMatchObject({ kind: 'api', method: 'CreateSnapshot_Task', object: `VirtualMachine:${vmId}`, arguments: { name: 'base', description: "it's the base", memory: false, quiesce: false } });
    const ssh = ok<{ plan: { via: string; steps: Step[] } }>(await ceso('vm', 'snapshot', 'create', 'sn1', 'base', '--description', "it's the base", '--memory', '--dry-run', '--json', '--via', 'ssh'));
    expect(ssh.plan.via).toBe('ssh');
    expect(ssh.plan.steps[0]?.command).toBe(`vim-cmd vmsvc/snapshot.create ${q(vmId)} 'base' 'it'\\''s the base' '1' '0'`);
    expect(ssh.plan.steps[1]?.command).toBe(`vim-cmd vmsvc/snapshot.get ${q(vmId)}`);
    const human = await ceso('vm', 'snapshot', 'create', 'sn1', 'base', '--dry-run');
    expect(human.stdout).toContain('CreateSnapshot_Task on VirtualMachine:');
    expect(await sim.listFiles()).toEqual(before);
    expect((await list('sn1')).snapshots).toEqual([]);
  });

  it('takes a disk-only snapshot over the API: a delta disk appears, the disk moves to it, the VM keeps running', async () => {
    const before = await files('sn1');
    expect(deltas(before)).toEqual([]);
    const made = ok<{ name: string; id: string; snapshot: Node; via: string; durationMs: number }>(await ceso('vm', 'snapshot', 'create', 'sn1', 'base', '--description', 'the base', '--json'));
    expect(made).toMatchObject({ name: 'sn1', id: vmId, via: 'api', mode: 'standard' });
    expect(made.snapshot).toMatchObject({ name: 'base', path: 'base', description: 'the base', powerState: 'poweredOff', memory: false, quiesced: false, children: [] });
    expect(made.snapshot.id).toMatch(/^\d+$/);
    expect(made.snapshot.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    const after = await files('sn1');
    expect(deltas(after)).toEqual(['sn1-000001-sesparse.vmdk', 'sn1-000001.vmdk']);
    expect(after.filter((name) => name.endsWith('.vmsn'))).toHaveLength(1);
    const vm = await info('sn1');
    expect(vm.powerState).toBe('poweredOn');
    expect(vm.disks.map((disk) => disk.file)).toEqual(['[datastore1] sn1/sn1-000001.vmdk']);
  });

  it('refuses a name the VM already has (SNAPSHOT_EXISTS, exit 4) and bad names (exit 2), on both paths, changing nothing', async () => {
    const before = await sim.listFiles();
    for (const via of ['api', 'ssh']) {
      const duplicate = fails(await ceso('vm', 'snapshot', 'create', 'sn1', 'base', '--json', '--via', via), 'SNAPSHOT_EXISTS');
      expect(duplicate.message).toContain('"base"');
      expect(duplicate.details).toMatchObject({ existing: [{ name: 'base', path: 'base' }] });
    }
    for (const bad of ['a/b', '123', ' padded', '']) fails(await ceso('vm', 'snapshot', 'create', 'sn1', bad, '--json'), 'INVALID_INPUT');
    fails(await ceso('vm', 'snapshot', 'create', 'sn1', 'ok', '--description', 'two\nlines', '--json'), 'INVALID_INPUT');
    fails(await ceso('vm', 'snapshot', 'create', 'sn1', 'both', '--memory', '--quiesce', '--json'), 'INVALID_INPUT');
    fails(await ceso('vm', 'snapshot', 'create', 'no-such-vm', 'x', '--json'), 'VM_NOT_FOUND');
    fails(await ceso('vm', 'snapshot', 'create', 'no-such-vm', 'x', '--json', '--via', 'ssh'), 'VM_NOT_FOUND');
    expect(await sim.listFiles()).toEqual(before);
  });

  it('takes a memory snapshot over SSH: a second delta and the memory file appear, the child of the current one', async () => {
    const made = ok<{ snapshot: Node; via: string }>(await ceso('vm', 'snapshot', 'create', 'sn1', 'warm', '--memory', '--json', '--via', 'ssh'));
    expect(made.via).toBe('ssh');
    expect(made.snapshot).toMatchObject({ name: 'warm', path: 'base/warm', powerState: 'poweredOn', memory: true, description: null });
    const names = await files('sn1');
    expect(deltas(names)).toEqual(['sn1-000001-sesparse.vmdk', 'sn1-000001.vmdk', 'sn1-000002-sesparse.vmdk', 'sn1-000002.vmdk']);
    expect(names.filter((name) => name.endsWith('.vmem'))).toHaveLength(1);
    const tree = await list('sn1');
    expect(tree.current).toBe(made.snapshot.id);
    expect((await info('sn1')).powerState).toBe('poweredOn');
  });

  it('lists the same tree over the API and over SSH (ids agree), the current one marked', async () => {
    const api = await list('sn1', 'api');
    const ssh = await list('sn1', 'ssh');
    expect(api).toMatchObject({ vm: { name: 'sn1', id: vmId }, via: 'api', mode: 'standard' });
    expect(ssh.via).toBe('ssh');
    expect(flat(api.snapshots).map((node) => [node.id, node.path])).toEqual(flat(ssh.snapshots).map((node) => [node.id, node.path]));
    expect(ssh.current).toBe(api.current);
    const human = await ceso('vm', 'snapshot', 'list', 'sn1');
    expect(human.code).toBe(0);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`Snapshots of sn1 (id ${vmId}):`);
    expect(lines[1]).toMatch(/^ {2}base {2}\[id \d+, .*powered off, disks only\] {2}"the base"$/);
    expect(lines[2]).toMatch(/^\* {3}warm {2}\[id \d+, .*powered on, memory\] {2}\(current\)$/);
    fails(await ceso('vm', 'snapshot', 'list', 'no-such-vm', '--json'), 'VM_NOT_FOUND');
    fails(await ceso('vm', 'snapshot', 'list', 'no-such-vm', '--json', '--via', 'ssh'), 'VM_NOT_FOUND');
    expect(ok<Tree>(await ceso('vm', 'snapshot', 'list', 'sn2', '--json'))).toMatchObject({ current: null, snapshots: [] });
    // Everything else agrees; real hosts say whether a snapshot was quiesced over SSH too (vim-cmd vmsvc/get.snapshotinfo).
    expect(withoutPath(ssh as unknown as Json)).toEqual(withoutPath(api as unknown as Json));
  });

  it('--quiesce needs VMware Tools running, and says so naming the fix (both paths)', async () => {
    for (const via of ['api', 'ssh']) {
      const error = fails(await ceso('vm', 'snapshot', 'create', 'sn2', 'q', '--quiesce', '--json', '--via', via), 'TOOLS_NOT_RUNNING');
      expect(error.message).toContain('VMware Tools');
      expect(error.hint).toContain('drop --quiesce');
      expect(error.details).toMatchObject({ powerState: 'poweredOff' });
    }
    expect((await list('sn2')).snapshots).toEqual([]);
    const quiesced = ok<{ snapshot: Node }>(await ceso('vm', 'snapshot', 'create', 'sn1', 'calm', '--quiesce', '--json'));
    expect(quiesced.snapshot).toMatchObject({ quiesced: true, memory: false, powerState: 'poweredOff', path: 'base/warm/calm' });
  });

  it('names snapshots by path or id; an ambiguous name is AMBIGUOUS listing them; an unknown one is SNAPSHOT_NOT_FOUND', async () => {
    // Another tool may take two snapshots of one name (the API allows it); ceso never does.
    for (let i = 0; i < 2; i += 1) {
      const made = await sshd.exec(`vim-cmd vmsvc/snapshot.create ${q(vmId)} dup`);
      expect(made.code, made.stdout).toBe(0);
    }
    const dups = flat((await list('sn1')).snapshots).filter((node) => node.name === 'dup');
    expect(dups).toHaveLength(2);
    for (const via of ['api', 'ssh']) {
      const error = fails(await ceso('vm', 'snapshot', 'revert', 'sn1', 'dup', '--json', '--via', via), 'AMBIGUOUS');
      expect(error.details).toMatchObject({ matches: dups.map((node) => ({ id: node.id, name: 'dup', path: node.path })) });
      expect(error.message).toContain(dups[0]!.path);
      fails(await ceso('vm', 'snapshot', 'revert', 'sn1', 'nothing-such', '--json', '--via', via), 'SNAPSHOT_NOT_FOUND');
      fails(await ceso('vm', 'snapshot', 'delete', 'sn1', 'base/nothing', '--yes', '--json', '--via', via), 'SNAPSHOT_NOT_FOUND');
      fails(await ceso('vm', 'snapshot', 'revert', 'sn2', '--json', '--via', via), 'SNAPSHOT_NOT_FOUND');
      fails(await ceso('vm', 'snapshot', 'revert', 'no-such-vm', '--json', '--via', via), 'VM_NOT_FOUND');
    }
    // Both duplicates go by id, over either path; the plan names the id.
    const plan = ok<{ plan: { steps: Step[] } }>(await ceso('vm', 'snapshot', 'delete', 'sn1', dups[0]!.id, '--dry-run', '--json', '--via', 'ssh'));
    expect(plan.plan.steps[0]?.command).toBe(`vim-cmd vmsvc/snapshot.remove ${q(vmId)} ${q(dups[0]!.id)} '0'`);
    ok(await ceso('vm', 'snapshot', 'delete', 'sn1', dups[0]!.id, '--yes', '--json', '--via', 'ssh'));
    ok(await ceso('vm', 'snapshot', 'delete', 'sn1', dups[1]!.id, '--yes', '--json'));
    expect(flat((await list('sn1')).snapshots).map((node) => node.path)).toEqual(['base', 'base/warm', 'base/warm/calm']);
  });

  it('reverts to a memory snapshot of a running VM: back running, from a stopped VM, in few requests; the result is the VM plus the snapshot', async () => {
    ok(await ceso('vm', 'power', 'sn1', 'off', '--json'));
    const plan = ok<{ plan: { steps: Step[] } }>(await ceso('vm', 'snapshot', 'revert', 'sn1', 'base/warm', '--dry-run', '--json'));
    expect(plan.plan.steps).toEqual([expect.objectContaining({ id: 'revert-snapshot', method: 'RevertToSnapshot_Task', arguments: { suppressPowerOn: false } })]);
    expect(plan.plan.steps[0]?.object).toMatch(/^VirtualMachineSnapshot:/);
    const result = await ceso('vm', 'snapshot', 'revert', 'sn1', 'base/warm', '--json', '--log-level', 'debug');
    const reverted = ok<Json & { snapshot: Node; powerState: string; disks: Array<{ file: string }> }>(result);
    expect(reverted).toMatchObject({ name: 'sn1', id: vmId, powerState: 'poweredOn', status: 'running', via: 'api', snapshot: { name: 'warm', path: 'base/warm', memory: true } });
    expect(reverted.snapshots).toBeDefined();
    const requests = (result.stderr.match(/"msg":"soap call"/g) ?? []).length;
    expect(requests, 'a revert: look up, read, revert, its task, the VM afterwards').toBeLessThanOrEqual(6);
    expect((await list('sn1')).current).toBe(reverted.snapshot.id);
  });

  it('reverts to a disk-only snapshot: powered off; --no-power-on keeps a memory snapshot from running; the current one by default', async () => {
    const base = ok<Json & { powerState: string; snapshot: Node }>(await ceso('vm', 'snapshot', 'revert', 'sn1', 'base', '--json', '--via', 'ssh'));
    expect(base).toMatchObject({ via: 'ssh', powerState: 'poweredOff', snapshot: { path: 'base', memory: false } });
    const suppressed = ok<Json & { powerState: string }>(await ceso('vm', 'snapshot', 'revert', 'sn1', 'base/warm', '--no-power-on', '--json'));
    expect(suppressed.powerState).not.toBe('poweredOn');
    const plan = ok<{ plan: { steps: Step[] } }>(await ceso('vm', 'snapshot', 'revert', 'sn1', '--no-power-on', '--dry-run', '--json', '--via', 'ssh'));
    const current = (await list('sn1')).current;
    expect(plan.plan.steps[0]?.command).toBe(`vim-cmd vmsvc/snapshot.revert ${q(vmId)} ${q(current ?? '')} '1'`);
    // The same revert over either path gives the same VM and snapshot.
    const overApi = ok<Json>(await ceso('vm', 'snapshot', 'revert', 'sn1', '--json'));
    const overSsh = ok<Json>(await ceso('vm', 'snapshot', 'revert', 'sn1', '--json', '--via', 'ssh'));
    expect(overApi).toMatchObject({ powerState: 'poweredOn', snapshot: { id: current } });
    // Each revert puts a new delta on top (its number may differ); vm info's own snapshot list and the IP are not what is compared here.
    const comparable = (value: Json): Json => {
      const { snapshots: _snapshots, ip: _ip, disks: _disks, ...rest } = withoutPath(value);
      return rest;
    };
    expect(comparable(overSsh)).toEqual(comparable(overApi));
  });

  it('a host fault in the middle of a delete or a create leaves the VM as it was and says so (both paths)', async () => {
    for (const via of ['api', 'ssh']) {
      const before = await files('sn1');
      const tree = await list('sn1');
      await sim.control('fail', { method: 'RemoveSnapshot_Task', fault: 'FileLocked' });
      const failed = await ceso('vm', 'snapshot', 'delete', 'sn1', 'base/warm/calm', '--yes', '--json', '--via', via);
      expect(failed.code, failed.stdout).toBe(8);
      const { error } = failed.json<ErrorOut>();
      expect(error.message).toContain('FileLocked');
      expect(error.hint).toContain('Nothing was changed');
      expect(await files('sn1')).toEqual(before);
      expect(await list('sn1')).toEqual(tree);

      await sim.control('fail', { method: 'CreateSnapshot_Task', fault: 'FileLocked' });
      const create = await ceso('vm', 'snapshot', 'create', 'sn1', 'never', '--json', '--via', via);
      expect(create.code, create.stdout).toBe(8);
      expect(create.json<ErrorOut>().error.hint).toContain('Nothing was changed');
      expect(await files('sn1')).toEqual(before);
      expect(await list('sn1')).toEqual(tree);
    }
    await sim.control('reset');
  });

  it('removes the snapshot again when a create is interrupted (Ctrl-C) after the host made it', async () => {
    const before = await files('sn1');
    const tree = await list('sn1');
    await sim.control('delay', { method: 'CreateSnapshot_Task', ms: 2500 });
    let sent = false;
    const result = await runCli(['vm', 'snapshot', 'create', 'sn1', 'interrupted', '--json', '--log-level', 'info'], {
      env,
      timeoutMs: 90_000,
      onSpawn: (child) => {
        child.stderr?.on('data', (chunk: Buffer) => {
          if (!sent && chunk.toString().includes('take snapshot')) {
            sent = true;
            setTimeout(() => child.kill('SIGINT'), 500);
          }
        });
      },
    });
    await sim.control('reset');
    expect(sent).toBe(true);
    expect(result.code, result.stdout).toBe(8);
    expect(result.json()).toMatchObject({ error: { code: 'INTERRUPTED', details: { cleanedUp: true, leftovers: [] } } });
    expect(await list('sn1')).toEqual(tree);
    expect(await files('sn1')).toEqual(before);
  });

  it('deletes a snapshot: asks first, plans RemoveSnapshot_Task with consolidation, and its delta and state files leave the datastore', async () => {
    const tree = await list('sn1');
    const calm = flat(tree.snapshots).find((node) => node.path === 'base/warm/calm')!;
    fails(await ceso('vm', 'snapshot', 'delete', 'sn1', 'base/warm/calm', '--json'), 'CONFIRMATION_REQUIRED');
    fails(await ceso('vm', 'snapshot', 'delete', 'sn1', '--json'), 'INVALID_INPUT');
    fails(await ceso('vm', 'snapshot', 'delete', 'sn1', 'calm', '--all', '--json'), 'INVALID_INPUT');
    const plan = ok<{ plan: { steps: Step[] } }>(await ceso('vm', 'snapshot', 'delete', 'sn1', 'calm', '--dry-run', '--json'));
    expect(plan.plan.steps.map((step) => step.id)).toEqual(['remove-snapshot']);
    expect(plan.plan.steps[0]).toMatchObject({ method: 'RemoveSnapshot_Task', arguments: { removeChildren: false, consolidate: true } });
    // The plan names what must leave the datastore: the state file and the delta merged away.
    expect(plan.plan.steps[0]?.description).toMatch(/then check that .*sn1-Snapshot\d+\.vmsn.* are gone from \[datastore1\] sn1$/);
    const before = await files('sn1');
    const deleted = ok<{ deleted: Array<{ id: string }>; removedFiles: string[]; current: string | null; via: string }>(await ceso('vm', 'snapshot', 'delete', 'sn1', 'calm', '--yes', '--json'));
    expect(deleted.deleted).toEqual([{ id: calm.id, name: 'calm', path: 'base/warm/calm' }]);
    const after = await files('sn1');
    const gone = before.filter((name) => !after.includes(name));
    expect(deleted.removedFiles).toEqual(gone.map((name) => `[datastore1] sn1/${name}`));
    expect(gone.some((name) => name.endsWith('.vmsn'))).toBe(true);
    expect(deltas(gone).length).toBeGreaterThan(0);
    // What is left is exactly what the VM and its remaining snapshots use.
    const vm = await info('sn1');
    for (const disk of vm.disks) expect(after).toContain(disk.file.replace('[datastore1] sn1/', ''));
  });

  it('deletes a snapshot with its children over SSH, then --all: no delta and no snapshot file is left', async () => {
    ok(await ceso('vm', 'snapshot', 'create', 'sn1', 'leaf', '--json', '--via', 'ssh'));
    const tree = await list('sn1');
    expect(flat(tree.snapshots).map((node) => node.path)).toEqual(['base', 'base/warm', 'base/warm/leaf']);
    const children = ok<{ deleted: Array<{ path: string }>; via: string }>(await ceso('vm', 'snapshot', 'delete', 'sn1', 'warm', '--children', '--yes', '--json', '--via', 'ssh'));
    expect(children.deleted.map((node) => node.path)).toEqual(['base/warm', 'base/warm/leaf']);
    expect(flat((await list('sn1')).snapshots).map((node) => node.path)).toEqual(['base']);
    expect((await files('sn1')).filter((name) => name.endsWith('.vmem'))).toEqual([]);

    ok(await ceso('vm', 'snapshot', 'create', 'sn1', 'top', '--memory', '--json'));
    const plan = ok<{ plan: { steps: Step[] } }>(await ceso('vm', 'snapshot', 'delete', 'sn1', '--all', '--dry-run', '--json', '--via', 'ssh'));
    expect(plan.plan.steps[0]?.command).toBe(`vim-cmd vmsvc/snapshot.removeall ${q(vmId)}`);
    const all = ok<{ deleted: Array<{ path: string }>; removedFiles: string[]; current: string | null }>(await ceso('vm', 'snapshot', 'delete', 'sn1', '--all', '--yes', '--json', '--via', 'ssh'));
    expect(all.deleted.map((node) => node.path)).toEqual(['base', 'base/top']);
    expect(all.current).toBeNull();
    const left = await files('sn1');
    expect(deltas(left)).toEqual([]);
    expect(left.filter((name) => /\.(vmsn|vmem)$/.test(name))).toEqual([]);
    expect((await info('sn1')).disks.map((disk) => disk.file)).toEqual(['[datastore1] sn1/sn1.vmdk']);
    expect(ok<{ deleted: unknown[] }>(await ceso('vm', 'snapshot', 'delete', 'sn1', '--all', '--json'))).toMatchObject({ deleted: [], removedFiles: [] });
  });

  it('reports exactly what a delete left on the datastore, and fails', async () => {
    ok(await ceso('vm', 'snapshot', 'create', 'sn1', 'one', '--json'));
    // A stray state file no snapshot owns: after --all none may be left.
    const stray = join(sim.datastoreDir, 'sn1', 'sn1-Snapshot99.vmsn');
    writeFileSync(stray, '');
    try {
      for (const via of ['api', 'ssh'] as const) {
        if (via === 'ssh') ok(await ceso('vm', 'snapshot', 'create', 'sn1', 'two', '--json'));
        const error = fails(await ceso('vm', 'snapshot', 'delete', 'sn1', '--all', '--yes', '--json', '--via', via), 'HOST_FAULT');
        expect(error.message).toContain('are still on the datastore: [datastore1] sn1/sn1-Snapshot99.vmsn');
        expect(error.details).toMatchObject({ filesLeft: ['[datastore1] sn1/sn1-Snapshot99.vmsn'], deleted: [{ path: via === 'api' ? 'one' : 'two' }] });
        expect((await list('sn1')).snapshots).toEqual([]);
      }
    } finally {
      rmSync(stray, { force: true });
    }
  });

  it('restricted mode: only managed VMs, delete needs --yes; list sees every VM', async () => {
    const restricted = { ...env, CESO_MODE: 'restricted' };
    const vms = ok<Array<{ name: string; managed: boolean }>>(await runCli(['vm', 'list', '--json'], { env: restricted }));
    const foreign = vms.find((vm) => !vm.managed)!.name;
    const deny = async (args: string[], rule: string): Promise<void> => {
      const result = await runCli([...args, '--json'], { env: restricted });
      expect(result.code, result.stdout).toBe(7);
      expect(result.json<ErrorOut>().error).toMatchObject({ code: 'POLICY_DENIED', details: { rule } });
    };
    await deny(['vm', 'snapshot', 'create', foreign, 'x'], 'managedOnly');
    await deny(['vm', 'snapshot', 'revert', foreign, 'x'], 'managedOnly');
    await deny(['vm', 'snapshot', 'delete', foreign, '--all', '--yes'], 'managedOnly');
    await deny(['vm', 'snapshot', 'delete', 'sn1', '--all'], 'confirmation');
    expect(ok<Tree>(await runCli(['vm', 'snapshot', 'list', foreign, '--json'], { env: restricted })).mode).toBe('restricted');
    const made = ok<{ mode: string }>(await runCli(['vm', 'snapshot', 'create', 'sn1', 'agent', '--json'], { env: restricted }));
    expect(made.mode).toBe('restricted');
    ok(await runCli(['vm', 'snapshot', 'delete', 'sn1', 'agent', '--yes', '--json'], { env: restricted }));
  });

  it('records every snapshot change in the audit log, dry runs included', async () => {
    const records = ok<Array<{ command: string; vm: string | null; vmId: string | null; dryRun: boolean; outcome: string }>>(await runCli(['audit', '--json'], { env }));
    const snapshotRecords = records.filter((record) => record.command.startsWith('vm snapshot'));
    expect(new Set(snapshotRecords.map((record) => record.command))).toEqual(new Set(['vm snapshot create', 'vm snapshot revert', 'vm snapshot delete']));
    expect(snapshotRecords.some((record) => record.dryRun)).toBe(true);
    expect(snapshotRecords.filter((record) => record.outcome === 'success' && !record.dryRun).every((record) => record.vm === 'sn1' && record.vmId === vmId)).toBe(true);
  });
});
