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
import { MARKERS } from '../../core/vm.js';
import { MoRef, Typed, asMoRef, asString, type Decoded, type XmlObject } from '../soap/xml.js';
import { faultTypeOf, type VimClient } from '../vim/client.js';
import { selectOne } from '../../core/select.js';
import type { VmDetails } from '../../core/vm.js';
import { getVmByRef, vmDetailsOf, vmDetailsQuery } from './inventory.js';
import { findDatastore, findNetwork, placementOf, placementQuery, type DatastoreInfo, type NetworkInfo, type Placement } from './placement.js';
import { readSourceVm, readSourceVmWith, type SourceDisk, type SourceVm } from './source-vm.js';
import { apiAction, ignoreGone, Later, option, runTask, runTaskReading } from './steps.js';
import { inventoryTraversal, retrieveProperties, type ObjectProperties } from '../vim/property-collector.js';
import { flatten } from '../../core/snapshots.js';

export interface ProvisionState {
  vm?: MoRef;
  baseSnapshot?: MoRef;
  /** The new VM as the power-on task's last poll read it, when that read shows it on. */
  created?: VmDetails;
}

/** A linked clone's parents: each source disk's file under the base snapshot, and the snapshot to take first, if any. */
interface LinkedBase {
  parents: string[];
  /** The base snapshot to take (its name) when the source has no current one. */
  take?: string;
  /** The base snapshot reused. */
  reuse?: string;
}

/** A create or a clone with its inputs resolved against the host. */
interface ProvisionSpec extends ProvisionSettings {
  source: SourceVm;
  placement: Placement;
  datastore: DatastoreInfo;
  network: NetworkInfo;
  base?: LinkedBase;
}

/**
 * The base a linked clone hangs from. The source's current snapshot, when it is a ceso-linked-base
 * one, is reused: the disks it froze are the running deltas' parents. Anything else (no snapshot,
 * or a newer snapshot taken or reverted to since) means the source changed: a new base snapshot is
 * taken and its disks (the source's current ones, read-only from then on) are the parents. Older
 * children keep theirs.
 */
function linkedBase(source: SourceVm): LinkedBase {
  if (source.disks.length === 0) throw new CesoError('CONFLICT', `"${source.name}" has no disk to link to`, { hint: 'Use a template with a disk' });
  const tree = source.snapshots;
  const nodes = flatten(tree.snapshots);
  const current = nodes.find((node) => node.id === tree.current);
  if (current !== undefined && isLinkedBase(current.name) && source.disks.every((disk) => disk.parentFileName !== null)) {
    return { parents: source.disks.map((disk) => disk.parentFileName as string), reuse: current.name };
  }
  return { parents: source.disks.map((disk) => disk.fileName), take: nextLinkedBaseName(nodes.map((node) => node.name)) };
}

function withLinkedBase(spec: ProvisionSpec): ProvisionSpec {
  if (!spec.linked) return spec;
  const base = linkedBase(spec.source);
  return { ...spec, base, markers: { ...spec.markers, ...linkedMarkers(base.parents[0] as string) } };
}


export async function planCreate(client: VimClient, request: CreateRequest, diskFromDefaults: boolean): Promise<Plan<ProvisionState>> {
  const names = await vmNames(client);
  assertNameFree(request.name, names);
  const { source: template, objects } = await readSourceAndPlacement(client, templateRef(names, request.template));
  assertPoweredOff(template, 'template');
  const placement = placementOf(objects);
  return buildPlan(client, withLinkedBase({
    source: template,
    placement,
    datastore: findDatastore(placement, request.datastore ?? template.datastore),
    network: findNetwork(placement, request.network ?? 'VM Network'),
    ...createSettings(request, template, diskFromDefaults),
  }));
}

