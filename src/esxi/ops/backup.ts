/**
 * Backup and restore over the API, with the plans of core/backup.ts: FileManager.MakeDirectory,
 * CopyDatastoreFile_Task (.vmx, nvram), the snapshot plans of ops/snapshots.ts,
 * VirtualDiskManager.CopyVirtualDisk_Task (thin), HostDatastoreBrowser.SearchDatastore(SubFolders)_Task
 * to list and measure, the host's /folder HTTP interface for the manifest, .vmx and descriptors,
 * DeleteDatastoreFile_Task for rotation and undo; a restore registers the rewritten .vmx
 * (Folder.RegisterVM_Task), writes cloud-init guestinfo with ReconfigVM_Task (instance-id = the
 * new uuid, as clone over the API does), or, in place, switches the VM onto restored copies
 * (VirtualMachine.Reload).
 */
import { reviewGuestinfo } from '../../cloudinit/review.js';
import type { Mutation } from '../../core/backend.js';
import {
  MANIFEST_FILE,
  baseName,
  buildBackupPlan,
  buildRestorePlan,
  byNewest,
  damagedError,
  DEFAULT_FOLDER,
  destinationPath,
  entryOf,
  inFolder,
  assertRestorable,
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
  type BackupSource,
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
import { parseDatastorePath, toPowerState, type VmDetails } from '../../core/vm.js';
import { generateMac, reviewVmx } from '../../ssh/ops/clone-vmx.js';
import { VmxFile } from '../../ssh/vmx.js';
import { MoRef, Typed, asArray, asMoRef, asNumber, asObject, asString, type Decoded } from '../soap/xml.js';
import { faultTypeOf, type VimClient } from '../vim/client.js';
import { inventoryTraversal, relation, retrieveProperties } from '../vim/property-collector.js';
import { folderUrlText, readDatastoreFile, writeDatastoreFile } from './datastore-http.js';
import { DETAIL_PATHS, detailsOf, findVm, getVmByRef } from './inventory.js';
import { readPlacement, type Placement } from './placement.js';
import { planSnapshotCreate, planSnapshotDelete } from './snapshots.js';
import { readSourceVm } from './source-vm.js';
import { apiAction, ignoreGone, option, runTask } from './steps.js';

/** Copies of big disks take long; the host reports progress meanwhile. */
const DISK_COPY_TIMEOUT_MS = 6 * 3600_000;

/** The datacenter, its datastores with their browsers, where VMs go. */
interface Storage {
  placement: Placement;
  datacenterName: string;
  browsers: Map<string, MoRef>;
}

async function readStorage(client: VimClient): Promise<Storage> {
  const placement = await readPlacement(client);
  const objects = await retrieveProperties(
    client,
    [{ obj: placement.datacenter }, ...placement.datastores.map((datastore) => ({ obj: datastore.ref }))],
    [
      { type: 'Datacenter', paths: ['name'] },
      { type: 'Datastore', paths: ['name', 'browser'] },
    ],
  );
  const browsers = new Map<string, MoRef>();
  let datacenterName = 'ha-datacenter';
  for (const object of objects) {
    if (object.ref.type === 'Datacenter') datacenterName = asString(object.props.name) ?? datacenterName;
    const browser = asMoRef(object.props.browser);
    if (object.ref.type === 'Datastore' && browser !== undefined) browsers.set(asString(object.props.name) ?? object.ref.value, browser);
  }
  return { placement, datacenterName, browsers };
}


const SIZES = new Typed('HostDatastoreBrowserSearchSpec', { details: { fileType: false, fileSize: true, modification: false, fileOwner: false } });

/** The FileInfo entries of one HostDatastoreBrowserSearchResults: files (name -> bytes) and folders. */
function entriesOf(result: Decoded | undefined): { folder: string; files: Map<string, number>; folders: string[] } {
  const object = asObject(result);
  const folder = normalizeFolder(asString(object.folderPath) ?? '');
  const files = new Map<string, number>();
  const folders: string[] = [];
  for (const item of asArray(object.file).map(asObject)) {
    const path = asString(item.path);
    if (path === undefined) continue;
    if (item._type === 'FolderFileInfo') folders.push(path);
    else files.set(path, asNumber(item.fileSize) ?? 0);
  }
  return { folder, files, folders };
}

function normalizeFolder(path: string): string {
  const parsed = parseDatastorePath(path.trim());
  if (parsed === null) return path;
  return `[${parsed.datastore}] ${parsed.path.replace(/\/+$/, '')}`.trimEnd();
}

/** The file and disk operations of the API path (see core/backup.ts BackupHost). */
class ApiBackupHost implements BackupHost {
  readonly via = 'api' as const;

  constructor(
    private readonly client: VimClient,
    private readonly storage: Storage,
  ) {}

  private get datacenter(): MoRef {
    return this.storage.placement.datacenter;
  }

  private managers(): { fileManager: MoRef; virtualDiskManager: MoRef } {
    const { fileManager, virtualDiskManager } = this.client.serviceContent;
    if (fileManager === undefined || virtualDiskManager === undefined) throw new CesoError('NOT_SUPPORTED', 'the host offers no FileManager or VirtualDiskManager');
    return { fileManager, virtualDiskManager };
  }

  browser(path: string): MoRef {
    const datastore = parseDatastorePath(path)?.datastore ?? '';
    const browser = this.storage.browsers.get(datastore);
    if (browser === undefined) throw new CesoError('DATASTORE_NOT_FOUND', `datastore "${datastore}" does not exist on this host`, { hint: `Use one of: ${[...this.storage.browsers.keys()].join(', ')}` });
    return browser;
  }

  makeFolder(folder: string): HostOp {
    const { fileManager } = this.managers();
    const args = { name: folder, datacenter: this.datacenter, createParentDirectories: true };
    return {
      action: apiAction('MakeDirectory', fileManager, args),
      run: async () => {
        try {
          await this.client.invoke('MakeDirectory', fileManager, args);
        } catch (error) {
          if (faultTypeOf(error) === 'FileAlreadyExists') throw new CesoError('CONFLICT', `the folder ${folder} already exists on the datastore`, { hint: 'Another tool uses that folder: remove it or choose another name' });
          throw error;
        }
      },
    };
  }

  removeFolder(folder: string): HostOp {
    const { fileManager } = this.managers();
    const args = { name: folder, datacenter: this.datacenter };
    return {
      action: apiAction('DeleteDatastoreFile_Task', fileManager, args),
      run: () => ignoreGone(runTask(this.client, 'DeleteDatastoreFile_Task', fileManager, args, `delete ${folder}`)),
    };
  }

  deleteFile(path: string): HostOp {
    return this.removeFolder(path);
  }

  copyFile(source: string, destination: string): HostOp {
    const { fileManager } = this.managers();
    const args = { sourceName: source, sourceDatacenter: this.datacenter, destinationName: destination, destinationDatacenter: this.datacenter, force: false };
    return {
      action: apiAction('CopyDatastoreFile_Task', fileManager, args),
      run: async () => {
        await runTask(this.client, 'CopyDatastoreFile_Task', fileManager, args, `copy ${source}`);
      },
    };
  }

  copyDisk(source: string, destination: string): HostOp {
    const { virtualDiskManager } = this.managers();
    const args = {
      sourceName: source,
      sourceDatacenter: this.datacenter,
      destName: destination,
      destDatacenter: this.datacenter,
      // vCenter takes no destSpec (NotImplemented); a standalone host copies thin with it.
      destSpec: this.client.isVCenter ? undefined : new Typed('VirtualDiskSpec', { diskType: 'thin', adapterType: 'lsiLogic' }),
      force: false,
    };
    return {
      action: apiAction('CopyVirtualDisk_Task', virtualDiskManager, args),
      run: async (progress, signal) => {
        const task = await this.client.invoke('CopyVirtualDisk_Task', virtualDiskManager, args);
        if (!(task instanceof MoRef)) return;
        const { waitForTask } = await import('../vim/task.js');
        await waitForTask(this.client, task, { description: `copy disk ${source}`, timeoutMs: DISK_COPY_TIMEOUT_MS, onProgress: (percent) => progress(percent), ...(signal === undefined ? {} : { signal }) });
      },
    };
  }

  deleteDisk(path: string): HostOp {
    const { virtualDiskManager } = this.managers();
    const args = { name: path, datacenter: this.datacenter };
    return {
      action: apiAction('DeleteVirtualDisk_Task', virtualDiskManager, args),
      run: () => ignoreGone(runTask(this.client, 'DeleteVirtualDisk_Task', virtualDiskManager, args, `delete ${path}`)),
    };
  }

  writeFile(path: string, content: string): HostOp {
    return {
      action: { kind: 'api', method: 'HTTP PUT', object: folderUrlText(this.client, this.storage.datacenterName, path), arguments: { path, bytes: Buffer.byteLength(content) } },
      run: () => writeDatastoreFile(this.client, this.storage.datacenterName, path, content),
    };
  }

  readFile(path: string): Promise<string | null> {
    return readDatastoreFile(this.client, this.storage.datacenterName, path);
  }

  /** SearchDatastore_Task (sizes); the manifest read over HTTP when it is there. */
  async listBackupFolder(folder: string): Promise<BackupFolderListing | null> {
    let result: Decoded | undefined;
    try {
      result = (await runTask(this.client, 'SearchDatastore_Task', this.browser(folder), { datastorePath: folder, searchSpec: SIZES }, `list ${folder}`)) as Decoded | undefined;
    } catch (error) {
      if (faultTypeOf(error) === 'FileNotFound') return null;
      throw error;
    }
    const { files } = entriesOf(result);
    return { path: folder, files, manifestText: files.has(MANIFEST_FILE) ? await this.readFile(inFolder(folder, MANIFEST_FILE)) : null };
  }

  /**
   * The backup folders under `root` (one SearchDatastoreSubFolders_Task): `<root>/<vm>/<backup>`
   * for a destination, `<root>/<backup>` for one VM's folder; manifests read over HTTP.
   */
  async scan(root: string, depth: 1 | 2): Promise<{ exists: boolean; backups: ReadBackup[] }> {
    let result: Decoded | undefined;
    try {
      result = (await runTask(this.client, 'SearchDatastoreSubFolders_Task', this.browser(root), { datastorePath: root, searchSpec: SIZES }, `list ${root}`)) as Decoded | undefined;
    } catch (error) {
      if (faultTypeOf(error) === 'FileNotFound') return { exists: false, backups: [] };
      throw error;
    }
    const rootPath = normalizeFolder(root);
    const rootRest = parseDatastorePath(rootPath)?.path ?? '';
    const backups: ReadBackup[] = [];
    for (const entry of asArray(result).map(entriesOf)) {
      const rest = parseDatastorePath(entry.folder)?.path ?? '';
      const relative = rootRest === '' ? rest : rest.startsWith(`${rootRest}/`) ? rest.slice(rootRest.length + 1) : null;
      if (relative === null || relative === '' || relative.split('/').length !== depth) continue;
      const manifestText = entry.files.has(MANIFEST_FILE) ? await this.readFile(inFolder(entry.folder, MANIFEST_FILE)) : null;
      backups.push(readBackup({ path: entry.folder, files: entry.files, manifestText }, depth === 2 ? (relative.split('/')[0] ?? null) : baseName(rootPath)));
    }
    return { exists: true, backups };
  }
}

/** The destinations to look in: the one given, or `backups` on every accessible datastore. */
function destinationsOf(storage: Storage, destination: BackupDestination | undefined): BackupDestination[] {
  if (destination !== undefined) {
    pickDatastore(storage.placement.datastores, destination.datastore);
    return [destination];
  }
  return storage.placement.datastores.filter((datastore) => datastore.accessible).map((datastore) => ({ datastore: datastore.name, folder: DEFAULT_FOLDER }));
}

async function scanDestinations(host: ApiBackupHost, storage: Storage, destination: BackupDestination | undefined, vm: string | undefined): Promise<ReadBackup[]> {
  const found: ReadBackup[] = [];
  for (const place of destinationsOf(storage, destination)) {
    const { backups } = vm === undefined ? await host.scan(destinationPath(place), 2) : await host.scan(vmBackupsPath(place, vm), 1);
    found.push(...backups);
  }
  return found.sort(byNewest);
}

export async function listBackups(client: VimClient, request: BackupListRequest): Promise<BackupEntry[]> {
  const storage = await readStorage(client);
  const host = new ApiBackupHost(client, storage);
  return (await scanDestinations(host, storage, request.destination, request.vm)).map(entryOf);
}

// ---- backup ---------------------------------------------------------------------------------

const BACKUP_PATHS = [...DETAIL_PATHS, 'summary.storage.committed'];

interface ApiDisk {
  file: string;
  label: string | null;
  capacityBytes: number;
  thin: boolean | null;
  mode: string | null;
}

function disksOf(devices: Decoded | undefined): ApiDisk[] {
  return asArray(devices)
    .map(asObject)
    .filter((device) => device._type === 'VirtualDisk')
    .map((device) => {
      const backing = asObject(device.backing);
      const bytes = asNumber(device.capacityInBytes);
      const thin = asString(backing.thinProvisioned);
      return {
        file: asString(backing.fileName) ?? '',
        label: asString(asObject(device.deviceInfo).label) ?? null,
        capacityBytes: bytes !== undefined && bytes > 0 ? bytes : (asNumber(device.capacityInKB) ?? 0) * 1024,
        thin: thin === undefined ? null : thin === 'true',
        mode: asString(backing.diskMode) ?? null,
      };
    });
}

/** The VM as a backup needs it, in one read: its details, exact disks and used storage. */
async function readBackupVm(client: VimClient, ref: MoRef): Promise<{ vm: VmDetails; disks: ApiDisk[]; committed: number; props: Record<string, Decoded | undefined> }> {
  const objects = await retrieveProperties(
    client,
    [{ obj: ref, selectSet: [relation('vmNetworks', 'VirtualMachine', 'network'), relation('vmDatastores', 'VirtualMachine', 'datastore')] }],
    [
      { type: 'VirtualMachine', paths: BACKUP_PATHS },
      { type: 'Network', paths: ['name'] },
      { type: 'Datastore', paths: ['name'] },
    ],
  );
  const object = objects.find((item) => item.ref.type === 'VirtualMachine');
  if (object === undefined) throw new CesoError('VM_NOT_FOUND', `VM ${ref.value} no longer exists on the host`, { hint: 'It was removed meanwhile; run "ceso vm list"' });
  const names = new Map<string, string>();
  for (const item of objects) if (item.ref.type !== 'VirtualMachine') names.set(item.ref.value, asString(item.props.name) ?? item.ref.value);
  return { vm: detailsOf(object, names), disks: disksOf(object.props['config.hardware.device']), committed: asNumber(object.props['summary.storage.committed']) ?? 0, props: object.props };
}

/** The nvram the .vmx names (default `<vmx name>.nvram`), when the VM's folder holds it. */
async function nvramOf(host: ApiBackupHost, vmxPath: string): Promise<string | null> {
  const folder = parentPath(vmxPath);
  const [text, listing] = await Promise.all([host.readFile(vmxPath), host.listBackupFolder(folder)]);
  const named = text === null ? undefined : VmxFile.parse(text).get('nvram');
  const file = named !== undefined && named !== '' ? named : baseName(vmxPath).replace(/\.vmx$/i, '.nvram');
  if (file.includes('/')) return null;
  return listing?.files.has(file) === true ? inFolder(folder, file) : null;
}

function snapshotsFor(client: VimClient, vm: { name: string; id: string }, tree: BackupSnapshots['tree']): BackupSnapshots {
  const selector = { name: vm.name, id: vm.id };
  return {
    tree,
    create: (name, memory, quiesce) => planSnapshotCreate(client, { vm: selector, name, description: 'taken by ceso vm backup; removed when the copy is done', memory, quiesce }),
    remove: (snapshotId) => planSnapshotDelete(client, { vm: selector, snapshot: snapshotId, children: false, all: false }),
    removeAction: (name) => ({ kind: 'api', method: 'RemoveSnapshot_Task', object: `VirtualMachineSnapshot:<"${name}" taken above>`, arguments: { removeChildren: false, consolidate: true } }),
  };
}

export async function planBackup(client: VimClient, request: BackupRequest, options: BackupOptions = {}): Promise<Mutation<BackupOutcome>> {
  const { ref } = await findVm(client, request.vm);
  const read = await readBackupVm(client, ref);
  const { vm } = read;
  options.authorize?.(vm);
  if (vm.vmxPath === null) throw new CesoError('HOST_FAULT', `the host does not say where the configuration of ${vm.name} is`);
  const storage = await readStorage(client);
  const host = new ApiBackupHost(client, storage);
  const destination = request.destination ?? { datastore: vm.datastore ?? '', folder: DEFAULT_FOLDER };
  const datastore = pickDatastore(storage.placement.datastores, destination.datastore);
  const vmFolder = vmBackupsPath(destination, vm.name);
  const [existing, nvramPath] = await Promise.all([host.scan(vmFolder, 1), nvramOf(host, vm.vmxPath)]);
  const tree = treeOf(vm);
  const source: BackupSource = {
    vm,
    powerState: toPowerState(asString(read.props['runtime.powerState'])),
    disks: read.disks,
    vmxPath: vm.vmxPath,
    nvramPath,
    usedBytes: read.committed,
  };
  return buildBackupPlan({
    request,
    source,
    destination,
    freeBytes: datastore.freeBytes,
    existing: existing.backups,
    vmFolderExists: existing.exists,
    host,
    snapshots: snapshotsFor(client, vm, tree),
    rereadDisks: {
      action: apiAction('RetrievePropertiesEx', client.serviceContent.propertyCollector, { specSet: { propSet: { type: 'VirtualMachine', pathSet: ['config.hardware.device'] }, objectSet: { obj: ref } } }),
      run: async () => {
        const [object] = await retrieveProperties(client, [{ obj: ref }], [{ type: 'VirtualMachine', paths: ['config.hardware.device'] }]);
        return disksOf(object?.props['config.hardware.device']).map((disk) => disk.file);
      },
    },
  });
}

// ---- restore --------------------------------------------------------------------------------

const PLACEHOLDER_UUID = '00000000-0000-0000-0000-000000000000';

/** Every MAC the host's VMs use (a restored VM's static MAC must be new). */
async function macsInUse(client: VimClient): Promise<{ macs: Set<string>; vms: Array<{ name: string; id: string }> }> {
  const { rootFolder } = await client.connect();
  const objects = await retrieveProperties(client, [{ obj: rootFolder, selectSet: inventoryTraversal() }], [{ type: 'VirtualMachine', paths: ['name', 'config.hardware.device'] }]);
  const macs = new Set<string>();
  for (const object of objects) {
    for (const device of asArray(object.props['config.hardware.device']).map(asObject)) {
      const mac = asString(device.macAddress);
      if (mac !== undefined && mac !== '') macs.add(mac.toLowerCase());
    }
  }
  return { macs, vms: objects.map((object) => ({ name: asString(object.props.name) ?? '', id: object.ref.value })) };
}

function vmOps(client: VimClient, placement: Placement, guestinfo?: (vm: { uuid: string; mac: string }) => Record<string, string>): RestoreVmOps {
  const later = (name: string): MoRef => new MoRef('VirtualMachine', `<${name}>`);
  return {
    register: (vmxPath, name) => {
      const args = { path: vmxPath, name, asTemplate: false, pool: placement.resourcePool };
      return {
        action: apiAction('RegisterVM_Task', placement.vmFolder, args),
        run: async () => {
          const result = await runTask(client, 'RegisterVM_Task', placement.vmFolder, args, `register ${name}`);
          if (!(result instanceof MoRef)) throw new CesoError('HOST_FAULT', `register ${name}: the host returned no VM`);
          return result.value;
        },
      };
    },
    destroy: async (id) => {
      const ref = new MoRef('VirtualMachine', id);
      await runTask(client, 'PowerOffVM_Task', ref, {}, `power off ${id}`).catch(() => undefined);
      await ignoreGone(runTask(client, 'Destroy_Task', ref, {}, `destroy ${id}`));
    },
    configureGuest:
      guestinfo === undefined
        ? null
        : (id) => ({
            action: apiAction('ReconfigVM_Task', later('the restored VM'), { spec: { extraConfig: '<guestinfo.metadata, guestinfo.userdata (+ .encoding = gzip+base64), guestinfo.vendordata blanked: under review.cloudInit>' } }),
            run: async () => {
              const ref = new MoRef('VirtualMachine', id());
              const created = await readSourceVm(client, ref);
              const mac = created.nics[0]?.mac;
              if (mac === null || mac === undefined || created.uuid === null) throw new CesoError('HOST_FAULT', `the host gave the restored VM no MAC address or uuid`);
              const keys = guestinfo({ uuid: created.uuid, mac });
              await runTask(client, 'ReconfigVM_Task', ref, { spec: { extraConfig: Object.entries(keys).map(([key, value]) => option(key, value)) } }, 'configure the restored VM');
            },
          }),
    powerOn: (id) => ({
      action: apiAction('PowerOnVM_Task', later('the restored VM'), {}),
      run: async () => {
        await runTask(client, 'PowerOnVM_Task', new MoRef('VirtualMachine', id()), {}, 'power on the restored VM');
      },
    }),
    reload: (id) => ({
      action: apiAction('Reload', new MoRef('VirtualMachine', id), {}),
      run: async () => {
        await client.invoke('Reload', new MoRef('VirtualMachine', id));
      },
    }),
    getVm: (id) => getVmByRef(client, new MoRef('VirtualMachine', id)),
  };
}

export async function planRestore(client: VimClient, request: RestoreRequest, options: RestoreOptions = {}): Promise<Mutation<RestoreOutcome> & { target: RestoreTarget }> {
  const storage = await readStorage(client);
  const host = new ApiBackupHost(client, storage);
  const { backup, vmxText } = await findBackup(host, request, (destination, vm) => scanDestinations(host, storage, destination, vm));
  const { manifest } = backup;
  const warnings: string[] = [];
  if (request.inPlace) {
    const { vms } = await macsInUse(client);
    const matches = vms.filter((vm) => vm.name === manifest.vm.name);
    if (matches.length === 0) {
      throw new CesoError('VM_NOT_FOUND', `${manifest.vm.name}, the VM of the backup, is not on this host`, { hint: `Restore it as a new VM: ceso vm restore ${manifest.vm.name}@${manifest.stamp} --name ${manifest.vm.name}` });
    }
    const chosen = selectOne(matches, { name: manifest.vm.name });
    const vm = await getVmByRef(client, new MoRef('VirtualMachine', chosen.id));
    await options.authorize?.(manifest, vm);
    assertRestorable(vm, manifest);
    if (vm.vmxPath === null) throw new CesoError('HOST_FAULT', `the host does not say where the configuration of ${vm.name} is`);
    const folder = parentPath(vm.vmxPath);
    const [currentVmx, listing] = await Promise.all([host.readFile(vm.vmxPath), host.listBackupFolder(folder)]);
    if (currentVmx === null) throw new CesoError('HOST_FAULT', `cannot read ${vm.vmxPath}`);
    return buildRestorePlan({ backup, host, vmOps: vmOps(client, storage.placement), inPlace: inPlaceSpec(vm, vm.vmxPath, currentVmx, listing?.files ?? new Map(), backup, vmxText), warnings });
  }
  const newRequest = request.newVm;
  if (newRequest === undefined) throw new CesoError('INTERNAL', 'a restore needs --name or --in-place');
  const { macs, vms } = await macsInUse(client);
  assertNameFree(newRequest.name, vms);
  await options.authorize?.(manifest, null);
  const datastore = pickDatastore(storage.placement.datastores, newRequest.datastore ?? manifest.config.datastore ?? parseDatastorePath(backup.path)?.datastore ?? '');
  const network = newRequest.network ?? manifest.config.nics[0]?.network ?? 'VM Network';
  if (!storage.placement.networks.some((item) => item.name === network)) {
    const { networkNotFound } = await import('../../core/provisioning.js');
    throw networkNotFound(network, storage.placement.networks.map((item) => item.name));
  }
  warnings.push(...checkSpace(datastore, { name: `${manifest.vm.name}@${manifest.stamp}`, usedBytes: 0, provisionedBytes: manifest.disks.reduce((sum, disk) => sum + disk.capacityBytes, 0) }, 0));
  const folder = `[${datastore.name}] ${newRequest.name}`;
  if ((await host.listBackupFolder(folder)) !== null) {
    throw new CesoError('CONFLICT', `the folder ${folder} already exists on the datastore`, { hint: 'A VM of that name was deleted without its files, or another tool uses the folder: remove it or choose another name' });
  }
  const settings = restoreSettings(newRequest, manifest, vmxText, backup.path);
  const mac = generateMac(macs);
  const preview = guestinfoFor(settings, { instanceId: PLACEHOLDER_UUID, mac });
  const cloudInit = reviewGuestinfo(preview) as unknown as Record<string, unknown>;
  const metadata = cloudInit.metadata as Record<string, unknown> | undefined;
  if (metadata !== undefined && typeof metadata === 'object') metadata['instance-id'] = '<the new VM’s uuid>';
  const { vmx, problems } = newVmVmx(vmxText, manifest, { name: newRequest.name, cpu: settings.cpu, memoryMB: settings.memoryMB, network, mac, guestinfo: {}, markers: settings.markers });
  if (problems.length > 0) throw damagedError(backup, problems);
  return buildRestorePlan({
    backup,
    host,
    vmOps: vmOps(client, storage.placement, (identity) => guestinfoFor(settings, { instanceId: identity.uuid, mac: identity.mac })),
    newVm: { name: newRequest.name, folder, vmx: vmx.render(), vmxReview: reviewVmx(vmx), powerOn: newRequest.powerOn, cloudInit },
    warnings,
  });
}

