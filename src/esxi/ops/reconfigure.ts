/**
 * `vm reconfigure` over the API: everything asked in ONE ReconfigVM_Task, in at most four
 * requests with a warm session:
 *
 *   1. RetrievePropertiesEx: the VM's name -> reference (skipped with --id)
 *   2. RetrievePropertiesEx: the VM (config, devices, snapshots, runtime, hot-add flags), its
 *      datastores' free space and its networks through traversals, and (with --network) every
 *      port group of the datacenter
 *   3. ReconfigVM_Task
 *   4. RetrievePropertiesEx: the task's info AND the VM as it is now, in one call (the poll that
 *      sees the task end is the result read; a slower host takes one more poll per wait)
 *
 * Disk edits send the full device as read (deviceInfo included) with capacityInKB and
 * capacityInBytes set together and no fileOperation (`replace` would recreate the disk); a NIC
 * edit sends the full card with the new backing; a new disk is `add` + `create`, thin, on the
 * first disk's controller. The task changes everything or nothing: there is nothing to undo.
 */
import { CesoError } from '../../core/errors.js';
import { logger } from '../../core/log.js';
import type { Mutation } from '../../core/backend.js';
import type { Plan } from '../../core/plan.js';
import {
  changedFields,
  controllerKind,
  describeChanges,
  hasChanges,
  planChanges,
  reconfigureFault,
  reconfigureOutcome,
  type PlannedChanges,
  type ReconfigureDisk,
  type ReconfigureOptions,
  type ReconfigureOutcome,
  type ReconfigureRequest,
  type ReconfigureView,
  type ReconfiguredVm,
} from '../../core/reconfigure.js';
import { selectOne } from '../../core/select.js';
import type { VmSnapshot } from '../../core/vm.js';
import { MoRef, Typed, asArray, asBoolean, asNumber, asObject, asString, type Decoded, type DecodedObject, type XmlObject, type XmlValue } from '../soap/xml.js';
import { faultTypeOf, type VimClient } from '../vim/client.js';
import { relation, retrieveProperties, type ObjectProperties, type PropertyRequest } from '../vim/property-collector.js';
import { waitForTaskReading } from '../vim/task.js';
import { DETAIL_PATHS, detailsOf, findVm } from './inventory.js';
import { apiAction } from './steps.js';

interface ReconfigureState {
  /** The objects the task's last poll read along with it. */
  after?: ObjectProperties[];
}

const HOT_ADD_PATHS = ['config.cpuHotAddEnabled', 'config.memoryHotAddEnabled', 'config.hardware.numCoresPerSocket', 'config.hotPlugMemoryLimit'];

function vmStart(ref: MoRef): { obj: MoRef; selectSet: Typed[] } {
  return { obj: ref, selectSet: [relation('vmNetworks', 'VirtualMachine', 'network'), relation('vmDatastores', 'VirtualMachine', 'datastore')] };
}

const VM_REQUESTS: PropertyRequest[] = [
  { type: 'VirtualMachine', paths: [...DETAIL_PATHS, ...HOT_ADD_PATHS] },
  { type: 'Network', paths: ['name'] },
  { type: 'Datastore', paths: ['name', 'summary.freeSpace', 'summary.accessible'] },
];

/** Every port group of the datacenters (not only the VM's): where --network may point. */
function networksStart(rootFolder: MoRef): { obj: MoRef; selectSet: Typed[] } {
  const folder = new Typed('TraversalSpec', { name: 'rcFolder', type: 'Folder', path: 'childEntity', skip: false, selectSet: [{ name: 'rcFolder' }, { name: 'rcDcNetworks' }] });
  const networks = new Typed('TraversalSpec', { name: 'rcDcNetworks', type: 'Datacenter', path: 'network', skip: false });
  return { obj: rootFolder, selectSet: [folder, networks] };
}

const NETWORK_TYPES = new Set(['Network', 'DistributedVirtualPortgroup', 'OpaqueNetwork']);

interface ReadVm {
  ref: MoRef;
  vm: ReconfiguredVm;
  view: ReconfigureView;
  devices: DecodedObject[];
  /** Port groups by name (with --network). */
  networks: Map<string, MoRef>;
}

