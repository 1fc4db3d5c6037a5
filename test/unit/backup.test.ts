// core/backup.ts: names, destinations, references, the manifest and its checks, rotation, and
// the backup plan's order and undo (with a recording host); the SSH path's listing parsers.
import { describe, expect, it } from 'vitest';
import {
  backupProblems,
  buildBackupPlan,
  copyNames,
  inPlaceDiskNames,
  inPlaceVmx,
  newVmVmx,
  parseBackupFolderName,
  parseBackupReference,
  parseDescriptor,
  parseDestination,
  parseManifest,
  pickBackup,
  readBackup,
  renderManifest,
  restoredStem,
  rotation,
  stampOf,
  timeOfStamp,
  type BackupHost,
  type BackupManifest,
  type BackupSnapshots,
  type HostOp,
  type ReadBackup,
} from '../../src/core/backup.js';
import { CesoError } from '../../src/core/errors.js';
import { executePlan } from '../../src/core/plan.js';
import type { VmDetails } from '../../src/core/vm.js';
import { parseLsFiles, parseScan } from '../../src/ssh/ops/backup.js';

const GiB = 1024 ** 3;

function manifest(overrides: Partial<BackupManifest> = {}): BackupManifest {
  return {
    format: 'ceso-backup/1',
    vm: { name: 'web-1', id: 'vm-12', uuid: '4211aaaa-bbbb-cccc-dddd-eeeeffff0000', managed: true },
    time: '2026-12-01T12:00:00.000Z',
    stamp: '20261201T120000Z',
    sourceHost: 'esxi1',
    via: 'api',
    powerState: 'poweredOn',
    snapshot: { name: 'ceso-backup-20261201T120000Z', memory: false, quiesced: false },
    config: { file: 'web-1.vmx', nvram: 'web-1.nvram', vmxPath: '[datastore1] web-1/web-1.vmx', datastore: 'datastore1', cpu: 2, memoryMB: 4096, guestId: 'ubuntu64Guest', firmware: 'efi', annotation: null, nics: [], markers: { 'ceso.managed': 'true' } },
    disks: [{ label: 'Hard disk 1', source: '[datastore1] web-1/web-1.vmdk', file: 'web-1.vmdk', capacityBytes: 20 * GiB, thin: true, bytes: 20 * GiB + 500 }],
    files: [
      { name: 'web-1-flat.vmdk', bytes: 20 * GiB },
      { name: 'web-1.nvram', bytes: 8684 },
      { name: 'web-1.vmdk', bytes: 500 },
      { name: 'web-1.vmx', bytes: 2000 },
    ],
    size: 20 * GiB + 11184,
    ...overrides,
  };
}

const FOLDER = '[datastore1] backups/web-1/web-1-20261201T120000Z';
const DESCRIPTOR = '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="vmfs"\n\n# Extent description\nRW 41943040 VMFS "web-1-flat.vmdk"\n';
const VMX = ['displayName = "web-1"', 'nvram = "web-1.nvram"', 'scsi0.present = "TRUE"', 'scsi0:0.present = "TRUE"', 'scsi0:0.fileName = "web-1.vmdk"', 'ethernet0.present = "TRUE"', 'ethernet0.generatedAddress = "00:0c:29:aa:bb:cc"', 'uuid.bios = "42 11 aa aa"', 'checkpoint.vmState = "web-1.vmss"', ''].join('\n');

function listed(files: Record<string, number>, text: string | null = renderManifest(manifest())): ReadBackup {
  return readBackup({ path: FOLDER, files: new Map(Object.entries(files)), manifestText: text }, 'web-1');
}

const COMPLETE = { 'ceso-backup.json': 900, 'web-1.vmx': 2000, 'web-1.nvram': 8684, 'web-1.vmdk': 500, 'web-1-flat.vmdk': 20 * GiB };

