// Linked clones (vm create --linked, vm clone --linked) against the simulator, through the real CLI:
// the base snapshot taken once, the child descriptor naming the parent, the child booting, delete
// leaving the parent intact, the template refused while children depend on it, and the space used.
// Needs the built CLI (npm run build).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSimulatorWorkspace, requireBuiltCli, runCli, sshConfig, workspace, type CesoWorkspace, type CliResult, type SimulatorWorkspace } from '../support/cli.js';
import { startSimulator, type Simulator } from '../support/simulator.js';
import { startSshServer, type SshServer } from '../support/sshd.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfA2dC6WcGxPx0sN1yKq0mYkq0X8oZ5yN8dGd1cV2wL ops@example';
const TEMPLATE = 'ubuntu-22.04-template';

type Json = Record<string, unknown>;
interface Disk { label: string | null; file: string; capacityGB: number | null; thin: boolean | null; parent: string | null }
interface Snapshot { name: string; children: Snapshot[] }

function names(snapshots: Snapshot[]): string[] {
  return snapshots.flatMap((node) => [node.name, ...names(node.children)]);
}

/** The sizes of the files under a datastore folder, as the datastore lists them. */
function folderBytes(sim: Simulator, files: string[], folder: string): number {
  return files.filter((file) => file.startsWith(`${folder}/`)).reduce((sum, file) => sum + statSync(join(sim.datastoreDir, file)).size, 0);
}

