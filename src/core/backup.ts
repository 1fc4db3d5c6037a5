/**
 * Hot backup and restore, whichever path carries them out: where backups live and how they are
 * named, the manifest (`ceso-backup.json`) and its validation, rotation, which backup a
 * reference names, and the plans of `vm backup` and `vm restore`, built from a small set of
 * file and disk operations each path provides (`BackupHost`: CopyVirtualDisk_Task /
 * `vmkfstools -i`, MakeDirectory / `mkdir -p`, ...) and from the snapshot plans of
 * core/snapshots.ts, so both paths make the same files in the same order with the same undo.
 *
 * Layout: `<destination>/<vm>/<vm>-<stamp>/` with the VM's `.vmx` (and nvram) as it was before the
 * snapshot, each disk copied thin under its own file name, and `ceso-backup.json`, written LAST:
 * its presence means the backup is complete. `<stamp>` is the UTC time, `20261201T120000Z`.
 */
import * as z from 'zod/mini';
import type { Mutation } from './backend.js';
import { CesoError, invalidInput } from './errors.js';
import type { PlanStep, StepAction } from './plan.js';
import type { SnapshotCreateOutcome, SnapshotDeleteOutcome, SnapshotDeleteTarget, SnapshotTree } from './snapshots.js';
import { buildTree, flatten, type RawSnapshot } from './snapshots.js';
import { cloneRequestFrom, type CloneRequest, type ProvisionFlags } from './requests.js';
import type { DefaultsConfig } from '../config/schema.js';
import { cloneSettings, type ProvisionSettings } from './provisioning.js';
// The .vmx format and the clone's .vmx rules are pure helpers that live with the SSH path.
import { buildCloneVmx, vmxDisks } from '../ssh/ops/clone-vmx.js';
import { VmxFile } from '../ssh/vmx.js';
import { compareText } from './order.js';
import type { PowerState, Via, VmDetails, VmNic, VmSelector, VmSnapshot } from './vm.js';
import { parseDatastorePath } from './vm.js';

export const MANIFEST_FILE = 'ceso-backup.json';
export const MANIFEST_FORMAT = 'ceso-backup/1';
export const SNAPSHOT_PREFIX = 'ceso-backup-';
export const DEFAULT_KEEP = 3;
/** The folder on a datastore used when neither --to nor backup.to names one. */
export const DEFAULT_FOLDER = 'backups';

// ---- names and places -----------------------------------------------------------------------

/** `20261201T120000Z`: the UTC time to the second, usable in file names. */
export function stampOf(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}

const STAMP = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** The ISO time of a stamp, or null when it is not one. */
export function timeOfStamp(stamp: string): string | null {
  const match = STAMP.exec(stamp);
  if (match === null) return null;
  const [, y, mo, d, h, mi, s] = match.map(Number) as [number, number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return Number.isNaN(date.getTime()) || stampOf(date) !== stamp ? null : date.toISOString();
}

export function snapshotNameOf(stamp: string): string {
  return `${SNAPSHOT_PREFIX}${stamp}`;
}

/** A snapshot ceso took for a backup (and removes when the backup ends). */
export function isBackupSnapshot(name: string): boolean {
  return name.startsWith(SNAPSHOT_PREFIX);
}

/** `web1-20261201T120000Z` -> the VM's name and the stamp; null when the name has another form. */
export function parseBackupFolderName(name: string): { vm: string; stamp: string } | null {
  const match = /^(.+)-(\d{8}T\d{6}Z)$/.exec(name);
  if (match === null || timeOfStamp(match[2] as string) === null) return null;
  return { vm: match[1] as string, stamp: match[2] as string };
}

/** Where backups go: a datastore and a folder in it ("" for the datastore's root). */
export interface BackupDestination {
  datastore: string;
  folder: string;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * `[datastore2] backups`, `datastore2/backups` or `datastore2`: the datastore, and a folder whose
 * parts are never empty, `.`, `..` or control characters (ceso removes folders under it).
 */
export function parseDestination(text: string, what = '--to'): BackupDestination {
  const value = text.trim();
  const bracketed = parseDatastorePath(value);
  let datastore: string;
  let folder: string;
  if (bracketed !== null) {
    datastore = bracketed.datastore;
    folder = bracketed.path;
  } else {
    const slash = value.indexOf('/');
    datastore = slash < 0 ? value : value.slice(0, slash);
    folder = slash < 0 ? '' : value.slice(slash + 1);
  }
  folder = folder.replace(/\/+$/, '').replace(/^\/+/, '');
  const bad =
    datastore === '' || datastore.includes('/') || datastore.includes(']') || CONTROL.test(datastore)
      ? 'no datastore (or one whose name holds "/", "]" or control characters)'
      : folder !== '' && !folder.split('/').every((part) => part !== '' && part !== '.' && part !== '..' && !CONTROL.test(part))
        ? 'a folder part that is empty, ".", ".." or holds control characters'
        : undefined;
  if (bad !== undefined) {
    throw invalidInput(`${what} "${text}": ${bad}`, 'Write it as "[datastore2] backups", datastore2/backups or just datastore2');
  }
  return { datastore, folder };
}

export function destinationPath(destination: BackupDestination): string {
  return `[${destination.datastore}] ${destination.folder}`.trimEnd();
}

function join(destination: BackupDestination, ...parts: string[]): string {
  return `[${destination.datastore}] ${[destination.folder, ...parts].filter((part) => part !== '').join('/')}`;
}

/** `<destination>/<vm>`: the VM's backups. */
export function vmBackupsPath(destination: BackupDestination, vm: string): string {
  return join(destination, vm);
}

export function backupPath(destination: BackupDestination, vm: string, stamp: string): string {
  return join(destination, vm, `${vm}-${stamp}`);
}

/** The last part of a datastore path. */
export function baseName(path: string): string {
  const parsed = parseDatastorePath(path);
  const rest = parsed === null ? path : parsed.path;
  return rest.slice(rest.lastIndexOf('/') + 1);
}

/** The datastore path of a folder's parent. */
export function parentPath(path: string): string {
  const parsed = parseDatastorePath(path);
  if (parsed === null || !parsed.path.includes('/')) return `[${parsed?.datastore ?? ''}]`;
  return `[${parsed.datastore}] ${parsed.path.slice(0, parsed.path.lastIndexOf('/'))}`;
}

/** A file inside a folder, as a datastore path. */
export function inFolder(folder: string, file: string): string {
  return /\]$/.test(folder) ? `${folder} ${file}` : `${folder}/${file}`;
}

// ---- the manifest ---------------------------------------------------------------------------

const count = () => z.number().check(z.int(), z.gte(0));

const nicSchema = z.object({ label: z.nullable(z.string()), network: z.nullable(z.string()), mac: z.nullable(z.string()), type: z.nullable(z.string()) });

export const manifestDiskSchema = z.object({
  label: z.nullable(z.string()),
  /** The disk the VM used when the backup began (its base disk, frozen by the snapshot). */
  source: z.string().check(z.minLength(1)),
  /** The copy's descriptor, in the backup folder. */
  file: z.string().check(z.regex(/^[^/]+\.vmdk$/)),
  capacityBytes: count(),
  thin: z.nullable(z.boolean()),
  /** The copy's descriptor and extents, as the datastore lists them. */
  bytes: count(),
});

export const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  vm: z.object({
    name: z.string().check(z.minLength(1)),
    id: z.string(),
    uuid: z.nullable(z.string()),
    managed: z.boolean(),
  }),
  /** ISO time the backup began (the snapshot's point in time). */
  time: z.string(),
  stamp: z.string().check(z.regex(/^\d{8}T\d{6}Z$/)),
  /** The host the VM ran on (the configured API address). */
  sourceHost: z.string(),
  via: z.enum(['api', 'ssh']),
  powerState: z.nullable(z.enum(['poweredOn', 'poweredOff', 'suspended'])),
  /** The snapshot the disks were copied from; null for a VM copied powered off. */
  snapshot: z.nullable(z.object({ name: z.string(), memory: z.boolean(), quiesced: z.boolean() })),
  config: z.object({
    /** The copy of the .vmx in the backup folder. */
    file: z.string().check(z.regex(/^[^/]+\.vmx$/)),
    nvram: z.nullable(z.string().check(z.regex(/^[^/]+$/))),
    vmxPath: z.string(),
    datastore: z.nullable(z.string()),
    cpu: z.nullable(count()),
    memoryMB: z.nullable(count()),
    guestId: z.nullable(z.string()),
    firmware: z.nullable(z.string()),
    annotation: z.nullable(z.string()),
    nics: z.array(nicSchema),
    markers: z.record(z.string(), z.string()),
  }),
  disks: z.array(manifestDiskSchema),
  /** Every file of the backup but the manifest, with its size as the datastore lists it. */
  files: z.array(z.object({ name: z.string(), bytes: count() })),
  /** The sum of `files`. */
  size: count(),
});