describe('names and places', () => {
  it('stamps are UTC to the second and read back', () => {
    const date = new Date('2026-12-01T12:34:56.789Z');
    expect(stampOf(date)).toBe('20261201T123456Z');
    expect(timeOfStamp('20261201T123456Z')).toBe('2026-12-01T12:34:56.000Z');
    expect(timeOfStamp('20261301T000000Z')).toBeNull();
    expect(timeOfStamp('2026-12-01')).toBeNull();
  });

  it('backup folders are <vm>-<stamp>, VM names with dashes included', () => {
    expect(parseBackupFolderName('web-1-20261201T120000Z')).toEqual({ vm: 'web-1', stamp: '20261201T120000Z' });
    expect(parseBackupFolderName('web-1')).toBeNull();
    expect(parseBackupFolderName('x-20261399T000000Z')).toBeNull();
  });

  it('destinations: "[ds] folder", ds/folder, ds; never .. or an empty part', () => {
    expect(parseDestination('[datastore2] backups')).toEqual({ datastore: 'datastore2', folder: 'backups' });
    expect(parseDestination('[SSD Home] a/b/')).toEqual({ datastore: 'SSD Home', folder: 'a/b' });
    expect(parseDestination('datastore2/backups/ceso')).toEqual({ datastore: 'datastore2', folder: 'backups/ceso' });
    expect(parseDestination('datastore2')).toEqual({ datastore: 'datastore2', folder: '' });
    for (const bad of ['[datastore1] a/../b', '[datastore1] a//b', '', '[] x', 'ds/./x']) expect(() => parseDestination(bad), bad).toThrow(CesoError);
  });

  it('references: a folder path, VM@STAMP, VM@latest', () => {
    expect(parseBackupReference(`${FOLDER}/`)).toEqual({ kind: 'path', path: FOLDER, vm: 'web-1' });
    expect(parseBackupReference('web-1@20261201T120000Z')).toEqual({ kind: 'vm', vm: 'web-1', stamp: '20261201T120000Z' });
    expect(parseBackupReference('web-1@latest')).toEqual({ kind: 'vm', vm: 'web-1', stamp: 'latest' });
    for (const bad of ['web-1', 'web-1@yesterday', '[datastore1] ../x', '@latest']) expect(() => parseBackupReference(bad), bad).toThrow(/expected a backup folder|not a backup folder/);
  });

  it('copies keep their disk’s name, made unique; restores in place get new names without piling up suffixes', () => {
    expect(copyNames(['[ds] a/web.vmdk', '[ds] b/web.vmdk', '[ds] a/web_1.vmdk'])).toEqual(['web.vmdk', 'web-1.vmdk', 'web_1.vmdk']);
    expect(restoredStem('web-1-restored-20261201T120000Z')).toBe('web-1');
    expect(restoredStem('web-1-restored-20261201T120000Z-2')).toBe('web-1');
    const disks = [manifest().disks[0]!, { ...manifest().disks[0]!, file: 'web-1-restored-20261101T000000Z.vmdk' }];
    expect(inPlaceDiskNames(disks, '20261202T000000Z', new Set(['web-1-restored-20261202T000000Z.vmdk']))).toEqual(['web-1-restored-20261202T000000Z-1.vmdk', 'web-1-restored-20261202T000000Z-2.vmdk']);
  });
});