for (const mode of ['esx', 'vpx'] as const) {
  describe(`linked clones over the API (${mode})`, { timeout: 240_000 }, () => {
    let bed: SimulatorWorkspace | undefined;
    let sim: Simulator;
    let env: Record<string, string>;
    const ceso = (...args: string[]): Promise<CliResult> => runCli(args, { env, timeoutMs: 120_000 });
    const ok = (result: CliResult): CliResult => {
      expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
      return result;
    };

    beforeAll(async () => {
      requireBuiltCli();
      bed = await openSimulatorWorkspace({ mode, vms: 1 });
      ({ sim, env } = bed);
    });
    afterAll(async () => {
      await bed?.close();
    });

    let templateDisk: string;

    it('refuses a --disk larger than the template before anything is made, naming --add-disk', async () => {
      const before = await sim.listFiles();
      const template = ok(await ceso('vm', 'info', TEMPLATE, '--json')).json<{ disks: Disk[] }>();
      templateDisk = template.disks[0]?.file ?? '';
      const capacity = template.disks[0]?.capacityGB ?? 0;
      const result = await ceso('vm', 'create', 'big1', '--linked', '--disk', String(Math.ceil(capacity) + 10), '--json');
      expect(result.code).toBe(4);
      const error = result.json<{ error: { code: string; hint: string } }>().error;
      expect(error.code).toBe('CONFLICT');
      expect(error.hint).toContain('--add-disk');
      expect(await sim.listFiles()).toEqual(before);
      expect(names(ok(await ceso('vm', 'info', TEMPLATE, '--json')).json<{ snapshots: Snapshot[] }>().snapshots)).toEqual([]);
      // A full copy of the same template, for the space comparison. Standalone only: vcsim's
      // CloneVM_Task (the vCenter path) renames the source's disk backing to the clone's file.
      if (mode === 'esx') ok(await ceso('vm', 'create', 'full1', '--no-power-on', '--json'));
    });

    it('undoes a failed linked create: the base snapshot it took and the folder are removed again', async () => {
      const before = await sim.listFiles();
      await sim.control('fail', { method: 'CreateVM_Task', fault: 'InvalidState', times: 1 });
      const result = await ceso('vm', 'create', 'lcfail', '--linked', '--json');
      expect(result.code).not.toBe(0);
      expect(names(ok(await ceso('vm', 'info', TEMPLATE, '--json')).json<{ snapshots: Snapshot[] }>().snapshots)).toEqual([]);
      // the template keeps an empty .vmsd once its last snapshot is gone, as ESXi does
      const after = (await sim.listFiles()).filter((file) => !file.endsWith('.vmsd'));
      expect(after, result.stdout).toEqual(before.filter((file) => !file.endsWith('.vmsd')));
    });

    it('makes a linked clone: base snapshot once, a child disk naming the parent, boots with its IP, markers', async () => {
      const filesBefore = await sim.listFiles();
      const result = ok(await ceso('vm', 'create', 'lc1', '--linked', '--ip', '192.168.1.51/24', '--gateway', '192.168.1.1', '--ssh-key', KEY, '--wait', 'ip', '--json'));
      const vm = result.json<Json & { disks: Disk[]; markers: Record<string, string> }>();
      expect(vm).toMatchObject({ name: 'lc1', status: 'running', linked: true, managed: true, ip: '192.168.1.51' });
      expect(vm.disks[0]?.file).toBe('[datastore1] lc1/lc1.vmdk');
      expect(vm.disks[0]?.parent).toBe(templateDisk);
      expect(vm.markers).toMatchObject({ 'ceso.linked': 'true', 'ceso.parentDisk': templateDisk, 'ceso.template': TEMPLATE });

      const template = ok(await ceso('vm', 'info', TEMPLATE, '--json')).json<{ snapshots: Snapshot[]; disks: Disk[] }>();
      expect(names(template.snapshots)).toEqual(['ceso-linked-base']);
      expect(template.disks[0]?.parent).toBe(templateDisk);

      const descriptor = readFileSync(join(sim.datastoreDir, 'lc1/lc1.vmdk'), 'utf8');
      const parentPath = templateDisk.replace(/^\[datastore1\] /, '');
      expect(descriptor).toMatch(/createType="seSparse"/);
      expect(descriptor).toContain(`parentFileNameHint="/vmfs/volumes/datastore1/${parentPath}"`);

      const files = await sim.listFiles();
      const full = folderBytes(sim, files, mode === 'esx' ? 'full1' : parentPath.slice(0, parentPath.lastIndexOf('/')));
      expect(folderBytes(sim, files, 'lc1')).toBeLessThan(full / 100);
      // the parent's files are untouched
      const parentFiles = filesBefore.filter((file) => file.startsWith(parentPath.slice(0, parentPath.lastIndexOf('/') + 1)) && file.endsWith('.vmdk'));
      for (const file of parentFiles) expect(files).toContain(file);
    });

    it('reuses the base snapshot for the second linked clone, and adds disks with --add-disk', async () => {
      const vm = ok(await ceso('vm', 'create', 'lc2', '--linked', '--add-disk', '5', '--no-power-on', '--json')).json<{ disks: Disk[]; linked: boolean }>();
      expect(vm.linked).toBe(true);
      expect(vm.disks).toHaveLength(2);
      expect(vm.disks[0]?.parent).toBe(templateDisk);
      expect(vm.disks[1]).toMatchObject({ file: '[datastore1] lc2/lc2_1.vmdk', capacityGB: 5, thin: true, parent: null });
      const template = ok(await ceso('vm', 'info', TEMPLATE, '--json')).json<{ snapshots: Snapshot[] }>();
      expect(names(template.snapshots)).toEqual(['ceso-linked-base']);
      const list = ok(await ceso('vm', 'list', '--json')).json<Array<{ name: string; linked: boolean }>>();
      expect(Object.fromEntries(list.map((item) => [item.name, item.linked]))).toMatchObject({ lc1: true, lc2: true, [TEMPLATE]: false, ...(mode === 'esx' ? { full1: false } : {}) });
    });

    it('makes a linked clone with a warm session in at most 10 SOAP requests (issue 11), its result read along with the power-on', async () => {
      ok(await ceso('vm', 'list', '--json')); // a warm session; the base snapshot exists since lc1
      const result = ok(await ceso('vm', 'create', 'lcq', '--linked', '--json', '--log-level', 'debug'));
      const methods = result.stderr
        .split('\n')
        .filter((line) => line.includes('"msg":"soap call"'))
        .map((line) => /"method":"([^"]+)"/.exec(line)?.[1] ?? '?');
      expect(methods.length, methods.join(', ')).toBeLessThanOrEqual(10);
      // no login: the rest are reads (the name list, the template with the placement, the new VM, the task polls)
      expect(methods.filter((method) => method !== 'RetrievePropertiesEx')).toEqual(['MakeDirectory', 'CreateVM_Task', 'ReconfigVM_Task', 'PowerOnVM_Task']);
      const vm = result.json<Json & { nics: Array<{ mac: string | null }>; disks: Disk[] }>();
      expect(vm).toMatchObject({ name: 'lcq', status: 'running', powerState: 'poweredOn', linked: true, managed: true });
      expect(vm.disks[0]?.parent).toBe(templateDisk);
      const info = ok(await ceso('vm', 'info', 'lcq', '--json')).json<Json>();
      expect(vm).toMatchObject({ id: info.id, uuid: info.uuid, nics: info.nics, markers: info.markers });
      ok(await ceso('vm', 'delete', 'lcq', '--force', '--yes', '--json'));
    });

    it('takes a new base snapshot for new children once the template changed (a newer snapshot), old children keep theirs', async () => {
      ok(await ceso('vm', 'snapshot', 'create', TEMPLATE, 'changed', '--json'));
      const vm = ok(await ceso('vm', 'create', 'lc3', '--linked', '--no-power-on', '--json')).json<{ disks: Disk[] }>();
      const template = ok(await ceso('vm', 'info', TEMPLATE, '--json')).json<{ snapshots: Snapshot[]; disks: Disk[] }>();
      expect(names(template.snapshots)).toEqual(['ceso-linked-base', 'changed', 'ceso-linked-base-2']);
      expect(vm.disks[0]?.parent).not.toBe(templateDisk);
      expect(vm.disks[0]?.parent).toBe(template.disks[0]?.parent);
      expect(ok(await ceso('vm', 'info', 'lc1', '--json')).json<{ disks: Disk[] }>().disks[0]?.parent).toBe(templateDisk);
      ok(await ceso('vm', 'delete', 'lc3', '--yes', '--json'));
    });

    it.runIf(mode === 'esx')('vm clone --linked: plans the base snapshot and the child disk, then makes them', async () => {
      const plan = ok(await ceso('vm', 'clone', 'full1', 'lcc1', '--linked', '--dry-run', '--json')).json<{ plan: { steps: Array<{ id: string }> } }>();
      expect(plan.plan.steps.map((step) => step.id)).toEqual(['snapshot-base', 'make-directory', 'create-vm', 'configure-guest', 'power-on']);
      const vm = ok(await ceso('vm', 'clone', 'full1', 'lcc1', '--linked', '--no-power-on', '--json')).json<{ linked: boolean; disks: Disk[]; markers: Record<string, string> }>();
      expect(vm.linked).toBe(true);
      expect(vm.disks[0]?.parent).toBe('[datastore1] full1/full1.vmdk');
      expect(vm.markers['ceso.clonedFrom']).toBe('full1');
      ok(await ceso('vm', 'delete', 'lcc1', '--yes', '--json'));
      expect(await sim.listFiles()).toContain('full1/full1.vmdk');
    });

    it('refuses to delete the template or its base snapshot while linked clones depend on it, whatever --force says', async () => {
      const result = await ceso('vm', 'delete', TEMPLATE, '--force', '--yes', '--json');
      expect(result.code).toBe(4);
      const error = result.json<{ error: { code: string; details: { dependents: Array<{ name: string }> } } }>().error;
      expect(error.code).toBe('HAS_DEPENDENTS');
      expect(error.details.dependents.map((item) => item.name).sort()).toEqual(['lc1', 'lc2']);
      const snap = await ceso('vm', 'snapshot', 'delete', TEMPLATE, 'ceso-linked-base', '--yes', '--json');
      expect(snap.code).toBe(4);
      expect(snap.json<{ error: { code: string } }>().error.code).toBe('HAS_DEPENDENTS');
      const all = await ceso('vm', 'snapshot', 'delete', TEMPLATE, '--all', '--yes', '--json');
      expect(all.code).toBe(4);
    });

    it('deletes a linked clone without touching the parent, then the template once no child is left', async () => {
      const parentPath = templateDisk.replace(/^\[datastore1\] /, '');
      ok(await ceso('vm', 'delete', 'lc1', '--force', '--yes', '--json'));
      let files = await sim.listFiles();
      expect(files.some((file) => file.startsWith('lc1/'))).toBe(false);
      expect(files).toContain(parentPath);
      expect(ok(await ceso('vm', 'info', 'lc2', '--json')).json<{ disks: Disk[] }>().disks[0]?.parent).toBe(templateDisk);
      ok(await ceso('vm', 'delete', 'lc2', '--yes', '--json'));
      files = await sim.listFiles();
      expect(files).toContain(parentPath);
      ok(await ceso('vm', 'delete', TEMPLATE, '--force', '--yes', '--json'));
    });
  });
}

