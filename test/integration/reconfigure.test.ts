// `ceso vm reconfigure` as a process, over the API (the simulator over HTTPS) and over SSH (the
// real sshd test bed whose vim-cmd and vmkfstools act on the same inventory): the plan first
// (--dry-run shows the one ReconfigVM_Task, or the exact commands), one task and at most four
// requests with a warm session, `changed` naming what changed, nothing sent when nothing would
// change, the same result on both paths for a powered-off VM, every refusal made before anything
// changes (exit code, code, message, the oracle's view and the datastore's files as they were),
// the host's own refusals mapped to the same codes, a hot-add VM grown while it runs, undo over
// SSH, restricted mode, and every output validated against schema/.
// Needs the built CLI and schema/ (npm run build).
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../../src/core/errors.js';
import { ROOT, requireBuiltCli, runCli, sshConfig, workspace, type CesoWorkspace, type CliResult } from '../support/cli.js';
import { startSimulator, type Simulator } from '../support/simulator.js';
import { startSshServer, type SshServer } from '../support/sshd.js';
import { Typed, asMoRef, type MoRef } from '../../src/esxi/soap/xml.js';
import { VimClient } from '../../src/esxi/vim/client.js';
import { retrieveProperties } from '../../src/esxi/vim/property-collector.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc3Zt0h6m9O6m8yq0Jc2kq9Wm6V8rB3p2wq1cQm2XyZ reconfigure-test';
const q = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

