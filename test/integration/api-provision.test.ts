import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, openSimulatorWorkspace, type SimulatorWorkspace } from '../support/cli.js';
import type { Simulator } from '../support/simulator.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfA2dC6WcGxPx0sN1yKq0mYkq0X8oZ5yN8dGd1cV2wL ops@example';

interface OracleVm {
  name: string;
  id: string;
  uuid: string;
  powerState: string;
  cpu: number;
  memoryMB: number;
  vmxPath: string;
  managed: boolean;
  extraConfig: Record<string, string>;
  disks: Array<{ file: string; capacityKB: number; thin: boolean }>;
  nics: Array<{ network: string; mac: string; type: string }>;
  guestinfo: Record<string, { encoding: string; decoded: string; parsed?: unknown }>;
}

interface Metadata {
  'instance-id': string;
  'local-hostname': string;
  network: { version: number; ethernets: Record<string, { match: { macaddress: string }; addresses?: string[]; routes?: Array<{ to: string; via: string }>; nameservers?: { addresses: string[] }; dhcp4?: boolean }> };
}

/** Files and VMs, without the keys a booting guest sets by itself meanwhile (guestinfo.ceso.ready). */
async function snapshot(sim: Simulator): Promise<{ files: string[]; vms: unknown }> {
  const vms = await sim.oracle<Array<{ extraConfig?: Record<string, unknown> }>>('list');
  for (const vm of vms) delete vm.extraConfig?.['guestinfo.ceso.ready'];
  return { files: await sim.listFiles(), vms };
}