export type BackupManifest = z.infer<typeof manifestSchema>;
export type ManifestDisk = z.infer<typeof manifestDiskSchema>;

export function renderManifest(manifest: BackupManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** The manifest in a backup folder, or what is wrong with it. */
export function parseManifest(text: string): { manifest: BackupManifest } | { problem: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return { problem: `${MANIFEST_FILE} is not valid JSON (${error instanceof Error ? error.message : String(error)}): damaged or cut short` };
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '' : ` at ${issue.path.join('.')}`;
    return { problem: `${MANIFEST_FILE} is not a ceso backup manifest${where}: ${issue?.message ?? 'invalid'}` };
  }
  return { manifest: parsed.data };
}

// ---- what is on the datastore -----------------------------------------------------------------

/** One backup folder as a path lists it: its files (name -> bytes) and the manifest's text. */
export interface BackupFolderListing {
  /** The folder, as a datastore path. */
  path: string;
  files: Map<string, number>;
  manifestText: string | null;
}

export interface BackupEntry {
  vm: string;
  /** ISO time the backup began; null when neither the manifest nor the folder's name tells. */
  time: string | null;
  /** Bytes of the backup's files; null when the folder cannot be measured. */
  size: number | null;
  path: string;
  /** Whether the folder holds a valid manifest (written last: the backup finished). */
  complete: boolean;
  /** Why it is not complete; null when it is. */
  problem: string | null;
}

export interface ReadBackup extends BackupEntry {
  manifest: BackupManifest | null;
  files: Map<string, number>;
  stamp: string | null;
}

/** A listed folder as ceso reports it (complete only with a valid manifest that names this folder). */
export function readBackup(listing: BackupFolderListing, vmFromParent: string | null): ReadBackup {
  const name = baseName(listing.path);
  const parsedName = parseBackupFolderName(name);
  let manifest: BackupManifest | null = null;
  let problem: string | null = null;
  if (listing.manifestText === null) {
    problem = listing.files.has(MANIFEST_FILE) ? `${MANIFEST_FILE} cannot be read` : `no ${MANIFEST_FILE}: the backup did not finish (or is not a ceso backup)`;
  } else {
    const parsed = parseManifest(listing.manifestText);
    if ('problem' in parsed) problem = parsed.problem;
    else if (parsedName !== null && (parsed.manifest.stamp !== parsedName.stamp || parsed.manifest.vm.name !== parsedName.vm)) {
      problem = `${MANIFEST_FILE} describes ${parsed.manifest.vm.name}@${parsed.manifest.stamp}, not this folder`;
    } else manifest = parsed.manifest;
  }
  const measured = [...listing.files].filter(([file]) => file !== MANIFEST_FILE).reduce((sum, [, bytes]) => sum + bytes, 0);
  return {
    vm: manifest?.vm.name ?? parsedName?.vm ?? vmFromParent ?? name,
    time: manifest?.time ?? (parsedName === null ? null : timeOfStamp(parsedName.stamp)),
    size: manifest?.size ?? measured,
    path: listing.path,
    complete: manifest !== null,
    problem,
    manifest,
    files: listing.files,
    stamp: manifest?.stamp ?? parsedName?.stamp ?? null,
  };
}

export function entryOf(backup: ReadBackup): BackupEntry {
  const { vm, time, size, path, complete, problem } = backup;
  return { vm, time, size, path, complete, problem };
}

/** Newest first, then by path. */
export function byNewest<T extends { time: string | null; path: string }>(a: T, b: T): number {
  return compareText(b.time ?? '', a.time ?? '') || compareText(a.path, b.path);
}

/**
 * Rotation: after a new complete backup, the VM keeps its newest `keep` complete backups (the new
 * one counted); older complete ones go. Folders without a valid manifest are never removed (a
 * damaged backup is reported, not deleted); they are named in the warnings.
 */
export function rotation(existing: readonly ReadBackup[], keep: number): { remove: ReadBackup[]; incomplete: ReadBackup[] } {
  const complete = existing.filter((backup) => backup.complete).sort(byNewest);
  return { remove: complete.slice(Math.max(0, keep - 1)), incomplete: existing.filter((backup) => !backup.complete) };
}

// ---- naming a backup ------------------------------------------------------------------------

/**
 * What `vm restore BACKUP` accepts: a backup folder as a datastore path
 * (`[datastore1] backups/web1/web1-20261201T120000Z`), `web1@20261201T120000Z`, or `web1@latest`
 * (the newest complete backup of web1 under the destination).
 */
export type BackupReference = { kind: 'path'; path: string; vm: string | null } | { kind: 'vm'; vm: string; stamp: string | 'latest' };

export function parseBackupReference(text: string): BackupReference {
  const value = text.trim();
  const path = parseDatastorePath(value);
  if (path !== null) {
    const folder = path.path.replace(/\/+$/, '');
    if (path.datastore === '' || folder === '' || !folder.split('/').every((part) => part !== '' && part !== '.' && part !== '..' && !CONTROL.test(part))) {
      throw invalidInput(`backup "${text}": not a backup folder on a datastore`, 'Name it as "[datastore1] backups/web1/web1-20261201T120000Z", web1@20261201T120000Z or web1@latest');
    }
    return { kind: 'path', path: `[${path.datastore}] ${folder}`, vm: parseBackupFolderName(baseName(folder))?.vm ?? null };
  }
  const at = value.lastIndexOf('@');
  if (at > 0) {
    const vm = value.slice(0, at);
    const when = value.slice(at + 1);
    if (when === 'latest' || timeOfStamp(when) !== null) return { kind: 'vm', vm, stamp: when };
  }
  throw invalidInput(`backup "${text}": expected a backup folder ("[datastore1] backups/web1/web1-20261201T120000Z"), VM@STAMP (web1@20261201T120000Z) or VM@latest`, 'ceso backup list shows the backups');
}

/** The one backup a reference names among those listed, or BACKUP_NOT_FOUND naming what there is. */
export function pickBackup(reference: BackupReference, backups: readonly ReadBackup[], where: string): ReadBackup {
  const label = reference.kind === 'path' ? reference.path : `${reference.vm}@${reference.stamp}`;
  if (reference.kind === 'path') {
    const found = backups.find((backup) => backup.path === reference.path);
    if (found !== undefined) return found;
    throw new CesoError('BACKUP_NOT_FOUND', `no backup folder ${reference.path}`, { hint: 'ceso backup list shows the backups', details: { backup: label } });
  }
  const ofVm = backups.filter((backup) => backup.vm === reference.vm).sort(byNewest);
  const candidates = reference.stamp === 'latest' ? ofVm.filter((backup) => backup.complete) : ofVm.filter((backup) => backup.stamp === reference.stamp);
  const found = candidates[0];
  if (found === undefined) {
    throw new CesoError('BACKUP_NOT_FOUND', `no ${reference.stamp === 'latest' ? 'complete backup' : `backup ${reference.stamp}`} of ${reference.vm} under ${where}`, {
      hint:
        ofVm.length === 0
          ? `${reference.vm} has no backups there: check --to (or backup.to) and the name; ceso backup list --vm ${reference.vm}`
          : `Its backups: ${ofVm.map((backup) => `${backup.stamp ?? backup.path}${backup.complete ? '' : ' (incomplete)'}`).join(', ')}`,
      details: { backup: label },
    });
  }
  return found;
}

