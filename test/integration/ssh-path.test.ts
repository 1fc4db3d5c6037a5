// Every `vm` command over SSH (`--via ssh`), through a real OpenSSH server whose PATH holds the
// test bed's ESXi shell (vim-cmd, vmkfstools) acting on the same inventory the simulator serves
// over the API: results match the API path's for the same VMs, VMs made over SSH are seen by the
// oracle, hostile names are refused or passed literally, and host keys are checked.
// Needs the built CLI (npm run build).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuiltCli, runCli, workspace, type CesoWorkspace, type CliResult, sshConfig, withoutPath } from '../support/cli.js';
import { startSimulator, type Simulator } from '../support/simulator.js';
import { startSshServer, type SshServer } from '../support/sshd.js';
import { encodeVmxValue } from '../../src/ssh/vmx.js';

const q = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;
const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc3Zt0h6m9O6m8yq0Jc2kq9Wm6V8rB3p2wq1cQm2XyZ ceso-test';

interface OracleVm {
  name: string;
  id: string;
  uuid: string;
  powerState: string;
  cpu: number;
  memoryMB: number;
  vmxPath: string;
  annotation: string;
  extraConfig: Record<string, string>;
  disks: Array<{ file: string; capacityKB: number; thin: boolean }>;
  nics: Array<{ network: string; mac: string; type: string; addressType: string }>;
  guestinfo: { metadata: { parsed: Record<string, unknown> | null } | null } | null;
}

type Json = Record<string, unknown>;