export async function planClone(client: VimClient, request: CloneRequest): Promise<Plan<ProvisionState>> {
  const names = await vmNames(client);
  assertNameFree(request.name, names);
  const { ref } = selectOne(names, request.source);
  const { source, objects } = await readSourceAndPlacement(client, ref);
  assertPoweredOff(source, 'source');
  const placement = placementOf(objects);
  const details = await getVmByRef(client, ref);
  // Settings before placement: a source whose user data cannot be re-targeted is reported first.
  const settings = cloneSettings(request, source, source.extraConfig);
  return buildPlan(client, withLinkedBase({
    source,
    placement,
    datastore: findDatastore(placement, request.datastore ?? source.datastore),
    network: findNetwork(placement, request.network ?? details.nics[0]?.network ?? 'VM Network'),
    ...settings,
  }));
}

/** Every VM's name and reference: the new name is checked and the source found in this one read. */
async function vmNames(client: VimClient): Promise<Array<{ name: string; id: string; ref: MoRef }>> {
  const { rootFolder } = await client.connect();
  const objects = await retrieveProperties(client, [{ obj: rootFolder, selectSet: inventoryTraversal() }], [{ type: 'VirtualMachine', paths: ['name'] }]);
  return objects.map((object) => ({ name: asString(object.props.name) ?? '', id: object.ref.value, ref: object.ref }));
}

function templateRef(names: Array<{ name: string; id: string; ref: MoRef }>, name: string): MoRef {
  try {
    return selectOne(names, { name }).ref;
  } catch (error) {
    if (error instanceof CesoError && error.code === 'VM_NOT_FOUND') throw templateNotFound(name);
    throw error;
  }
}

/** The source VM (with its snapshot tree) and the placement inventory, in one RetrievePropertiesEx; the placement is parsed by placementOf. */
async function readSourceAndPlacement(client: VimClient, ref: MoRef): Promise<{ source: SourceVm; objects: ObjectProperties[] }> {
  const { rootFolder } = await client.connect();
  return readSourceVmWith(client, ref, placementQuery(rootFolder));
}

const PLACEHOLDER_MAC = '00:50:56:00:00:00';
const PLACEHOLDER_UUID = '00000000-0000-0000-0000-000000000000';

function buildPlan(client: VimClient, spec: ProvisionSpec): Plan<ProvisionState> {
  // Built now, with placeholders of the same size, so an oversized document is refused before
  // anything is made and the review shows exactly what the guest will read.
  const preview = guestinfoFor(spec, { instanceId: PLACEHOLDER_UUID, mac: PLACEHOLDER_MAC });
  const review = reviewGuestinfo(preview) as unknown as Record<string, unknown>;
  const metadata = review.metadata as Record<string, unknown> | undefined;
  if (metadata !== undefined && typeof metadata === 'object') {
    metadata['instance-id'] = '<the new VM’s uuid>';
    const nic = ((metadata.network as { ethernets?: Record<string, { match?: { macaddress?: string } }> } | undefined)?.ethernets ?? {}).nic0;
    if (nic?.match !== undefined) nic.match.macaddress = '<the MAC the host assigns>';
  }

  const addedKB = spec.addDisksKB.reduce((sum, kb) => sum + kb, 0);
  const warnings =
    spec.base === undefined
      ? checkSpace(
          spec.datastore,
          { name: spec.source.name, usedBytes: spec.source.committedBytes, provisionedBytes: spec.source.disks.reduce((sum, disk) => sum + disk.capacityKB * 1024, 0) },
          spec.diskKB + addedKB,
        )
      : // a child disk starts empty: only what the guest writes, and the added disks, take space
        checkSpace(spec.datastore, { name: spec.source.name, usedBytes: 1, provisionedBytes: 1 }, spec.diskKB + addedKB);

  const steps = spec.base !== undefined ? linkedSteps(client, spec, spec.base) : client.isVCenter ? cloneSteps(client, spec) : copySteps(client, spec);
  steps.push(...finishSteps(client, spec));
  return {
    operation: spec.operation,
    target: spec.name,
    via: 'api',
    steps,
    review: { cloudInit: review },
    warnings,
    state: {},
  };
}

function vmDirectory(spec: ProvisionSpec): string {
  return `[${spec.datastore.name}] ${spec.name}`;
}

function diskPath(spec: ProvisionSpec, index: number): string {
  return `${vmDirectory(spec)}/${spec.name}${index === 0 ? '' : `_${index}`}.vmdk`;
}