function isNic(device: DecodedObject): boolean {
  return 'macAddress' in device || /^Virtual(E1000e?|Vmxnet\d?|Pcnet32|Sriov)/.test(device._type ?? '');
}

function countSnapshots(tree: VmSnapshot[]): number {
  return tree.reduce((sum, node) => sum + 1 + countSnapshots(node.children), 0);
}

function capacityKB(device: DecodedObject): number {
  const bytes = asNumber(device.capacityInBytes);
  if (bytes !== undefined && bytes > 0) return Math.ceil(bytes / 1024);
  return asNumber(device.capacityInKB) ?? 0;
}

/** The VM, its datastores and networks as one read returned them. */
function parseRead(ref: MoRef, objects: ObjectProperties[], withNetworks: boolean): ReadVm | undefined {
  const object = objects.find((candidate) => candidate.ref.type === 'VirtualMachine' && candidate.ref.value === ref.value);
  if (object === undefined) return undefined;
  const names = new Map<string, string>();
  const networks = new Map<string, MoRef>();
  const datastores: ReconfigureView['datastores'] = [];
  for (const other of objects) {
    if (other === object) continue;
    const name = asString(other.props.name) ?? other.ref.value;
    names.set(other.ref.value, name);
    if (NETWORK_TYPES.has(other.ref.type)) networks.set(name, other.ref);
    if (other.ref.type === 'Datastore') datastores.push({ name, freeBytes: asNumber(other.props['summary.freeSpace']) ?? null });
  }
  const details = detailsOf(object, names);
  const { props } = object;
  const devices = asArray(props['config.hardware.device']).map(asObject);
  const disks: ReconfigureDisk[] = devices
    .filter((device) => device._type === 'VirtualDisk')
    .map((device) => {
      const backing = asObject(device.backing);
      const parent = asString(asObject(backing.parent).fileName);
      return {
        key: asNumber(device.key) ?? 0,
        label: asString(asObject(device.deviceInfo).label) ?? null,
        file: asString(backing.fileName) ?? '',
        capacityKB: capacityKB(device),
        controllerKey: asNumber(device.controllerKey) ?? null,
        unitNumber: asNumber(device.unitNumber) ?? null,
        parent: parent === undefined || parent === '' ? null : parent,
      };
    });
  const nicDevices = devices.filter(isNic);
  const controllers = devices.flatMap((device) => {
    const kind = controllerKind(device._type ?? '');
    if (kind === null || !/Controller$/.test(device._type ?? '')) return [];
    const key = asNumber(device.key) ?? 0;
    const usedUnits = devices.filter((other) => asNumber(other.controllerKey) === key).flatMap((other) => {
      const unit = asNumber(other.unitNumber);
      return unit === undefined ? [] : [unit];
    });
    return [{ key, kind, busNumber: asNumber(device.busNumber) ?? 0, type: device._type ?? '', usedUnits }];
  });
  const cpuHotAdd = asBoolean(props['config.cpuHotAddEnabled']) ?? null;
  const memoryHotAdd = asBoolean(props['config.memoryHotAddEnabled']) ?? null;
  const view: ReconfigureView = {
    name: details.name,
    id: details.id,
    managed: details.managed,
    powerState: details.powerState,
    cpu: details.cpu,
    memoryMB: details.memoryMB,
    coresPerSocket: asNumber(props['config.hardware.numCoresPerSocket']) ?? null,
    cpuHotAdd: cpuHotAdd ?? false,
    memoryHotAdd: memoryHotAdd ?? false,
    hotPlugMemoryLimitMB: asNumber(props['config.hotPlugMemoryLimit']) ?? null,
    annotation: details.annotation,
    snapshotCount: countSnapshots(details.snapshots),
    vmxPath: details.vmxPath,
    disks,
    nics: nicDevices.map((device, index) => ({
      key: asNumber(device.key) ?? 0,
      label: asString(asObject(device.deviceInfo).label) ?? null,
      network: details.nics[index]?.network ?? null,
      mac: details.nics[index]?.mac ?? null,
    })),
    controllers,
    datastores,
    networks: withNetworks ? [...networks.keys()] : null,
  };
  return { ref, vm: { details, cpuHotAdd, memoryHotAdd }, view, devices, networks };
}