describe('vm commands over SSH (--via ssh)', { timeout: 180_000 }, () => {
  let sim: Simulator;
  let sshd: SshServer;
  let ws: CesoWorkspace;
  let env: Record<string, string>;
  let marker: string;
  /** A registered VM whose name and folder would break naive quoting. */
  let odd: { id: string; name: string; folder: string };

  const ceso = (...args: string[]): Promise<CliResult> => runCli(args, { env, timeoutMs: 90_000 });
  const ok = (result: CliResult): CliResult => {
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    return result;
  };

  beforeAll(async () => {
    requireBuiltCli();
    sim = await startSimulator({ mode: 'esx', vms: 3 });
    sshd = await startSshServer({ sim });
    ws = workspace();
    ws.writeConfig(sshConfig(sim, sshd));
    env = { ...ws.env, SIM_PASSWORD: sim.password };
    marker = join(ws.home, 'pwned');

    // A VM registered by hand, as another tool would: a name with quotes, $(...), backticks,
    // brackets and parentheses, in a folder that holds quotes, $(...) and spaces.
    const folder = "it's $(id) `id` [odd] (1)";
    const name = `x'; touch ${marker}; ' $(touch ${marker}) [odd] (1)`;
    const dir = `${sim.volumesRoot}/datastore1/${folder}`;
    const template = `${sim.volumesRoot}/datastore1/ubuntu-22.04-template/ubuntu-22.04-template.vmdk`;
    const copy = await sshd.exec(`mkdir ${q(dir)} && vmkfstools -i ${q(template)} ${q(`${dir}/disk.vmdk`)} -d thin`);
    expect(copy.code, copy.stderr).toBe(0);
    const vmx = [
      '.encoding = "UTF-8"',
      'config.version = "8"',
      'virtualHW.version = "19"',
      `displayName = "${encodeVmxValue(name)}"`,
      'guestOS = "ubuntu-64"',
      'numvcpus = "1"',
      'memSize = "512"',
      'scsi0.present = "TRUE"',
      'scsi0.virtualDev = "pvscsi"',
      'scsi0:0.present = "TRUE"',
      'scsi0:0.fileName = "disk.vmdk"',
      'ethernet0.present = "TRUE"',
      'ethernet0.virtualDev = "vmxnet3"',
      'ethernet0.networkName = "VM Network"',
      'ethernet0.addressType = "generated"',
      'annotation = "first line|0Asecond line: 3   [x] y.vmx"',
      'uuid.action = "create"',
      '',
    ].join('\n');
    const write = await sshd.exec(`cat > ${q(`${dir}/odd.vmx`)}`, { input: vmx });
    expect(write.code, write.stderr).toBe(0);
    const register = await sshd.exec(`vim-cmd solo/registervm ${q(`${dir}/odd.vmx`)}`);
    expect(register.code, register.stdout).toBe(0);
    odd = { id: register.stdout.trim(), name, folder };
  }, 120_000);

  afterAll(async () => {
    await sshd?.stop();
    await sim?.stop();
    ws?.cleanup();
  });

  it('lists the same VMs with the same fields as the API path, names raw, unknown values null', async () => {
    const overSsh = ok(await ceso('vm', 'list', '--json', '--via', 'ssh')).json<Json[]>();
    const overApi = ok(await ceso('vm', 'list', '--json', '--via', 'api')).json<Json[]>();
    expect(overSsh.every((vm) => vm.via === 'ssh')).toBe(true);
    expect(overSsh.map(withoutPath)).toEqual(overApi.map(withoutPath));
    expect(overSsh.find((vm) => vm.id === odd.id)).toMatchObject({ name: odd.name, ip: null, managed: false, expiresAt: null });
    expect(existsSync(marker)).toBe(false);
  });

  it('uses one SSH connection and one exec for vm list', async () => {
    const result = ok(await ceso('vm', 'list', '--json', '--via', 'ssh', '--log-level', 'debug'));
    expect(result.stderr.match(/"msg":"ssh connected"/g)).toHaveLength(1);
    expect((result.stderr.match(/"msg":"ssh exec"/g) ?? []).length).toBeLessThanOrEqual(2);
  });

  it('shows every VM as the API path does (vm info), the odd one included', async () => {
    const list = ok(await ceso('vm', 'list', '--json', '--via', 'api')).json<Json[]>();
    for (const vm of list) {
      const overSsh = ok(await ceso('vm', 'info', String(vm.name), '--id', String(vm.id), '--json', '--via', 'ssh'));
      const overApi = ok(await ceso('vm', 'info', String(vm.name), '--id', String(vm.id), '--json', '--via', 'api'));
      expect(overSsh.json<Json>().via).toBe('ssh');
      expect(withoutPath(overSsh.json<Json>())).toEqual(withoutPath(overApi.json<Json>()));
    }
    const info = ok(await ceso('vm', 'info', odd.name, '--json', '--via', 'ssh')).json<Json>();
    expect(info).toMatchObject({ id: odd.id, annotation: 'first line\nsecond line: 3   [x] y.vmx', vmxPath: `[datastore1] ${odd.folder}/odd.vmx` });
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses hostile values before any command, or passes them literally, and runs nothing', async () => {
    const created = await ceso('vm', 'create', `x'; touch ${marker}; '`, '--via', 'ssh', '--json');
    expect(created.code).toBe(2);
    expect(created.json<{ error: { code: string } }>().error.code).toBe('INVALID_INPUT');
    for (const hostile of [`$(touch ${marker})`, `\`touch ${marker}\``, `x'; touch ${marker}; '`]) {
      const info = await ceso('vm', 'info', hostile, '--via', 'ssh', '--json');
      expect(info.code).toBe(3);
      expect(info.json<{ error: { code: string } }>().error.code).toBe('VM_NOT_FOUND');
      const byId = await ceso('vm', 'power', 'web', 'on', '--id', hostile, '--via', 'ssh', '--json');
      expect(byId.json<{ error: { code: string } }>().error.code).toBe('VM_NOT_FOUND');
      const datastore = await ceso('vm', 'create', 'web-ds', '--datastore', hostile, '--ssh-key', SSH_KEY, '--via', 'ssh', '--json');
      expect(datastore.json<{ error: { code: string } }>().error.code).toBe('DATASTORE_NOT_FOUND');
      const network = await ceso('vm', 'create', 'web-net', '--network', hostile, '--ssh-key', SSH_KEY, '--via', 'ssh', '--dry-run', '--json');
      expect(network.code, network.stdout).toBe(0);
      const steps = network.json<{ plan: { review: { vmx: Record<string, string> } } }>().plan.review.vmx;
      expect(steps['ethernet0.networkName']).toBe(hostile);
    }
    expect(existsSync(marker)).toBe(false);
    expect(await sim.oracle('vm', 'web-ds')).toBeNull();
  });

  it('plans a create with the exact commands (--dry-run) and changes nothing', async () => {
    const before = await sim.listFiles();
    const result = ok(await ceso('vm', 'create', 'web-dry', '--ssh-key', SSH_KEY, '--via', 'ssh', '--dry-run', '--json'));
    const plan = result.json<{ dryRun: boolean; plan: { via: string; steps: Array<{ id: string; kind: string; command: string }> } }>().plan;
    expect(plan.via).toBe('ssh');
    expect(plan.steps.map((step) => step.id)).toEqual(['make-directory', 'copy-disk-0', 'grow-disk', 'write-vmx', 'register-vm', 'power-on']);
    expect(plan.steps.every((step) => step.kind === 'ssh')).toBe(true);
    expect(plan.steps[1]?.command).toBe(
      `vmkfstools -i ${q(`${sim.volumesRoot}/datastore1/ubuntu-22.04-template/ubuntu-22.04-template.vmdk`)} ${q(`${sim.volumesRoot}/datastore1/web-dry/web-dry.vmdk`)} -d thin`,
    );
    expect(await sim.listFiles()).toEqual(before);
    expect(await sim.oracle('vm', 'web-dry')).toBeNull();
  });

  it('creates a VM that the API and the oracle see, with cloud-init keyed to the MAC and instance-id it chose', async () => {
    const created = ok(await ceso('vm', 'create', 'web-ssh', '--ip', '10.0.0.5/24', '--gateway', '10.0.0.1', '--ssh-key', SSH_KEY, '--cpu', '2', '--memory', '1', '--disk', '24', '--ttl', '2h', '--via', 'ssh', '--json')).json<Json>();
    expect(created).toMatchObject({ name: 'web-ssh', via: 'ssh', status: 'running', cpu: 2, memoryMB: 1024, managed: true, vmxPath: '[datastore1] web-ssh/web-ssh.vmx' });
    const oracle = await sim.oracle<OracleVm>('vm', 'web-ssh');
    expect(oracle).toMatchObject({ id: created.id, uuid: created.uuid, powerState: 'poweredOn', cpu: 2, memoryMB: 1024 });
    expect(oracle.disks).toEqual([expect.objectContaining({ file: '[datastore1] web-ssh/web-ssh.vmdk', capacityKB: 24 * 1024 * 1024, thin: true })]);
    expect(oracle.nics).toHaveLength(1);
    const mac = oracle.nics[0]!.mac;
    expect(mac).toMatch(/^00:50:56:[0-3][0-9a-f]:[0-9a-f]{2}:[0-9a-f]{2}$/);
    expect(oracle.nics[0]).toMatchObject({ network: 'VM Network', addressType: 'manual' });
    expect(oracle.extraConfig).toMatchObject({ 'ceso.managed': 'true', 'ceso.template': 'ubuntu-22.04-template' });
    expect(oracle.extraConfig['ceso.expiresAt']).toBe(created.expiresAt);
    const metadata = oracle.guestinfo?.metadata?.parsed as { 'instance-id': string; 'local-hostname': string; network: { ethernets: { nic0: { match: { macaddress: string } } } } };
    expect(metadata['local-hostname']).toBe('web-ssh');
    expect(metadata['instance-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(metadata.network.ethernets.nic0.match.macaddress).toBe(mac);
    const overApi = ok(await ceso('vm', 'info', 'web-ssh', '--json', '--via', 'api')).json<Json>();
    expect(withoutPath(overApi)).toEqual(withoutPath(ok(await ceso('vm', 'info', 'web-ssh', '--json', '--via', 'ssh')).json<Json>()));
    const again = await ceso('vm', 'create', 'web-ssh', '--ssh-key', SSH_KEY, '--via', 'ssh', '--json');
    expect(again.code).toBe(4);
    expect(again.json<{ error: { code: string } }>().error.code).toBe('VM_EXISTS');
  });

  it('powers a VM off, on, reset, suspend and shutdown with the API path\'s results', async () => {
    const power = async (action: string): Promise<Json> => ok(await ceso('vm', 'power', 'web-ssh', action, '--via', 'ssh', '--json')).json<Json>();
    expect(await power('off')).toMatchObject({ action: 'off', previousState: 'poweredOn', powerState: 'poweredOff', status: 'stopped', changed: true, via: 'ssh' });
    expect(await power('off')).toMatchObject({ changed: false, message: 'web-ssh is already powered off' });
    const reset = await ceso('vm', 'power', 'web-ssh', 'reset', '--via', 'ssh', '--json');
    expect(reset.code).toBe(4);
    expect(reset.json<{ error: { code: string } }>().error.code).toBe('INVALID_POWER_STATE');
    expect(await power('on')).toMatchObject({ previousState: 'poweredOff', powerState: 'poweredOn', changed: true });
    expect(await power('reset')).toMatchObject({ powerState: 'poweredOn', changed: true });
    expect(await power('suspend')).toMatchObject({ powerState: 'suspended', status: 'suspended' });
    expect(await power('on')).toMatchObject({ previousState: 'suspended', powerState: 'poweredOn' });
    expect(await power('shutdown')).toMatchObject({ previousState: 'poweredOn', powerState: 'poweredOff', changed: true });
    expect((await sim.oracle<OracleVm>('vm', 'web-ssh')).powerState).toBe('poweredOff');
  });

  it('clones a powered-off VM cold, keeping its user data, and the oracle sees the clone', async () => {
    const clone = ok(await ceso('vm', 'clone', 'web-ssh', 'web-copy', '--no-power-on', '--via', 'ssh', '--json')).json<Json>();
    expect(clone).toMatchObject({ name: 'web-copy', via: 'ssh', status: 'stopped', cpu: 2, memoryMB: 1024, managed: true, markers: expect.objectContaining({ 'ceso.clonedFrom': 'web-ssh', 'ceso.template': 'ubuntu-22.04-template' }) });
    const source = await sim.oracle<OracleVm>('vm', 'web-ssh');
    const copy = await sim.oracle<OracleVm>('vm', 'web-copy');
    expect(copy.uuid).not.toBe(source.uuid);
    expect(copy.nics[0]!.mac).not.toBe(source.nics[0]!.mac);
    expect(copy.disks[0]).toMatchObject({ file: '[datastore1] web-copy/web-copy.vmdk', capacityKB: source.disks[0]!.capacityKB });
    const metadata = copy.guestinfo?.metadata?.parsed as Json;
    expect(metadata['local-hostname']).toBe('web-copy');
    expect(metadata['instance-id']).not.toBe((source.guestinfo?.metadata?.parsed as Json)['instance-id']);
  });

  it('undoes what it made when a step fails', async () => {
    await sim.control('fail', { method: 'PowerOnVM_Task', fault: 'InsufficientResourcesFault', times: 1 });
    const result = await ceso('vm', 'create', 'web-fail', '--ssh-key', SSH_KEY, '--via', 'ssh', '--json');
    expect(result.code).not.toBe(0);
    const error = result.json<{ error: { code: string; details: { cleanedUp: boolean } } }>().error;
    expect(error.details.cleanedUp).toBe(true);
    expect(await sim.oracle('vm', 'web-fail')).toBeNull();
    expect((await sim.listFiles()).filter((file) => file.startsWith('web-fail/'))).toEqual([]);
    await sim.control('reset');
  });

  it('deletes with the API path\'s safety rules and leaves no file behind', async () => {
    const refused = await ceso('vm', 'delete', odd.name, '--yes', '--via', 'ssh', '--json');
    expect(refused.code).toBe(4);
    expect(refused.json<{ error: { code: string } }>().error.code).toBe('NOT_MANAGED');
    const deleted = ok(await ceso('vm', 'delete', 'web-copy', '--yes', '--via', 'ssh', '--json')).json<Json>();
    expect(deleted).toMatchObject({ name: 'web-copy', id: expect.any(String), deleted: true, removed: ['[datastore1] web-copy/web-copy.vmx', '[datastore1] web-copy/web-copy.vmdk', '[datastore1] web-copy'], durationMs: expect.any(Number), via: 'ssh' });
    expect(await sim.oracle('vm', 'web-copy')).toBeNull();
    const odd2 = ok(await ceso('vm', 'delete', odd.name, '--force', '--yes', '--via', 'ssh', '--json')).json<Json>();
    expect(odd2).toMatchObject({ id: odd.id, deleted: true });
    expect(await sim.oracle('vm', '--id', odd.id)).toBeNull();
    expect((await sim.listFiles()).filter((file) => file.startsWith(odd.folder) || file.startsWith('web-copy/'))).toEqual([]);
    expect(await sim.listFiles()).toEqual(expect.arrayContaining(['web-ssh/web-ssh.vmx']));
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses an unknown or changed host key with exit 5 and the fingerprint to pin, and trusts a pinned one', async () => {
    const emptyKnownHosts = join(ws.home, 'known_hosts_empty');
    writeFileSync(emptyKnownHosts, '');
    const other = workspace();
    try {
      other.writeConfig(sshConfig(sim, sshd, { knownHosts: emptyKnownHosts }));
      const otherEnv = { ...other.env, SIM_PASSWORD: sim.password };
      const unknown = await runCli(['vm', 'list', '--json', '--via', 'ssh'], { env: otherEnv, timeoutMs: 60_000 });
      expect(unknown.code).toBe(5);
      const error = unknown.json<{ error: { code: string; message: string; hint: string } }>().error;
      expect(error.code).toBe('SSH_HOST_KEY_UNTRUSTED');
      expect(error.message).toContain(sshd.hostKeyFingerprint);
      expect(error.hint).toContain(`ssh.hostKey: "${sshd.hostKeyFingerprint}"`);

      const changed = join(ws.home, 'known_hosts_changed');
      writeFileSync(changed, `[127.0.0.1]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc3Zt0h6m9O6m8yq0Jc2kq9Wm6V8rB3p2wq1cQm2XyZ\n`);
      other.writeConfig(sshConfig(sim, sshd, { knownHosts: changed }));
      const changedResult = await runCli(['vm', 'list', '--json', '--via', 'ssh'], { env: otherEnv, timeoutMs: 60_000 });
      expect(changedResult.code, changedResult.stdout).toBe(5);
      expect(changedResult.json<{ error: { message: string } }>().error.message).toContain('CHANGED');

      other.writeConfig(sshConfig(sim, sshd, { knownHosts: emptyKnownHosts, hostKey: sshd.hostKeyFingerprint }));
      const pinned = await runCli(['vm', 'list', '--json', '--via', 'ssh'], { env: otherEnv, timeoutMs: 60_000 });
      expect(pinned.code, pinned.stdout).toBe(0);
    } finally {
      other.cleanup();
    }
  });
});
