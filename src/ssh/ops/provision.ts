/**
 * create and clone over SSH: the cold-clone sequence of the tools that work on standalone hosts.
 *
 *   mkdir <ds>/<name>; vmkfstools -i <src disk> <name>.vmdk -d thin (per disk); vmkfstools -X
 *   (grow the first disk, before registering, so hostd reads the new size); cat > <name>.vmx (the
 *   new .vmx on stdin); vim-cmd solo/registervm (its printed vmid is the VM's id); power.on.
 *
 * Identity before power-on: ceso picks the MAC itself (static, VMware's 00:50:56:00-3f range,
 * checked against the MACs in every .vmx on the datastores) and the cloud-init instance-id
 * itself (a random UUID), so the guestinfo is complete in the .vmx before the VM is registered;
 * the host makes the BIOS uuid (`uuid.action = "create"`). Over the API the instance-id is the
 * VM's uuid instead; either way it is new and unique for every VM, which is what cloud-init needs.
 * On failure the steps that ran are undone (the VM destroyed, its folder removed), as over the API.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { reviewGuestinfo } from '../../cloudinit/review.js';
import { CesoError } from '../../core/errors.js';
import {
  assertNameFree,
  assertPoweredOff,
  checkSpace,
  cloneSettings,
  createSettings,
  gb,
  guestinfoFor,
  isLinkedBase,
  linkedMarkers,
  nextLinkedBaseName,
  templateNotFound,
  type ProvisionSettings,
} from '../../core/provisioning.js';
import type { Plan, PlanStep } from '../../core/plan.js';
import type { CloneRequest, CreateRequest } from '../../core/requests.js';
import { selectOne } from '../../core/select.js';
import { parseDatastorePath, type PowerState, type VmSnapshot } from '../../core/vm.js';
import { files, vimCmd, vmkfstools, vmkfstoolsSize } from '../commands.js';
import { quote } from '../quote.js';
import { snapshotCmd } from './snapshots.js';
import type { SshContext } from '../context.js';
import { parseRegisteredVmid, vmkfstoolsProgress, type VmRow } from '../parse.js';
import { hostPath, isSafeDatastoreName } from '../paths.js';
import { run } from '../run.js';
import type { VmxFile } from '../vmx.js';
import { buildCloneVmx, generateMac, reviewVmx, vmxDisks } from './clone-vmx.js';
import { readRows, readVm, type VmRead } from './inventory.js';
import { checkNetwork, findDatastore, readPlacement, type SshPlacement } from './placement.js';

export interface SshProvisionState {
  vmid?: string;
  baseTaken?: boolean;
}

interface SourceDisk {
  device: string;
  file: string;
  capacityKB: number;
  /** The disk this one is a child of (a datastore path), or null. */
  parent: string | null;
}

/** A linked clone's parents (datastore paths, by source disk) and the base snapshot to take, if any. */
interface LinkedBase {
  parents: string[];
  take?: string;
  reuse?: string;
}

interface SourceVm {
  row: VmRow;
  snapshots: VmSnapshot[];
  name: string;
  powerState: PowerState | null;
  cpu: number;
  memoryMB: number;
  vmx: VmxFile;
  datastore: string;
  disks: SourceDisk[];
  firstNicNetwork: string | null;
  committedBytes: number;
}

/** A create or a clone with its inputs resolved against the host, and the identity ceso chose. */
interface ProvisionSpec extends ProvisionSettings {
  source: SourceVm;
  datastore: SshPlacement['datastores'][number];
  network: string;
  mac: string;
  instanceId: string;
  base?: LinkedBase;
}

/** As over the API: the current ceso-linked-base snapshot is reused, anything else gets a new one. */
function linkedBase(source: SourceVm): LinkedBase {
  if (source.disks.length === 0) throw new CesoError('CONFLICT', `"${source.name}" has no disk to link to`, { hint: 'Use a template with a disk' });
  const walk = (nodes: VmSnapshot[]): VmSnapshot[] => nodes.flatMap((node) => [node, ...walk(node.children)]);
  const nodes = walk(source.snapshots);
  const current = nodes.find((node) => node.current);
  if (current !== undefined && isLinkedBase(current.name) && source.disks.every((disk) => disk.parent !== null)) {
    return { parents: source.disks.map((disk) => disk.parent as string), reuse: current.name };
  }
  return { parents: source.disks.map((disk) => disk.file), take: nextLinkedBaseName(nodes.map((node) => node.name)) };
}

