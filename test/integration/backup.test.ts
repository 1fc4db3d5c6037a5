// vm backup, backup list and vm restore end to end: the built CLI against the test bed over
// HTTPS (the API) and over SSH (the real sshd with the ESXi shell emulator), on the datastore's
// real files: a running VM is backed up from a snapshot that is gone afterwards, the copies hold
// the base disk's bytes, rotation keeps --keep backups, a restore makes a new VM with a new
// identity or puts the original back, damaged backups are refused, and an injected fault or a
// Ctrl-C leaves the host as it was. Every JSON output is validated against the generated schema.
// Needs the built CLI and schema/ (npm run build).
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../../src/core/errors.js';
import { ROOT, requireBuiltCli, runCli, sshConfig, workspace, type CesoWorkspace, type CliResult } from '../support/cli.js';
import { startSimulator, type Simulator } from '../support/simulator.js';
import { startSshServer, type SshServer } from '../support/sshd.js';

type Json = Record<string, unknown>;

interface OracleVm {
  name: string;
  id: string;
  uuid: string;
  powerState: string;
  vmxPath: string;
  extraConfig: Record<string, string>;
  disks: Array<{ file: string; capacityKB: number; parent?: string }>;
  nics: Array<{ mac: string; network: string }>;
  snapshots: Array<{ name: string }>;
  guestinfo: { metadata: { parsed: Record<string, unknown> | null } | null };
}

interface BackupResult {
  name: string;
  id: string;
  backup: { vm: string; time: string; size: number; path: string; complete: boolean; problem: null };
  snapshot: string | null;
  disks: Array<{ source: string; file: string; capacityBytes: number; bytes: number }>;
  removed: string[];
  kept: string[];
  warnings: string[];
  via: string;
}