// ---- checking a backup before a restore -------------------------------------------------------

/** The extents a disk descriptor names (`RW 41943040 VMFS "web1-flat.vmdk"`) and its size. */
export function parseDescriptor(text: string): { extents: Array<{ sectors: number; file: string }>; parent: string | null } | null {
  if (!/^\s*#\s*Disk DescriptorFile/im.test(text) && !/^\s*createType\s*=/im.test(text)) return null;
  const extents: Array<{ sectors: number; file: string }> = [];
  for (const line of text.split('\n')) {
    const match = /^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+\S+\s+"([^"]+)"/.exec(line);
    if (match !== null) extents.push({ sectors: Number(match[2]), file: match[3] as string });
  }
  const parent = /^\s*parentFileNameHint\s*=\s*"([^"]*)"/im.exec(text)?.[1] ?? null;
  return { extents, parent: parent === '' ? null : parent };
}

/**
 * What is wrong with a backup a restore would use: the manifest, the .vmx copy, each disk's
 * descriptor (it must describe the recorded capacity, in extents that are all there). Contents
 * are not checksummed. Empty when it is usable.
 */
export function backupProblems(backup: ReadBackup, descriptors: ReadonlyMap<string, string | null>): string[] {
  const { manifest } = backup;
  if (manifest === null) return [backup.problem ?? `no valid ${MANIFEST_FILE}`];
  const problems: string[] = [];
  if (!backup.files.has(manifest.config.file)) problems.push(`the configuration copy ${manifest.config.file} is missing`);
  if (manifest.config.nvram !== null && !backup.files.has(manifest.config.nvram)) problems.push(`the nvram copy ${manifest.config.nvram} is missing`);
  if (manifest.disks.length === 0) problems.push('the manifest lists no disk');
  for (const disk of manifest.disks) {
    if (!backup.files.has(disk.file)) {
      problems.push(`the disk ${disk.file} (of ${disk.source}) is missing`);
      continue;
    }
    const text = descriptors.get(disk.file) ?? null;
    const descriptor = text === null ? null : parseDescriptor(text);
    if (descriptor === null || descriptor.extents.length === 0) {
      problems.push(`the disk ${disk.file} is damaged: its descriptor ${text === null ? 'cannot be read' : 'is not a virtual disk descriptor'}`);
      continue;
    }
    if (descriptor.parent !== null) problems.push(`the disk ${disk.file} is damaged: it is a delta of ${descriptor.parent}, not a whole disk`);
    for (const extent of descriptor.extents) {
      if (extent.file.includes('/') || !backup.files.has(extent.file)) problems.push(`the disk ${disk.file} is damaged: its extent ${extent.file} is missing`);
    }
    const bytes = descriptor.extents.reduce((sum, extent) => sum + extent.sectors * 512, 0);
    if (bytes !== disk.capacityBytes) problems.push(`the disk ${disk.file} is damaged: it describes ${bytes} bytes, the manifest ${disk.capacityBytes}`);
  }
  return problems;
}

export function damagedError(backup: ReadBackup, problems: readonly string[]): CesoError {
  return new CesoError('BACKUP_DAMAGED', `the backup ${backup.path} cannot be restored: ${problems.join('; ')}`, {
    hint: backup.complete ? 'Restore another backup (ceso backup list shows them); this one is left as it is' : 'It did not finish or is not a ceso backup: restore another one (ceso backup list)',
    details: { backup: backup.path, problems: [...problems] },
  });
}

// ---- requests and outcomes -------------------------------------------------------------------

export interface BackupRequest {
  vm: VmSelector;
  /** Where to; undefined: the `backups` folder of the VM's own datastore. */
  destination?: BackupDestination;
  keep: number;
  quiesce: boolean;
  memory: boolean;
  /** The host as the configuration names it (recorded in the manifest). */
  sourceHost: string;
  now?: Date;
}

/** Validates `vm backup`'s flags against the configuration, before anything is asked of the host. */
export function backupRequestFrom(
  vm: VmSelector,
  flags: { to?: string | undefined; keep?: number | undefined; quiesce?: boolean | undefined; memory?: boolean | undefined },
  configured: { to?: string | undefined; keep: number },
  host: { host: string; port: number },
): BackupRequest {
  const destination = flags.to !== undefined ? parseDestination(flags.to, '--to') : configured.to !== undefined ? parseDestination(configured.to, 'backup.to') : undefined;
  if (flags.memory === true && flags.quiesce === true) {
    throw invalidInput('--memory and --quiesce exclude each other: a memory snapshot keeps the running guest as it is, there is nothing to quiesce', 'Pass one of them');
  }
  return {
    vm,
    ...(destination === undefined ? {} : { destination }),
    keep: flags.keep ?? configured.keep,
    quiesce: flags.quiesce === true,
    memory: flags.memory === true,
    sourceHost: host.port === 443 ? host.host : `${host.host}:${host.port}`,
  };
}

/**
 * Validates `vm restore`'s flags before anything is asked of the host: a new VM (--name, with the
 * clone's guest flags) or --in-place (nothing else), and the VMs to lock.
 */
export function restoreRequestFrom(
  backupArgument: string,
  flags: Record<string, unknown> & { 'in-place'?: boolean | undefined; name?: string | undefined; to?: string | undefined; 'power-on'?: boolean | undefined },
  target: { backup: { to?: string | undefined }; defaults: Partial<DefaultsConfig> },
): { request: RestoreRequest; locks: string[] } {
  const reference = parseBackupReference(backupArgument);
  const inPlace = flags['in-place'] === true;
  const newName = flags.name;
  if (!inPlace && newName === undefined) throw invalidInput('say what to restore to: --name NEW (a new VM) or --in-place (the original VM)', 'e.g. ceso vm restore web1@latest --name web1-restored');
  const guestFlagsGiven = ['ip', 'gateway', 'dns', 'domain', 'ssh-key', 'user-data', 'datastore', 'network', 'ttl'].filter((flag) => flags[flag] !== undefined);
  if (inPlace && guestFlagsGiven.length > 0) {
    throw invalidInput(`--in-place restores the VM as it was: ${guestFlagsGiven.map((flag) => `--${flag}`).join(', ')} only apply to a new VM (--name)`);
  }
  const destination = flags.to !== undefined ? parseDestination(flags.to, '--to') : target.backup.to !== undefined ? parseDestination(target.backup.to, 'backup.to') : undefined;
  const source = reference.kind === 'vm' ? reference.vm : (reference.vm ?? 'backup');
  const request: RestoreRequest = {
    backup: reference,
    ...(destination === undefined ? {} : { destination }),
    inPlace,
    ...(newName === undefined ? {} : { newVm: cloneRequestFrom({ name: source }, newName, { ...(flags as ProvisionFlags), 'no-power-on': flags['power-on'] !== true }, target.defaults) }),
  };
  return { request, locks: [...(reference.vm === null ? [] : [reference.vm]), ...(newName === undefined ? [] : [newName])] };
}

export interface BackupOptions {
  /** Called with the VM as planning reads it, before anything is decided (restricted mode's managedOnly). */
  authorize?: (vm: VmDetails) => void;
}

export interface BackupOutcome {
  name: string;
  id: string;
  backup: BackupEntry;
  /** The snapshot the disks were copied from (removed again); null for a VM copied powered off. */
  snapshot: string | null;
  disks: Array<{ source: string; file: string; capacityBytes: number; bytes: number }>;
  /** Older backups removed by rotation. */
  removed: string[];
  /** The VM's complete backups after rotation, newest first. */
  kept: string[];
  warnings: string[];
}

