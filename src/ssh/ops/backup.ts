/**
 * Backup and restore over SSH, with the plans of core/backup.ts and the API path's results:
 * `mkdir -p`, `cp` (.vmx, nvram), the snapshot plans of ops/snapshots.ts (vim-cmd
 * vmsvc/snapshot.create / snapshot.remove), `vmkfstools -i SRC DST -d thin` per disk, `ls -ln`
 * to measure, the manifest written over stdin to a temporary name and renamed (`cat > … && mv`),
 * `rm -rf` for rotation and undo. A restore writes the rewritten .vmx and registers it
 * (`vim-cmd solo/registervm`), or, in place, switches the VM onto restored copies
 * (`vim-cmd vmsvc/reload`). Listing the backups is ONE remote command.
 */
import { randomUUID } from 'node:crypto';
import { reviewGuestinfo } from '../../cloudinit/review.js';
import type { Mutation } from '../../core/backend.js';
import {
  MANIFEST_FILE,
  assertRestorable,
  baseName,
  buildBackupPlan,
  buildRestorePlan,
  byNewest,
  damagedError,
  DEFAULT_FOLDER,
  destinationPath,
  entryOf,
  inFolder,
  inPlaceSpec,
  newVmVmx,
  parentPath,
  readBackup,
  restoreSettings,
  treeOf,
  vmBackupsPath,
  type BackupDestination,
  type BackupEntry,
  type BackupFolderListing,
  type BackupHost,
  type BackupListRequest,
  type BackupOptions,
  type BackupOutcome,
  type BackupRequest,
  type BackupSnapshots,
  type HostOp,
  type ReadBackup,
  type RestoreOptions,
  type RestoreOutcome,
  type RestoreRequest,
  type RestoreTarget,
  type RestoreVmOps,
  findBackup,
} from '../../core/backup.js';
import { CesoError } from '../../core/errors.js';
import { assertNameFree, checkSpace, guestinfoFor, pickDatastore } from '../../core/provisioning.js';
import { selectOne } from '../../core/select.js';
import { DATASTORES, files, newNonce, vimCmd, vmid, vmkfstools } from '../commands.js';
import type { SshContext } from '../context.js';
import { parseDatastores, parseDevices, parseRegisteredVmid, vmkfstoolsProgress, type DatastoreSummary } from '../parse.js';
import { hostPath, isSafeDatastoreName } from '../paths.js';
import { quote } from '../quote.js';
import { checkOutput, run } from '../run.js';
import { generateMac, reviewVmx } from './clone-vmx.js';
import { findVm, getVm, readRows, readVm } from './inventory.js';
import { checkNetwork, readPlacement } from './placement.js';
import { planSnapshotCreate, planSnapshotDelete, snapshotCmd } from './snapshots.js';

/** Copies of big disks take long; the host reports progress meanwhile. */
const DISK_COPY_TIMEOUT_MS = 6 * 3600_000;

/** `ls -ln` lines of regular files: size and name (LC_ALL=C: the date is `Mon DD HH:MM` or `Mon DD YYYY`). */
const LS_FILE = /^-\S*\s+\d+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\d+\s+[\d:]+\s(.+)$/;

export function parseLsFiles(output: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of output.split('\n')) {
    const match = LS_FILE.exec(line);
    if (match !== null) found.set(match[2] as string, Number(match[1]));
  }
  return found;
}

/**
 * One command that prints every backup folder `depth` levels under `root`: a marker line with its
 * path (relative to root), its `ls -ln`, and the manifest when there is one.
 */
function scanScript(nonce: string, root: string, depth: 1 | 2, only?: string): string {
  const n = quote(nonce);
  const glob = only !== undefined ? `${quote(only)}/` : depth === 1 ? '*/' : '*/*/';
  return [
    `n=${n}; cd ${quote(root)} 2>/dev/null || { echo "$n missing"; exit 0; }`,
    `echo "$n exists"`,
    `for d in ${glob}; do [ -d "$d" ] || continue; d=\${d%/}`,
    `  echo "$n dir $d"; LC_ALL=C ls -ln "$d" 2>&1`,
    `  if [ -f "$d/${MANIFEST_FILE}" ]; then echo "$n manifest"; cat "$d/${MANIFEST_FILE}"; echo; fi`,
    `  echo "$n end"`,
    `done`,
  ].join('\n');
}

