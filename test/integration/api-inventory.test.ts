import { existsSync, readdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, workspace, type CesoWorkspace, openSimulatorWorkspace, type SimulatorWorkspace } from '../support/cli.js';
import type { Simulator } from '../support/simulator.js';
import { startSshServer } from '../support/sshd.js';

interface OracleVm {
  name: string;
  id: string;
  uuid: string;
  powerState: string;
  cpu: number;
  memoryMB: number;
  ip: string | null;
  guestId: string;
  vmxPath: string;
  managed: boolean;
}

describe('vm list and vm info over the API (standalone ESXi simulator)', () => {
  let sim: Simulator;
  let ws: CesoWorkspace;
  let bed: SimulatorWorkspace | undefined;
  let env: Record<string, string>;

  beforeAll(async () => {
    bed = await openSimulatorWorkspace({ mode: 'esx', vms: 4 });
    ({ sim, ws, env } = bed);
  });
  afterAll(async () => {
    await bed?.close();
  });

  it('lists every VM with the fields the oracle reads', async () => {
    const result = await runCli(['vm', 'list', '--json'], { env });
    expect(result.code, result.stderr).toBe(0);
    const vms = result.json<Array<Record<string, unknown>>>();
    const oracle = await sim.oracle<OracleVm[]>('list');
    expect(vms.length).toBe(oracle.length);
    expect(vms.length).toBeGreaterThanOrEqual(5);
    const byId = new Map(vms.map((vm) => [vm.id, vm]));
    for (const expected of oracle) {
      const vm = byId.get(expected.id);
      expect(vm, expected.name).toBeDefined();
      expect(vm).toMatchObject({
        name: expected.name,
        uuid: expected.uuid,
        powerState: expected.powerState,
        status: { poweredOn: 'running', poweredOff: 'stopped', suspended: 'suspended' }[expected.powerState],
        cpu: expected.cpu,
        memoryMB: expected.memoryMB,
        ip: expected.ip,
        guestId: expected.guestId,
        managed: expected.managed,
        expiresAt: null,
        linked: false,
        pool: null,
        poolState: null,
        via: 'api',
      });
    }
    expect(vms.some((vm) => vm.ip !== null)).toBe(true);
    expect(Object.keys(vms[0] ?? {}).sort()).toEqual(
      ['cpu', 'expiresAt', 'guestId', 'id', 'ip', 'linked', 'managed', 'memoryMB', 'mode', 'name', 'pool', 'poolState', 'powerState', 'status', 'uuid', 'via'].sort(),
    );
  });

  it('prints a table for people', async () => {
    const result = await runCli(['vm', 'list'], { env });
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+ID\s+STATUS\s+CPU\s+MEMORY MB\s+IP\s+GUEST\s+MANAGED\s+EXPIRES$/);
    expect(result.stdout).toContain('ubuntu-22.04-template');
  });

  it('needs exactly one HTTP request per list with a warm session, and caches it privately', async () => {
    await runCli(['vm', 'list', '--json'], { env });
    const warm = await runCli(['vm', 'list', '--json', '--log-level', 'debug'], { env });
    expect(warm.code).toBe(0);
    const calls = warm.stderr.split('\n').filter((line) => line.includes('"soap call"'));
    // the warm list is incremental: only what changed since the first (list-cache.ts)
    expect(calls.map((line) => JSON.parse(line).method)).toEqual(['WaitForUpdatesEx']);
    for (const directory of [join(ws.home, 'sessions'), join(ws.home, 'list-cache')]) {
      expect(statSync(directory).mode & 0o777).toBe(0o700);
      expect(readdirSync(directory)).not.toHaveLength(0);
      for (const file of readdirSync(directory)) expect(statSync(join(directory, file)).mode & 0o777).toBe(0o600);
    }
    expect(warm.stderr).not.toContain(sim.password);
    expect(warm.stderr).not.toContain('vmware_soap_session=');
  });

  it('shows one VM in detail, matching the oracle', async () => {
    const result = await runCli(['vm', 'info', 'ubuntu-22.04-template', '--json'], { env });
    expect(result.code, result.stderr).toBe(0);
    const vm = result.json<Record<string, unknown> & { disks: Array<Record<string, unknown>>; nics: Array<Record<string, unknown>> }>();
    const oracle = await sim.oracle<OracleVm & { disks: Array<{ file: string; capacityKB: number; thin: boolean }>; nics: Array<{ network: string; mac: string; type: string }> }>('vm', 'ubuntu-22.04-template');
    expect(vm).toMatchObject({
      name: 'ubuntu-22.04-template',
      id: oracle.id,
      uuid: oracle.uuid,
      status: 'stopped',
      vmxPath: oracle.vmxPath,
      datastore: 'datastore1',
      firmware: 'efi',
      snapshots: [],
      managed: false,
      markers: {},
      via: 'api',
    });
    expect(vm.disks.map((disk) => disk.file)).toEqual(oracle.disks.map((disk) => disk.file));
    expect(vm.disks[0]).toMatchObject({ capacityGB: 10, thin: true });
    expect(vm.nics.map((nic) => ({ network: nic.network, mac: nic.mac }))).toEqual(oracle.nics.map((nic) => ({ network: nic.network, mac: nic.mac.toLowerCase() })));
    expect(vm.nics[0]?.type).toBe('vmxnet3');
  });

  it('answers an unknown name with exit 3 and one JSON error document', async () => {
    const result = await runCli(['vm', 'info', 'no-such-vm', '--json'], { env });
    expect(result.code).toBe(3);
    expect(result.json()).toEqual({ error: { code: 'VM_NOT_FOUND', message: 'no VM is named "no-such-vm"', hint: expect.any(String) } });
    const byId = await runCli(['vm', 'info', 'ubuntu-22.04-template', '--id', 'nope', '--json'], { env });
    expect(byId.code).toBe(3);
  });

  it('rejects a wrong password with exit 6 and never rides on a cached session', async () => {
    await runCli(['vm', 'list', '--json'], { env });
    const wrong = await runCli(['vm', 'list', '--json'], { env: { ...env, SIM_PASSWORD: 'wrong-password' } });
    expect(wrong.code).toBe(6);
    expect(wrong.json()).toMatchObject({ error: { code: 'AUTH_FAILED' } });
    expect(wrong.stdout + wrong.stderr).not.toContain('wrong-password');
    expect((await runCli(['vm', 'list', '--json'], { env })).code).toBe(0);
  });

  it('refuses an untrusted certificate with exit 5 and both thumbprints, and accepts a SHA-1 pin', async () => {
    const untrusted = await runCli(['vm', 'list', '--json'], {
      env: { ...env, CESO_CONFIG: '/nonexistent-on-purpose', CESO_HOST: `127.0.0.1:${sim.port}`, CESO_PASSWORD: sim.password },
    });
    // An explicit config path that does not exist is a config error, so use the environment alone:
    expect(untrusted.code).toBe(2);
    const bare = workspace();
    const noConfig = { CESO_HOME: bare.home, CESO_HOST: `127.0.0.1:${sim.port}`, CESO_PASSWORD: sim.password, SIM_PASSWORD: sim.password };
    const refused = await runCli(['vm', 'list', '--json'], { env: noConfig });
    expect(refused.code).toBe(5);
    const error = refused.json<{ error: { code: string; message: string; hint: string } }>().error;
    expect(error.code).toBe('TLS_UNTRUSTED');
    expect(error.message).toContain(sim.thumbprintSha256);
    expect(error.message).toContain(sim.thumbprintSha1);
    expect(error.hint).toContain(sim.thumbprintSha256);
    expect((await runCli(['vm', 'list', '--json'], { env: { ...noConfig, CESO_THUMBPRINT: sim.thumbprintSha1 } })).code).toBe(0);
    const wrongPin = sim.thumbprintSha1.replace(/^../, sim.thumbprintSha1.startsWith('00') ? '11' : '00');
    const mismatch = await runCli(['vm', 'list'], { env: { ...noConfig, CESO_THUMBPRINT: wrongPin } });
    expect(mismatch.code).toBe(5);
    expect(mismatch.stderr).toContain('does not match the pinned thumbprint');
    expect((await runCli(['vm', 'list', '--json'], { env: { ...noConfig, CESO_INSECURE: 'true' } })).code).toBe(0);
    bare.cleanup();
  });

  it('fails in seconds with exit 5 when the host refuses or never answers', async () => {
    const bare = workspace();
    const closed = await runCli(['vm', 'list', '--json', '--via', 'api'], { env: { CESO_HOME: bare.home, CESO_HOST: '127.0.0.1:1', CESO_PASSWORD: 'x' } });
    expect(closed.code).toBe(5);
    expect(closed.json()).toMatchObject({ error: { code: 'HOST_UNREACHABLE', message: '127.0.0.1:1: connection refused' } });
    // With --via auto and no usable SSH, the outage is still what is reported, with both causes.
    const both = await runCli(['vm', 'list', '--json'], { env: { CESO_HOME: bare.home, CESO_HOST: '127.0.0.1:1', CESO_PASSWORD: 'x', SSH_AUTH_SOCK: '' } });
    expect(both.code).toBe(5);
    expect(both.json<{ error: { message: string } }>().error.message).toMatch(/unreachable .*connection refused.* SSH .* could not be used/);
    bare.cleanup();

    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const hung = workspace();
    try {
      hung.writeConfig(`esxi: {host: "127.0.0.1:${port}", password: x, connectTimeoutSeconds: 1}\n`);
      const result = await runCli(['vm', 'list', '--json', '--via', 'api'], { env: hung.env, timeoutMs: 15_000 });
      expect(result.code).toBe(5);
      expect(result.json()).toMatchObject({ error: { code: 'HOST_UNREACHABLE', details: { reason: 'connect-timeout' } } });
    } finally {
      silent.close();
      hung.cleanup();
    }
  });

  it('reports every config problem with its key path, exit 2', async () => {
    const bad = workspace();
    try {
      bad.writeConfig('esxi:\n  host: 127.0.0.1\n  password: ${UNSET_FOR_TEST}\n  insecure: maybe\ndefaults: {cpu: many}\n');
      const result = await runCli(['vm', 'list', '--json'], { env: bad.env });
      expect(result.code).toBe(2);
      const { error } = result.json<{ error: { code: string; message: string } }>();
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toContain(`${bad.configPath}: esxi.insecure: expected boolean`);
      expect(error.message).toContain(`${bad.configPath}: defaults.cpu: expected number`);
      const missingHost = await runCli(['vm', 'list', '--host', 'lab9', '--json'], { env: { ...env } });
      expect(missingHost.code).toBe(2);
      expect(missingHost.json()).toMatchObject({ error: { code: 'HOST_NOT_CONFIGURED' } });
    } finally {
      bad.cleanup();
    }
  });

  it('answers bad usage with exit 2 and help that shows examples', async () => {
    const result = await runCli(['vm', 'info', '--json'], { env });
    expect(result.code).toBe(2);
    expect(result.json()).toMatchObject({ error: { code: 'INVALID_INPUT' } });
    const unknown = await runCli(['vm', 'frobnicate', '--json'], { env });
    expect(unknown.code).toBe(2);
    expect(unknown.json()).toMatchObject({ error: { code: 'INVALID_INPUT', message: '"vm frobnicate" is not a ceso command', hint: expect.stringContaining('vm list') } });
    const unknownText = await runCli(['vm', 'lst'], { env });
    expect(unknownText.code).toBe(2);
    expect(unknownText.stderr).toContain('Error: "vm lst" is not a ceso command');
    const help = await runCli(['vm', 'info', '--help'], { env });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('EXAMPLES');
    expect(help.stdout).toContain('--json');
    expect(existsSync(join(ws.home, 'audit.log'))).toBe(false);
  });

  it('answers two VMs with one name with exit 4 AMBIGUOUS listing their ids; --id picks one', async () => {
    // Real ESXi allows duplicate display names; register a second "vm-0001" the way an operator would.
    const sshd = await startSshServer({ sim });
    try {
      const ds = `${sim.volumesRoot}/datastore1`;
      const registered = await sshd.exec(
        `mkdir -p '${ds}/dup' && sed 's/^displayName = .*/displayName = "vm-0001"/' '${ds}/vm-0001/vm-0001.vmx' | grep -v '^uuid\\|fileName' > '${ds}/dup/dup.vmx' && vim-cmd solo/registervm '${ds}/dup/dup.vmx'`,
      );
      expect(registered.code, registered.stderr).toBe(0);
      const ids = (await sim.oracle<OracleVm[]>('list')).filter((vm) => vm.name === 'vm-0001').map((vm) => vm.id);
      expect(ids).toHaveLength(2);
      const ambiguous = await runCli(['vm', 'info', 'vm-0001', '--json'], { env });
      expect(ambiguous.code).toBe(4);
      const { error } = ambiguous.json<{ error: { code: string; message: string; details: { ids: string[] } } }>();
      expect(error.code).toBe('AMBIGUOUS');
      expect([...error.details.ids].sort()).toEqual([...ids].sort());
      for (const id of ids) expect(error.message).toContain(id);
      const chosen = await runCli(['vm', 'info', 'vm-0001', '--id', ids[1] ?? '', '--json'], { env });
      expect(chosen.code).toBe(0);
      expect(chosen.json()).toMatchObject({ name: 'vm-0001', id: ids[1] });
      await sshd.exec(`vim-cmd vmsvc/unregister '${registered.stdout.trim()}'`);
    } finally {
      await sshd.stop();
    }
  });
});