export interface BackupListRequest {
  vm?: string;
  /** undefined: the `backups` folder of every datastore. */
  destination?: BackupDestination;
}

export interface RestoreRequest {
  backup: BackupReference;
  /** Where BACKUP names are looked up (undefined: `backups` on every datastore). */
  destination?: BackupDestination;
  /** A new VM: as a clone of the backed-up VM (new uuid, MAC, instance-id). */
  newVm?: CloneRequest;
  /** The original VM gets the backup's disks and configuration back. */
  inPlace: boolean;
}

export interface RestoreOptions {
  /** Called with the manifest and, in place, the VM, before anything is decided (restricted mode). */
  authorize?: (manifest: BackupManifest, target: VmDetails | null) => void | Promise<void>;
}

/** What a restore replaces, for its confirmation. */
export interface RestoreTarget {
  backup: string;
  vm: { name: string; id: string } | null;
  inPlace: boolean;
  /** In place: the disk files the VM loses. */
  replaced: string[];
}

export type RestoreOutcome = VmDetails & {
  backup: string;
  inPlace: boolean;
  /** In place: the VM's files the backup's replaced (removed); a new VM: []. */
  replaced: string[];
  warnings: string[];
};

// ---- how a path moves files (the building blocks of the plans) -----------------------------

/**
 * The backup a restore's reference names, read and checked (manifest, .vmx copy, descriptors),
 * the same on both paths: `scan` lists the backups under a destination (or every datastore's).
 */
export async function findBackup(
  host: Pick<BackupHost, 'listBackupFolder'> & { readFile(path: string): Promise<string | null> },
  request: RestoreRequest,
  scan: (destination: BackupDestination | undefined, vm: string | undefined) => Promise<ReadBackup[]>,
): Promise<{ backup: ReadBackup & { manifest: BackupManifest }; vmxText: string }> {
  const reference = request.backup;
  let backup: ReadBackup;
  if (reference.kind === 'path') {
    const listing = await host.listBackupFolder(reference.path);
    if (listing === null) throw new CesoError('BACKUP_NOT_FOUND', `no backup folder ${reference.path}`, { hint: 'ceso backup list shows the backups' });
    backup = readBackup(listing, baseName(parentPath(reference.path)));
  } else {
    const found = await scan(request.destination, reference.vm);
    backup = pickBackup(reference, found, request.destination === undefined ? 'the backups folder of any datastore' : destinationPath(request.destination));
  }
  const manifest = backup.manifest;
  if (manifest === null) throw damagedError(backup, backupProblems(backup, new Map()));
  const descriptors = new Map<string, string | null>();
  for (const disk of manifest.disks) if (backup.files.has(disk.file)) descriptors.set(disk.file, await host.readFile(inFolder(backup.path, disk.file)));
  const problems = backupProblems(backup, descriptors);
  const vmxText = backup.files.has(manifest.config.file) ? await host.readFile(inFolder(backup.path, manifest.config.file)) : null;
  if (vmxText === null && problems.length === 0) problems.push(`the configuration copy ${manifest.config.file} cannot be read`);
  if (problems.length > 0) throw damagedError(backup, problems);
  return { backup: { ...backup, manifest }, vmxText: vmxText as string };
}

/** One file or disk operation: what a plan shows, and how to carry it out. */
export interface HostOp {
  action: StepAction;
  run: (progress: (percent: number, detail?: string) => void, signal?: AbortSignal) => Promise<void>;
}

/** The operations a path provides (datastore paths throughout; folders are made with parents). */
export interface BackupHost {
  via: Via;
  makeFolder(folder: string): HostOp;
  removeFolder(folder: string): HostOp;
  copyFile(source: string, destination: string): HostOp;
  /** A thin copy of a disk (descriptor and extents), with progress. */
  copyDisk(source: string, destination: string): HostOp;
  deleteDisk(path: string): HostOp;
  deleteFile(path: string): HostOp;
  writeFile(path: string, content: string): HostOp;
  /** A folder's files with their sizes, and the manifest's text; null when the folder is missing. */
  listBackupFolder(folder: string): Promise<BackupFolderListing | null>;
}

/** The snapshot plans of core/snapshots.ts as a path provides them, for the VM being backed up. */
export interface BackupSnapshots {
  tree: SnapshotTree;
  create(name: string, memory: boolean, quiesce: boolean): Promise<Mutation<SnapshotCreateOutcome>>;
  remove(snapshotId: string): Promise<Mutation<SnapshotDeleteOutcome> & { target: SnapshotDeleteTarget }>;
  /** What a removal of the snapshot to be taken will call, for the plan. */
  removeAction(name: string): StepAction;
}

/** The VM to back up, as planning reads it (before any change). */
export interface BackupSource {
  vm: VmDetails;
  powerState: PowerState | null;
  /** Each disk the VM writes to now, with its exact capacity and mode. */
  disks: Array<{ file: string; label: string | null; capacityBytes: number; thin: boolean | null; mode: string | null }>;
  /** The .vmx and nvram files (datastore paths); nvram null when the VM has none yet. */
  vmxPath: string;
  nvramPath: string | null;
  /** What copying needs (the VM's committed storage; 0 when the host does not say). */
  usedBytes: number;
}

export interface BackupPlanInput {
  request: BackupRequest;
  source: BackupSource;
  destination: BackupDestination;
  /** The destination datastore's free bytes (null: unknown). */
  freeBytes: number | null;
  /** The VM's existing backups there. */
  existing: ReadBackup[];
  /** Whether `<destination>/<vm>` exists already (else a failed backup removes it again). */
  vmFolderExists: boolean;
  host: BackupHost;
  snapshots: BackupSnapshots;
  /** Reads the VM's disks again (after a stale snapshot was removed): the call, and the disk files it gives. */
  rereadDisks: { action: StepAction; run: () => Promise<string[]> };
}

interface BackupState {
  sources: string[];
  snapshotMade?: SnapshotCreateOutcome;
  snapshotRemoved?: boolean;
  listing?: BackupFolderListing;
  manifest?: BackupManifest;
  removed: string[];
  rotationErrors: string[];
}

/** The VM's snapshot tree from its details (vm info reads it anyway): no extra round trip. */
export function treeOf(vm: VmDetails): SnapshotTree {
  const raw = (node: VmSnapshot): RawSnapshot => ({ id: node.id ?? '', name: node.name, description: node.description, createdAt: node.createdAt, state: node.state, quiesced: null, children: node.children.map(raw) });
  const find = (nodes: readonly VmSnapshot[]): string | null => {
    for (const node of nodes) {
      if (node.current) return node.id;
      const below = find(node.children);
      if (below !== null) return below;
    }
    return null;
  };
  return buildTree({ name: vm.name, id: vm.id }, vm.snapshots.map(raw), find(vm.snapshots));
}

/** The copy's file names: each disk under its own name, made unique within the backup. */
export function copyNames(sources: readonly string[]): string[] {
  const used = new Set<string>();
  return sources.map((source) => {
    const base = baseName(source);
    const stem = base.replace(/\.vmdk$/i, '');
    let name = `${stem}.vmdk`;
    for (let index = 1; used.has(name.toLowerCase()); index += 1) name = `${stem}-${index}.vmdk`;
    used.add(name.toLowerCase());
    return name;
  });
}

export function gib(bytes: number): string {
  return `${Math.round((bytes / 1024 ** 3) * 10) / 10} GB`;
}

/**
 * The plan of `vm backup`, as ghettoVCB runs it on free hosts: stale ceso-backup snapshots of a
 * killed run removed first; the folder; the .vmx and nvram copied; a snapshot (a running VM only);
 * each disk the VM wrote to before the snapshot copied thin; the snapshot removed (consolidated);
 * the folder measured and the manifest written last; older backups rotated out. On failure or
 * Ctrl-C the snapshot and the folder are removed again (plan undo); rotation never fails the backup.
 */