interface ScannedFolder {
  relative: string;
  files: Map<string, number>;
  manifestText: string | null;
}

export function parseScan(nonce: string, output: string): { exists: boolean; folders: ScannedFolder[] } {
  const folders: ScannedFolder[] = [];
  let exists = false;
  let current: { relative: string; ls: string[]; manifest: string[] | null } | null = null;
  let inManifest = false;
  for (const line of output.split('\n')) {
    if (line === `${nonce} exists`) exists = true;
    else if (line.startsWith(`${nonce} dir `)) {
      current = { relative: line.slice(nonce.length + 5), ls: [], manifest: null };
      inManifest = false;
    } else if (line === `${nonce} manifest` && current !== null) {
      current.manifest = [];
      inManifest = true;
    } else if (line === `${nonce} end` && current !== null) {
      const text = current.manifest === null ? null : current.manifest.join('\n').replace(/\n$/, '');
      folders.push({ relative: current.relative, files: parseLsFiles(current.ls.join('\n')), manifestText: text });
      current = null;
      inManifest = false;
    } else if (current !== null) {
      if (inManifest) current.manifest?.push(line);
      else current.ls.push(line);
    }
  }
  return { exists, folders };
}

/** The file and disk operations of the SSH path (see core/backup.ts BackupHost). */
class SshBackupHost implements BackupHost {
  readonly via = 'ssh' as const;

  constructor(private readonly context: SshContext) {}

  path(datastorePath: string): string {
    return hostPath(this.context.volumesRoot, datastorePath);
  }

  private op(command: string, what: string, options: { stdin?: string; timeoutMs?: number; progress?: boolean } = {}): HostOp {
    return {
      action: { kind: 'ssh', command },
      run: async (progress) => {
        await run(this.context.shell, command, {
          what,
          ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
          ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
          ...(options.progress === true
            ? {
                onStdout: (chunk: string) => {
                  const percent = vmkfstoolsProgress(chunk);
                  if (percent !== null) progress(percent);
                },
              }
            : {}),
        });
      },
    };
  }

  makeFolder(folder: string): HostOp {
    return this.op(`mkdir -p ${quote(this.path(folder))}`, `make the folder ${folder}`);
  }

  removeFolder(folder: string): HostOp {
    return this.op(files.removeFolder(this.path(folder)), `remove ${folder}`);
  }

  copyFile(source: string, destination: string): HostOp {
    return this.op(`cp ${quote(this.path(source))} ${quote(this.path(destination))}`, `copy ${source}`);
  }

  copyDisk(source: string, destination: string): HostOp {
    return this.op(vmkfstools.cloneThin(this.path(source), this.path(destination)), `copy disk ${source}`, { timeoutMs: DISK_COPY_TIMEOUT_MS, progress: true });
  }

  deleteDisk(path: string): HostOp {
    const file = this.path(path);
    return this.op(`if [ -e ${quote(file)} ]; then vmkfstools -U ${quote(file)}; fi`, `delete the disk ${path}`);
  }

  deleteFile(path: string): HostOp {
    return this.op(`rm -f -- ${quote(this.path(path))}`, `delete ${path}`);
  }

  /** Over stdin to a temporary name, then renamed: the file is never seen half written. */
  writeFile(path: string, content: string): HostOp {
    const file = this.path(path);
    const temporary = inFolder(parentPath(path), `.${baseName(path)}.ceso-tmp`);
    return this.op(`cat > ${quote(this.path(temporary))} && mv -f ${quote(this.path(temporary))} ${quote(file)}`, `write ${path}`, { stdin: content });
  }