type Json = Record<string, unknown>;
interface Disk {
  label: string | null;
  file: string;
  capacityGB: number | null;
  thin: boolean | null;
}
interface Nic {
  label: string | null;
  network: string | null;
  mac: string | null;
  type: string | null;
}
interface Result {
  name: string;
  id: string;
  powerState: string;
  cpu: number;
  memoryMB: number;
  disks: Disk[];
  nics: Nic[];
  annotation: string | null;
  cpuHotAdd: boolean | null;
  memoryHotAdd: boolean | null;
  changed: string[];
  via: string;
  mode: string;
  durationMs: number;
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
interface Plan {
  dryRun: true;
  plan: { operation: string; target: string; via: string; steps: Step[]; review?: Json; warnings: string[] };
}
interface ErrorOut {
  error: { code: string; message: string; hint?: string; details?: Json };
}
interface OracleVm {
  name: string;
  id: string;
  powerState: string;
  cpu: number;
  memoryMB: number;
  annotation: string;
  disks: Array<{ file: string; capacityKB: number; thin: boolean; controllerKey: number; unitNumber: number }>;
  nics: Array<{ network: string; mac: string }>;
  snapshots: unknown[];
  extraConfig: Record<string, string>;
}

const GB = 1024 * 1024;

/**
 * What a VM is, without what the test bed renumbers when hostd reloads a .vmx (device and
 * controller keys): the SSH path's undo reloads the restored file.
 */
function essentials(vm: OracleVm): Json {
  return {
    name: vm.name,
    powerState: vm.powerState,
    cpu: vm.cpu,
    memoryMB: vm.memoryMB,
    annotation: vm.annotation,
    disks: vm.disks.map(({ file, capacityKB, thin, unitNumber }) => ({ file, capacityKB, thin, unitNumber })).sort((a, b) => a.file.localeCompare(b.file)),
    nics: vm.nics.map(({ network, mac }) => ({ network, mac })),
    snapshots: vm.snapshots,
    extraConfig: vm.extraConfig,
  };
}

describe('vm reconfigure over the API and over SSH', { timeout: 300_000 }, () => {
  let sim: Simulator;
  let sshd: SshServer;
  let ws: CesoWorkspace;
  let env: Record<string, string>;
  let validate: ValidateFunction;
  let validateError: ValidateFunction;
  /** The API path's result of the change the SSH path then makes to another VM. */
  let apiResult: Result;

  const ceso = (args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> => runCli(args, { env: { ...env, ...extraEnv }, timeoutMs: 120_000 });
  const reconfigure = async (name: string, args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> => {
    const result = await ceso(['vm', 'reconfigure', name, ...args, '--json'], extraEnv);
    const output = result.json();
    const check = result.code === 0 ? validate : validateError;
    expect(check(output), `${result.stdout}\n${JSON.stringify(check.errors, null, 2)}`).toBe(true);
    return result;
  };
  const ok = async (name: string, args: string[], extraEnv: Record<string, string> = {}): Promise<Result> => {
    const result = await reconfigure(name, args, extraEnv);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    return result.json<Result>();
  };
  const oracle = (name: string): Promise<OracleVm> => sim.oracle<OracleVm>('vm', name);
  const vmx = (name: string): string => readFileSync(join(sim.datastoreDir, name, `${name}.vmx`), 'utf8');
  const soapCalls = (stderr: string): string[] =>
    stderr
      .split('\n')
      .filter((line) => line.includes('"soap call"'))
      .map((line) => (JSON.parse(line) as { method: string }).method);
  /** A second port group on the host's vSwitch, as an operator adds one (HostNetworkSystem.AddPortGroup). */
  const addPortGroup = async (name: string): Promise<void> => {
    const client = VimClient.create({ host: '127.0.0.1', port: sim.port, user: sim.user, password: sim.password, insecure: false, thumbprint: sim.thumbprintSha256, timeoutMs: 30_000, connectTimeoutMs: 5_000 });
    try {
      const { rootFolder } = await client.connect();
      const step = (traversal: string, type: string, path: string, next: string[] = []): Typed =>
        new Typed('TraversalSpec', { name: traversal, type, path, skip: false, selectSet: next.map((item) => ({ name: item })) });
      const hosts = await retrieveProperties(
        client,
        [{ obj: rootFolder, selectSet: [step('folder', 'Folder', 'childEntity', ['folder', 'hosts', 'computeHosts']), step('hosts', 'Datacenter', 'hostFolder', ['folder']), step('computeHosts', 'ComputeResource', 'host')] }],
        [{ type: 'HostSystem', paths: ['configManager.networkSystem'] }],
      );
      const networkSystem = asMoRef(hosts[0]?.props['configManager.networkSystem']) as MoRef;
      await client.invoke('AddPortGroup', networkSystem, { portgrp: { name, vlanId: 0, vswitchName: 'vSwitch0', policy: {} } });
    } finally {
      client.close();
    }
  };
  const create = async (name: string, args: string[] = []): Promise<void> => {
    const result = await ceso(['vm', 'create', name, '--ssh-key', KEY, '--no-power-on', '--json', ...args]);
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
  };

  /**
   * Runs a reconfigure that must be refused before anything changes: the exit code and error code,
   * the message, and the oracle's view and every file of the datastore as they were.
   */
  const refused = async (name: string, args: string[], code: ErrorCode, message: RegExp, extraEnv: Record<string, string> = {}): Promise<ErrorOut> => {
    const before = { vm: await oracle(name), files: await sim.listFiles(), vmx: vmx(name) };
    const result = await reconfigure(name, args, extraEnv);
    const output = result.json<ErrorOut>();
    expect(output.error.code, result.stdout).toBe(code);
    expect(result.code).toBe(ERROR_CODES[code].exit);
    expect(output.error.message).toMatch(message);
    expect(output.error.hint, 'every refusal says how to fix it').toBeTruthy();
    expect(await oracle(name)).toEqual(before.vm);
    expect(await sim.listFiles()).toEqual(before.files);
    expect(vmx(name)).toBe(before.vmx);
    return output;
  };

  beforeAll(async () => {
    requireBuiltCli();
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, 'schema/vm-reconfigure.json'), 'utf8')) as Json);
    validateError = ajv.compile(JSON.parse(readFileSync(join(ROOT, 'schema/error.json'), 'utf8')) as Json);
    sim = await startSimulator({ mode: 'esx', vms: 1 });
    sshd = await startSshServer({ sim });
    ws = workspace();
    ws.writeConfig(sshConfig(sim, sshd));
    env = { ...ws.env, SIM_PASSWORD: sim.password };
    for (const name of ['rc-api', 'rc-ssh', 'rc-hot', 'rc-on', 'rc-snap', 'rc-undo']) await create(name);
  }, 240_000);

  afterAll(async () => {
    await sshd?.stop();
    await sim?.stop();
    ws?.cleanup();
  });