export async function buildBackupPlan(input: BackupPlanInput): Promise<Mutation<BackupOutcome>> {
  const { request, source, destination, host, snapshots } = input;
  const { vm } = source;
  if (!Number.isInteger(request.keep) || request.keep < 1) throw invalidInput(`--keep ${request.keep}: expected a whole number of backups, 1 or more`);
  // A stamp no backup folder and no snapshot of the VM has yet (two runs in one second).
  const taken = new Set([...input.existing.map((backup) => backup.stamp), ...flatten(snapshots.tree.snapshots).map((node) => node.name.slice(SNAPSHOT_PREFIX.length))]);
  let now = request.now ?? new Date();
  while (taken.has(stampOf(now))) now = new Date(now.getTime() + 1000);
  const stamp = stampOf(now);
  const folder = backupPath(destination, vm.name, stamp);
  const vmFolder = vmBackupsPath(destination, vm.name);
  const warnings: string[] = [];
  const running = source.powerState === 'poweredOn';
  const stale = flatten(snapshots.tree.snapshots).filter((node) => isBackupSnapshot(node.name));
  if (running) {
    const independent = source.disks.filter((disk) => disk.mode !== null && /^independent/i.test(disk.mode));
    if (independent.length > 0) {
      throw new CesoError('NOT_SUPPORTED', `${vm.name} is running and ${independent.map((disk) => disk.file).join(', ')} ${independent.length === 1 ? 'is an independent disk' : 'are independent disks'}: a snapshot does not freeze ${independent.length === 1 ? 'it' : 'them'}, so no consistent copy can be made while the VM runs`, {
        hint: `Power the VM off for the backup (ceso vm power ${vm.name} shutdown), or make the disk persistent`,
      });
    }
  } else if (request.quiesce || request.memory) {
    warnings.push(`${vm.name} is ${source.powerState ?? 'not running'}: it is copied without a snapshot, ${[request.quiesce ? '--quiesce' : '', request.memory ? '--memory' : ''].filter(Boolean).join(' and ')} ${request.quiesce && request.memory ? 'do' : 'does'} nothing`);
  }
  if (source.disks.length === 0) throw new CesoError('CONFLICT', `${vm.name} has no disk to back up`);
  const provisioned = source.disks.reduce((sum, disk) => sum + disk.capacityBytes, 0);
  const needed = source.usedBytes > 0 ? Math.min(source.usedBytes, provisioned) : provisioned;
  if (input.freeBytes !== null && input.freeBytes < needed) {
    throw new CesoError('INSUFFICIENT_SPACE', `datastore "${destination.datastore}" has ${gib(input.freeBytes)} free; a backup of ${vm.name} needs about ${gib(needed)} (its disks' used space)`, {
      hint: `Free space there (older backups: ceso backup list --vm ${vm.name}), or back up elsewhere with --to`,
      details: { datastore: destination.datastore, freeBytes: input.freeBytes, neededBytes: needed },
    });
  }
  // With a killed run's snapshot the VM writes to its delta (`web1-000001.vmdk`) now; once that is
  // removed, it writes to the base again: the disks are read again then, named after the base.
  const plannedSources = source.disks.map((disk) => (stale.length > 0 ? disk.file.replace(/-\d{6}(\.vmdk)$/i, '$1') : disk.file));
  const names = copyNames(plannedSources);
  const steps: Array<PlanStep<BackupState>> = [];

  // A killed run's snapshot: removed first (consolidating it), so the copies start from the base disks.
  for (const node of stale) {
    warnings.push(`${vm.name} still has the snapshot "${node.name}" (id ${node.id}) of an earlier backup that did not finish: it is removed first`);
    const removal = await snapshots.remove(node.id);
    for (const step of removal.plan.steps) {
      steps.push({
        id: `stale-${step.id}`,
        description: `${step.description} (left by an earlier backup)`,
        action: step.action,
        run: (_state, progress, signal) => step.run(removal.plan.state, progress, signal),
      });
    }
  }

  if (stale.length > 0) {
    steps.push({
      id: 'read-disks',
      description: `read the disks of ${vm.name} again once the earlier snapshot is gone (they are its base disks then)`,
      action: input.rereadDisks.action,
      run: async (state) => {
        const disks = await input.rereadDisks.run();
        if (disks.length !== state.sources.length) throw new CesoError('HOST_FAULT', `${vm.name} has ${disks.length} disk(s) now, ${state.sources.length} when the backup was planned`);
        state.sources = disks;
      },
    });
  }

  const makeFolder = host.makeFolder(folder);
  steps.push({
    id: 'make-folder',
    description: `make the backup folder ${folder}`,
    action: makeFolder.action,
    run: (_state, progress, signal) => makeFolder.run(progress, signal),
    undo: {
      description: `remove the partial backup ${folder}`,
      run: async () => {
        // <destination>/<vm> made by this run holds nothing but this backup (the VM is locked).
        await host.removeFolder(input.vmFolderExists ? folder : vmFolder).run(() => undefined);
      },
    },
  });
  const vmxName = baseName(source.vmxPath);
  const copyVmx = host.copyFile(source.vmxPath, inFolder(folder, vmxName));
  steps.push({
    id: 'copy-vmx',
    description: `copy the configuration ${source.vmxPath} into the backup`,
    action: copyVmx.action,
    run: (_state, progress, signal) => copyVmx.run(progress, signal),
  });
  const nvramName = source.nvramPath === null ? null : baseName(source.nvramPath);
  if (source.nvramPath !== null && nvramName !== null) {
    const copyNvram = host.copyFile(source.nvramPath, inFolder(folder, nvramName));
    steps.push({
      id: 'copy-nvram',
      description: `copy the nvram ${source.nvramPath} into the backup`,
      action: copyNvram.action,
      run: (_state, progress, signal) => copyNvram.run(progress, signal),
    });
  }

  let snapshotName: string | null = null;
  if (running) {
    snapshotName = snapshotNameOf(stamp);
    const created = await snapshots.create(snapshotName, request.memory, request.quiesce);
    warnings.push(...created.plan.warnings);
    const { state: snapshotState } = created.plan;
    for (const step of created.plan.steps) {
      const undo = step.undo;
      steps.push({
        id: step.id,
        description: step.description,
        action: step.action,
        run: async (state, progress, signal) => {
          await step.run(snapshotState, progress, signal);
          if (step === created.plan.steps[created.plan.steps.length - 1]) state.snapshotMade = await created.finish();
        },
        ...(undo === undefined
          ? {}
          : {
              undo: {
                description: undo.description,
                run: async (state: BackupState) => {
                  if (state.snapshotRemoved !== true) await undo.run(snapshotState);
                },
              },
            }),
      });
    }
  }

  source.disks.forEach((disk, index) => {
    const destination = inFolder(folder, names[index] as string);
    const planned = plannedSources[index] as string;
    const copy = host.copyDisk(planned, destination);
    steps.push({
      id: `copy-disk-${index}`,
      description: `copy disk ${index + 1}/${source.disks.length} ${planned} (${gib(disk.capacityBytes)}) to ${destination} (thin)${running ? ', frozen by the snapshot' : ''}`,
      action: copy.action,
      run: async (state, progress, signal) => {
        if (state.sources[index] === planned) {
          await copy.run(progress, signal);
        } else {
          await host.copyDisk(state.sources[index] as string, destination).run(progress, signal);
        }
      },
    });
  });

  if (running && snapshotName !== null) {
    const name = snapshotName;
    steps.push({
      id: 'remove-snapshot',
      description: `remove the snapshot "${name}" of ${vm.name}, consolidating what the VM wrote meanwhile into its disks, and check that none of its files is left`,
      action: snapshots.removeAction(name),
      // Not interrupted: a consolidation the host has begun is waited for.
      run: async (state) => {
        const made = state.snapshotMade;
        if (made === undefined) throw new CesoError('INTERNAL', 'the backup snapshot was not recorded');
        const removal = await snapshots.remove(made.snapshot.id);
        let removed = false;
        try {
          for (const step of removal.plan.steps) {
            await step.run(removal.plan.state, () => undefined);
            if (/^remove-/.test(step.id)) removed = true;
          }
        } catch (error) {
          // Removed but files left: the undo must not try again; the error says what is left.
          if (removed) state.snapshotRemoved = true;
          throw error;
        }
        state.snapshotRemoved = true;
      },
    });
  }

  const manifestPath = inFolder(folder, MANIFEST_FILE);
  const baseManifest = {
    format: MANIFEST_FORMAT,
    vm: { name: vm.name, id: vm.id, uuid: vm.uuid, managed: vm.managed },
    time: timeOfStamp(stamp) ?? now.toISOString(),
    stamp,
    sourceHost: request.sourceHost,
    via: host.via,
    powerState: source.powerState,
    snapshot: snapshotName === null ? null : { name: snapshotName, memory: request.memory, quiesced: request.quiesce },
    config: {
      file: vmxName,
      nvram: nvramName,
      vmxPath: source.vmxPath,
      datastore: vm.datastore,
      cpu: vm.cpu,
      memoryMB: vm.memoryMB,
      guestId: vm.guestId,
      firmware: vm.firmware,
      annotation: vm.annotation,
      nics: vm.nics.map((nic: VmNic) => ({ label: nic.label, network: nic.network, mac: nic.mac, type: nic.type })),
      markers: vm.markers,
    },
  } as const;
  const preview = host.writeFile(manifestPath, '');
  steps.push({
    id: 'write-manifest',
    description: `measure the backup and write ${MANIFEST_FILE} last (its presence marks the backup complete)`,
    action: preview.action,
    run: async (state, progress, signal) => {
      const listing = await host.listBackupFolder(folder);
      if (listing === null) throw new CesoError('HOST_FAULT', `the backup folder ${folder} disappeared`);
      const missing = names.filter((name) => !listing.files.has(name));
      if (missing.length > 0) throw new CesoError('HOST_FAULT', `the copies ${missing.join(', ')} are not in ${folder} after the copy`);
      const files = [...listing.files].filter(([name]) => name !== MANIFEST_FILE).map(([name, bytes]) => ({ name, bytes })).sort((a, b) => compareText(a.name, b.name));
      const disks = source.disks.map((disk, index) => {
        const file = names[index] as string;
        const extent = new RegExp(`^${file.replace(/\.vmdk$/i, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(flat|s\\d{3}|delta|sesparse)\\.vmdk$`, 'i');
        const bytes = files.filter((entry) => entry.name === file || extent.test(entry.name)).reduce((sum, entry) => sum + entry.bytes, 0);
        return { label: disk.label, source: state.sources[index] as string, file, capacityBytes: disk.capacityBytes, thin: disk.thin, bytes };
      });
      const manifest: BackupManifest = { ...baseManifest, config: { ...baseManifest.config, nics: [...baseManifest.config.nics] }, disks, files, size: files.reduce((sum, entry) => sum + entry.bytes, 0) };
      await host.writeFile(manifestPath, renderManifest(manifest)).run(progress, signal);
      state.listing = listing;
      state.manifest = manifest;
    },
  });

  const { remove, incomplete } = rotation(input.existing, request.keep);
  for (const backup of incomplete) {
    warnings.push(`${backup.path} is not a complete backup (${backup.problem ?? 'no manifest'}): rotation leaves it; remove it by hand if it is debris`);
  }
  if (remove.length > 0) {
    const first = host.removeFolder((remove[0] as ReadBackup).path);
    steps.push({
      id: 'rotate',
      description: `keep the newest ${request.keep} backup(s) of ${vm.name}: remove ${remove.map((backup) => backup.path).join(', ')} (each as shown; a failure is reported, the new backup stays)`,
      action: remove.length === 1 ? first.action : { ...first.action, ...(first.action.kind === 'api' ? { arguments: { ...first.action.arguments, name: remove.map((backup) => backup.path) } } : { command: remove.map((backup) => host.removeFolder(backup.path).action).map((action) => (action.kind === 'ssh' ? action.command : '')).join('; ') }) },
      // Never interrupted and never failing: the backup is complete; what could not go is reported.
      run: async (state) => {
        for (const backup of remove) {
          try {
            await host.removeFolder(backup.path).run(() => undefined);
            state.removed.push(backup.path);
          } catch (error) {
            state.rotationErrors.push(`${backup.path}: ${error instanceof Error ? error.message : String(error)}`);
          }
        }
      },
    });
  }

  const state: BackupState = { sources: [...plannedSources], removed: [], rotationErrors: [] };
  const plan = {
    operation: 'backup',
    target: vm.name,
    via: host.via,
    steps,
    review: {
      backup: folder,
      snapshot: snapshotName,
      disks: source.disks.map((disk, index) => ({ source: plannedSources[index] as string, copy: names[index] as string, capacityBytes: disk.capacityBytes })),
      keep: request.keep,
      rotation: remove.map((backup) => backup.path),
    },
    warnings,
    state,
  };
  return {
    plan,
    finish: async () => {
      const manifest = state.manifest;
      if (manifest === undefined) throw new CesoError('INTERNAL', 'the backup plan wrote no manifest');
      const gone = new Set(state.removed);
      const kept = [folder, ...input.existing.filter((backup) => backup.complete && !gone.has(backup.path)).sort(byNewest).map((backup) => backup.path)];
      const outcomeWarnings = [...warnings];
      if (state.rotationErrors.length > 0) outcomeWarnings.push(`rotation could not remove: ${state.rotationErrors.join('; ')}`);
      return {
        name: vm.name,
        id: vm.id,
        backup: { vm: vm.name, time: manifest.time, size: manifest.size, path: folder, complete: true, problem: null },
        snapshot: snapshotName,
        disks: manifest.disks.map((disk) => ({ source: disk.source, file: disk.file, capacityBytes: disk.capacityBytes, bytes: disk.bytes })),
        removed: [...state.removed],
        kept,
        warnings: outcomeWarnings,
      };
    },
  };
}