  async readFile(path: string): Promise<string | null> {
    const file = quote(this.path(path));
    const nonce = newNonce();
    const result = await this.context.shell.exec(`if [ -f ${file} ]; then echo '${nonce}'; cat ${file}; else echo '${nonce} missing'; fi`);
    checkOutput({ ...result, stdout: '' }, 'cat', { what: `read ${path}` });
    const first = result.stdout.indexOf('\n');
    if (result.stdout.startsWith(`${nonce} missing`)) return null;
    if (!result.stdout.startsWith(nonce)) throw new CesoError('HOST_FAULT', `read ${path}: ${result.stderr.trim() || 'no output'}`);
    return result.stdout.slice(first + 1);
  }

  async listBackupFolder(folder: string): Promise<BackupFolderListing | null> {
    const scanned = await this.scanRaw(parentPath(folder), 1, baseName(folder));
    const found = scanned.folders.find((entry) => entry.relative === baseName(folder));
    return found === undefined ? null : { path: folder, files: found.files, manifestText: found.manifestText };
  }

  private async scanRaw(root: string, depth: 1 | 2, only?: string): Promise<{ exists: boolean; folders: ScannedFolder[] }> {
    const nonce = newNonce();
    const result = await this.context.shell.exec(scanScript(nonce, this.path(root), depth, only), { timeoutMs: 300_000 });
    checkOutput({ ...result, stdout: '' }, 'sh', { what: `list ${root}` });
    return parseScan(nonce, result.stdout);
  }

  /** The backup folders under `root`: `<root>/<vm>/<backup>` (depth 2) or `<root>/<backup>` (depth 1). */
  async scan(root: string, depth: 1 | 2): Promise<{ exists: boolean; backups: ReadBackup[] }> {
    const { exists, folders } = await this.scanRaw(root, depth);
    const backups = folders.map((entry) =>
      readBackup({ path: inFolder(root, entry.relative), files: entry.files, manifestText: entry.manifestText }, depth === 2 ? (entry.relative.split('/')[0] ?? null) : baseName(root)),
    );
    return { exists, backups };
  }
}

async function readDatastores(context: SshContext): Promise<DatastoreSummary[]> {
  const result = await run(context.shell, DATASTORES, { what: 'read the datastores' });
  return parseDatastores(result.stdout);
}

function destinationsOf(datastores: readonly DatastoreSummary[], destination: BackupDestination | undefined): BackupDestination[] {
  if (destination !== undefined) {
    pickDatastore(datastores, destination.datastore);
    return [destination];
  }
  return datastores.filter((datastore) => datastore.accessible && isSafeDatastoreName(datastore.name)).map((datastore) => ({ datastore: datastore.name, folder: DEFAULT_FOLDER }));
}

async function scanDestinations(host: SshBackupHost, datastores: readonly DatastoreSummary[], destination: BackupDestination | undefined, vm: string | undefined): Promise<ReadBackup[]> {
  const found: ReadBackup[] = [];
  for (const place of destinationsOf(datastores, destination)) {
    const { backups } = vm === undefined ? await host.scan(destinationPath(place), 2) : await host.scan(vmBackupsPath(place, vm), 1);
    found.push(...backups);
  }
  return found.sort(byNewest);
}

export async function listBackups(context: SshContext, request: BackupListRequest): Promise<BackupEntry[]> {
  const host = new SshBackupHost(context);
  return (await scanDestinations(host, await readDatastores(context), request.destination, request.vm)).map(entryOf);
}

// ---- backup ---------------------------------------------------------------------------------

function snapshotsFor(context: SshContext, vm: { name: string; id: string }, tree: BackupSnapshots['tree']): BackupSnapshots {
  const selector = { name: vm.name, id: vm.id };
  return {
    tree,
    create: (name, memory, quiesce) => planSnapshotCreate(context, { vm: selector, name, description: 'taken by ceso vm backup; removed when the copy is done', memory, quiesce }),
    remove: (snapshotId) => planSnapshotDelete(context, { vm: selector, snapshot: snapshotId, children: false, all: false }),
    removeAction: (name) => ({ kind: 'ssh', command: snapshotCmd.remove(vm.id, `<id of ${name}>`, false) }),
  };
}