  it('plans first over the API: one ReconfigVM_Task with the full disk device, no fileOperation on the edit; nothing changes', async () => {
    const before = { vm: await oracle('rc-api'), files: await sim.listFiles() };
    const result = await reconfigure('rc-api', ['--cpu', '3', '--memory-mb', '3072', '--disk', '24', '--add-disk', '2', '--annotation', 'planned', '--cpu-hot-add', 'on', '--dry-run', '--via', 'api']);
    expect(result.code, result.stdout).toBe(0);
    const { plan } = result.json<Plan>();
    expect(plan).toMatchObject({ operation: 'reconfigure', target: 'rc-api', via: 'api' });
    expect(plan.steps).toHaveLength(1);
    const step = plan.steps[0] as Step;
    expect(step).toMatchObject({ kind: 'api', method: 'ReconfigVM_Task', object: `VirtualMachine:${before.vm.id}` });
    const spec = (step.arguments as { spec: Json }).spec;
    expect(spec).toMatchObject({ annotation: 'planned', numCPUs: 3, memoryMB: 3072, cpuHotAddEnabled: true });
    expect(Object.keys(spec)).toEqual(['annotation', 'numCPUs', 'memoryMB', 'cpuHotAddEnabled', 'deviceChange']);
    const [edit, add] = spec.deviceChange as Array<{ operation: string; fileOperation?: string; device: Json }>;
    expect(edit?.operation).toBe('edit');
    expect(edit?.fileOperation).toBeUndefined();
    expect(edit?.device).toMatchObject({ _type: 'VirtualDisk', capacityInKB: 24 * GB, capacityInBytes: 24 * GB * 1024, backing: { fileName: '[datastore1] rc-api/rc-api.vmdk' } });
    expect(edit?.device.deviceInfo).toMatchObject({ _type: 'Description' });
    expect(Object.keys(edit?.device ?? {}).indexOf('capacityInBytes')).toBe(Object.keys(edit?.device ?? {}).indexOf('capacityInKB') + 1);
    expect(add).toMatchObject({
      operation: 'add',
      fileOperation: 'create',
      device: { _type: 'VirtualDisk', unitNumber: 1, capacityInKB: 2 * GB, backing: { fileName: '[datastore1] rc-api/rc-api_1.vmdk', thinProvisioned: true } },
    });
    expect(plan.review?.changes).toHaveLength(6);
    expect(await oracle('rc-api')).toEqual(before.vm);
    expect(await sim.listFiles()).toEqual(before.files);
  });

  it('plans first over SSH: the exact commands, every value single-quoted; nothing changes', async () => {
    const before = { vm: await oracle('rc-ssh'), files: await sim.listFiles() };
    const result = await reconfigure('rc-ssh', ['--cpu', '3', '--disk', '24', '--add-disk', '2', '--annotation', "it's $(id)", '--dry-run', '--via', 'ssh']);
    expect(result.code, result.stdout).toBe(0);
    const { plan } = result.json<Plan>();
    expect(plan.via).toBe('ssh');
    expect(plan.steps.map((step) => step.id)).toEqual(['backup-vmx', 'create-disk-0', 'grow-disk', 'write-vmx', 'reload-vm', 'verify', 'remove-backup']);
    const dir = `${sim.volumesRoot}/datastore1/rc-ssh`;
    const commands = Object.fromEntries(plan.steps.map((step) => [step.id, step.command]));
    expect(commands['backup-vmx']).toBe(`cp -p ${q(`${dir}/rc-ssh.vmx`)} ${q(`${dir}/rc-ssh.vmx.ceso-reconfigure`)}`);
    expect(commands['create-disk-0']).toBe(`vmkfstools -c 2G -d thin -a pvscsi ${q(`${dir}/rc-ssh_1.vmdk`)}`);
    expect(commands['grow-disk']).toBe(`vmkfstools -X 24G ${q(`${dir}/rc-ssh.vmdk`)}`);
    expect(commands['write-vmx']).toBe(`cat > ${q(`${dir}/rc-ssh.vmx`)}`);
    expect(commands['reload-vm']).toBe(`vim-cmd vmsvc/reload ${q(before.vm.id)}`);
    // The annotation goes in the .vmx on stdin, never on a command line.
    expect(plan.steps.some((step) => step.command?.includes('$(id)'))).toBe(false);
    expect(plan.review?.vmx).toEqual({
      numvcpus: '3',
      annotation: "it's $(id)",
      'scsi0:1.present': 'TRUE',
      'scsi0:1.fileName': 'rc-ssh_1.vmdk',
      'scsi0:1.deviceType': 'scsi-hardDisk',
    });
    expect(await oracle('rc-ssh')).toEqual(before.vm);
    expect(await sim.listFiles()).toEqual(before.files);
  });