describe('the manifest and what a restore checks', () => {
  it('a valid manifest round-trips; damage is named', () => {
    const text = renderManifest(manifest());
    expect(parseManifest(text)).toEqual({ manifest: manifest() });
    expect(parseManifest(text.slice(0, 50))).toEqual({ problem: expect.stringMatching(/not valid JSON.*damaged or cut short/) });
    expect(parseManifest(JSON.stringify({ ...manifest(), format: 'other/2' }))).toEqual({ problem: expect.stringMatching(/not a ceso backup manifest at format/) });
    expect(parseManifest(JSON.stringify({ ...manifest(), disks: [{ ...manifest().disks[0], file: '../x.vmdk' }] }))).toEqual({ problem: expect.stringMatching(/at disks\.0\.file/) });
  });

  it('a folder is complete only with a valid manifest that describes it', () => {
    expect(listed(COMPLETE)).toMatchObject({ vm: 'web-1', complete: true, problem: null, size: manifest().size, time: '2026-12-01T12:00:00.000Z', stamp: '20261201T120000Z' });
    expect(listed({ 'web-1.vmx': 2000 }, null)).toMatchObject({ vm: 'web-1', complete: false, problem: expect.stringMatching(/no ceso-backup\.json/), size: 2000, time: '2026-12-01T12:00:00.000Z' });
    expect(listed(COMPLETE, renderManifest(manifest({ stamp: '20261201T120001Z' })))).toMatchObject({ complete: false, problem: expect.stringMatching(/describes web-1@20261201T120001Z, not this folder/) });
  });

  it('checks the configuration copy, each descriptor, its extents and its capacity', () => {
    const descriptors = new Map([['web-1.vmdk', DESCRIPTOR]]);
    expect(backupProblems(listed(COMPLETE), descriptors)).toEqual([]);
    const { 'web-1-flat.vmdk': _flat, ...noFlat } = COMPLETE;
    expect(backupProblems(listed(noFlat), descriptors)).toEqual(['the disk web-1.vmdk is damaged: its extent web-1-flat.vmdk is missing']);
    const { 'web-1.vmx': _vmx, 'web-1.vmdk': _disk, ...noVmx } = COMPLETE;
    expect(backupProblems(listed(noVmx), new Map())).toEqual(['the configuration copy web-1.vmx is missing', 'the disk web-1.vmdk (of [datastore1] web-1/web-1.vmdk) is missing']);
    expect(backupProblems(listed(COMPLETE), new Map([['web-1.vmdk', DESCRIPTOR.replace('41943040', '2048')]]))).toEqual(['the disk web-1.vmdk is damaged: it describes 1048576 bytes, the manifest 21474836480']);
    expect(backupProblems(listed(COMPLETE), new Map([['web-1.vmdk', 'garbage']]))).toEqual(['the disk web-1.vmdk is damaged: its descriptor is not a virtual disk descriptor']);
    expect(backupProblems(listed(COMPLETE), new Map([['web-1.vmdk', `${DESCRIPTOR}parentFileNameHint="web-1-base.vmdk"\n`]]))).toEqual(['the disk web-1.vmdk is damaged: it is a delta of web-1-base.vmdk, not a whole disk']);
    expect(parseDescriptor(DESCRIPTOR)).toEqual({ extents: [{ sectors: 41943040, file: 'web-1-flat.vmdk' }], parent: null });
  });

  it('picks the newest complete backup for latest, an exact one by stamp, and says what there is otherwise', () => {
    const older = readBackup({ path: '[datastore1] backups/web-1/web-1-20261101T000000Z', files: new Map(), manifestText: renderManifest(manifest({ stamp: '20261101T000000Z', time: '2026-11-01T00:00:00.000Z' })) }, 'web-1');
    const broken = readBackup({ path: '[datastore1] backups/web-1/web-1-20261215T000000Z', files: new Map(), manifestText: null }, 'web-1');
    const all = [older, listed(COMPLETE), broken];
    expect(pickBackup({ kind: 'vm', vm: 'web-1', stamp: 'latest' }, all, 'x').path).toBe(FOLDER);
    expect(pickBackup({ kind: 'vm', vm: 'web-1', stamp: '20261215T000000Z' }, all, 'x').complete).toBe(false);
    expect(() => pickBackup({ kind: 'vm', vm: 'web-1', stamp: '20200101T000000Z' }, all, 'x')).toThrow(/no backup 20200101T000000Z of web-1 under x/);
    expect(() => pickBackup({ kind: 'vm', vm: 'db', stamp: 'latest' }, all, 'x')).toThrow(expect.objectContaining({ code: 'BACKUP_NOT_FOUND' }));
  });

  it('rotation keeps the newest complete backups, the new one counted, and never removes incomplete folders', () => {
    const backups = ['20261101T000000Z', '20261102T000000Z', '20261103T000000Z'].map((stamp) =>
      readBackup({ path: `[datastore1] backups/web-1/web-1-${stamp}`, files: new Map(), manifestText: renderManifest(manifest({ stamp, time: timeOfStamp(stamp)! })) }, 'web-1'),
    );
    const debris = readBackup({ path: '[datastore1] backups/web-1/web-1-20261001T000000Z', files: new Map(), manifestText: null }, 'web-1');
    const { remove, incomplete } = rotation([...backups, debris], 2);
    expect(remove.map((backup) => backup.stamp)).toEqual(['20261102T000000Z', '20261101T000000Z']);
    expect(incomplete).toEqual([debris]);
    expect(rotation(backups, 5).remove).toEqual([]);
  });

  it('a restore’s .vmx: as a clone for a new VM, the backup’s own (restored disks, no suspend state) in place', () => {
    const fresh = newVmVmx(VMX, manifest(), { name: 'web-2', cpu: 2, memoryMB: 4096, network: 'VM Network', mac: '00:50:56:00:00:01', guestinfo: {}, markers: { 'ceso.managed': 'true', 'ceso.restoredFrom': FOLDER } });
    expect(fresh.problems).toEqual([]);
    expect(fresh.vmx.get('displayName')).toBe('web-2');
    expect(fresh.vmx.get('scsi0:0.fileName')).toBe('web-2.vmdk');
    expect(fresh.vmx.get('uuid.bios')).toBeUndefined();
    expect(fresh.vmx.get('uuid.action')).toBe('create');
    expect(fresh.vmx.get('ethernet0.address')).toBe('00:50:56:00:00:01');
    expect(fresh.vmx.get('ceso.restoredFrom')).toBe(FOLDER);
    const back = inPlaceVmx(VMX, manifest(), ['web-1-restored-20261202T000000Z.vmdk'], 'web-1-restored-20261202T000000Z.nvram');
    expect(back.problems).toEqual([]);
    expect(back.vmx.get('scsi0:0.fileName')).toBe('web-1-restored-20261202T000000Z.vmdk');
    expect(back.vmx.get('nvram')).toBe('web-1-restored-20261202T000000Z.nvram');
    expect(back.vmx.get('uuid.bios')).toBe('42 11 aa aa');
    expect(back.vmx.get('checkpoint.vmState')).toBeUndefined();
    expect(inPlaceVmx(VMX.replace('web-1.vmdk', 'other.vmdk'), manifest(), ['x.vmdk'], null).problems).toEqual([
      'the configuration copy web-1.vmx does not name the disk [datastore1] web-1/web-1.vmdk',
      'the configuration copy names [datastore1] web-1/other.vmdk (scsi0:0), which the backup does not hold',
    ]);
  });
});