async function readVm(client: VimClient, ref: MoRef, withNetworks: boolean): Promise<ReadVm | undefined> {
  const starts = [vmStart(ref), ...(withNetworks ? [networksStart((await client.connect()).rootFolder)] : [])];
  try {
    return parseRead(ref, await retrieveProperties(client, starts, VM_REQUESTS), withNetworks);
  } catch (error) {
    if (faultTypeOf(error) === 'ManagedObjectNotFound') return undefined;
    throw error;
  }
}

/** A decoded data object as it is sent back: its type kept, fields in the order the host sent them. */
function resend(value: Decoded): XmlValue {
  if (value instanceof MoRef || typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(resend);
  const fields: XmlObject = {};
  for (const [field, item] of Object.entries(value)) if (field !== '_type' && item !== undefined) fields[field] = resend(item);
  return value._type === undefined ? fields : new Typed(value._type, fields);
}

/**
 * The full device as read (the host's field order, deviceInfo always there), each field passed
 * through `rewrite`, which returns the fields to send in its place.
 */
function resendDevice(device: DecodedObject, rewrite: (field: string, item: Decoded) => Array<[string, XmlValue]>): Typed {
  const fields: XmlObject = {};
  for (const [field, item] of Object.entries(device)) {
    if (field === '_type' || item === undefined) continue;
    for (const [name, value] of rewrite(field, item)) fields[name] = value;
    if (field === 'key' && !('deviceInfo' in device)) fields.deviceInfo = new Typed('Description', { label: '', summary: '' });
  }
  return new Typed(device._type ?? 'VirtualDevice', fields);
}

/** A disk grown: capacityInKB and capacityInBytes set together, where capacityInKB stands. */
function grownDisk(device: DecodedObject, kb: number): Typed {
  const hasKB = 'capacityInKB' in device;
  const disk = resendDevice(device, (field, item) => {
    if (field === 'capacityInKB') return [['capacityInKB', kb], ['capacityInBytes', kb * 1024]];
    if (field === 'capacityInBytes') return hasKB ? [] : [['capacityInBytes', kb * 1024]];
    return [[field, resend(item)]];
  });
  const fields = disk.value as XmlObject;
  if (!hasKB && !('capacityInBytes' in fields)) Object.assign(fields, { capacityInKB: kb, capacityInBytes: kb * 1024 });
  return disk;
}

function networkBacking(name: string, ref: MoRef | undefined): Typed {
  if (ref?.type === 'DistributedVirtualPortgroup') return new Typed('VirtualEthernetCardDistributedVirtualPortBackingInfo', { port: { portgroupKey: ref.value } });
  return new Typed('VirtualEthernetCardNetworkBackingInfo', { deviceName: name, ...(ref === undefined ? {} : { network: ref }) });
}

/** The ConfigSpec of the changes, fields in WSDL order. */
function configSpec(read: ReadVm, changes: PlannedChanges): XmlObject {
  const deviceChange: XmlObject[] = [];
  if (changes.grow !== undefined) {
    const { grow } = changes;
    const device = read.devices.find((candidate) => candidate._type === 'VirtualDisk' && asNumber(candidate.key) === grow.disk.key) as DecodedObject;
    deviceChange.push({ operation: 'edit', device: grownDisk(device, grow.capacityKB) });
  }
  if (changes.network !== undefined) {
    const { network } = changes;
    const device = read.devices.find((candidate) => isNic(candidate) && asNumber(candidate.key) === network.nic.key) as DecodedObject;
    const backing = networkBacking(network.portgroup, read.networks.get(network.portgroup));
    deviceChange.push({ operation: 'edit', device: resendDevice(device, (field, item) => [[field, field === 'backing' ? backing : resend(item)]]) });
  }
  changes.add.forEach((addition, index) => {
    deviceChange.push({
      operation: 'add',
      fileOperation: 'create',
      device: new Typed('VirtualDisk', {
        key: -(index + 1),
        backing: new Typed('VirtualDiskFlatVer2BackingInfo', { fileName: addition.file, diskMode: 'persistent', thinProvisioned: true }),
        controllerKey: addition.controller.key,
        unitNumber: addition.unitNumber,
        capacityInKB: addition.capacityKB,
        capacityInBytes: addition.capacityKB * 1024,
      }),
    });
  });
  return {
    annotation: changes.annotation,
    numCPUs: changes.cpu,
    memoryMB: changes.memoryMB,
    memoryHotAddEnabled: changes.memoryHotAdd,
    cpuHotAddEnabled: changes.cpuHotAdd,
    deviceChange: deviceChange.length === 0 ? undefined : deviceChange,
  };
}

export async function planReconfigure(client: VimClient, request: ReconfigureRequest, options: ReconfigureOptions = {}): Promise<Mutation<ReconfigureOutcome>> {
  const withNetworks = request.network !== undefined;
  let ref: MoRef;
  let read: ReadVm | undefined;
  if (request.vm.id !== undefined) {
    // The id is the reference: the VM is read at once, its name checked after.
    ref = new MoRef('VirtualMachine', request.vm.id);
    read = await readVm(client, ref, withNetworks);
    selectOne(read === undefined ? [] : [{ name: read.view.name, id: read.view.id }], request.vm);
  } else {
    ref = (await findVm(client, request.vm)).ref;
    read = await readVm(client, ref, withNetworks);
  }
  if (read === undefined) throw new CesoError('VM_NOT_FOUND', `VM ${ref.value} no longer exists on the host`, { hint: 'It was removed meanwhile; run "ceso vm list"' });
  const before = read;
  options.authorize?.(before.view);
  const changes = planChanges(before.view, request);
  const name = before.view.name;

  if (!hasChanges(changes)) {
    const plan: Plan<ReconfigureState> = { operation: 'reconfigure', target: name, via: 'api', steps: [], warnings: [`${name} already has what was asked: nothing to change`], state: {} };
    return { plan, finish: async () => reconfigureOutcome(before.vm, []) };
  }

  const spec = configSpec(before, changes);
  const lines = describeChanges(before.view, changes);
  const state: ReconfigureState = {};
  const plan: Plan<ReconfigureState> = {
    operation: 'reconfigure',
    target: name,
    via: 'api',
    steps: [
      {
        id: 'reconfigure-vm',
        description: `reconfigure ${name} in one task: ${lines.join('; ')}`,
        action: apiAction('ReconfigVM_Task', ref, { spec }),
        run: async (progressState, progress, signal) => {
          try {
            const task = await client.invoke('ReconfigVM_Task', ref, { spec });
            if (!(task instanceof MoRef)) throw new CesoError('HOST_FAULT', `reconfigure ${name}: the host returned no task`);
            const { objects } = await waitForTaskReading(
              client,
              task,
              { description: `reconfigure ${name}`, onProgress: progress, ...(signal === undefined ? {} : { signal }) },
              { starts: [vmStart(ref)], requests: VM_REQUESTS },
            );
            progressState.after = objects;
          } catch (error) {
            throw reconfigureFault(error, before.view, changes);
          }
        },
      },
    ],
    review: { changes: lines },
    warnings: [],
    state,
  };

  const finish = async (): Promise<ReconfigureOutcome> => {
    let after = state.after === undefined ? undefined : parseRead(ref, state.after, false);
    let shown = after === undefined ? undefined : changedFields(after.vm, changes);
    if (after === undefined || (shown?.missing.length ?? 0) > 0) {
      // The poll read the VM in the same call that saw the task end, maybe just before: once more.
      after = await readVm(client, ref, false);
      if (after === undefined) throw new CesoError('VM_NOT_FOUND', `${name} vanished after its reconfigure`, { hint: 'Another client removed it; run "ceso vm list"' });
      shown = changedFields(after.vm, changes);
    }
    if ((shown?.missing.length ?? 0) > 0) logger().warn({ missing: shown?.missing }, `the host reports the reconfigure of ${name} done, but does not show: ${shown?.missing.join(', ')}`);
    return reconfigureOutcome(after.vm, shown?.changed ?? []);
  };
  return { plan, finish };
}