export async function planBackup(context: SshContext, request: BackupRequest, options: BackupOptions = {}): Promise<Mutation<BackupOutcome>> {
  const { row } = await findVm(context, request.vm);
  const read = await readVm(context, row);
  const vm = read.details;
  options.authorize?.(vm);
  if (read.vmxText === null) throw new CesoError('HOST_FAULT', `cannot read the .vmx of "${row.name}" (${row.file})`);
  const vmxPath = vm.vmxPath ?? row.file;
  const host = new SshBackupHost(context);
  const datastores = await readDatastores(context);
  const destination = request.destination ?? { datastore: vm.datastore ?? '', folder: DEFAULT_FOLDER };
  const datastore = pickDatastore(datastores, destination.datastore);
  if (!isSafeDatastoreName(datastore.name)) throw new CesoError('INVALID_INPUT', `datastore "${datastore.name}": ceso cannot build a path on a datastore whose name holds "/", "]" or control characters`);
  const existing = await host.scan(vmBackupsPath(destination, vm.name), 1);
  const tree = treeOf(vm);
  const nvramName = read.vmx.get('nvram') || baseName(vmxPath).replace(/\.vmx$/i, '.nvram');
  const vmFolder = parentPath(vmxPath);
  const nvramPath = nvramName.includes('/') ? null : inFolder(vmFolder, nvramName);
  const nvramExists = nvramPath === null ? false : (await context.shell.exec(`[ -f ${quote(host.path(nvramPath))} ]`)).code === 0;
  const modes = new Map<string, string>();
  for (const key of read.vmx.keys()) {
    const match = /^((?:scsi|sata|nvme|ide)\d+:\d+)\.fileName$/i.exec(key);
    if (match === null) continue;
    const mode = read.vmx.get(`${match[1]}.mode`);
    if (mode !== undefined) modes.set(read.vmx.get(key) ?? '', mode);
  }
  const disks = read.hardware.disks.map((disk) => ({
    file: disk.file,
    label: disk.label,
    capacityBytes: (disk.capacityKB ?? 0) * 1024,
    thin: disk.thin,
    mode: modes.get(disk.file) ?? modes.get(baseName(disk.file)) ?? null,
  }));
  return buildBackupPlan({
    request,
    source: { vm, powerState: vm.powerState, disks, vmxPath, nvramPath: nvramExists ? nvramPath : null, usedBytes: read.summary.committedBytes ?? 0 },
    destination,
    freeBytes: datastore.freeBytes,
    existing: existing.backups,
    vmFolderExists: existing.exists,
    host,
    snapshots: snapshotsFor(context, vm, tree),
    rereadDisks: {
      action: { kind: 'ssh', command: vimCmd.devices(row.id) },
      run: async () => {
        const result = await run(context.shell, vimCmd.devices(row.id), { what: `read the disks of ${vm.name}` });
        return parseDevices(result.stdout).disks.map((disk) => disk.file);
      },
    },
  });
}

// ---- restore --------------------------------------------------------------------------------

function vmOps(context: SshContext, host: SshBackupHost): RestoreVmOps {
  const shell = context.shell;
  return {
    register: (vmxPath, name) => {
      const command = vimCmd.register(host.path(vmxPath));
      return {
        action: { kind: 'ssh', command },
        run: async () => {
          const result = await run(shell, command, { what: `register ${name}` });
          let id = parseRegisteredVmid(result.stdout);
          if (id === null) {
            const { rows } = await readRows(context);
            const registered = rows.filter((item) => item.file === vmxPath);
            if (registered.length === 1) id = registered[0]?.id ?? null;
          }
          if (id === null) throw new CesoError('HOST_FAULT', `register ${name}: the host printed no vmid and lists no VM for ${vmxPath}`);
          return id;
        },
      };
    },
    destroy: async (id) => {
      await shell.exec(vimCmd.power('off', id)).catch(() => undefined);
      await run(shell, vimCmd.destroy(id), { what: `destroy the restored VM ${id}`, tolerate: ['NotFound', 'ManagedObjectNotFound'] });
    },
    configureGuest: null,
    powerOn: (id) => ({
      action: { kind: 'ssh', command: 'vim-cmd vmsvc/power.on <vmid printed by registervm>' },
      run: async () => {
        await run(shell, vimCmd.power('on', id()), { what: 'power on the restored VM' });
      },
    }),
    reload: (id) => {
      const command = `vim-cmd vmsvc/reload ${vmid(id)}`;
      return {
        action: { kind: 'ssh', command },
        run: async () => {
          await run(shell, command, { what: `reload the VM ${id}` });
        },
      };
    },
    getVm: (id) => getVm(context, { id }),
  };
}