/** The disks a restore makes: the new file names, and the copy each comes from. */
export function restoreDiskNames(vmName: string, disks: readonly ManifestDisk[]): string[] {
  return disks.map((_disk, index) => `${vmName}${index === 0 ? '' : `_${index}`}.vmdk`);
}

/** A name without the `-restored-<stamp>` an earlier in-place restore gave it. */
export function restoredStem(stem: string): string {
  return stem.replace(/-restored-\d{8}T\d{6}Z(-\d+)?$/, '');
}

/** In place: new names next to the VM's own (never over a file it uses until the switch). */
export function inPlaceDiskNames(disks: readonly ManifestDisk[], stamp: string, taken: ReadonlySet<string>): string[] {
  const used = new Set([...taken].map((name) => name.toLowerCase()));
  return disks.map((disk) => {
    const stem = restoredStem(disk.file.replace(/\.vmdk$/i, ''));
    let name = `${stem}-restored-${stamp}.vmdk`;
    for (let index = 1; used.has(name.toLowerCase()); index += 1) name = `${stem}-restored-${stamp}-${index}.vmdk`;
    used.add(name.toLowerCase());
    return name;
  });
}

// ---- restore ----------------------------------------------------------------------------------

/** How a path registers, configures, powers on, reloads and reads the VM a restore makes. */
export interface RestoreVmOps {
  /** Registers a .vmx as a new VM; resolves its id. */
  register(vmxPath: string, name: string): { action: StepAction; run: () => Promise<string> };
  /** Powers off and destroys a VM with its files (the undo of a registration). */
  destroy(id: string): Promise<void>;
  /**
   * After the registration, what the guest needs that only then is known (the API writes the
   * cloud-init guestinfo with the VM's uuid as instance-id); null when the .vmx holds it all (SSH).
   */
  configureGuest: ((id: () => string) => HostOp) | null;
  powerOn(id: () => string): HostOp;
  /** Makes the host read the VM's .vmx again. */
  reload(id: string): HostOp;
  getVm(id: string): Promise<VmDetails>;
}