for (const mode of ['esx', 'vpx'] as const) {
  describe(`provisioning on the ${mode === 'esx' ? 'standalone ESXi' : 'vCenter'} simulator`, () => {
    let sim: Simulator;
    let bed: SimulatorWorkspace | undefined;
    let env: Record<string, string>;
    const ceso = (...args: string[]) => runCli(args, { env });

    beforeAll(async () => {
      bed = await openSimulatorWorkspace({ mode, vms: 2 });
      ({ sim, env } = bed);
    });
    afterAll(async () => {
      await bed?.close();
    });

    it('creates a running VM from the template, configured by cloud-init guestinfo', async () => {
      const result = await ceso('vm', 'create', 'web1', '--ip', '192.168.1.100/24', '--gateway', '192.168.1.1', '--dns', '1.1.1.1', '--domain', 'lab.example', '--ssh-key', KEY, '--cpu', '4', '--memory', '8', '--disk', '30', '--ttl', '2h', '--json');
      expect(result.code, result.stdout + result.stderr).toBe(0);
      const vm = result.json<Record<string, unknown>>();
      expect(vm).toMatchObject({ name: 'web1', status: 'running', cpu: 4, memoryMB: 8192, managed: true, via: 'api' });
      expect(typeof vm.durationMs).toBe('number');
      expect(typeof vm.expiresAt).toBe('string');

      const oracle = await sim.oracle<OracleVm>('vm', 'web1');
      expect(oracle).toMatchObject({ powerState: 'poweredOn', cpu: 4, memoryMB: 8192, managed: true });
      expect(oracle.disks).toHaveLength(1);
      expect(oracle.disks[0]?.capacityKB).toBe(30 * 1024 * 1024);
      expect(oracle.disks[0]?.file).toBe('[datastore1] web1/web1.vmdk');
      expect(oracle.vmxPath).toBe('[datastore1] web1/web1.vmx');
      expect(oracle.nics[0]?.network).toBe('VM Network');
      expect(oracle.extraConfig).toMatchObject({ 'ceso.managed': 'true', 'ceso.template': 'ubuntu-22.04-template' });
      expect(oracle.extraConfig['ceso.expiresAt']).toBe(vm.expiresAt);

      const metadata = oracle.guestinfo.metadata;
      expect(metadata?.encoding).toBe('gzip+base64');
      const parsed = metadata?.parsed as Metadata;
      expect(parsed['instance-id']).toBe(oracle.uuid);
      expect(parsed['local-hostname']).toBe('web1.lab.example');
      const nic = Object.values(parsed.network.ethernets)[0];
      expect(parsed.network.version).toBe(2);
      expect(nic?.match.macaddress).toBe(oracle.nics[0]?.mac.toLowerCase());
      expect(nic?.addresses).toEqual(['192.168.1.100/24']);
      expect(nic?.routes).toEqual([{ to: '0.0.0.0/0', via: '192.168.1.1' }]);
      expect(nic?.nameservers?.addresses).toEqual(['1.1.1.1']);
      expect(JSON.stringify(parsed)).not.toContain('gateway4');
      const userdata = oracle.guestinfo.userdata;
      expect(userdata?.encoding).toBe('gzip+base64');
      expect(userdata?.decoded.startsWith('#cloud-config\n')).toBe(true);
      expect(userdata?.decoded).toContain(KEY);
      expect(userdata?.decoded).toContain('fqdn: web1.lab.example');
      expect(oracle.guestinfo.vendordata?.decoded ?? '').toBe('');

      const info = await ceso('vm', 'info', 'web1', '--json');
      expect(info.json<{ ip: string }>().ip).toBe('192.168.1.100');
    });

    it('plans without changing anything (--dry-run), showing calls and decoded cloud-init', async () => {
      const before = await snapshot(sim);
      const result = await ceso('vm', 'create', 'web-dry', '--ip', '10.0.0.5/24', '--ssh-key', KEY, '--dry-run', '--json');
      expect(result.code, result.stderr).toBe(0);
      const { dryRun, plan } = result.json<{ dryRun: boolean; plan: { via: string; steps: Array<{ kind: string; method: string }>; review: { cloudInit: { metadata: Metadata; userdata: { users: unknown[] } } } } }>();
      expect(dryRun).toBe(true);
      expect(plan.via).toBe('api');
      const methods = plan.steps.map((step) => step.method);
      if (mode === 'esx') {
        expect(methods).toEqual(['MakeDirectory', 'CopyVirtualDisk_Task', 'CreateVM_Task', 'ReconfigVM_Task', 'PowerOnVM_Task']);
      } else {
        expect(methods).toEqual(['CloneVM_Task', 'ReconfigVM_Task', 'PowerOnVM_Task']);
      }
      expect(plan.review.cloudInit.metadata.network.ethernets.nic0?.addresses).toEqual(['10.0.0.5/24']);
      expect(JSON.stringify(plan.review)).toContain(KEY);
      expect(await snapshot(sim)).toEqual(before);
      const human = await ceso('vm', 'create', 'web-dry', '--dry-run');
      expect(human.stdout).toContain('nothing has been changed');
    });

    it('refuses bad input with exit 2 naming the flag, changing nothing', async () => {
      const before = await snapshot(sim);
      const cases: Array<[string[], string]> = [
        [['vm', 'create', 'bad name'], 'invalid'],
        [['vm', 'create', 'web_x'], 'hostname'],
        [['vm', 'create', 'webx', '--ip', '10.0.0.300/24'], '--ip'],
        [['vm', 'create', 'webx', '--ip', '10.0.0.5/24', '--gateway', '10.9.9.9'], '--gateway'],
        [['vm', 'create', 'webx', '--ssh-key', 'not-a-key'], '--ssh-key'],
        [['vm', 'create', 'webx', '--cpu', '0'], '--cpu'],
        [['vm', 'create', 'webx', '--disk', '5'], '--disk'],
        [['vm', 'create', "x'; touch /tmp/ceso-pwned; '"], 'invalid'],
      ];
      for (const [args, needle] of cases) {
        const result = await runCli([...args, '--json'], { env });
        expect(result.code, args.join(' ')).toBe(2);
        expect(result.json<{ error: { message: string } }>().error.message, args.join(' ')).toContain(needle);
      }
      expect(await snapshot(sim)).toEqual(before);
    });

    it('refuses an existing name (4), missing template, datastore or network (3)', async () => {
      expect((await ceso('vm', 'create', 'web1', '--json')).json()).toMatchObject({ error: { code: 'VM_EXISTS' } });
      const missing: Array<[string[], string]> = [
        [['--template', 'no-such-template'], 'TEMPLATE_NOT_FOUND'],
        [['--datastore', 'nope-ds'], 'DATASTORE_NOT_FOUND'],
        [['--network', 'nope-net'], 'NETWORK_NOT_FOUND'],
      ];
      for (const [flags, code] of missing) {
        const result = await ceso('vm', 'create', 'web9', ...flags, '--json');
        expect(result.code).toBe(3);
        expect(result.json()).toMatchObject({ error: { code } });
      }
    });

    it('refuses a powered-on template with exit 4 and a hint', async () => {
      const result = await ceso('vm', 'create', 'web8', '--template', 'web1', '--json');
      expect(result.code).toBe(4);
      expect(result.json()).toMatchObject({ error: { code: 'INVALID_POWER_STATE', hint: expect.stringContaining('power') } });
    });

    it('removes everything it made when a late step fails', async () => {
      const before = await snapshot(sim);
      await sim.control('fail', { method: 'ReconfigVM_Task', fault: 'InvalidState', times: 1 });
      const result = await ceso('vm', 'create', 'web-fail', '--json');
      await sim.control('reset');
      expect(result.code).not.toBe(0);
      const { error } = result.json<{ error: { code: string; details: { cleanedUp: boolean; leftovers: string[] } } }>();
      expect(error.details).toMatchObject({ cleanedUp: true, leftovers: [] });
      expect(await snapshot(sim)).toEqual(before);
    });

    it('refuses when the datastore is out of room, before making anything', async () => {
      const before = await snapshot(sim);
      await sim.control('datastore', { capacityGB: 1000, freeGB: 0 });
      const result = await ceso('vm', 'create', 'web-full', '--json');
      await sim.control('datastore', { capacityGB: 1000, freeGB: 900 });
      expect(result.code).toBe(4);
      expect(result.json()).toMatchObject({ error: { code: 'INSUFFICIENT_SPACE' } });
      expect(await snapshot(sim)).toEqual(before);
    });

    it('undoes what it made on Ctrl-C', async () => {
      const before = await snapshot(sim);
      const slowMethod = mode === 'esx' ? 'CreateVM_Task' : 'CloneVM_Task';
      await sim.control('delay', { method: slowMethod, ms: 3000 });
      let sent = false;
      const result = await runCli(['vm', 'create', 'web-int', '--json', '--log-level', 'info'], {
        env,
        onSpawn: (child) => {
          child.stderr?.on('data', (chunk: Buffer) => {
            if (!sent && chunk.toString().includes(mode === 'esx' ? 'create the VM' : 'clone ')) {
              sent = true;
              setTimeout(() => child.kill('SIGINT'), 300);
            }
          });
        },
      });
      await sim.control('reset');
      expect(sent).toBe(true);
      expect(result.code).toBe(8);
      expect(result.json()).toMatchObject({ error: { code: 'INTERRUPTED', details: { cleanedUp: true } } });
      // The host may finish the task it was given before the undo runs; nothing may remain after.
      expect(await snapshot(sim)).toEqual(before);
    });

    it('clones a powered-off VM with a new identity and a new IP (re-IP), keeping the user data', async () => {
      expect((await ceso('vm', 'power', 'web1', 'off', '--json')).code).toBe(0);
      const runningVm = (await sim.oracle<OracleVm[]>('list')).find((vm) => vm.powerState === 'poweredOn');
      expect(runningVm).toBeDefined();
      const running = await ceso('vm', 'clone', runningVm?.name ?? '', 'web-clone0', '--json');
      expect(running.code).toBe(4);
      expect(running.json()).toMatchObject({ error: { code: 'INVALID_POWER_STATE', hint: expect.stringContaining('shutdown') } });
      const result = await ceso('vm', 'clone', 'web1', 'web2', '--ip', '192.168.1.101/24', '--gateway', '192.168.1.1', '--json');
      expect(result.code, result.stdout).toBe(0);
      expect(result.json()).toMatchObject({ name: 'web2', status: 'running', cpu: 4, memoryMB: 8192, managed: true });
      const source = await sim.oracle<OracleVm>('vm', 'web1');
      const clone = await sim.oracle<OracleVm>('vm', 'web2');
      expect(clone.uuid).not.toBe(source.uuid);
      expect(clone.nics[0]?.mac).not.toBe(source.nics[0]?.mac);
      expect(clone.disks[0]?.file).toBe('[datastore1] web2/web2.vmdk');
      expect(clone.disks[0]?.capacityKB).toBe(source.disks[0]?.capacityKB);
      const metadata = clone.guestinfo.metadata?.parsed as Metadata;
      expect(metadata['instance-id']).toBe(clone.uuid);
      expect(metadata['instance-id']).not.toBe((source.guestinfo.metadata?.parsed as Metadata)['instance-id']);
      expect(metadata['local-hostname']).toBe('web2');
      expect(Object.values(metadata.network.ethernets)[0]?.addresses).toEqual(['192.168.1.101/24']);
      expect(Object.values(metadata.network.ethernets)[0]?.match.macaddress).toBe(clone.nics[0]?.mac.toLowerCase());
      expect(clone.guestinfo.userdata?.decoded).toContain(KEY);
      expect(clone.guestinfo.userdata?.decoded).toContain('hostname: web2');
      expect(clone.extraConfig['ceso.clonedFrom']).toBe('web1');
    });

    it('merges --user-data over the generated cloud-config', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ceso-ud-'));
      const file = join(dir, 'user-data.yaml');
      writeFileSync(file, '#cloud-config\npackages: [nginx]\nruncmd: [[systemctl, enable, --now, nginx]]\n');
      const result = await ceso('vm', 'create', 'web3', '--user-data', file, '--ssh-key', KEY, '--no-power-on', '--json');
      expect(result.code, result.stdout).toBe(0);
      expect(result.json()).toMatchObject({ status: 'stopped' });
      const userdata = (await sim.oracle<OracleVm>('vm', 'web3')).guestinfo.userdata?.parsed as Record<string, unknown>;
      expect(userdata.packages).toEqual(['nginx']);
      expect(userdata.hostname).toBe('web3');
      expect(JSON.stringify(userdata.users)).toContain(KEY);
    });

    it('powers VMs on, off, suspend, reset and shutdown; the same state twice is a success that says so', async () => {
      const on = await ceso('vm', 'power', 'web3', 'on', '--json');
      expect(on.json()).toMatchObject({ action: 'on', previousState: 'poweredOff', powerState: 'poweredOn', changed: true, via: 'api' });
      const again = await ceso('vm', 'power', 'web3', 'on', '--json');
      expect(again.code).toBe(0);
      expect(again.json()).toMatchObject({ changed: false, message: 'web3 is already powered on' });
      expect((await ceso('vm', 'power', 'web3', 'reset', '--json')).json()).toMatchObject({ powerState: 'poweredOn', changed: true });
      expect((await ceso('vm', 'power', 'web3', 'suspend', '--json')).json()).toMatchObject({ powerState: 'suspended' });
      const resetSuspended = await ceso('vm', 'power', 'web3', 'reset', '--json');
      expect(resetSuspended.code).toBe(4);
      expect((await ceso('vm', 'power', 'web3', 'on', '--json')).json()).toMatchObject({ powerState: 'poweredOn' });
      expect((await ceso('vm', 'power', 'web3', 'shutdown', '--json')).json()).toMatchObject({ powerState: 'poweredOff' });
      expect((await ceso('vm', 'power', 'web3', 'off', '--dry-run', '--json')).json()).toMatchObject({ dryRun: true });
      const bad = await ceso('vm', 'power', 'web3', 'explode', '--json');
      expect(bad.code).toBe(2);
    });

    it('deletes only with consent, and leaves nothing behind', async () => {
      const foreignVm = (await sim.oracle<OracleVm[]>('list')).find((vm) => !vm.managed);
      const foreign = await ceso('vm', 'delete', foreignVm?.name ?? '', '--yes', '--json');
      expect(foreign.code).toBe(4);
      expect(foreign.json()).toMatchObject({ error: { code: 'NOT_MANAGED' } });
      const running = await ceso('vm', 'delete', 'web2', '--yes', '--json');
      expect(running.code).toBe(4);
      expect(running.json()).toMatchObject({ error: { code: 'INVALID_POWER_STATE' } });
      const unconfirmed = await ceso('vm', 'delete', 'web2', '--force', '--json');
      expect(unconfirmed.code).toBe(2);
      expect(unconfirmed.json()).toMatchObject({ error: { code: 'CONFIRMATION_REQUIRED' } });
      const planned = await ceso('vm', 'delete', 'web2', '--force', '--dry-run', '--json');
      expect(planned.json<{ plan: { steps: Array<{ method: string }> } }>().plan.steps.map((step) => step.method)).toEqual(['PowerOffVM_Task', 'Destroy_Task', 'DeleteDatastoreFile_Task']);
      for (const name of ['web1', 'web2', 'web3']) {
        const result = await ceso('vm', 'delete', name, '--force', '--yes', '--json');
        expect(result.code, result.stdout).toBe(0);
        expect(result.json()).toMatchObject({ name, deleted: true, via: 'api' });
      }
      const files = await sim.listFiles();
      expect(files.filter((file) => /^web\d\//.test(file))).toEqual([]);
      const names = (await sim.oracle<OracleVm[]>('list')).map((vm) => vm.name);
      expect(names.filter((name) => name.startsWith('web'))).toEqual([]);
    });
  });
}