function markerOptions(spec: ProvisionSpec): XmlObject[] {
  return Object.entries(spec.markers).map(([key, value]) => option(key, value));
}

/** Standalone ESXi refuses CloneVM_Task: make the folder, copy each disk thin, create the VM. */
function copySteps(client: VimClient, spec: ProvisionSpec): Array<PlanStep<ProvisionState>> {
  const { fileManager, virtualDiskManager } = client.serviceContent;
  if (fileManager === undefined || virtualDiskManager === undefined) {
    throw new CesoError('NOT_SUPPORTED', 'the host offers no FileManager or VirtualDiskManager');
  }
  const datacenter = spec.placement.datacenter;
  const steps: Array<PlanStep<ProvisionState>> = [makeDirectoryStep(client, spec)];
  spec.source.disks.forEach((disk, index) => {
    const destination = diskPath(spec, index);
    const copy = {
      sourceName: disk.fileName,
      sourceDatacenter: datacenter,
      destName: destination,
      destDatacenter: datacenter,
      destSpec: new Typed('VirtualDiskSpec', { diskType: 'thin', adapterType: 'lsiLogic' }),
      force: false,
    };
    steps.push({
      id: `copy-disk-${index}`,
      description: `copy ${disk.fileName} to ${destination} (thin)`,
      action: apiAction('CopyVirtualDisk_Task', virtualDiskManager, copy),
      run: async (_state, progress) => {
        await runTask(client, 'CopyVirtualDisk_Task', virtualDiskManager, copy, `copy disk ${disk.fileName}`, progress);
      },
      undo: {
        description: `delete the disk ${destination}`,
        run: () => ignoreGone(runTask(client, 'DeleteVirtualDisk_Task', virtualDiskManager, { name: destination, datacenter }, `delete ${destination}`)),
      },
    });
  });
  const config = createSpec(spec);
  const createArgs = { config, pool: spec.placement.resourcePool };
  steps.push({
    id: 'create-vm',
    description: `create the VM ${spec.name} (${spec.cpu} vCPU, ${spec.memoryMB} MB) on ${spec.network.name}`,
    action: apiAction('CreateVM_Task', spec.placement.vmFolder, createArgs),
    run: async (state) => {
      state.vm = (await runTask(client, 'CreateVM_Task', spec.placement.vmFolder, createArgs, `create VM ${spec.name}`)) as MoRef;
    },
    undo: destroyUndo(client, spec.name),
  });
  return steps;
}

function makeDirectoryStep(client: VimClient, spec: ProvisionSpec): PlanStep<ProvisionState> {
  const { fileManager } = client.serviceContent;
  if (fileManager === undefined) throw new CesoError('NOT_SUPPORTED', 'the host offers no FileManager');
  const datacenter = spec.placement.datacenter;
  const directory = vmDirectory(spec);
  const makeDirectory = { name: directory, datacenter, createParentDirectories: false };
  return {
    id: 'make-directory',
    description: `make the folder ${directory}`,
    action: apiAction('MakeDirectory', fileManager, makeDirectory),
    run: async () => {
      try {
        await client.invoke('MakeDirectory', fileManager, makeDirectory);
      } catch (error) {
        if (faultTypeOf(error) === 'FileAlreadyExists') {
          throw new CesoError('CONFLICT', `the folder ${directory} already exists on the datastore`, {
            hint: 'A VM of that name was deleted without its files, or another tool uses the folder: remove it or choose another name',
          });
        }
        throw error;
      }
    },
    undo: {
      description: `delete the folder ${directory}`,
      run: () => ignoreGone(runTask(client, 'DeleteDatastoreFile_Task', fileManager, { name: directory, datacenter }, `delete ${directory}`)),
    },
  };
}

/**
 * A linked clone: the source's base snapshot (taken once, disk only), then CreateVM_Task with each
 * disk a new child (add + fileOperation create, backing.parent = the base disk) in the same call.
 */