export interface NewVmRestore {
  name: string;
  /** The new VM's folder, `[ds] NAME`. */
  folder: string;
  /** The new .vmx (identity removed, new MAC, cloud-init), as text. */
  vmx: string;
  /** What the plan shows of the new .vmx (guestinfo summarised). */
  vmxReview: Record<string, string>;
  powerOn: boolean;
  cloudInit: Record<string, unknown>;
}

export interface InPlaceRestore {
  vm: VmDetails;
  /** The VM's .vmx now (put back if the restore fails). */
  currentVmx: string;
  vmxPath: string;
  /** The new .vmx: the backup's, naming the restored disks and nvram. */
  vmx: string;
  /** Restored file names in the VM's folder, in the manifest's disk order; the nvram's. */
  diskNames: string[];
  nvramName: string | null;
  /** The VM's disks and nvram now: removed once it runs on the restored ones. */
  oldDisks: string[];
  oldNvram: string | null;
}

export interface RestorePlanInput {
  backup: ReadBackup & { manifest: BackupManifest };
  host: BackupHost;
  vmOps: RestoreVmOps;
  newVm?: NewVmRestore;
  inPlace?: InPlaceRestore;
  warnings: string[];
}

interface RestoreState {
  id?: string;
  removed: string[];
  cleanupErrors: string[];
}

/** The plan of `vm restore`: a new VM from the backup's copies, or the original VM switched onto them. */
export function buildRestorePlan(input: RestorePlanInput): Mutation<RestoreOutcome> & { target: RestoreTarget } {
  const { backup, host, vmOps } = input;
  const { manifest } = backup;
  const steps: Array<PlanStep<RestoreState>> = [];
  const state: RestoreState = { removed: [], cleanupErrors: [] };
  const idOf = (): string => {
    if (state.id === undefined) throw new CesoError('INTERNAL', 'the restored VM was not registered');
    return state.id;
  };
  const fromBackup = (file: string): string => inFolder(backup.path, file);
  let target: RestoreTarget;
  let review: Record<string, unknown>;
  if (input.newVm !== undefined) {
    const spec = input.newVm;
    const names = restoreDiskNames(spec.name, manifest.disks);
    const make = host.makeFolder(spec.folder);
    steps.push({
      id: 'make-folder',
      description: `make the folder ${spec.folder}`,
      action: make.action,
      run: (_state, progress, signal) => make.run(progress, signal),
      undo: { description: `remove the folder ${spec.folder}`, run: () => host.removeFolder(spec.folder).run(() => undefined) },
    });
    manifest.disks.forEach((disk, index) => {
      const destination = inFolder(spec.folder, names[index] as string);
      const copy = host.copyDisk(fromBackup(disk.file), destination);
      steps.push({
        id: `copy-disk-${index}`,
        description: `copy disk ${index + 1}/${manifest.disks.length} ${fromBackup(disk.file)} (${gib(disk.capacityBytes)}) to ${destination} (thin; the backup stays)`,
        action: copy.action,
        run: (_state, progress, signal) => copy.run(progress, signal),
      });
    });
    if (manifest.config.nvram !== null) {
      const copy = host.copyFile(fromBackup(manifest.config.nvram), inFolder(spec.folder, `${spec.name}.nvram`));
      steps.push({ id: 'copy-nvram', description: `copy the nvram into ${spec.folder}`, action: copy.action, run: (_state, progress, signal) => copy.run(progress, signal) });
    }
    const vmxPath = inFolder(spec.folder, `${spec.name}.vmx`);
    const write = host.writeFile(vmxPath, spec.vmx);
    steps.push({
      id: 'write-vmx',
      description: `write ${spec.name}.vmx: the backup's configuration with a new name, disks, MAC and cloud-init, its identity removed (under review.vmx)`,
      action: write.action,
      run: (_state, progress, signal) => write.run(progress, signal),
    });
    const register = vmOps.register(vmxPath, spec.name);
    steps.push({
      id: 'register-vm',
      description: `register ${spec.name} (the host makes its new BIOS uuid: uuid.action = "create")`,
      action: register.action,
      run: async (current) => {
        current.id = await register.run();
      },
      undo: {
        description: `destroy the VM ${spec.name} and its files`,
        run: async (current) => {
          if (current.id !== undefined) await vmOps.destroy(current.id);
        },
      },
    });
    const configure = vmOps.configureGuest?.(idOf);
    if (configure !== undefined) {
      steps.push({
        id: 'configure-guest',
        description: 'write cloud-init guestinfo (instance-id = the new uuid, NIC matched by its MAC)',
        action: configure.action,
        run: (_state, progress, signal) => configure.run(progress, signal),
      });
    }
    if (spec.powerOn) {
      const on = vmOps.powerOn(idOf);
      steps.push({ id: 'power-on', description: `power on ${spec.name}`, action: on.action, run: (_state, progress, signal) => on.run(progress, signal) });
    }
    target = { backup: backup.path, vm: null, inPlace: false, replaced: [] };
    review = { backup: backup.path, of: `${manifest.vm.name}@${manifest.stamp}`, cloudInit: spec.cloudInit, vmx: spec.vmxReview };
  } else if (input.inPlace !== undefined) {
    const spec = input.inPlace;
    const folder = parentPath(spec.vmxPath);
    state.id = spec.vm.id;
    manifest.disks.forEach((disk, index) => {
      const destination = inFolder(folder, spec.diskNames[index] as string);
      const copy = host.copyDisk(fromBackup(disk.file), destination);
      steps.push({
        id: `copy-disk-${index}`,
        description: `copy disk ${index + 1}/${manifest.disks.length} ${fromBackup(disk.file)} (${gib(disk.capacityBytes)}) to ${destination} (thin), next to the disks ${spec.vm.name} uses now`,
        action: copy.action,
        run: (_state, progress, signal) => copy.run(progress, signal),
        undo: { description: `delete the restored disk ${destination}`, run: () => host.deleteDisk(destination).run(() => undefined) },
      });
    });
    if (manifest.config.nvram !== null && spec.nvramName !== null) {
      const destination = inFolder(folder, spec.nvramName);
      const copy = host.copyFile(fromBackup(manifest.config.nvram), destination);
      steps.push({
        id: 'copy-nvram',
        description: `copy the backup's nvram to ${destination}`,
        action: copy.action,
        run: (_state, progress, signal) => copy.run(progress, signal),
        undo: { description: `delete ${destination}`, run: () => host.deleteFile(destination).run(() => undefined) },
      });
    }
    const write = host.writeFile(spec.vmxPath, spec.vmx);
    steps.push({
      id: 'write-vmx',
      description: `put the backup's configuration in ${spec.vmxPath}, naming the restored disks`,
      action: write.action,
      run: (_state, progress, signal) => write.run(progress, signal),
      undo: {
        description: `put the previous configuration back in ${spec.vmxPath} and reload it`,
        run: async () => {
          await host.writeFile(spec.vmxPath, spec.currentVmx).run(() => undefined);
          await vmOps.reload(spec.vm.id).run(() => undefined);
        },
      },
    });
    const reload = vmOps.reload(spec.vm.id);
    steps.push({ id: 'reload-vm', description: `make the host read the configuration of ${spec.vm.name} again`, action: reload.action, run: (_state, progress, signal) => reload.run(progress, signal) });
    const old = [...spec.oldDisks.map((file) => ({ file, disk: true })), ...(spec.oldNvram === null || spec.nvramName === null ? [] : [{ file: spec.oldNvram, disk: false }])];
    if (old.length > 0) {
      const first = old[0] as { file: string; disk: boolean };
      const firstOp = first.disk ? host.deleteDisk(first.file) : host.deleteFile(first.file);
      steps.push({
        id: 'remove-replaced',
        description: `remove what the backup replaced: ${old.map((item) => item.file).join(', ')} (a failure is reported, the restored VM stays)`,
        action: firstOp.action,
        run: async (current) => {
          for (const item of old) {
            try {
              await (item.disk ? host.deleteDisk(item.file) : host.deleteFile(item.file)).run(() => undefined);
              current.removed.push(item.file);
            } catch (error) {
              current.cleanupErrors.push(`${item.file}: ${error instanceof Error ? error.message : String(error)}`);
            }
          }
        },
      });
    }
    target = { backup: backup.path, vm: { name: spec.vm.name, id: spec.vm.id }, inPlace: true, replaced: old.map((item) => item.file) };
    review = { backup: backup.path, of: `${manifest.vm.name}@${manifest.stamp}`, disks: manifest.disks.map((disk, index) => ({ from: fromBackup(disk.file), to: inFolder(folder, spec.diskNames[index] as string) })), replaced: target.replaced };
  } else {
    throw new CesoError('INTERNAL', 'a restore needs --name or --in-place');
  }
  const name = input.newVm?.name ?? input.inPlace?.vm.name ?? manifest.vm.name;
  return {
    plan: { operation: input.inPlace === undefined ? 'restore' : 'restore in place', target: name, via: host.via, steps, review, warnings: input.warnings, state },
    target,
    finish: async () => {
      const vm = await vmOps.getVm(idOf());
      const warnings = [...input.warnings];
      if (state.cleanupErrors.length > 0) warnings.push(`could not remove what the backup replaced: ${state.cleanupErrors.join('; ')}`);
      return { ...vm, backup: backup.path, inPlace: input.inPlace !== undefined, replaced: [...state.removed], warnings };
    },
  };
}