describe('linked clones over SSH (--via ssh)', { timeout: 240_000 }, () => {
  let sim: Simulator;
  let sshd: SshServer;
  let ws: CesoWorkspace;
  let env: Record<string, string>;
  const ceso = (...args: string[]): Promise<CliResult> => runCli([...args, '--via', 'ssh'], { env, timeoutMs: 120_000 });
  const ok = (result: CliResult): CliResult => {
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    return result;
  };
  let templateDisk: string;

  beforeAll(async () => {
    requireBuiltCli();
    sim = await startSimulator({ mode: 'esx', vms: 1 });
    sshd = await startSshServer({ sim });
    ws = workspace();
    ws.writeConfig(sshConfig(sim, sshd));
    env = { ...ws.env, SIM_PASSWORD: sim.password };
  });
  afterAll(async () => {
    await sshd?.stop();
    await sim?.stop();
    ws?.cleanup();
  });

  it('refuses a --disk larger than the template before anything is made', async () => {
    const template = ok(await ceso('vm', 'info', TEMPLATE, '--json')).json<{ disks: Disk[] }>();
    templateDisk = template.disks[0]?.file ?? '';
    const before = await sim.listFiles();
    const result = await ceso('vm', 'create', 'big1', '--linked', '--disk', String(Math.ceil(template.disks[0]?.capacityGB ?? 0) + 10), '--json');
    expect(result.code).toBe(4);
    expect(result.json<{ error: { hint: string } }>().error.hint).toContain('--add-disk');
    expect(await sim.listFiles()).toEqual(before);
  });

  it('makes linked clones: one base snapshot, a seSparse child naming the parent absolutely, boots with its IP', async () => {
    const vm = ok(await ceso('vm', 'create', 'slc1', '--linked', '--ip', '192.168.1.61/24', '--gateway', '192.168.1.1', '--ssh-key', KEY, '--wait', 'ip', '--json')).json<Json & { disks: Disk[] }>();
    expect(vm).toMatchObject({ name: 'slc1', status: 'running', linked: true, ip: '192.168.1.61', via: 'ssh' });
    expect(vm.disks[0]?.parent).toBe(templateDisk);
    const descriptor = readFileSync(join(sim.datastoreDir, 'slc1/slc1.vmdk'), 'utf8');
    const parentPath = templateDisk.replace(/^\[datastore1\] /, '');
    expect(descriptor).toMatch(/createType="seSparse"/);
    expect(descriptor).toContain(`parentFileNameHint="/vmfs/volumes/datastore1/${parentPath}"`);
    const parentCid = /^CID=(\w+)/m.exec(readFileSync(join(sim.datastoreDir, parentPath), 'utf8'))?.[1];
    expect(descriptor).toContain(`parentCID=${parentCid}`);

    const second = ok(await ceso('vm', 'create', 'slc2', '--linked', '--add-disk', '3', '--no-power-on', '--json')).json<{ disks: Disk[] }>();
    expect(second.disks[0]?.parent).toBe(templateDisk);
    expect(second.disks[1]).toMatchObject({ file: '[datastore1] slc2/slc2_1.vmdk', capacityGB: 3, parent: null });
    const template = ok(await ceso('vm', 'info', TEMPLATE, '--json')).json<{ snapshots: Snapshot[] }>();
    expect(names(template.snapshots)).toEqual(['ceso-linked-base']);
    const list = ok(await ceso('vm', 'list', '--json')).json<Array<{ name: string; linked: boolean }>>();
    expect(Object.fromEntries(list.map((item) => [item.name, item.linked]))).toMatchObject({ slc1: true, slc2: true, [TEMPLATE]: false });
    const files = await sim.listFiles();
    expect(folderBytes(sim, files, 'slc1')).toBeLessThan(folderBytes(sim, files, parentPath.slice(0, parentPath.lastIndexOf('/'))) / 100);
  });

  it('refuses the template and its base snapshot while children exist; deletes children without the parent', async () => {
    const refused = await ceso('vm', 'delete', TEMPLATE, '--force', '--yes', '--json');
    expect(refused.code).toBe(4);
    const error = refused.json<{ error: { code: string; details: { dependents: Array<{ name: string }> } } }>().error;
    expect(error.code).toBe('HAS_DEPENDENTS');
    expect(error.details.dependents.map((item) => item.name)).toEqual(['slc1', 'slc2']);
    const snap = await ceso('vm', 'snapshot', 'delete', TEMPLATE, 'ceso-linked-base', '--yes', '--json');
    expect(snap.code).toBe(4);
    expect(snap.json<{ error: { code: string } }>().error.code).toBe('HAS_DEPENDENTS');

    const parentPath = templateDisk.replace(/^\[datastore1\] /, '');
    ok(await ceso('vm', 'delete', 'slc1', '--force', '--yes', '--json'));
    ok(await ceso('vm', 'delete', 'slc2', '--yes', '--json'));
    const files = await sim.listFiles();
    expect(files.some((file) => file.startsWith('slc1/') || file.startsWith('slc2/'))).toBe(false);
    expect(files).toContain(parentPath);
    ok(await ceso('vm', 'snapshot', 'delete', TEMPLATE, 'ceso-linked-base', '--yes', '--json'));
    ok(await ceso('vm', 'delete', TEMPLATE, '--force', '--yes', '--json'));
  });
});