function linkedSteps(client: VimClient, spec: ProvisionSpec, base: LinkedBase): Array<PlanStep<ProvisionState>> {
  const steps: Array<PlanStep<ProvisionState>> = [];
  if (base.take !== undefined) {
    const name = base.take;
    const args = { name, description: 'ceso: the read-only base of linked clones; do not delete while they exist', memory: false, quiesce: false };
    steps.push({
      id: 'snapshot-base',
      description: `take the base snapshot "${name}" of ${spec.source.name} (disk only): its disks become the read-only parents`,
      action: apiAction('CreateSnapshot_Task', spec.source.ref, args),
      run: async (state) => {
        const snapshot = asMoRef((await runTask(client, 'CreateSnapshot_Task', spec.source.ref, args, `snapshot ${spec.source.name}`)) as Decoded | undefined);
        if (snapshot !== undefined) state.baseSnapshot = snapshot;
      },
      undo: {
        description: `remove the base snapshot "${name}" of ${spec.source.name} again`,
        run: async (state) => {
          if (state.baseSnapshot === undefined) return;
          await runTask(client, 'RemoveSnapshot_Task', state.baseSnapshot, { removeChildren: false, consolidate: true }, `remove snapshot "${name}"`);
        },
      },
    });
  }
  steps.push(makeDirectoryStep(client, spec));
  const config = createSpec(spec);
  const createArgs = { config, pool: spec.placement.resourcePool };
  steps.push({
    id: 'create-vm',
    description: `create the VM ${spec.name} (${spec.cpu} vCPU, ${spec.memoryMB} MB) on ${spec.network.name}, its disk a child of ${base.parents.join(', ')}${base.reuse === undefined ? '' : ` (snapshot "${base.reuse}")`}`,
    action: apiAction('CreateVM_Task', spec.placement.vmFolder, createArgs),
    run: async (state) => {
      state.vm = (await runTask(client, 'CreateVM_Task', spec.placement.vmFolder, createArgs, `create VM ${spec.name}`)) as MoRef;
    },
    undo: linkedUndo(client, spec),
  });
  return steps;
}

/** A linked clone is unregistered and its own folder removed: a Destroy_Task must never reach the parent disk. */
function linkedUndo(client: VimClient, spec: ProvisionSpec): NonNullable<PlanStep<ProvisionState>['undo']> {
  const { fileManager } = client.serviceContent;
  return {
    description: `unregister the VM ${spec.name} and remove its folder (never the parent disk)`,
    run: async (state) => {
      if (state.vm === undefined) return;
      await runTask(client, 'PowerOffVM_Task', state.vm, {}, `power off ${spec.name}`).catch(() => undefined);
      try {
        await client.invoke('UnregisterVM', state.vm);
      } catch (error) {
        if (faultTypeOf(error) !== 'ManagedObjectNotFound') throw error;
      }
      if (fileManager !== undefined) {
        await ignoreGone(runTask(client, 'DeleteDatastoreFile_Task', fileManager, { name: vmDirectory(spec), datacenter: spec.placement.datacenter }, `delete ${vmDirectory(spec)}`));
      }
    },
  };
}

/** vCenter clones natively; the end state matches the standalone path. */
function cloneSteps(client: VimClient, spec: ProvisionSpec): Array<PlanStep<ProvisionState>> {
  const args = {
    folder: spec.placement.vmFolder,
    name: spec.name,
    spec: {
      location: { datastore: spec.datastore.ref, pool: spec.placement.resourcePool },
      template: false,
      config: {
        numCPUs: spec.cpu,
        memoryMB: spec.memoryMB,
        deviceChange: spec.source.nics.slice(0, 1).map((nic) => ({
          operation: 'edit',
          device: new Typed(nic.type, {
            key: nic.key,
            deviceInfo: new Typed('Description', { label: nic.label, summary: spec.network.name }),
            backing: networkBacking(spec.network),
            connectable: { startConnected: true, allowGuestControl: true, connected: false },
            addressType: 'generated',
          }),
        })),
        // vCenter copies the source's extraConfig: a template's own markers must not follow
        extraConfig: [...markerOptions(spec), option(MARKERS.importedFrom, '')],
      },
      powerOn: false,
    },
  };
  return [
    {
      id: 'clone-vm',
      description: `clone ${spec.source.name} to ${spec.name} on ${spec.datastore.name}`,
      action: apiAction('CloneVM_Task', spec.source.ref, args),
      run: async (state, progress) => {
        state.vm = (await runTask(client, 'CloneVM_Task', spec.source.ref, args, `clone ${spec.source.name}`, progress)) as MoRef;
      },
      undo: destroyUndo(client, spec.name),
    },
  ];
}