function withLinkedBase<S extends ProvisionSpec>(spec: S): S {
  if (!spec.linked) return spec;
  const base = linkedBase(spec.source);
  return { ...spec, base, markers: { ...spec.markers, ...linkedMarkers(base.parents[0] as string) } };
}

/** Copies of big disks take long; the host reports progress meanwhile. */
const DISK_COPY_TIMEOUT_MS = 6 * 3600_000;

export async function planCreate(context: SshContext, request: CreateRequest, diskFromDefaults: boolean): Promise<Plan<SshProvisionState>> {
  const { rows } = await readRows(context);
  assertNameFree(request.name, rows);
  let row: VmRow;
  try {
    row = selectOne(rows, { name: request.template });
  } catch (error) {
    if (error instanceof CesoError && error.code === 'VM_NOT_FOUND') throw templateNotFound(request.template);
    throw error;
  }
  const template = sourceOf(row, await readVm(context, row));
  assertPoweredOff(template, 'template');
  const placement = await readPlacement(context);
  return buildPlan(context, withLinkedBase({
    source: template,
    datastore: findDatastore(placement, request.datastore ?? template.datastore),
    network: checkNetwork(placement, request.network ?? 'VM Network'),
    ...createSettings(request, template, diskFromDefaults),
    mac: generateMac(placement.macsInUse),
    instanceId: randomUUID(),
  }));
}

export async function planClone(context: SshContext, request: CloneRequest): Promise<Plan<SshProvisionState>> {
  const { rows } = await readRows(context);
  assertNameFree(request.name, rows);
  const row = selectOne(rows, request.source);
  const source = sourceOf(row, await readVm(context, row));
  assertPoweredOff(source, 'source');
  const placement = await readPlacement(context);
  // Settings before placement: a source whose user data cannot be re-targeted is reported first.
  const settings = cloneSettings(request, source, source.vmx);
  return buildPlan(context, withLinkedBase({
    source,
    datastore: findDatastore(placement, request.datastore ?? source.datastore),
    network: checkNetwork(placement, request.network ?? source.firstNicNetwork ?? 'VM Network'),
    ...settings,
    mac: generateMac(placement.macsInUse),
    instanceId: randomUUID(),
  }));
}

function sourceOf(row: VmRow, read: VmRead): SourceVm {
  if (read.vmxText === null) throw new CesoError('HOST_FAULT', `cannot read the .vmx of "${row.name}" (${row.file})`);
  const vmxPath = read.details.vmxPath ?? row.file;
  const capacities = new Map(read.hardware.disks.map((disk) => [disk.file, disk.capacityKB ?? 0]));
  const parents = new Map(read.hardware.disks.map((disk) => [disk.file, disk.parent]));
  return {
    row,
    snapshots: read.details.snapshots,
    name: read.details.name,
    powerState: read.details.powerState,
    cpu: read.details.cpu ?? 1,
    memoryMB: read.details.memoryMB ?? 1024,
    vmx: read.vmx,
    datastore: read.details.datastore ?? '',
    disks: vmxDisks(read.vmx, vmxPath).map((disk) => ({ ...disk, capacityKB: capacities.get(disk.file) ?? 0, parent: parents.get(disk.file) ?? null })),
    firstNicNetwork: read.details.nics[0]?.network ?? null,
    committedBytes: read.summary.committedBytes ?? 0,
  };
}

function diskFileName(name: string, index: number): string {
  return `${name}${index === 0 ? '' : `_${index}`}.vmdk`;
}