/**
 * The new .vmx of a restore as a new VM: the backup's configuration as `vm clone` makes one
 * (ssh/ops/clone-vmx.ts: identity keys removed, uuid.action = create, one NIC with the MAC ceso
 * chose, the new name, disks, guestinfo and markers), and the disks matched to the manifest.
 */
export function newVmVmx(backupVmx: string, manifest: BackupManifest, spec: { name: string; cpu: number; memoryMB: number; network: string; mac: string; guestinfo: Record<string, string>; markers: Record<string, string> }): { vmx: VmxFile; problems: string[] } {
  const source = VmxFile.parse(backupVmx);
  const { devices, problems } = diskDevices(source, manifest);
  const names = restoreDiskNames(spec.name, manifest.disks);
  const vmx = buildCloneVmx(source, {
    name: spec.name,
    cpu: spec.cpu,
    memoryMB: spec.memoryMB,
    disks: devices.map((device, index) => ({ device, fileName: names[index] as string })),
    network: spec.network,
    mac: spec.mac,
    guestinfo: spec.guestinfo,
    markers: spec.markers,
  });
  vmx.deleteWhere((key) => /^ceso\.clonedFrom$/i.test(key));
  for (const [key, value] of Object.entries(spec.markers)) vmx.set(key, value);
  return { vmx, problems };
}

/** In place: the backup's .vmx naming the restored disks and nvram, without a suspend state. */
export function inPlaceVmx(backupVmx: string, manifest: BackupManifest, diskNames: readonly string[], nvramName: string | null): { vmx: VmxFile; problems: string[] } {
  const vmx = VmxFile.parse(backupVmx);
  const { devices, problems } = diskDevices(vmx, manifest);
  devices.forEach((device, index) => vmx.set(`${device}.fileName`, diskNames[index] as string));
  if (nvramName !== null) vmx.set('nvram', nvramName);
  vmx.deleteWhere((key) => /^checkpoint\.vmState$/i.test(key));
  return { vmx, problems };
}

/** The .vmx device (`scsi0:0`) of each manifest disk, by the file it named when the backup began. */
function diskDevices(vmx: VmxFile, manifest: BackupManifest): { devices: string[]; problems: string[] } {
  const problems: string[] = [];
  let named: Array<{ device: string; file: string }> = [];
  try {
    named = vmxDisks(vmx, manifest.config.vmxPath);
  } catch (error) {
    problems.push(`the configuration copy names a disk off any datastore (${error instanceof Error ? error.message : String(error)})`);
  }
  const devices = manifest.disks.map((disk) => {
    const match = named.find((entry) => entry.file === disk.source);
    if (match === undefined) problems.push(`the configuration copy ${manifest.config.file} does not name the disk ${disk.source}`);
    return match?.device ?? '';
  });
  for (const entry of named) {
    if (!manifest.disks.some((disk) => disk.source === entry.file)) problems.push(`the configuration copy names ${entry.file} (${entry.device}), which the backup does not hold`);
  }
  return { devices, problems };
}

/** A plan-time restore with the settings `vm clone` would use (sizes and user data of the backed-up VM). */
export function restoreSettings(request: CloneRequest, manifest: BackupManifest, backupVmx: string, backupPath: string): ProvisionSettings {
  const vmx = VmxFile.parse(backupVmx);
  const settings = cloneSettings(
    request,
    {
      name: manifest.vm.name,
      cpu: manifest.config.cpu ?? 1,
      memoryMB: manifest.config.memoryMB ?? 1024,
      disks: manifest.disks.map((disk) => ({ capacityKB: Math.ceil(disk.capacityBytes / 1024) })),
    },
    vmx,
  );
  const markers = { ...settings.markers };
  delete markers['ceso.clonedFrom'];
  markers['ceso.restoredFrom'] = backupPath;
  return { ...settings, markers };
}

/** In place: the VM must be the backed-up one, powered off, without snapshots. */
export function assertRestorable(vm: VmDetails, manifest: { vm: { name: string; uuid: string | null }; stamp: string }): void {
  if (manifest.vm.uuid !== null && vm.uuid !== null && manifest.vm.uuid !== vm.uuid) {
    throw new CesoError('CONFLICT', `${vm.name} (uuid ${vm.uuid}) is not the VM the backup was made of (uuid ${manifest.vm.uuid})`, {
      hint: `Restore the backup as a new VM instead: ceso vm restore ${manifest.vm.name}@${manifest.stamp} --name NEW`,
    });
  }
  if (vm.powerState !== 'poweredOff') {
    throw new CesoError('INVALID_POWER_STATE', `${vm.name} is ${vm.powerState ?? 'in an unknown state'}; a restore in place needs it powered off`, { hint: `Power it off first: ceso vm power ${vm.name} shutdown` });
  }
  if (vm.snapshots.length > 0) {
    throw new CesoError('CONFLICT', `${vm.name} has snapshots: their delta disks would outlive the disks a restore replaces`, { hint: `Delete them first (ceso vm snapshot delete ${vm.name} --all), or restore as a new VM with --name` });
  }
}

/** The in-place part of a restore plan: new file names next to the VM's, its .vmx rewritten. */
export function inPlaceSpec(vm: VmDetails, vmxPath: string, currentVmx: string, files: ReadonlyMap<string, number>, backup: ReadBackup & { manifest: BackupManifest }, backupVmx: string, now = new Date()): InPlaceRestore {
  const { manifest } = backup;
  const stamp = stampOf(now);
  const folder = parentPath(vmxPath);
  const diskNames = inPlaceDiskNames(manifest.disks, stamp, new Set(files.keys()));
  const nvramName = manifest.config.nvram === null ? null : `${restoredStem(manifest.config.nvram.replace(/\.nvram$/i, ''))}-restored-${stamp}.nvram`;
  const { vmx, problems } = inPlaceVmx(backupVmx, manifest, diskNames, nvramName);
  if (problems.length > 0) throw damagedError(backup, problems);
  const currentNvramName = VmxFile.parse(currentVmx).get('nvram') || baseName(vmxPath).replace(/\.vmx$/i, '.nvram');
  const oldNvram = !currentNvramName.includes('/') && files.has(currentNvramName) ? inFolder(folder, currentNvramName) : null;
  return { vm, currentVmx, vmxPath, vmx: vmx.render(), diskNames, nvramName, oldDisks: vm.disks.map((disk) => disk.file).filter((file) => file !== ''), oldNvram };
}