/** Guestinfo needs the uuid and MAC the host gave the VM; then grow the disk and power on. */
function finishSteps(client: VimClient, spec: ProvisionSpec): Array<PlanStep<ProvisionState>> {
  const steps: Array<PlanStep<ProvisionState>> = [
    {
      id: 'configure-guest',
      description: `write cloud-init guestinfo (instance-id = new uuid, NIC matched by MAC)${spec.diskKB > (spec.source.disks[0]?.capacityKB ?? 0) ? ` and grow the disk to ${gb(spec.diskKB)} GB` : ''}`,
      action: apiAction('ReconfigVM_Task', new MoRef('VirtualMachine', `<${spec.name}>`), {
        spec: {
          deviceChange: new Later('disk capacity edit when the disk grows') as never,
          extraConfig: new Later('guestinfo.metadata, guestinfo.userdata (+ .encoding = gzip+base64), guestinfo.vendordata blanked') as never,
        },
      }),
      run: async (state) => {
        const vm = requireVm(state);
        const created = await readSourceVm(client, vm);
        const mac = created.nics[0]?.mac;
        if (mac === null || mac === undefined || created.uuid === null) {
          throw new CesoError('HOST_FAULT', `the host assigned no MAC address or uuid to ${spec.name}`);
        }
        const guestinfo = guestinfoFor(spec, { instanceId: created.uuid, mac });
        const disk = created.disks[0];
        const grow = disk !== undefined && spec.diskKB > disk.capacityKB;
        // vCenter's native clone carries no new disks: they are added here, in the same reconfigure
        const added = client.isVCenter && spec.base === undefined ? addedDisks(spec) : [];
        const reconfig = {
          spec: {
            deviceChange: grow || added.length > 0 ? [...added, ...(grow ? [growEdit(disk, spec.diskKB)] : [])] : undefined,
            extraConfig: Object.entries(guestinfo).map(([key, value]) => option(key, value)),
          },
        };
        await runTask(client, 'ReconfigVM_Task', vm, reconfig, `configure ${spec.name}`);
      },
    },
  ];
  if (spec.powerOn) {
    steps.push({
      id: 'power-on',
      description: `power on ${spec.name}`,
      action: apiAction('PowerOnVM_Task', new MoRef('VirtualMachine', `<${spec.name}>`), {}),
      run: async (state) => {
        const vm = requireVm(state);
        // the result is read in the task's polls: kept only if that read shows the VM on (it may precede the task's end)
        const created = vmDetailsOf(vm, await runTaskReading(client, 'PowerOnVM_Task', vm, {}, `power on ${spec.name}`, vmDetailsQuery(vm)));
        if (created?.powerState === 'poweredOn') state.created = created;
      },
    });
  }
  return steps;
}

function growEdit(disk: SourceDisk, diskKB: number): XmlObject {
  return {
    operation: 'edit',
    device: new Typed('VirtualDisk', {
      key: disk.key,
      deviceInfo: new Typed('Description', { label: disk.label, summary: `${diskKB} KB` }),
      backing: new Typed('VirtualDiskFlatVer2BackingInfo', { fileName: disk.fileName, diskMode: 'persistent', thinProvisioned: true }),
      controllerKey: disk.controllerKey,
      unitNumber: disk.unitNumber,
      capacityInKB: diskKB,
      capacityInBytes: diskKB * 1024,
    }),
  };
}