describe('the SSH path’s listings', () => {
  it('reads ls -ln (busybox and GNU), names with blanks, only regular files', () => {
    const output = [
      'total 24',
      '-rw-------    1 0        0             2000 Dec  1 12:00 web-1.vmx',
      '-rw-r--r-- 1 0 0 21474836480 Dec  1  2025 web 1-flat.vmdk',
      'drwxr-xr-x    2 0        0              512 Dec  1 12:00 sub',
    ].join('\n');
    expect(parseLsFiles(output)).toEqual(new Map([['web-1.vmx', 2000], ['web 1-flat.vmdk', 21474836480]]));
  });

  it('splits a scan into folders, their files and manifests', () => {
    const n = '@@ceso-0123456789abcdef';
    const output = [`${n} exists`, `${n} dir web-1/web-1-20261201T120000Z`, '-rw-r--r-- 1 0 0 12 Dec  1 12:00 ceso-backup.json', `${n} manifest`, '{"a":', '1}', '', `${n} end`, `${n} dir web-1/debris`, `${n} end`].join('\n');
    expect(parseScan(n, output)).toEqual({
      exists: true,
      folders: [
        { relative: 'web-1/web-1-20261201T120000Z', files: new Map([['ceso-backup.json', 12]]), manifestText: '{"a":\n1}' },
        { relative: 'web-1/debris', files: new Map(), manifestText: null },
      ],
    });
    expect(parseScan(n, `${n} missing\n`)).toEqual({ exists: false, folders: [] });
  });
});