function buildPlan(context: SshContext, spec: ProvisionSpec): Plan<SshProvisionState> {
  const { datastore, source, name } = spec;
  if (!isSafeDatastoreName(datastore.name)) {
    throw new CesoError('INVALID_INPUT', `datastore "${datastore.name}": ceso cannot build a path on a datastore whose name holds "/", "]" or control characters`);
  }
  const guestinfo = guestinfoFor(spec, spec);
  const review = reviewGuestinfo(guestinfo) as unknown as Record<string, unknown>;
  const addedKB = spec.addDisksKB.reduce((sum, kb) => sum + kb, 0);
  const warnings =
    spec.base === undefined
      ? checkSpace(
          datastore,
          { name: source.name, usedBytes: source.committedBytes, provisionedBytes: source.disks.reduce((sum, disk) => sum + disk.capacityKB * 1024, 0) },
          spec.diskKB + addedKB,
        )
      : checkSpace(datastore, { name: source.name, usedBytes: 1, provisionedBytes: 1 }, spec.diskKB + addedKB);
  if (source.disks.length === 0) warnings.push(`"${source.name}" has no disk: the new VM will have none`);

  const directory = `[${datastore.name}] ${name}`;
  const directoryPath = hostPath(context.volumesRoot, directory);
  const vmxPath = `${directoryPath}/${name}.vmx`;
  const diskPaths = source.disks.map((_disk, index) => `${directoryPath}/${diskFileName(name, index)}`);
  const added = addedDisks(source, spec.addDisksKB, name);
  const vmx = buildCloneVmx(source.vmx, {
    name,
    cpu: spec.cpu,
    memoryMB: spec.memoryMB,
    disks: source.disks.map((disk, index) => ({ device: disk.device, fileName: diskFileName(name, index) })),
    network: spec.network,
    mac: spec.mac,
    guestinfo,
    markers: spec.markers,
  });
  for (const disk of added) {
    vmx.set(`${disk.device}.present`, 'TRUE');
    vmx.set(`${disk.device}.fileName`, disk.fileName);
    if (disk.device.startsWith('scsi')) vmx.set(`${disk.device}.deviceType`, 'scsi-hardDisk');
  }
  const vmxText = vmx.render();
  const shell = context.shell;
  const steps: Array<PlanStep<SshProvisionState>> = [];

  const base = spec.base;
  if (base?.take !== undefined) {
    const snapshotName = base.take;
    const take = snapshotCmd.create(source.row.id, snapshotName, 'ceso: the read-only base of linked clones; do not delete while they exist', false, false);
    steps.push({
      id: 'snapshot-base',
      description: `take the base snapshot "${snapshotName}" of ${source.name} (disk only): its disks become the read-only parents`,
      action: { kind: 'ssh', command: take },
      run: async (state) => {
        await run(shell, take, { what: `snapshot ${source.name}` });
        state.baseTaken = true;
      },
      undo: {
        description: `remove the base snapshot "${snapshotName}" of ${source.name} again`,
        run: async (state) => {
          if (state.baseTaken !== true) return;
          const tree = (await readVm(context, source.row)).details.snapshots;
          const walk = (nodes: VmSnapshot[]): VmSnapshot[] => nodes.flatMap((node) => [node, ...walk(node.children)]);
          const node = walk(tree).find((item) => item.name === snapshotName);
          if (node?.id != null) await run(shell, snapshotCmd.remove(source.row.id, node.id, false), { what: `remove snapshot "${snapshotName}"` });
        },
      },
    });
  }

  const mkdir = files.mkdir(directoryPath);
  steps.push({
    id: 'make-directory',
    description: `make the folder ${directory}`,
    action: { kind: 'ssh', command: mkdir },
    run: async () => {
      const result = await shell.exec(mkdir);
      if (result.code !== 0) {
        if (/exists/i.test(result.stderr + result.stdout)) {
          throw new CesoError('CONFLICT', `the folder ${directory} already exists on the datastore`, {
            hint: 'A VM of that name was deleted without its files, or another tool uses the folder: remove it or choose another name',
          });
        }
        throw new CesoError('HOST_FAULT', `make the folder ${directory}: ${(result.stderr || result.stdout).trim()}`);
      }
    },
    undo: {
      description: `delete the folder ${directory}`,
      run: async () => {
        await run(shell, files.removeFolder(directoryPath), { what: `delete the folder ${directory}` });
      },
    },
  });
  if (base !== undefined) {
    source.disks.forEach((disk, index) => {
      const parent = base.parents[index] as string;
      const parentPath = hostPath(context.volumesRoot, parent);
      const childPath = diskPaths[index] as string;
      const extentName = diskFileName(name, index).replace(/\.vmdk$/, '-sesparse.vmdk');
      const readCid = `grep -m 1 '^CID=' ${quote(parentPath)}`;
      const writeDescriptor = files.write(childPath);
      const writeExtent = files.write(`${directoryPath}/${extentName}`);
      steps.push({
        id: `child-disk-${index}`,
        description: `write ${diskFileName(name, index)}: an empty seSparse delta whose parent is ${parent} (parentCID read from it, parentFileNameHint ${absoluteVmfsPath(parent)})`,
        action: { kind: 'ssh', command: `${readCid}; ${writeDescriptor} (descriptor on stdin); ${writeExtent} (empty)` },
        run: async () => {
          const cid = /^CID=([0-9a-fA-F]{8})/m.exec((await run(shell, readCid, { what: `read the CID of ${parent}` })).stdout)?.[1];
          if (cid === undefined) throw new CesoError('HOST_FAULT', `${parent} has no CID line: not a disk descriptor ceso can link to`);
          await run(shell, writeExtent, { what: `write ${extentName}`, stdin: '' });
          await run(shell, writeDescriptor, { what: `write ${childPath}`, stdin: deltaDescriptor({ parentCid: cid, parentHint: absoluteVmfsPath(parent), sectors: disk.capacityKB * 2, extent: extentName }) });
        },
      });
    });
  }
  if (base === undefined) source.disks.forEach((disk, index) => {
    const sourcePath = hostPath(context.volumesRoot, disk.file);
    const copy = vmkfstools.cloneThin(sourcePath, diskPaths[index] as string);
    steps.push({
      id: `copy-disk-${index}`,
      description: `copy ${disk.file} to ${directory}/${diskFileName(name, index)} (thin)`,
      action: { kind: 'ssh', command: copy },
      run: async (_state, progress) => {
        await run(shell, copy, {
          what: `copy disk ${disk.file}`,
          timeoutMs: DISK_COPY_TIMEOUT_MS,
          onStdout: (chunk) => {
            const percent = vmkfstoolsProgress(chunk);
            if (percent !== null) progress(percent);
          },
        });
      },
    });
  });
  for (const disk of added) {
    const create = `vmkfstools -c ${vmkfstoolsSize(disk.capacityKB)} -d thin ${quote(`${directoryPath}/${disk.fileName}`)}`;
    steps.push({
      id: `add-disk-${disk.index}`,
      description: `make the thin disk ${disk.fileName} (${gb(disk.capacityKB)} GB) as ${disk.device}`,
      action: { kind: 'ssh', command: create },
      run: async () => {
        await run(shell, create, { what: `make the disk ${disk.fileName}` });
      },
    });
  }
  const firstDisk = diskPaths[0];
  if (base === undefined && firstDisk !== undefined && spec.diskKB > (source.disks[0]?.capacityKB ?? 0)) {
    const grow = vmkfstools.extend(vmkfstoolsSize(spec.diskKB), firstDisk);
    steps.push({
      id: 'grow-disk',
      description: `grow ${diskFileName(name, 0)} to ${gb(spec.diskKB)} GB`,
      action: { kind: 'ssh', command: grow },
      run: async () => {
        await run(shell, grow, { what: `grow the disk of ${name}` });
      },
    });
  }
  const write = files.write(vmxPath);
  steps.push({
    id: 'write-vmx',
    description: `write ${name}.vmx (on stdin: ${vmx.keys().length} keys, under review.vmx): ${spec.cpu} vCPU, ${spec.memoryMB} MB, NIC ${spec.mac} on ${spec.network}, cloud-init guestinfo (instance-id ${spec.instanceId}), ceso markers`,
    action: { kind: 'ssh', command: write },
    run: async () => {
      await run(shell, write, { what: `write ${vmxPath}`, stdin: vmxText });
    },
  });
  const register = vimCmd.register(vmxPath);
  steps.push({
    id: 'register-vm',
    description: `register ${name} (the host makes its BIOS uuid: uuid.action = "create")`,
    action: { kind: 'ssh', command: register },
    run: async (state) => {
      const result = await run(shell, register, { what: `register ${name}` });
      // The vmid registervm prints is the VM's id (ESX 4 printed nothing): else find the row
      // that names this exact .vmx, never a name match.
      let id = parseRegisteredVmid(result.stdout);
      if (id === null) {
        const { rows } = await readRows(context);
        const registered = rows.filter((row) => row.file === `${directory}/${name}.vmx`);
        if (registered.length === 1) id = (registered[0] as VmRow).id;
      }
      if (id === null) {
        throw new CesoError('HOST_FAULT', `register ${name}: the host printed no vmid and lists no VM for ${directory}/${name}.vmx (${result.stdout.trim().slice(0, 200) || 'no output'})`);
      }
      state.vmid = id;
    },
    undo: {
      description: base === undefined ? `destroy the VM ${name} and its files` : `unregister the VM ${name} (its folder goes next; never the parent disk)`,
      run: async (state) => {
        if (state.vmid === undefined) return;
        await shell.exec(vimCmd.power('off', state.vmid)).catch(() => undefined);
        const command = base === undefined ? vimCmd.destroy(state.vmid) : vimCmd.unregister(state.vmid);
        await run(shell, command, { what: `${base === undefined ? 'destroy' : 'unregister'} ${name}`, tolerate: ['NotFound', 'ManagedObjectNotFound'] });
      },
    },
  });
  if (spec.powerOn) {
    steps.push({
      id: 'power-on',
      description: `power on ${name}`,
      action: { kind: 'ssh', command: 'vim-cmd vmsvc/power.on <vmid printed by registervm>' },
      run: async (state) => {
        if (state.vmid === undefined) throw new CesoError('INTERNAL', 'the VM was not registered');
        await run(shell, vimCmd.power('on', state.vmid), { what: `power on ${name}` });
      },
    });
  }
  return {
    operation: spec.operation,
    target: name,
    via: 'ssh',
    steps,
    review: { cloudInit: review, vmx: reviewVmx(vmx) },
    warnings,
    state: {},
  };
}