function createSpec(spec: ProvisionSpec): XmlObject {
  const controllerKeys = new Map<number, number>();
  const deviceChange: XmlObject[] = [];
  spec.source.controllers.forEach((controller, index) => {
    const key = -100 - index;
    controllerKeys.set(controller.key, key);
    deviceChange.push({
      operation: 'add',
      device: new Typed(controller.type, {
        key,
        busNumber: controller.busNumber,
        ...(controller.sharedBus === undefined && !/SCSI|LsiLogic|BusLogic/.test(controller.type) ? {} : { sharedBus: controller.sharedBus ?? 'noSharing' }),
      }),
    });
  });
  spec.source.disks.forEach((disk, index) => {
    const parent = spec.base?.parents[index];
    deviceChange.push({
      operation: 'add',
      ...(parent === undefined ? {} : { fileOperation: 'create' }),
      device: new Typed('VirtualDisk', {
        key: -200 - index,
        backing: new Typed('VirtualDiskFlatVer2BackingInfo', {
          fileName: diskPath(spec, index),
          diskMode: 'persistent',
          thinProvisioned: true,
          ...(parent === undefined ? {} : { parent: new Typed('VirtualDiskFlatVer2BackingInfo', { fileName: parent, diskMode: 'persistent' }) }),
        }),
        controllerKey: controllerKeys.get(disk.controllerKey) ?? disk.controllerKey,
        unitNumber: disk.unitNumber,
        capacityInKB: disk.capacityKB,
      }),
    });
  });
  deviceChange.push(...addedDisks(spec, controllerKeys));
  const nicType = spec.source.nics[0]?.type ?? 'VirtualVmxnet3';
  deviceChange.push({
    operation: 'add',
    device: new Typed(nicType, {
      key: -300,
      backing: networkBacking(spec.network),
      connectable: { startConnected: true, allowGuestControl: true, connected: false },
      addressType: 'generated',
    }),
  });
  return {
    name: spec.name,
    guestId: spec.source.guestId,
    files: { vmPathName: `${vmDirectory(spec)}/${spec.name}.vmx` },
    numCPUs: spec.cpu,
    memoryMB: spec.memoryMB,
    deviceChange,
    extraConfig: markerOptions(spec),
    firmware: spec.source.firmware ?? undefined,
  };
}

/** --add-disk: new thin disks on the first disk's controller, next free units (SCSI skips 7). */
function addedDisks(spec: ProvisionSpec, controllerKeys?: Map<number, number>): XmlObject[] {
  const first = spec.source.disks[0];
  const controller = first?.controllerKey ?? spec.source.controllers[0]?.key ?? 1000;
  const used = new Set(spec.source.disks.filter((disk) => disk.controllerKey === controller).map((disk) => disk.unitNumber));
  const scsi = /SCSI|LsiLogic|BusLogic/.test(spec.source.controllers.find((item) => item.key === controller)?.type ?? 'LsiLogic');
  if (scsi) used.add(7);
  let unit = 0;
  return spec.addDisksKB.map((capacityKB, index) => {
    while (used.has(unit)) unit += 1;
    used.add(unit);
    return {
      operation: 'add',
      fileOperation: 'create',
      device: new Typed('VirtualDisk', {
        key: -250 - index,
        backing: new Typed('VirtualDiskFlatVer2BackingInfo', { fileName: diskPath(spec, spec.source.disks.length + index), diskMode: 'persistent', thinProvisioned: true }),
        controllerKey: controllerKeys?.get(controller) ?? controller,
        unitNumber: unit,
        capacityInKB: capacityKB,
      }),
    };
  });
}

function networkBacking(network: NetworkInfo): Typed {
  if (network.ref.type === 'DistributedVirtualPortgroup') {
    return new Typed('VirtualEthernetCardDistributedVirtualPortBackingInfo', { port: { portgroupKey: network.ref.value } });
  }
  return new Typed('VirtualEthernetCardNetworkBackingInfo', { deviceName: network.name, network: network.ref });
}

function destroyUndo(client: VimClient, name: string): NonNullable<PlanStep<ProvisionState>['undo']> {
  return {
    description: `destroy the VM ${name} and its files`,
    run: async (state) => {
      if (state.vm === undefined) return;
      await runTask(client, 'PowerOffVM_Task', state.vm, {}, `power off ${name}`).catch(() => undefined);
      await ignoreGone(runTask(client, 'Destroy_Task', state.vm, {}, `destroy ${name}`));
    },
  };
}

function requireVm(state: ProvisionState): MoRef {
  if (state.vm === undefined) throw new CesoError('INTERNAL', 'the VM was not created');
  return state.vm;
}