describe('the backup plan', () => {
  const vm = { name: 'web-1', id: 'vm-12', uuid: 'u-1', managed: true, datastore: 'datastore1', cpu: 2, memoryMB: 4096, guestId: 'g', firmware: 'efi', annotation: null, nics: [], markers: {} } as unknown as VmDetails;

  function recordingHost(calls: string[], failOn?: string): BackupHost {
    const op = (label: string): HostOp => ({
      action: { kind: 'ssh', command: label },
      run: async () => {
        calls.push(label);
        if (failOn !== undefined && label.startsWith(failOn)) throw new CesoError('HOST_FAULT', `${label} failed`);
      },
    });
    return {
      via: 'ssh',
      makeFolder: (folder) => op(`mkdir ${folder}`),
      removeFolder: (folder) => op(`rm ${folder}`),
      copyFile: (source, destination) => op(`cp ${source} ${destination}`),
      copyDisk: (source, destination) => op(`copy-disk ${source} ${destination}`),
      deleteDisk: (path) => op(`delete-disk ${path}`),
      deleteFile: (path) => op(`delete ${path}`),
      writeFile: (path) => op(`write ${path}`),
      listBackupFolder: async (folder) => ({ path: folder, files: new Map([['web-1.vmdk', 500], ['web-1-flat.vmdk', 20 * GiB], ['web-1.vmx', 2000]]), manifestText: null }),
    };
  }

  function snapshots(calls: string[]): BackupSnapshots {
    return {
      tree: { vm: { name: 'web-1', id: 'vm-12' }, current: null, snapshots: [] },
      create: async (name) => ({
        plan: {
          operation: 'snapshot create',
          target: 'web-1',
          via: 'ssh',
          warnings: [],
          state: {},
          steps: [{ id: 'create-snapshot', description: `take ${name}`, action: { kind: 'ssh', command: 'snap' }, run: async () => void calls.push(`snapshot ${name}`), undo: { description: 'remove it', run: async () => void calls.push(`undo snapshot ${name}`) } }],
        },
        finish: async () => ({ name: 'web-1', id: 'vm-12', snapshot: { id: '7', name, path: name, description: null, createdAt: null, powerState: 'poweredOff', memory: false, quiesced: false, children: [] } }),
      }),
      remove: async (id) => ({
        plan: { operation: 'snapshot delete', target: 'web-1', via: 'ssh', warnings: [], state: {}, steps: [{ id: 'remove-snapshot', description: 'remove', action: { kind: 'ssh', command: 'rm-snap' }, run: async () => void calls.push(`remove snapshot ${id}`) }] },
        target: { vm: { name: 'web-1', id: 'vm-12' }, deleted: [] },
        finish: async () => ({ name: 'web-1', id: 'vm-12', deleted: [], removedFiles: [], current: null }),
      }),
      removeAction: () => ({ kind: 'ssh', command: 'rm-snap' }),
    };
  }

  const input = (calls: string[], failOn?: string, existing: ReadBackup[] = []) => ({
    request: { vm: { name: 'web-1' }, keep: 2, quiesce: false, memory: false, sourceHost: 'esxi1', now: new Date('2026-12-01T12:00:00Z') },
    source: { vm, powerState: 'poweredOn' as const, disks: [{ file: '[datastore1] web-1/web-1.vmdk', label: null, capacityBytes: 20 * GiB, thin: true, mode: 'persistent' }], vmxPath: '[datastore1] web-1/web-1.vmx', nvramPath: null, usedBytes: 3 * GiB },
    destination: { datastore: 'datastore1', folder: 'backups' },
    freeBytes: 100 * GiB,
    existing,
    vmFolderExists: existing.length > 0,
    host: recordingHost(calls, failOn),
    snapshots: snapshots(calls),
    rereadDisks: { action: { kind: 'ssh' as const, command: 'devices' }, run: async () => ['[datastore1] web-1/web-1.vmdk'] },
  });

  it('runs in ghettoVCB’s order and writes the manifest last', async () => {
    const calls: string[] = [];
    const mutation = await buildBackupPlan(input(calls));
    await executePlan(mutation.plan);
    const folder = '[datastore1] backups/web-1/web-1-20261201T120000Z';
    expect(calls).toEqual([
      `mkdir ${folder}`,
      `cp [datastore1] web-1/web-1.vmx ${folder}/web-1.vmx`,
      'snapshot ceso-backup-20261201T120000Z',
      `copy-disk [datastore1] web-1/web-1.vmdk ${folder}/web-1.vmdk`,
      'remove snapshot 7',
      `write ${folder}/ceso-backup.json`,
    ]);
    const outcome = await mutation.finish();
    expect(outcome).toMatchObject({ snapshot: 'ceso-backup-20261201T120000Z', backup: { path: folder, complete: true, time: '2026-12-01T12:00:00.000Z' }, disks: [{ file: 'web-1.vmdk', bytes: 20 * GiB + 500 }] });
  });

  it('measures each copy by its own descriptor and extents (web.vmdk is not web-1.vmdk)', async () => {
    const base = input([]);
    const host: BackupHost = {
      ...base.host,
      listBackupFolder: async (folder) => ({ path: folder, files: new Map([['web.vmdk', 500], ['web-flat.vmdk', 10], ['web-1.vmdk', 400], ['web-1-flat.vmdk', 20], ['web-1.vmx', 2000]]), manifestText: null }),
    };
    const disks = ['[datastore1] a/web.vmdk', '[datastore1] b/web.vmdk'].map((file) => ({ file, label: null, capacityBytes: GiB, thin: true, mode: 'persistent' }));
    const mutation = await buildBackupPlan({ ...base, host, source: { ...base.source, disks } });
    await executePlan(mutation.plan);
    expect((await mutation.finish()).disks.map((disk) => [disk.file, disk.bytes])).toEqual([['web.vmdk', 510], ['web-1.vmdk', 420]]);
  });

  it('undoes a failed copy: the snapshot and the folder (with the VM’s folder it made) go', async () => {
    const calls: string[] = [];
    const mutation = await buildBackupPlan(input(calls, 'copy-disk'));
    await expect(executePlan(mutation.plan)).rejects.toMatchObject({ code: 'HOST_FAULT', details: { cleanedUp: true, leftovers: [] } });
    expect(calls.slice(-2)).toEqual(['undo snapshot ceso-backup-20261201T120000Z', 'rm [datastore1] backups/web-1']);
  });

  it('refuses a datastore without room for the disks’ used space, and rotation failures never fail the backup', async () => {
    await expect(buildBackupPlan({ ...input([]), freeBytes: GiB })).rejects.toMatchObject({ code: 'INSUFFICIENT_SPACE', details: { neededBytes: 3 * GiB } });
    const old = ['20261101T000000Z', '20261102T000000Z'].map((stamp) =>
      readBackup({ path: `[datastore1] backups/web-1/web-1-${stamp}`, files: new Map(), manifestText: renderManifest(manifest({ vm: { ...manifest().vm, name: 'web-1' }, stamp, time: timeOfStamp(stamp)! })) }, 'web-1'),
    );
    const calls: string[] = [];
    const mutation = await buildBackupPlan(input(calls, 'rm [datastore1] backups/web-1/web-1-20261101', old));
    await executePlan(mutation.plan);
    const outcome = await mutation.finish();
    expect(outcome.removed).toEqual([]);
    expect(outcome.kept).toEqual(['[datastore1] backups/web-1/web-1-20261201T120000Z', '[datastore1] backups/web-1/web-1-20261102T000000Z', '[datastore1] backups/web-1/web-1-20261101T000000Z']);
    expect(outcome.warnings).toEqual([expect.stringMatching(/rotation could not remove: \[datastore1\] backups\/web-1\/web-1-20261101T000000Z/)]);
  });
});