export async function planRestore(context: SshContext, request: RestoreRequest, options: RestoreOptions = {}): Promise<Mutation<RestoreOutcome> & { target: RestoreTarget }> {
  const host = new SshBackupHost(context);
  const placement = await readPlacement(context);
  const { backup, vmxText } = await findBackup(host, request, (destination, vm) => scanDestinations(host, placement.datastores, destination, vm));
  const { manifest } = backup;
  const warnings: string[] = [];
  if (request.inPlace) {
    const { rows } = await readRows(context);
    const matches = rows.filter((row) => row.name === manifest.vm.name);
    if (matches.length === 0) {
      throw new CesoError('VM_NOT_FOUND', `${manifest.vm.name}, the VM of the backup, is not on this host`, { hint: `Restore it as a new VM: ceso vm restore ${manifest.vm.name}@${manifest.stamp} --name ${manifest.vm.name}` });
    }
    const row = selectOne(matches, { name: manifest.vm.name });
    const read = await readVm(context, row);
    const vm = read.details;
    await options.authorize?.(manifest, vm);
    assertRestorable(vm, manifest);
    const vmxPath = vm.vmxPath ?? row.file;
    if (read.vmxText === null) throw new CesoError('HOST_FAULT', `cannot read ${vmxPath}`);
    const folder = parentPath(vmxPath);
    const listing = await host.listBackupFolder(folder);
    return buildRestorePlan({ backup, host, vmOps: vmOps(context, host), inPlace: inPlaceSpec(vm, vmxPath, read.vmxText, listing?.files ?? new Map(), backup, vmxText), warnings });
  }
  const newRequest = request.newVm;
  if (newRequest === undefined) throw new CesoError('INTERNAL', 'a restore needs --name or --in-place');
  const { rows } = await readRows(context);
  assertNameFree(newRequest.name, rows);
  await options.authorize?.(manifest, null);
  const datastore = pickDatastore(placement.datastores, newRequest.datastore ?? manifest.config.datastore ?? '');
  if (!isSafeDatastoreName(datastore.name)) throw new CesoError('INVALID_INPUT', `datastore "${datastore.name}": ceso cannot build a path on a datastore whose name holds "/", "]" or control characters`);
  const network = checkNetwork(placement, newRequest.network ?? manifest.config.nics[0]?.network ?? 'VM Network');
  warnings.push(...checkSpace(datastore, { name: `${manifest.vm.name}@${manifest.stamp}`, usedBytes: 0, provisionedBytes: manifest.disks.reduce((sum, disk) => sum + disk.capacityBytes, 0) }, 0));
  const folder = `[${datastore.name}] ${newRequest.name}`;
  if ((await context.shell.exec(`[ -e ${quote(host.path(folder))} ]`)).code === 0) {
    throw new CesoError('CONFLICT', `the folder ${folder} already exists on the datastore`, { hint: 'A VM of that name was deleted without its files, or another tool uses the folder: remove it or choose another name' });
  }
  const settings = restoreSettings(newRequest, manifest, vmxText, backup.path);
  const mac = generateMac(placement.macsInUse);
  const instanceId = randomUUID();
  const guestinfo = guestinfoFor(settings, { instanceId, mac });
  const { vmx, problems } = newVmVmx(vmxText, manifest, { name: newRequest.name, cpu: settings.cpu, memoryMB: settings.memoryMB, network, mac, guestinfo, markers: settings.markers });
  if (problems.length > 0) throw damagedError(backup, problems);
  return buildRestorePlan({
    backup,
    host,
    vmOps: vmOps(context, host),
    newVm: { name: newRequest.name, folder, vmx: vmx.render(), vmxReview: reviewVmx(vmx), powerOn: newRequest.powerOn, cloudInit: reviewGuestinfo(guestinfo) as unknown as Record<string, unknown> },
    warnings,
  });
}

