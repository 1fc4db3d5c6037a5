// Day-2 operations on the test bed as a real ESXi host does them, through the ESXi shell
// emulator over a real sshd (vim-cmd vmsvc/snapshot.*, vmkfstools) and seen by the oracle (an
// independent govmomi reader of the same simulator): snapshots make seSparse deltas that the
// disk backings and the .vmx follow, revert restores the power state, removal merges and deletes
// the delta, removeall brings the disks back on their base files, and vmkfstools refuses to grow
// a disk with a parent or children. The Go tests (sim/snapshots_test.go, sim/reconfig_test.go)
// cover the API side in detail, the reconfigure refusals included.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../support/simulator.js';
import { startSshServer, type SshServer } from '../support/sshd.js';

interface OracleVm {
  name: string;
  id: string;
  powerState: string;
  memoryMB: number;
  ip: string | null;
  disks: { file: string; capacityKB: number; parent?: string }[];
  snapshots: { name: string; id: string; state: string; children: unknown[] }[];
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

describe('day-2 operations on the test bed over SSH', () => {
  let sim: Simulator;
  let ssh: SshServer;
  let id = '';
  let dir = '';
  const name = 'vm-0001'; // powered on
  const sh = async (cmd: string): Promise<{ stdout: string; stderr: string; code: number }> => await ssh.exec(cmd);
  const vm = async (): Promise<OracleVm> => (await sim.oracle<OracleVm | null>('vm', name))!;
  const files = async (): Promise<string[]> =>
    (await sim.listFiles()).filter((f) => f.startsWith(`${name}/`)).map((f) => f.slice(name.length + 1));
  const vmxKey = async (key: string): Promise<string | undefined> => {
    const r = await sh(`cat ${q(`${dir}/${name}.vmx`)}`);
    const line = r.stdout.split('\n').find((l) => l.toLowerCase().startsWith(`${key.toLowerCase()} = `));
    return line === undefined ? undefined : /"(.*)"/.exec(line)?.[1];
  };

  beforeAll(async () => {
    sim = await startSimulator({ mode: 'esx', vms: 2 });
    ssh = await startSshServer({ sim });
    id = (await vm()).id;
    dir = `${sim.volumesRoot}/datastore1/${name}`;
  });

  afterAll(async () => {
    await ssh?.stop();
    await sim?.stop();
  });

  it('snapshot.create makes a delta that the backing, the .vmx and the .vmsd follow', async () => {
    expect(await sh(`vim-cmd vmsvc/snapshot.create ${id} before ${q('before the change')} 1 0`)).toMatchObject({ stdout: 'Create Snapshot:\n', code: 0 });
    expect(await files()).toEqual(expect.arrayContaining([`${name}-000001.vmdk`, `${name}-000001-sesparse.vmdk`, `${name}-Snapshot1.vmsn`, `${name}-Snapshot1.vmem`, `${name}.vmsd`]));
    const desc = (await sh(`cat ${q(`${dir}/${name}-000001.vmdk`)}`)).stdout;
    expect(desc).toContain('createType="seSparse"');
    expect(desc).toContain(`parentFileNameHint="${name}.vmdk"`);
    expect(desc).toMatch(/RW 33554432 SESPARSE "vm-0001-000001-sesparse\.vmdk"/);
    expect(await vmxKey('scsi0:0.fileName')).toBe(`${name}-000001.vmdk`);
    const v = await vm();
    expect(v.disks[0]).toMatchObject({ file: `[datastore1] ${name}/${name}-000001.vmdk`, parent: `[datastore1] ${name}/${name}.vmdk` });
    expect((await sh(`cat ${q(`${dir}/${name}.vmsd`)}`)).stdout).toContain('snapshot.current = "1"');

    // a disk-only snapshot of the running VM is "powered off"
    expect((await sh(`vim-cmd vmsvc/snapshot.create ${id} after`)).code).toBe(0);
    const g = await sh(`vim-cmd vmsvc/snapshot.get ${id}`);
    expect(g.stdout).toMatch(
      /^Get Snapshot:\n\|-ROOT\n--Snapshot Name {8}: before\n--Snapshot Id {10}: 1\n--Snapshot Desciption {2}: before the change\n--Snapshot Created On {2}: \d+\/\d+\/\d{4} \d+:\d\d:\d\d\n--Snapshot State {7}: powered on\n--\|-CHILD\n----Snapshot Name {8}: after\n----Snapshot Id {10}: 2\n----Snapshot Desciption {2}: \n----Snapshot Created On {2}: .+\n----Snapshot State {7}: powered off\n$/,
    );
    expect((await vm()).disks[0]!.file).toBe(`[datastore1] ${name}/${name}-000002.vmdk`);
    expect(await vmxKey('scsi0:0.fileName')).toBe(`${name}-000002.vmdk`);
    // get.snapshotinfo: the vim.vm.SnapshotInfo dump (current snapshot, quiesced)
    const info = await sh(`vim-cmd vmsvc/get.snapshotinfo ${id}`);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/^\(vim\.vm\.SnapshotInfo\) \{\n {3}currentSnapshot = 'vim\.vm\.Snapshot:[^']+', \n {3}rootSnapshotList = \(vim\.vm\.SnapshotTree\) \[\n/);
    expect(info.stdout).toContain('         quiesced = false, \n');
    expect(info.stdout).toContain('               name = "after", \n');
  });

  it('vmkfstools -X refuses a delta and a disk with children', async () => {
    const delta = await sh(`vmkfstools -X 20G ${q(`${dir}/${name}-000002.vmdk`)}`);
    expect(delta.code).not.toBe(0);
    expect(delta.stderr).toMatch(/^Failed to extend disk : .*has parent '.*vm-0001-000001\.vmdk'/);
    const base = await sh(`vmkfstools -X 20G ${q(`${dir}/${name}.vmdk`)}`);
    expect(base.code).not.toBe(0);
    expect(base.stderr).toMatch(/^Failed to extend disk : .*is the parent of/);
    expect((await sh(`stat -c %s ${q(`${dir}/${name}-flat.vmdk`)}`)).stdout.trim()).toBe(String(16 * 1024 ** 3));
  });

  it('snapshot.revert brings a memory snapshot back running, a disk-only one powered off', async () => {
    expect((await sh(`vim-cmd vmsvc/power.off ${id}`)).code).toBe(0);
    expect(await sh(`vim-cmd vmsvc/snapshot.revert ${id} 1 0`)).toMatchObject({ stdout: 'Revert Snapshot:\n', code: 0 });
    expect((await sh(`vim-cmd vmsvc/power.getstate ${id}`)).stdout).toBe('Retrieved runtime info\nPowered on\n');
    let v = await vm();
    expect(v.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(v.disks[0]!.parent).toBe(`[datastore1] ${name}/${name}.vmdk`);
    expect((await sh(`cat ${q(`${dir}/${name}.vmsd`)}`)).stdout).toContain('snapshot.current = "1"');

    expect(await sh(`vim-cmd vmsvc/snapshot.revert ${id} 2 0`)).toMatchObject({ stdout: 'Revert Snapshot:\n', code: 0 });
    expect((await sh(`vim-cmd vmsvc/power.getstate ${id}`)).stdout).toBe('Retrieved runtime info\nPowered off\n');
    v = await vm();
    expect(v.disks[0]!.parent).toBe(`[datastore1] ${name}/${name}-000001.vmdk`);
    // the discarded running points are gone, the snapshot points stay
    const deltas = (await files()).filter((f) => /-\d{6}\.vmdk$/.test(f));
    expect(deltas).toEqual([`${name}-000001.vmdk`, `${name}-000002.vmdk`]);
  });

  it('snapshot.remove merges the delta and deletes it, never the base', async () => {
    const bad = await sh(`vim-cmd vmsvc/snapshot.remove ${id} 42`);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('(vim.fault.NotFound)');
    expect(await sh(`vim-cmd vmsvc/snapshot.remove ${id} 2`)).toMatchObject({ stdout: 'Remove Snapshot:\n', code: 0 });
    const left = await files();
    expect(left).not.toContain(`${name}-000002.vmdk`);
    expect(left).not.toContain(`${name}-000002-sesparse.vmdk`);
    expect(left).not.toContain(`${name}-Snapshot2.vmsn`);
    expect(left).toEqual(expect.arrayContaining([`${name}.vmdk`, `${name}-flat.vmdk`, `${name}-000001.vmdk`, `${name}-Snapshot1.vmsn`]));
    expect(await vmxKey('scsi0:0.fileName')).toBe(`${name}-000001.vmdk`);
    const v = await vm();
    expect(v.snapshots.map((s) => [s.name, s.children.length])).toEqual([['before', 0]]);
    expect((await sh(`vim-cmd vmsvc/snapshot.get ${id}`)).stdout).not.toContain('CHILD');
  });

  it('snapshot.removeall puts the disks back on their base files', async () => {
    expect((await sh(`vim-cmd vmsvc/snapshot.create ${id} third`)).code).toBe(0);
    expect(await sh(`vim-cmd vmsvc/snapshot.removeall ${id}`)).toMatchObject({ stdout: 'Remove All Snapshots:\n', code: 0 });
    expect((await sh(`vim-cmd vmsvc/snapshot.get ${id}`)).stdout).toBe('Get Snapshot:\n');
    const left = await files();
    expect(left.filter((f) => /-\d{6}(-sesparse)?\.vmdk$|\.vmsn$|\.vmem$/.test(f))).toEqual([]);
    expect(left).toEqual(expect.arrayContaining([`${name}.vmdk`, `${name}-flat.vmdk`, `${name}.vmx`]));
    expect(await vmxKey('scsi0:0.fileName')).toBe(`${name}.vmdk`);
    const v = await vm();
    expect(v.disks[0]!.file).toBe(`[datastore1] ${name}/${name}.vmdk`);
    expect(v.disks[0]!.parent).toBeUndefined();
    expect(v.snapshots).toEqual([]);
    // the base grows again once nothing depends on it (the VM is off)
    expect((await sh(`vmkfstools -X 20G ${q(`${dir}/${name}.vmdk`)}`)).code).toBe(0);
    expect((await vm()).disks[0]!.capacityKB).toBe(20 * 1024 * 1024);
  });

  it('vmkfstools -c makes a thin disk', async () => {
    const c = await sh(`vmkfstools -c 2G -d thin ${q(`${dir}/extra.vmdk`)}`);
    expect(c).toMatchObject({ stdout: 'Create: 100% done.\n', code: 0 });
    const desc = (await sh(`cat ${q(`${dir}/extra.vmdk`)}`)).stdout;
    expect(desc).toContain('RW 4194304 VMFS "extra-flat.vmdk"');
    expect(desc).toContain('ddb.thinProvisioned = "1"');
    expect((await sh(`stat -c '%s %b' ${q(`${dir}/extra-flat.vmdk`)}`)).stdout.trim()).toMatch(/^2147483648 \d+$/);
  });
});