interface Manifest {
  format: string;
  vm: { name: string; id: string; uuid: string | null; managed: boolean };
  time: string;
  stamp: string;
  via: string;
  powerState: string | null;
  snapshot: { name: string; memory: boolean; quiesced: boolean } | null;
  config: { file: string; nvram: string | null; vmxPath: string; cpu: number; memoryMB: number };
  disks: Array<{ source: string; file: string; capacityBytes: number; bytes: number; thin: boolean | null }>;
  files: Array<{ name: string; bytes: number }>;
  size: number;
}

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfA2dC6WcGxPx0sN1yKq0mYkq0X8oZ5yN8dGd1cV2wL backup@example';
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('vm backup, backup list, vm restore', { timeout: 240_000 }, () => {
  let sim: Simulator;
  let sshd: SshServer;
  let ws: CesoWorkspace;
  let env: Record<string, string>;
  const validators = new Map<string, ValidateFunction>();
  let errorValidator: ValidateFunction;

  const ceso = (...args: string[]): Promise<CliResult> => runCli(args, { env, timeoutMs: 120_000 });

  function validate(command: string, output: unknown): void {
    const validator = validators.get(command.replaceAll(' ', '-'));
    expect(validator, `no schema for ${command}`).toBeDefined();
    expect(validator!(output), JSON.stringify(validator!.errors, null, 2)).toBe(true);
  }

  /** Runs `ceso <args> --json`, expects success, validates the output against the command's schema. */
  async function ok<T>(command: string, ...args: string[]): Promise<T> {
    const result = await ceso(...command.split(' '), ...args, '--json');
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    const output = result.json<T>();
    validate(command, output);
    return output;
  }

  async function fails(code: ErrorCode, command: string, ...args: string[]): Promise<{ code: string; message: string; hint?: string; details?: Json }> {
    const result = await ceso(...command.split(' '), ...args, '--json');
    const output = result.json<{ error: { code: string; message: string; hint?: string; details?: Json } }>();
    expect(errorValidator(output), JSON.stringify(errorValidator.errors)).toBe(true);
    expect(output.error.code, `${result.stdout}\n${result.stderr}`).toBe(code);
    expect(result.code).toBe(ERROR_CODES[code].exit);
    return output.error;
  }

  const local = (datastorePath: string): string => {
    const match = /^\[([^\]]+)\] ?(.*)$/.exec(datastorePath);
    if (match === null) throw new Error(`not a datastore path: ${datastorePath}`);
    return join(sim.volumesRoot, match[1] as string, match[2] as string);
  };
  const flatOf = (descriptor: string): string => descriptor.replace(/\.vmdk$/, '-flat.vmdk');
  const vm = (name: string): Promise<OracleVm> => sim.oracle<OracleVm>('vm', name);

  function writeAt(file: string, offset: number, data: Buffer): void {
    const fd = openSync(file, 'r+');
    try {
      writeSync(fd, data, 0, data.length, offset);
    } finally {
      closeSync(fd);
    }
  }

  function readAt(file: string, offset: number, length: number): Buffer {
    const fd = openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, offset);
      return buffer;
    } finally {
      closeSync(fd);
    }
  }

  /** Real data at two places of a VM's base disk (the flat extent on the datastore). */
  async function fillDisk(name: string): Promise<{ file: string; regions: Array<{ offset: number; data: Buffer }> }> {
    const disk = (await vm(name)).disks[0]!;
    const regions = [
      { offset: 0, data: randomBytes(MiB) },
      { offset: 3 * GiB + 4096, data: randomBytes(2 * MiB) },
    ];
    for (const region of regions) writeAt(local(flatOf(disk.file)), region.offset, region.data);
    return { file: disk.file, regions };
  }

  function expectContent(flat: string, regions: Array<{ offset: number; data: Buffer }>): void {
    for (const region of regions) expect(readAt(flat, region.offset, region.data.length).equals(region.data), `${flat} at ${region.offset}`).toBe(true);
  }

  function manifestOf(path: string): Manifest {
    return JSON.parse(readFileSync(join(local(path), 'ceso-backup.json'), 'utf8')) as Manifest;
  }

  const files = (): Promise<string[]> => sim.listFiles();

  beforeAll(async () => {
    requireBuiltCli();
    const schemaDir = join(ROOT, 'schema');
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    const index = JSON.parse(readFileSync(join(schemaDir, 'index.json'), 'utf8')) as { commands: Array<{ id: string }>; error: string };
    for (const { id } of index.commands) validators.set(id, ajv.compile(JSON.parse(readFileSync(join(schemaDir, `${id}.json`), 'utf8')) as Json));
    errorValidator = ajv.compile(JSON.parse(readFileSync(join(schemaDir, index.error), 'utf8')) as Json);
    sim = await startSimulator({ mode: 'esx', vms: 4 });
    sshd = await startSshServer({ sim });
    ws = workspace();
    ws.writeConfig(`${sshConfig(sim, sshd)}backup: {to: "[datastore1] backups", keep: 3}\n`);
    env = { ...ws.env, SIM_PASSWORD: sim.password };
    // vm-0001 and vm-0003 run (hot backups), vm-0002 is off.
    for (const name of ['vm-0001', 'vm-0003']) if ((await vm(name)).powerState !== 'poweredOn') expect((await ceso('vm', 'power', name, 'on')).code).toBe(0);
    if ((await vm('vm-0002')).powerState !== 'poweredOff') expect((await ceso('vm', 'power', 'vm-0002', 'off')).code).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await sshd?.stop();
    await sim?.stop();
    ws?.cleanup();
  });

  describe('over the API', () => {
    let content: Awaited<ReturnType<typeof fillDisk>>;
    let first: BackupResult;

    it('plans a hot backup with --dry-run: the exact calls, nothing made', async () => {
      const before = await files();
      const planned = await ok<{ dryRun: true; plan: { via: string; steps: Array<{ id: string; method?: string; object?: string; arguments?: Json }> } }>('vm backup', 'vm-0001', '--dry-run');
      expect(planned.plan.via).toBe('api');
      const steps = planned.plan.steps;
      expect(steps.map((step) => step.id)).toEqual(['make-folder', 'copy-vmx', 'copy-nvram', 'create-snapshot', 'check-snapshot', 'copy-disk-0', 'remove-snapshot', 'write-manifest']);
      expect(steps.map((step) => step.method)).toEqual(['MakeDirectory', 'CopyDatastoreFile_Task', 'CopyDatastoreFile_Task', 'CreateSnapshot_Task', 'RetrievePropertiesEx', 'CopyVirtualDisk_Task', 'RemoveSnapshot_Task', 'HTTP PUT']);
      expect(steps.find((step) => step.id === 'copy-disk-0')?.arguments).toMatchObject({ sourceName: '[datastore1] vm-0001/vm-0001.vmdk', destSpec: { _type: 'VirtualDiskSpec', diskType: 'thin' } });
      expect(steps.find((step) => step.id === 'create-snapshot')?.arguments).toMatchObject({ name: expect.stringMatching(/^ceso-backup-\d{8}T\d{6}Z$/), memory: false, quiesce: false });
      expect(await files()).toEqual(before);
    });

    it('backs up a running VM: a snapshot for the copy, gone afterwards; the base disk’s bytes in the folder; the manifest last', async () => {
      content = await fillDisk('vm-0001');
      const source = await vm('vm-0001');
      first = await ok<BackupResult>('vm backup', 'vm-0001');
      expect(first).toMatchObject({ name: 'vm-0001', id: source.id, via: 'api', backup: { vm: 'vm-0001', complete: true, problem: null }, removed: [], warnings: [] });
      expect(first.snapshot).toMatch(/^ceso-backup-\d{8}T\d{6}Z$/);
      const stamp = first.snapshot!.slice('ceso-backup-'.length);
      expect(first.backup.path).toBe(`[datastore1] backups/vm-0001/vm-0001-${stamp}`);
      expect(first.kept).toEqual([first.backup.path]);
      // The VM runs on, on its base disk again, without the snapshot or its delta files.
      const after = await vm('vm-0001');
      expect(after.powerState).toBe('poweredOn');
      expect(after.snapshots).toEqual([]);
      expect(after.disks.map((disk) => disk.file)).toEqual(source.disks.map((disk) => disk.file));
      expect(after.disks[0]?.parent ?? '').toBe('');
      expect((await files()).filter((file) => file.startsWith('vm-0001/') && /-\d{6}(-sesparse|-delta)?\.vmdk$|\.vmsn$/.test(file))).toEqual([]);
      // The folder: .vmx, nvram, the disk copied thin with the base disk's bytes, the manifest.
      const folder = local(first.backup.path);
      const listed = (await files()).filter((file) => file.startsWith(`backups/vm-0001/vm-0001-${stamp}/`)).map((file) => file.split('/').pop());
      expect(listed.sort()).toEqual(['ceso-backup.json', 'vm-0001-flat.vmdk', 'vm-0001.nvram', 'vm-0001.vmdk', 'vm-0001.vmx']);
      expectContent(join(folder, 'vm-0001-flat.vmdk'), content.regions);
      expect(statSync(join(folder, 'vm-0001-flat.vmdk')).size).toBe(16 * GiB);
      expect(readFileSync(join(folder, 'vm-0001.vmdk'), 'utf8')).toMatch(/ddb\.thinProvisioned = "1"/);
      const manifest = manifestOf(first.backup.path);
      expect(manifest).toMatchObject({
        format: 'ceso-backup/1',
        vm: { name: 'vm-0001', id: source.id, uuid: source.uuid, managed: false },
        stamp,
        time: first.backup.time,
        via: 'api',
        powerState: 'poweredOn',
        snapshot: { name: first.snapshot, memory: false, quiesced: false },
        config: { file: 'vm-0001.vmx', nvram: 'vm-0001.nvram', vmxPath: source.vmxPath },
        disks: [{ source: '[datastore1] vm-0001/vm-0001.vmdk', file: 'vm-0001.vmdk', capacityBytes: 16 * GiB, thin: true }],
      });
      expect(manifest.time).toBe(new Date(Date.UTC(Number(stamp.slice(0, 4)), Number(stamp.slice(4, 6)) - 1, Number(stamp.slice(6, 8)), Number(stamp.slice(9, 11)), Number(stamp.slice(11, 13)), Number(stamp.slice(13, 15)))).toISOString());
      for (const file of manifest.files) expect(statSync(join(folder, file.name)).size, file.name).toBe(file.bytes);
      expect(manifest.files.map((file) => file.name).sort()).toEqual(['vm-0001-flat.vmdk', 'vm-0001.nvram', 'vm-0001.vmdk', 'vm-0001.vmx']);
      expect(manifest.size).toBe(manifest.files.reduce((sum, file) => sum + file.bytes, 0));
      expect(first.backup.size).toBe(manifest.size);
      expect(first.disks).toEqual([{ source: '[datastore1] vm-0001/vm-0001.vmdk', file: 'vm-0001.vmdk', capacityBytes: 16 * GiB, bytes: manifest.disks[0]!.bytes }]);
      expect(manifest.disks[0]!.bytes).toBe(statSync(join(folder, 'vm-0001.vmdk')).size + statSync(join(folder, 'vm-0001-flat.vmdk')).size);
      // The .vmx copy is the one from before the snapshot: it names the base disk.
      expect(readFileSync(join(folder, 'vm-0001.vmx'), 'utf8')).toMatch(/scsi0:0\.fileName = "vm-0001\.vmdk"/);
    });

    it('copies a powered-off VM without a snapshot', async () => {
      const result = await ok<BackupResult>('vm backup', 'vm-0002', '--quiesce');
      expect(result).toMatchObject({ name: 'vm-0002', snapshot: null, backup: { complete: true } });
      expect(result.warnings).toEqual([expect.stringMatching(/vm-0002 is poweredOff: it is copied without a snapshot, --quiesce does nothing/)]);
      expect(manifestOf(result.backup.path)).toMatchObject({ powerState: 'poweredOff', snapshot: null });
      expect((await vm('vm-0002')).snapshots).toEqual([]);
    });

    it('keeps the newest --keep backups of the VM (default backup.keep), the new one counted', async () => {
      const made = [first.backup.path];
      for (let round = 0; round < 3; round += 1) {
        const result = await ok<BackupResult>('vm backup', 'vm-0001');
        made.unshift(result.backup.path);
        expect(result.kept).toEqual(made.slice(0, 3));
        expect(result.removed).toEqual(round === 2 ? [first.backup.path] : []);
      }
      expect(existsSync(local(first.backup.path))).toBe(false);
      const rotated = await ok<BackupResult>('vm backup', 'vm-0001', '--keep', '2');
      expect(rotated.removed).toEqual(made.slice(1, 3));
      expect(rotated.kept).toEqual([rotated.backup.path, made[0]]);
      const listed = await ok<Array<{ path: string }>>('backup list', '--vm', 'vm-0001');
      expect(listed.map((backup) => backup.path)).toEqual([rotated.backup.path, made[0]]);
      // Rotation is part of the plan.
      const planned = await ok<{ plan: { steps: Array<{ id: string; description: string; method?: string }> } }>('vm backup', 'vm-0001', '--keep', '1', '--dry-run');
      expect(planned.plan.steps.at(-1)).toMatchObject({ id: 'rotate', method: 'DeleteDatastoreFile_Task' });
      expect(planned.plan.steps.at(-1)?.description).toContain(rotated.backup.path);
    });

    it('lists the backups from their manifests, newest first; a folder without a valid manifest is complete=false', async () => {
      const debris = join(sim.datastoreDir, 'backups', 'vm-0001', 'vm-0001-20200101T000000Z');
      mkdirSync(debris, { recursive: true });
      writeFileSync(join(debris, 'vm-0001.vmx'), 'displayName = "vm-0001"\n');
      const damaged = join(sim.datastoreDir, 'backups', 'vm-0002', 'vm-0002-20200101T000000Z');
      mkdirSync(damaged, { recursive: true });
      writeFileSync(join(damaged, 'ceso-backup.json'), '{"format": "ceso-backup/1", "vm": ');
      const listed = await ok<Array<{ vm: string; time: string | null; size: number | null; path: string; complete: boolean; problem: string | null; via: string }>>('backup list');
      expect(listed.every((backup) => backup.via === 'api')).toBe(true);
      const complete = listed.filter((backup) => backup.complete);
      expect(complete.map((backup) => backup.vm).sort()).toEqual(['vm-0001', 'vm-0001', 'vm-0002']);
      expect(listed.map((backup) => backup.time)).toEqual([...listed.map((backup) => backup.time)].sort().reverse());
      for (const backup of complete) expect(backup.size).toBe(manifestOf(backup.path).size);
      expect(listed.find((backup) => backup.path.endsWith('vm-0001-20200101T000000Z'))).toMatchObject({ vm: 'vm-0001', time: '2020-01-01T00:00:00.000Z', complete: false, problem: expect.stringMatching(/no ceso-backup\.json/), size: Buffer.byteLength('displayName = "vm-0001"\n') });
      expect(listed.find((backup) => backup.path.endsWith('vm-0002-20200101T000000Z'))).toMatchObject({ vm: 'vm-0002', complete: false, problem: expect.stringMatching(/not valid JSON/) });
      expect((await ok<Array<{ vm: string }>>('backup list', '--vm', 'vm-0002')).map((backup) => backup.vm)).toEqual(['vm-0002', 'vm-0002']);
      expect(await ok<unknown[]>('backup list', '--vm', 'nobody')).toEqual([]);
      expect(await ok<unknown[]>('backup list', '--to', 'datastore1/elsewhere')).toEqual([]);
      await fails('DATASTORE_NOT_FOUND', 'backup list', '--to', '[nosuch] backups');
      await fails('INVALID_INPUT', 'backup list', '--to', '[datastore1] ../etc');
      rmSync(debris, { recursive: true });
      rmSync(damaged, { recursive: true });
    });

    it('restores a backup as a new VM: new uuid, MAC and instance-id, the backup’s disk bytes, the backup intact', async () => {
      const latest = (await ok<Array<{ path: string; complete: boolean }>>('backup list', '--vm', 'vm-0001')).find((backup) => backup.complete)!;
      const before = (await files()).filter((file) => file.startsWith('backups/'));
      const planned = await ok<{ plan: { steps: Array<{ id: string; method?: string }>; review: Json } }>('vm restore', 'vm-0001@latest', '--name', 'restored1', '--ip', '10.0.0.21/24', '--gateway', '10.0.0.1', '--ssh-key', KEY, '--dry-run');
      expect(planned.plan.steps.map((step) => step.id)).toEqual(['make-folder', 'copy-disk-0', 'copy-nvram', 'write-vmx', 'register-vm', 'configure-guest']);
      expect(planned.plan.steps.map((step) => step.method)).toEqual(['MakeDirectory', 'CopyVirtualDisk_Task', 'CopyDatastoreFile_Task', 'HTTP PUT', 'RegisterVM_Task', 'ReconfigVM_Task']);
      expect(planned.plan.review).toMatchObject({ backup: latest.path, vmx: { displayName: 'restored1', 'uuid.action': 'create' } });
      const restored = await ok<Json & { name: string; uuid: string; nics: Array<{ mac: string }>; backup: string; inPlace: boolean }>(
        'vm restore', 'vm-0001@latest', '--name', 'restored1', '--ip', '10.0.0.21/24', '--gateway', '10.0.0.1', '--ssh-key', KEY, '--power-on',
      );
      expect(restored).toMatchObject({ name: 'restored1', backup: latest.path, inPlace: false, replaced: [], managed: true, status: 'running', via: 'api' });
      const source = await vm('vm-0001');
      const copy = await vm('restored1');
      expect(copy.uuid).not.toBe(source.uuid);
      expect(copy.nics[0]?.mac).not.toBe(source.nics[0]?.mac);
      expect(copy.nics[0]?.mac).toMatch(/^00:50:56:[0-3][0-9a-f]:/);
      const metadata = copy.guestinfo.metadata?.parsed as { 'instance-id': string; 'local-hostname': string; network: { ethernets: { nic0: { match: { macaddress: string }; addresses: string[] } } } };
      expect(metadata['instance-id']).toBe(copy.uuid);
      expect(metadata['local-hostname']).toBe('restored1');
      expect(metadata.network.ethernets.nic0).toMatchObject({ match: { macaddress: copy.nics[0]?.mac }, addresses: ['10.0.0.21/24'] });
      expect(copy.extraConfig).toMatchObject({ 'ceso.managed': 'true', 'ceso.restoredFrom': latest.path });
      expect(copy.disks.map((disk) => disk.file)).toEqual(['[datastore1] restored1/restored1.vmdk']);
      expectContent(local(flatOf(copy.disks[0]!.file)), content.regions);
      expect((await files()).filter((file) => file.startsWith('backups/'))).toEqual(before);
      await fails('VM_EXISTS', 'vm restore', 'vm-0001@latest', '--name', 'restored1');
      expect((await ceso('vm', 'delete', 'restored1', '--force', '--yes')).code).toBe(0);
    });

    it('restores in place: the powered-off original gets the backup’s disks and configuration back, after a confirmation', async () => {
      const backups = await ok<Array<{ path: string }>>('backup list', '--vm', 'vm-0002');
      const path = backups[0]!.path;
      const stamp = path.slice(-16);
      const original = await vm('vm-0002');
      const changed = randomBytes(MiB);
      const before = readAt(local(flatOf(original.disks[0]!.file)), 0, MiB);
      writeAt(local(flatOf(original.disks[0]!.file)), 0, changed);
      await fails('CONFIRMATION_REQUIRED', 'vm restore', `vm-0002@${stamp}`, '--in-place');
      await fails('INVALID_INPUT', 'vm restore', `vm-0002@${stamp}`, '--in-place', '--ip', '10.0.0.5/24', '--yes');
      await fails('INVALID_INPUT', 'vm restore', `vm-0002@${stamp}`);
      const planned = await ok<{ plan: { operation: string; steps: Array<{ id: string }> } }>('vm restore', `vm-0002@${stamp}`, '--in-place', '--dry-run');
      expect(planned.plan).toMatchObject({ operation: 'restore in place' });
      expect(planned.plan.steps.map((step) => step.id)).toEqual(['copy-disk-0', 'copy-nvram', 'write-vmx', 'reload-vm', 'remove-replaced']);
      const restored = await ok<Json & { disks: Array<{ file: string }>; replaced: string[]; inPlace: boolean; uuid: string }>('vm restore', path, '--in-place', '--yes');
      expect(restored).toMatchObject({ name: 'vm-0002', id: original.id, uuid: original.uuid, inPlace: true, backup: path });
      expect(restored.replaced).toEqual([original.disks[0]!.file, '[datastore1] vm-0002/vm-0002.nvram']);
      const after = await vm('vm-0002');
      expect(after.uuid).toBe(original.uuid);
      expect(after.nics[0]?.mac).toBe(original.nics[0]?.mac);
      expect(after.disks).toHaveLength(1);
      expect(after.disks[0]!.file).toMatch(/^\[datastore1\] vm-0002\/vm-0002-restored-\d{8}T\d{6}Z\.vmdk$/);
      expect(readAt(local(flatOf(after.disks[0]!.file)), 0, MiB).equals(before)).toBe(true);
      expect(existsSync(local(original.disks[0]!.file))).toBe(false);
      expect(existsSync(local(flatOf(original.disks[0]!.file)))).toBe(false);
      // The VM can be powered on from the restored disk; in place is refused while it runs.
      expect((await ceso('vm', 'power', 'vm-0002', 'on')).code).toBe(0);
      await fails('INVALID_POWER_STATE', 'vm restore', path, '--in-place', '--yes');
      expect((await ceso('vm', 'power', 'vm-0002', 'off')).code).toBe(0);
      // A second restore from the same backup does not pile up name suffixes.
      const again = await ok<{ disks: Array<{ file: string }> }>('vm restore', path, '--in-place', '--yes');
      expect(again.disks[0]?.file).toMatch(/^\[datastore1\] vm-0002\/vm-0002-restored-\d{8}T\d{6}Z(-\d+)?\.vmdk$/);
    });

    it('refuses what it cannot do, before anything is made', async () => {
      const before = await files();
      await fails('VM_NOT_FOUND', 'vm backup', 'no-such-vm');
      await fails('INVALID_INPUT', 'vm backup', 'vm-0001', '--keep', '0');
      await fails('INVALID_INPUT', 'vm backup', 'vm-0001', '--to', '[datastore1] a/../b');
      await fails('INVALID_INPUT', 'vm backup', 'vm-0001', '--memory', '--quiesce');
      await fails('DATASTORE_NOT_FOUND', 'vm backup', 'vm-0001', '--to', 'datastore9/backups');
      await sim.control('datastore', { freeGB: 0.001 });
      try {
        const space = await fails('INSUFFICIENT_SPACE', 'vm backup', 'vm-0001');
        expect(space.message).toMatch(/datastore "datastore1" has .* free; a backup of vm-0001 needs about 16 GB/);
      } finally {
        await sim.control('reset');
      }
      await fails('BACKUP_NOT_FOUND', 'vm restore', 'vm-0001@20200101T000000Z', '--name', 'r-none');
      await fails('BACKUP_NOT_FOUND', 'vm restore', '[datastore1] backups/vm-0001/vm-0001-20200101T000000Z', '--name', 'r-none');
      await fails('BACKUP_NOT_FOUND', 'vm restore', 'nobody@latest', '--name', 'r-none');
      await fails('INVALID_INPUT', 'vm restore', 'vm-0001', '--name', 'r-none');
      await fails('INVALID_INPUT', 'vm restore', 'vm-0001@latest', '--name', 'bad name');
      expect(await files()).toEqual(before);
    });

    it('refuses a damaged backup naming what is wrong, and leaves it as it is', async () => {
      const backup = (await ok<Array<{ path: string }>>('backup list', '--vm', 'vm-0001'))[0]!;
      const folder = local(backup.path);
      renameSync(join(folder, 'vm-0001-flat.vmdk'), join(folder, 'moved-away'));
      try {
        const error = await fails('BACKUP_DAMAGED', 'vm restore', backup.path, '--name', 'r-damaged');
        expect(error.message).toContain('the disk vm-0001.vmdk is damaged: its extent vm-0001-flat.vmdk is missing');
        expect(error.details).toMatchObject({ backup: backup.path, problems: [expect.stringContaining('vm-0001-flat.vmdk is missing')] });
      } finally {
        renameSync(join(folder, 'moved-away'), join(folder, 'vm-0001-flat.vmdk'));
      }
      const manifest = readFileSync(join(folder, 'ceso-backup.json'), 'utf8');
      writeFileSync(join(folder, 'ceso-backup.json'), manifest.slice(0, 200));
      try {
        expect((await fails('BACKUP_DAMAGED', 'vm restore', backup.path, '--name', 'r-damaged')).message).toMatch(/ceso-backup\.json is not valid JSON/);
      } finally {
        writeFileSync(join(folder, 'ceso-backup.json'), manifest);
      }
      const descriptor = readFileSync(join(folder, 'vm-0001.vmdk'), 'utf8');
      writeFileSync(join(folder, 'vm-0001.vmdk'), descriptor.replace(/RW \d+/, 'RW 2048'));
      try {
        expect((await fails('BACKUP_DAMAGED', 'vm restore', backup.path, '--name', 'r-damaged')).message).toMatch(/vm-0001\.vmdk is damaged: it describes 1048576 bytes, the manifest 17179869184/);
      } finally {
        writeFileSync(join(folder, 'vm-0001.vmdk'), descriptor);
      }
      expect((await vm('vm-0001')).name).toBe('vm-0001');
      expect((await sim.oracle<Array<{ name: string }>>('list')).map((item) => item.name)).not.toContain('r-damaged');
    });

    it('a fault in the middle of the copy leaves the VM as it was: running, no ceso-backup snapshot, no new file', async () => {
      const before = await files();
      await sim.control('fail', { method: 'CopyVirtualDisk_Task', fault: 'NoDiskSpace' });
      const error = await fails('INSUFFICIENT_SPACE', 'vm backup', 'vm-0001');
      expect(error.message).toMatch(/copy disk \[datastore1\] vm-0001\/vm-0001\.vmdk: NoDiskSpace/);
      expect(error).toMatchObject({ hint: 'Everything this run made was removed again', details: { cleanedUp: true, leftovers: [] } });
      expect(await files()).toEqual(before);
      const after = await vm('vm-0001');
      expect(after.powerState).toBe('poweredOn');
      expect(after.snapshots).toEqual([]);
    });

    it('a failed consolidation is retried by the undo; when it keeps failing the error names the snapshot left, and the next backup removes it first', async () => {
      const before = await files();
      await sim.control('fail', { method: 'RemoveSnapshot_Task', fault: 'InvalidState' });
      const once = await fails('CONFLICT', 'vm backup', 'vm-0001');
      expect(once).toMatchObject({ details: { cleanedUp: true, leftovers: [] } });
      expect(await files()).toEqual(before);
      expect((await vm('vm-0001')).snapshots).toEqual([]);

      await sim.control('fail', { method: 'RemoveSnapshot_Task', fault: 'InvalidState', times: -1 });
      let left: string;
      try {
        const always = await fails('CONFLICT', 'vm backup', 'vm-0001');
        expect(always.details).toMatchObject({ cleanedUp: false });
        const leftovers = always.details?.leftovers as string[];
        expect(leftovers).toHaveLength(1);
        left = /snapshot "(ceso-backup-\d{8}T\d{6}Z)"/.exec(leftovers[0] ?? '')?.[1] ?? '';
        expect(left).not.toBe('');
        expect(always.hint).toContain(left);
      } finally {
        await sim.control('reset');
      }
      const stuck = await vm('vm-0001');
      expect(stuck.powerState).toBe('poweredOn');
      expect(stuck.snapshots.map((snapshot) => snapshot.name)).toEqual([left]);
      // Nothing of the backup folder is left; the snapshot is all.
      expect((await files()).filter((file) => !before.includes(file)).every((file) => file.startsWith('vm-0001/'))).toBe(true);
      const next = await ok<BackupResult>('vm backup', 'vm-0001');
      expect(next.warnings).toEqual([expect.stringContaining(`still has the snapshot "${left}"`)]);
      expect(next.disks[0]?.source).toBe('[datastore1] vm-0001/vm-0001.vmdk');
      expect((await vm('vm-0001')).snapshots).toEqual([]);
      expectContent(join(local(next.backup.path), 'vm-0001-flat.vmdk'), content.regions);
    });

    it('Ctrl-C during the disk copy removes the snapshot and the partial folder; the VM keeps running', async () => {
      const before = await files();
      await sim.control('delay', { method: 'CopyVirtualDisk_Task', ms: 4000 });
      let sent = false;
      const result = await runCli(['vm', 'backup', 'vm-0001', '--json', '--log-level', 'info'], {
        env,
        timeoutMs: 90_000,
        onSpawn: (child) => {
          child.stderr?.on('data', (chunk: Buffer) => {
            if (!sent && chunk.toString().includes('copy disk 1/1')) {
              sent = true;
              setTimeout(() => child.kill('SIGINT'), 500);
            }
          });
        },
      });
      await new Promise((resolve) => setTimeout(resolve, 4500));
      await sim.control('reset');
      expect(sent).toBe(true);
      expect(result.code, result.stdout + result.stderr).toBe(8);
      expect(result.json()).toMatchObject({ error: { code: 'INTERRUPTED', details: { cleanedUp: true, leftovers: [] } } });
      expect(await files()).toEqual(before);
      const after = await vm('vm-0001');
      expect(after.powerState).toBe('poweredOn');
      expect(after.snapshots).toEqual([]);
    });

    it('restricted mode: managed VMs only; in place only with allowRestoreInPlace and --yes', async () => {
      const restricted = { ...env, CESO_MODE: 'restricted' };
      const run = async (...args: string[]): Promise<Json> => (await runCli([...args, '--json'], { env: restricted, timeoutMs: 120_000 })).json<Json>();
      expect(await run('vm', 'backup', 'vm-0001')).toMatchObject({ error: { code: 'POLICY_DENIED', details: { rule: 'managedOnly', value: 'vm-0001' } } });
      expect(await run('vm', 'restore', 'vm-0001@latest', '--name', 'agent-x')).toMatchObject({ error: { code: 'POLICY_DENIED', details: { rule: 'managedOnly' } } });
      await sim.oracle('set-extra', 'vm-0002', 'ceso.managed=true');
      const made = (await run('vm', 'backup', 'vm-0002')) as unknown as BackupResult & { mode: string };
      expect(made).toMatchObject({ name: 'vm-0002', mode: 'restricted', backup: { complete: true } });
      expect(await run('vm', 'restore', 'vm-0002@latest', '--in-place')).toMatchObject({ error: { code: 'POLICY_DENIED', details: { rule: 'confirmation' } } });
      expect(await run('vm', 'restore', 'vm-0002@latest', '--in-place', '--yes')).toMatchObject({ error: { code: 'POLICY_DENIED', details: { rule: 'allowRestoreInPlace' } } });
      const restoredNew = await run('vm', 'restore', 'vm-0002@latest', '--name', 'agent-r1');
      expect(restoredNew).toMatchObject({ name: 'agent-r1', managed: true, mode: 'restricted' });
      expect((await ceso('vm', 'delete', 'agent-r1', '--yes')).code).toBe(0);
    });
  });

  describe('over SSH (--via ssh)', () => {
    let content: Awaited<ReturnType<typeof fillDisk>>;
    let made: BackupResult;

    it('plans the exact commands', async () => {
      const planned = await ok<{ plan: { via: string; steps: Array<{ id: string; command?: string }> } }>('vm backup', 'vm-0003', '--via', 'ssh', '--dry-run');
      expect(planned.plan.via).toBe('ssh');
      const commands = Object.fromEntries(planned.plan.steps.map((step) => [step.id, step.command ?? '']));
      expect(commands['make-folder']).toMatch(/^mkdir -p '.*\/datastore1\/backups\/vm-0003\/vm-0003-\d{8}T\d{6}Z'$/);
      expect(commands['create-snapshot']).toMatch(/^vim-cmd vmsvc\/snapshot\.create '[^']+' 'ceso-backup-\d{8}T\d{6}Z' .* '0' '0'$/);
      expect(commands['copy-disk-0']).toMatch(/^vmkfstools -i '.*\/datastore1\/vm-0003\/vm-0003\.vmdk' '.*\/vm-0003\.vmdk' -d thin$/);
      expect(commands['remove-snapshot']).toMatch(/^vim-cmd vmsvc\/snapshot\.remove /);
      expect(commands['write-manifest']).toMatch(/^cat > '.*\.ceso-backup\.json\.ceso-tmp' && mv -f /);
    });

    it('backs up a running VM as the API path does: snapshot gone, base bytes copied, the same manifest', async () => {
      content = await fillDisk('vm-0003');
      const source = await vm('vm-0003');
      made = await ok<BackupResult>('vm backup', 'vm-0003', '--via', 'ssh');
      expect(made).toMatchObject({ name: 'vm-0003', id: source.id, via: 'ssh', backup: { complete: true }, removed: [], warnings: [] });
      expect(made.snapshot).toMatch(/^ceso-backup-/);
      const after = await vm('vm-0003');
      expect(after.snapshots).toEqual([]);
      expect(after.powerState).toBe('poweredOn');
      expect(after.disks.map((disk) => disk.file)).toEqual(source.disks.map((disk) => disk.file));
      expectContent(join(local(made.backup.path), 'vm-0003-flat.vmdk'), content.regions);
      const overSsh = manifestOf(made.backup.path);
      const overApi = manifestOf((await ok<BackupResult>('vm backup', 'vm-0003', '--via', 'api')).backup.path);
      // The same manifest on both paths, but for when, how and what each copy's descriptor weighs.
      const comparable = (manifest: Manifest): Json => {
        const { time: _time, stamp: _stamp, via: _via, snapshot, disks, files: fileList, size: _size, ...rest } = manifest;
        return { ...rest, snapshot: snapshot === null ? null : { ...snapshot, name: snapshot.name.replace(/\d{8}T\d{6}Z$/, '') }, disks: disks.map(({ bytes: _bytes, ...disk }) => disk), files: fileList.map((file) => file.name) };
      };
      expect(comparable(overSsh)).toEqual(comparable(overApi));
      expect(overSsh.via).toBe('ssh');
      // backup list reads the same manifests the same way on both paths.
      const strip = (list: Json[]): Json[] => list.map(({ via: _via, ...rest }) => rest);
      expect(strip(await ok<Json[]>('backup list', '--via', 'ssh'))).toEqual(strip(await ok<Json[]>('backup list', '--via', 'api')));
    });

    it('rotates with --keep over SSH', async () => {
      const list = (): Promise<Array<{ path: string }>> => ok<Array<{ path: string }>>('backup list', '--vm', 'vm-0003', '--via', 'ssh');
      const existing = await list();
      const result = await ok<BackupResult>('vm backup', 'vm-0003', '--via', 'ssh', '--keep', '1');
      expect(result.removed.sort()).toEqual(existing.map((backup) => backup.path).sort());
      expect((await list()).map((backup) => backup.path)).toEqual([result.backup.path]);
      made = result;
    });

    it('restores as a new VM and in place over SSH', async () => {
      const restored = await ok<Json & { name: string; uuid: string; nics: Array<{ mac: string }> }>('vm restore', 'vm-0003@latest', '--name', 'restored-ssh', '--via', 'ssh');
      expect(restored).toMatchObject({ name: 'restored-ssh', via: 'ssh', inPlace: false, backup: made.backup.path, status: 'stopped', managed: true });
      const source = await vm('vm-0003');
      const copy = await vm('restored-ssh');
      expect(copy.uuid).not.toBe(source.uuid);
      expect(copy.nics[0]?.mac).not.toBe(source.nics[0]?.mac);
      const instanceId = (copy.guestinfo.metadata?.parsed as { 'instance-id'?: string } | null)?.['instance-id'];
      expect(instanceId).toMatch(/^[0-9a-f-]{36}$/);
      expect(instanceId).not.toBe((source.guestinfo.metadata?.parsed as { 'instance-id'?: string } | null)?.['instance-id']);
      expectContent(local(flatOf(copy.disks[0]!.file)), content.regions);
      expect((await ceso('vm', 'delete', 'restored-ssh', '--yes', '--via', 'ssh')).code).toBe(0);

      expect((await ceso('vm', 'power', 'vm-0003', 'off', '--via', 'ssh')).code).toBe(0);
      const original = await vm('vm-0003');
      writeAt(local(flatOf(original.disks[0]!.file)), 0, randomBytes(MiB));
      await fails('CONFIRMATION_REQUIRED', 'vm restore', 'vm-0003@latest', '--in-place', '--via', 'ssh');
      const back = await ok<Json & { replaced: string[] }>('vm restore', 'vm-0003@latest', '--in-place', '--yes', '--via', 'ssh');
      expect(back).toMatchObject({ name: 'vm-0003', uuid: original.uuid, inPlace: true, via: 'ssh' });
      expect(back.replaced).toContain(original.disks[0]!.file);
      const after = await vm('vm-0003');
      expect(after.disks[0]!.file).toMatch(/vm-0003-restored-\d{8}T\d{6}Z\.vmdk$/);
      expectContent(local(flatOf(after.disks[0]!.file)), content.regions);
      expect(existsSync(local(flatOf(original.disks[0]!.file)))).toBe(false);
      expect((await ceso('vm', 'power', 'vm-0003', 'on', '--via', 'ssh')).code).toBe(0);
    });

    it('a failed consolidation over SSH is undone: no snapshot, no new file, the VM running', async () => {
      const before = await files();
      await sim.control('fail', { method: 'RemoveSnapshot_Task', fault: 'InvalidState' });
      const error = await fails('CONFLICT', 'vm backup', 'vm-0003', '--via', 'ssh');
      expect(error).toMatchObject({ details: { cleanedUp: true, leftovers: [] } });
      expect(await files()).toEqual(before);
      const after = await vm('vm-0003');
      expect(after.snapshots).toEqual([]);
      expect(after.powerState).toBe('poweredOn');
      await fails('VM_NOT_FOUND', 'vm backup', 'no-such-vm', '--via', 'ssh');
      await fails('BACKUP_NOT_FOUND', 'vm restore', 'vm-0003@20200101T000000Z', '--name', 'r-none', '--via', 'ssh');
    });
  });
});