/** `[ds] dir/file.vmdk` as the absolute path a descriptor's parentFileNameHint names. */
function absoluteVmfsPath(datastorePath: string): string {
  const parsed = parseDatastorePath(datastorePath);
  if (parsed === null) throw new CesoError('HOST_FAULT', `"${datastorePath}" is not a datastore path`);
  return `/vmfs/volumes/${parsed.datastore}/${parsed.path}`;
}

/** An empty seSparse delta descriptor: CID new, parentCID the parent's, the parent named absolutely. */
function deltaDescriptor(options: { parentCid: string; parentHint: string; sectors: number; extent: string }): string {
  const cid = randomBytes(4).toString('hex');
  return [
    '# Disk DescriptorFile',
    'version=1',
    'encoding="UTF-8"',
    `CID=${cid}`,
    `parentCID=${options.parentCid.toLowerCase()}`,
    'createType="seSparse"',
    `parentFileNameHint="${options.parentHint}"`,
    '',
    '# Extent description',
    `RW ${options.sectors} SESPARSE "${options.extent}"`,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    'ddb.grain = "8"',
    `ddb.longContentID = "${randomBytes(16).toString('hex')}"`,
    'ddb.thinProvisioned = "1"',
    `ddb.uuid = "${[...randomBytes(16)].map((byte) => byte.toString(16).padStart(2, '0')).join(' ')}"`,
    '',
  ].join('\n');
}

/** --add-disk over SSH: thin disks on the first disk's controller, next free units (SCSI skips 7). */
function addedDisks(source: SourceVm, sizesKB: readonly number[], name: string): Array<{ index: number; device: string; fileName: string; capacityKB: number }> {
  if (sizesKB.length === 0) return [];
  const first = source.disks[0]?.device ?? 'scsi0:0';
  const controller = first.slice(0, first.indexOf(':'));
  const used = new Set(source.disks.filter((disk) => disk.device.startsWith(`${controller}:`)).map((disk) => Number(disk.device.slice(disk.device.indexOf(':') + 1))));
  for (const key of source.vmx.keys()) {
    const match = new RegExp(`^${controller}:(\\d+)\\.present$`, 'i').exec(key);
    if (match !== null && /^true$/i.test(source.vmx.get(key) ?? '')) used.add(Number(match[1]));
  }
  if (controller.startsWith('scsi')) used.add(7);
  let unit = 0;
  return sizesKB.map((capacityKB, index) => {
    while (used.has(unit)) unit += 1;
    used.add(unit);
    return { index, device: `${controller}:${unit}`, fileName: diskFileName(name, source.disks.length + index), capacityKB };
  });
}