  it('changes a powered-off VM in one task and at most 4 requests with a warm session; the oracle sees it', async () => {
    const run = await reconfigure('rc-api', ['--cpu', '4', '--memory', '3', '--disk', '24', '--add-disk', '2', '--annotation', 'note: x', '--cpu-hot-add', 'on', '--via', 'api', '--log-level', 'debug']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const calls = soapCalls(run.stderr);
    expect(calls.length, calls.join(', ')).toBeLessThanOrEqual(4);
    expect(calls.filter((method) => method === 'ReconfigVM_Task')).toHaveLength(1);
    expect(calls).not.toContain('Login');
    const result = run.json<Result>();
    apiResult = result;
    expect(result).toMatchObject({ name: 'rc-api', via: 'api', mode: 'standard', cpu: 4, memoryMB: 3072, annotation: 'note: x', cpuHotAdd: true, powerState: 'poweredOff' });
    const grown = result.disks.findIndex((disk) => disk.file === '[datastore1] rc-api/rc-api.vmdk');
    const added = result.disks.findIndex((disk) => disk.file === '[datastore1] rc-api/rc-api_1.vmdk');
    expect(result.disks[grown]).toMatchObject({ capacityGB: 24 });
    expect(result.disks[added]).toMatchObject({ capacityGB: 2, thin: true });
    expect(result.changed).toEqual(['cpu', 'memoryMB', `disks[${grown}].capacityGB`, `disks[${added}]`, 'annotation', 'cpuHotAdd']);
    const seen = await oracle('rc-api');
    expect(seen).toMatchObject({ cpu: 4, memoryMB: 3072, annotation: 'note: x' });
    expect(seen.disks).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ file: '[datastore1] rc-api/rc-api.vmdk', capacityKB: 24 * GB }),
        expect.objectContaining({ file: '[datastore1] rc-api/rc-api_1.vmdk', capacityKB: 2 * GB, thin: true, unitNumber: 1 }),
      ]),
    );
    expect(await sim.listFiles()).toEqual(expect.arrayContaining(['rc-api/rc-api_1.vmdk', 'rc-api/rc-api_1-flat.vmdk']));
    // vm info agrees with the result (which is the VM as vm info shows it).
    const info = (await ceso(['vm', 'info', 'rc-api', '--json'])).json<Json>();
    const { cpuHotAdd: _c, memoryHotAdd: _m, changed: _changed, durationMs: _d, ...shown } = result;
    expect(info).toEqual(shown);
  });

  it('asking for what the VM has changes nothing: changed [] and no task sent, on both paths', async () => {
    const api = await reconfigure('rc-api', ['--cpu', '4', '--memory-mb', '3072', '--disk', '24', '--annotation', 'note: x', '--cpu-hot-add', 'on', '--via', 'api', '--log-level', 'debug']);
    expect(api.code, api.stdout).toBe(0);
    expect(api.json<Result>()).toMatchObject({ changed: [], cpu: 4 });
    expect(soapCalls(api.stderr)).not.toContain('ReconfigVM_Task');
    expect(soapCalls(api.stderr).length).toBeLessThanOrEqual(2);
    // With --id the VM is read by its reference at once: no name lookup.
    const { id } = await oracle('rc-api');
    const byId = await reconfigure('rc-api', ['--id', id, '--annotation', 'note: x', '--via', 'api', '--log-level', 'debug']);
    expect(byId.json<Result>()).toMatchObject({ id, changed: [] });
    expect(soapCalls(byId.stderr)).toEqual(['RetrievePropertiesEx']);
    await refused('rc-api', ['--id', 'vm-999999', '--cpu', '2', '--via', 'api'], 'VM_NOT_FOUND', /no VM has id "vm-999999" and name "rc-api"/);
    await refused('rc-api', ['--id', 'vm-999999', '--cpu', '2', '--via', 'ssh'], 'VM_NOT_FOUND', /no VM has id "vm-999999" and name "rc-api"/);
    const before = await sim.listFiles();
    const ssh = await ok('rc-api', ['--cpu', '4', '--disk', '24', '--via', 'ssh']);
    expect(ssh).toMatchObject({ changed: [], via: 'ssh' });
    expect(await sim.listFiles()).toEqual(before);
  });

  it('gives the same result over SSH as over the API for a powered-off VM, and the API sees the change', async () => {
    const args = ['--cpu', '4', '--memory', '3', '--disk', '24', '--add-disk', '2', '--annotation', 'note: x', '--cpu-hot-add', 'on'];
    const overSsh = await ok('rc-ssh', [...args, '--via', 'ssh']);
    const overApi = apiResult;
    expect(overSsh.via).toBe('ssh');
    const shape = (result: Result, name: string): Json => ({
      cpu: result.cpu,
      memoryMB: result.memoryMB,
      powerState: result.powerState,
      annotation: result.annotation,
      cpuHotAdd: result.cpuHotAdd,
      memoryHotAdd: result.memoryHotAdd,
      changed: result.changed.map((path) => path.replace(/\[\d+\]/, '[i]')),
      disks: result.disks.map((disk) => ({ ...disk, label: null, file: disk.file.replaceAll(name, 'VM') })).sort((a, b) => a.file.localeCompare(b.file)),
      nics: result.nics.map((nic) => ({ network: nic.network, type: nic.type })),
    });
    expect(shape(overSsh, 'rc-ssh')).toEqual(shape(overApi, 'rc-api'));
    const grown = overSsh.disks.findIndex((disk) => disk.file.endsWith('rc-ssh.vmdk'));
    const added = overSsh.disks.findIndex((disk) => disk.file.endsWith('rc-ssh_1.vmdk'));
    expect(overSsh.changed).toEqual(['cpu', 'memoryMB', `disks[${grown}].capacityGB`, `disks[${added}]`, 'annotation', 'cpuHotAdd']);
    // The API reads what SSH changed; the backup copy is gone.
    const info = (await ceso(['vm', 'info', 'rc-ssh', '--json', '--via', 'api'])).json<Result>();
    expect(info).toMatchObject({ cpu: 4, memoryMB: 3072, annotation: 'note: x' });
    expect(info.disks.map((disk) => [disk.file, disk.capacityGB]).sort()).toEqual([
      ['[datastore1] rc-ssh/rc-ssh.vmdk', 24],
      ['[datastore1] rc-ssh/rc-ssh_1.vmdk', 2],
    ]);
    expect(await sim.listFiles()).not.toContain('rc-ssh/rc-ssh.vmx.ceso-reconfigure');
    expect(vmx('rc-ssh')).toMatch(/^vcpu\.hotadd = "TRUE"$/m);
    // And back over SSH: what the API path would answer now (a new result is the VM as it is).
    expect(await ok('rc-ssh', ['--cpu', '4', '--via', 'ssh'])).toMatchObject({ changed: [], cpuHotAdd: true });
  });

  it('moves a NIC to another port group on both paths; an unknown port group is NETWORK_NOT_FOUND (exit 3), nothing changed', async () => {
    await refused('rc-api', ['--network', 'no-such-pg', '--via', 'api'], 'NETWORK_NOT_FOUND', /network "no-such-pg" does not exist/);
    const ssh = await ceso(['vm', 'reconfigure', 'rc-ssh', '--network', 'no-such-pg', '--via', 'ssh', '--json']);
    // Over SSH without esxcli the port group is checked by reading the VM back: the change is undone.
    expect(ssh.code, ssh.stdout).toBe(3);
    expect(ssh.json<ErrorOut>().error).toMatchObject({ code: 'NETWORK_NOT_FOUND', details: { cleanedUp: true, leftovers: [] } });
    expect((await oracle('rc-ssh')).nics[0]?.network).toBe('VM Network');
    expect(await sim.listFiles()).not.toContain('rc-ssh/rc-ssh.vmx.ceso-reconfigure');
    const same = await ok('rc-api', ['--network', 'VM Network', '--nic', '1', '--via', 'api']);
    expect(same.changed).toEqual([]);

    await addPortGroup('Lab Net (2)');
    for (const [name, via] of [['rc-api', 'api'], ['rc-ssh', 'ssh']] as const) {
      const mac = (await oracle(name)).nics[0]?.mac;
      const moved = await ok(name, ['--network', 'Lab Net (2)', '--via', via]);
      expect(moved).toMatchObject({ changed: ['nics[0].network'], nics: [{ network: 'Lab Net (2)', mac }] });
      expect((await oracle(name)).nics).toEqual([expect.objectContaining({ network: 'Lab Net (2)', mac })]);
      expect((await ok(name, ['--network', 'VM Network', '--nic', '1', '--via', via])).changed).toEqual(['nics[0].network']);
    }
    await refused('rc-api', ['--network', 'VM Network', '--nic', '2', '--via', 'api'], 'NOT_FOUND', /has no NIC 2/);
  });

  it('refuses a shrink, a malformed value and too little space before anything changes, on both paths', async () => {
    for (const via of ['api', 'ssh']) {
      const shrink = await refused('rc-api', ['--disk', '10', '--via', via], 'CONFLICT', /24 GB: --disk 10 would shrink it, and a disk cannot shrink/);
      expect(shrink.error.details).toMatchObject({ reason: 'disk-shrink' });
      await refused('rc-api', ['--memory-mb', '3001', '--via', via], 'CONFLICT', /--memory-mb 3001: not a multiple of 4 MB/);
      await refused('rc-api', ['--memory', '0.3', '--via', via], 'CONFLICT', /not a multiple of 4 MB/);
      await refused('rc-api', ['--cpu', '0', '--via', via], 'INVALID_INPUT', /--cpu 0/);
      await refused('rc-api', ['--disk', 'big', '--via', via], 'INVALID_INPUT', /--disk big/);
      await refused('rc-api', ['--via', via], 'INVALID_INPUT', /nothing to change/);
      await refused('rc-api', ['--disk', '30', '--disk-key', '1', '--via', via], 'NOT_FOUND', /has no disk with key 1/);
      const space = await refused('rc-api', ['--add-disk', '950', '--via', via], 'INSUFFICIENT_SPACE', /datastore "datastore1" has [\d.]+ GB free/);
      expect(space.error.details).toMatchObject({ datastore: 'datastore1' });
    }
    await sim.control('datastore', { freeGB: 5 });
    try {
      await refused('rc-api', ['--disk', '40', '--via', 'api'], 'INSUFFICIENT_SPACE', /5 GB free; the disk space asked for needs 16 GB/);
      await refused('rc-api', ['--disk', '40', '--via', 'ssh'], 'INSUFFICIENT_SPACE', /5 GB free/);
    } finally {
      await sim.control('reset');
    }
  });

  it('refuses to grow a disk of a VM with snapshots, or a child (linked) disk, on both paths', async () => {
    const { id } = await oracle('rc-snap');
    const snap = await sshd.exec(`vim-cmd vmsvc/snapshot.create ${q(id)} before-grow`);
    expect(snap.code, snap.stdout + snap.stderr).toBe(0);
    for (const via of ['api', 'ssh']) {
      const out = await refused('rc-snap', ['--disk', '30', '--via', via], 'CONFLICT', /"rc-snap" has 1 snapshot\(s\): disk 1 .* cannot grow/);
      expect(out.error.details).toMatchObject({ reason: 'disk-has-snapshots' });
    }
    // Adding a disk to a VM with snapshots is fine: only growing is refused.
    expect((await ok('rc-snap', ['--add-disk', '1', '--via', 'api'])).changed).toEqual([expect.stringMatching(/^disks\[\d\]$/)]);

    // A linked clone made by hand: a delta disk whose descriptor names its parent.
    const dir = `${sim.volumesRoot}/datastore1/rc-linked`;
    const template = `${sim.volumesRoot}/datastore1/ubuntu-22.04-template/ubuntu-22.04-template.vmdk`;
    const base = await sshd.exec(`mkdir ${q(dir)} && vmkfstools -i ${q(template)} ${q(`${dir}/base.vmdk`)} -d thin && grep -E '^(CID|RW)' ${q(`${dir}/base.vmdk`)}`);
    expect(base.code, base.stderr).toBe(0);
    const cid = /^CID=(\w+)/m.exec(base.stdout)?.[1] ?? 'fffffffe';
    const sectors = /^RW (\d+)/m.exec(base.stdout)?.[1] ?? '0';
    const delta = [
      '# Disk DescriptorFile',
      'version=1',
      'encoding="UTF-8"',
      'CID=1234abcd',
      `parentCID=${cid}`,
      'createType="seSparse"',
      'parentFileNameHint="base.vmdk"',
      '',
      '# Extent description',
      `RW ${sectors} SESPARSE "rc-linked-000001-sesparse.vmdk"`,
      '',
      '# The Disk Data Base',
      '#DDB',
      '',
      'ddb.thinProvisioned = "1"',
      '',
    ].join('\n');
    expect((await sshd.exec(`cat > ${q(`${dir}/rc-linked-000001.vmdk`)} && truncate -s 4M ${q(`${dir}/rc-linked-000001-sesparse.vmdk`)}`, { input: delta })).code).toBe(0);
    const linkedVmx = [
      '.encoding = "UTF-8"',
      'config.version = "8"',
      'virtualHW.version = "19"',
      'displayName = "rc-linked"',
      'guestOS = "ubuntu-64"',
      'numvcpus = "1"',
      'memSize = "512"',
      'scsi0.present = "TRUE"',
      'scsi0.virtualDev = "pvscsi"',
      'scsi0:0.present = "TRUE"',
      'scsi0:0.fileName = "rc-linked-000001.vmdk"',
      'ethernet0.present = "TRUE"',
      'ethernet0.virtualDev = "vmxnet3"',
      'ethernet0.networkName = "VM Network"',
      'ethernet0.addressType = "generated"',
      'uuid.action = "create"',
      '',
    ].join('\n');
    expect((await sshd.exec(`cat > ${q(`${dir}/rc-linked.vmx`)}`, { input: linkedVmx })).code).toBe(0);
    const registered = await sshd.exec(`vim-cmd solo/registervm ${q(`${dir}/rc-linked.vmx`)}`);
    expect(registered.code, registered.stdout).toBe(0);
    for (const via of ['api', 'ssh']) {
      const out = await refused('rc-linked', ['--disk', '30', '--via', via], 'CONFLICT', /is a child \(linked\) disk of .*base\.vmdk: a disk with a parent cannot grow/);
      expect(out.error.details).toMatchObject({ reason: 'disk-has-parent' });
    }
  });

  it('grows a hot-add VM while it runs over the API; refuses what a running VM cannot take, on both paths', async () => {
    expect((await ok('rc-hot', ['--cpu-hot-add', 'on', '--memory-hot-add', 'on', '--via', 'api'])).changed).toEqual(['cpuHotAdd', 'memoryHotAdd']);
    expect((await ceso(['vm', 'power', 'rc-hot', 'on', '--wait', 'ready', '--json'])).code).toBe(0);
    const grown = await ok('rc-hot', ['--cpu', '4', '--memory', '4', '--disk', '30', '--add-disk', '1', '--via', 'api']);
    expect(grown).toMatchObject({ powerState: 'poweredOn', cpu: 4, memoryMB: 4096, cpuHotAdd: true, memoryHotAdd: true });
    expect(grown.changed).toEqual(['cpu', 'memoryMB', expect.stringMatching(/^disks\[\d\]\.capacityGB$/), expect.stringMatching(/^disks\[\d\]$/)]);
    expect(await oracle('rc-hot')).toMatchObject({ powerState: 'poweredOn', cpu: 4, memoryMB: 4096 });

    for (const via of ['api', 'ssh']) {
      await refused('rc-hot', ['--cpu', '2', '--via', via], 'INVALID_POWER_STATE', /is powered on: CPUs cannot be removed while it runs/);
      await refused('rc-hot', ['--memory', '2', '--via', via], 'INVALID_POWER_STATE', /memory cannot be removed while it runs/);
      await refused('rc-hot', ['--cpu-hot-add', 'off', '--via', via], 'INVALID_POWER_STATE', /--cpu-hot-add can only change while it is powered off/);
      await refused('rc-hot', ['--disk', '20', '--via', via], 'CONFLICT', /would shrink it/);
    }
    // A running VM over SSH: what needs the API is NOT_SUPPORTED, naming the API path.
    const overSsh = await refused('rc-hot', ['--cpu', '6', '--via', 'ssh'], 'NOT_SUPPORTED', /over SSH ceso reconfigures only powered-off VMs/);
    expect(overSsh.error.hint).toMatch(/--via api/);

    expect((await ceso(['vm', 'power', 'rc-on', 'on', '--wait', 'ready', '--json'])).code).toBe(0);
    for (const via of ['api', 'ssh']) {
      const cpu = await refused('rc-on', ['--cpu', '4', '--via', via], 'INVALID_POWER_STATE', /is powered on: CPU hot add is off, so --cpu 4 \(it has 2\) needs it powered off/);
      expect(cpu.error.details).toMatchObject({ reason: 'cpu-hot-add-disabled' });
      await refused('rc-on', ['--memory', '4', '--via', via], 'INVALID_POWER_STATE', /memory hot add is off/);
      await refused('rc-on', ['--memory-hot-add', 'on', '--via', via], 'INVALID_POWER_STATE', /can only change while it is powered off/);
    }
  });

  it('maps the host’s own refusals to the same codes, with the reason and the fix, nothing changed', async () => {
    const cases: Array<{ fault: string; args: string[]; code: ErrorCode; message: RegExp }> = [
      { fault: 'InvalidDeviceOperation', args: ['--disk', '40'], code: 'CONFLICT', message: /the host refused the disk change of "rc-api"/ },
      { fault: 'NotSupported', args: ['--disk', '40'], code: 'CONFLICT', message: /the host does not support this disk change/ },
      { fault: 'CpuHotPlugNotSupported', args: ['--cpu', '6'], code: 'INVALID_POWER_STATE', message: /the host refused to change the CPUs of "rc-api"/ },
      { fault: 'MemoryHotPlugNotSupported', args: ['--memory', '6'], code: 'INVALID_POWER_STATE', message: /the host refused to change the memory of "rc-api"/ },
      { fault: 'InvalidPowerState', args: ['--cpu-hot-add', 'off'], code: 'INVALID_POWER_STATE', message: /the host refused the change in the power state/ },
      { fault: 'GenericVmConfigFault', args: ['--memory', '6'], code: 'CONFLICT', message: /the host refused the configuration of "rc-api"/ },
    ];
    for (const { fault, args, code, message } of cases) {
      await sim.control('fail', { method: 'ReconfigVM_Task', fault, vm: 'rc-api' });
      try {
        const out = await refused('rc-api', [...args, '--via', 'api'], code, message);
        expect(out.error.details).toMatchObject({ fault });
      } finally {
        await sim.control('reset');
      }
    }
  });

  it('over SSH undoes what it made when a later step fails: the new disk removed, the .vmx restored', async () => {
    // Once through hostd's reload first, so what it adds when it reads a .vmx is there before.
    await ok('rc-undo', ['--annotation', 'reloaded once', '--via', 'ssh']);
    const before = { vm: await oracle('rc-undo'), files: await sim.listFiles(), vmx: vmx('rc-undo') };
    await sim.control('fail', { method: 'Reload', fault: 'InvalidState', vm: 'rc-undo', immediate: true });
    let result: CliResult;
    try {
      result = await ceso(['vm', 'reconfigure', 'rc-undo', '--cpu', '3', '--add-disk', '1', '--via', 'ssh', '--json']);
    } finally {
      await sim.control('reset');
    }
    expect(result.code, result.stdout).toBe(4);
    expect(result.json<ErrorOut>().error).toMatchObject({ code: 'CONFLICT', details: { cleanedUp: true, leftovers: [] } });
    expect(essentials(await oracle('rc-undo'))).toEqual(essentials(before.vm));
    expect(await sim.listFiles()).toEqual(before.files);
    expect(vmx('rc-undo')).toBe(before.vmx);
  });

  it('restricted mode: managed VMs only, the limits apply to the new sizes, within the same requests', async () => {
    const restricted = { CESO_MODE: 'restricted' };
    const foreign = await refused('vm-0001', ['--cpu', '2', '--via', 'api'], 'POLICY_DENIED', /only lets ceso reconfigure VMs it manages/, restricted);
    expect(foreign.error.details).toMatchObject({ rule: 'managedOnly' });
    await refused('vm-0001', ['--cpu', '2', '--via', 'ssh'], 'POLICY_DENIED', /VMs it manages/, restricted);
    const limits = workspace();
    try {
      limits.writeConfig(`${sshConfig(sim, sshd)}security: {mode: restricted, limits: {cpu: 4, memoryGB: 4, diskGB: 30}}\n`);
      const limited = { CESO_HOME: ws.home, CESO_CONFIG: limits.configPath };
      for (const [args, rule] of [
        [['--cpu', '8'], 'limits.cpu'],
        [['--memory', '8'], 'limits.memoryGB'],
        [['--disk', '40'], 'limits.diskGB'],
        [['--add-disk', '31'], 'limits.diskGB'],
      ] as const) {
        const out = await refused('rc-api', [...args, '--via', 'api'], 'POLICY_DENIED', /restricted mode/, limited);
        expect(out.error.details).toMatchObject({ rule });
      }
      const run = await reconfigure('rc-api', ['--cpu', '3', '--via', 'api', '--log-level', 'debug'], limited);
      expect(run.code, run.stdout).toBe(0);
      expect(run.json<Result>()).toMatchObject({ mode: 'restricted', changed: ['cpu'] });
      expect(soapCalls(run.stderr).length).toBeLessThanOrEqual(4);
    } finally {
      limits.cleanup();
    }
  });

  it('is audited, and holds the VM’s lock', async () => {
    const lines = readFileSync(join(ws.home, 'audit.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Json);
    const records = lines.filter((record) => record.command === 'vm reconfigure');
    expect(records.some((record) => record.outcome === 'success' && record.dryRun === false && record.vm === 'rc-api' && record.via === 'api')).toBe(true);
    expect(records.some((record) => record.outcome === 'error' && record.errorCode === 'CONFLICT')).toBe(true);
    expect(records.some((record) => record.dryRun === true && record.via === 'ssh')).toBe(true);
    expect(existsSync(join(ws.home, 'locks'))).toBe(true);
  });
});
