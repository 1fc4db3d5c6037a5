import type { MarkedVm } from '../../core/backend.js';
import { CesoError } from '../../core/errors.js';
import { logger } from '../../core/log.js';
import { byNameThenId } from '../../core/order.js';
import { selectOne } from '../../core/select.js';
import {
  MARKERS,
  markersOf,
  nicTypeName,
  parseDatastorePath,
  statusOf,
  toPowerState,
  type VmDetails,
  type VmDisk,
  type VmNic,
  type VmSelector,
  type VmSnapshot,
  type VmSummary,
} from '../../core/vm.js';
import type { MoRef} from '../soap/xml.js';
import { asArray, asBoolean, asMoRef, asNumber, asObject, asString, type Decoded } from '../soap/xml.js';
import { faultTypeOf, type VimClient } from '../vim/client.js';
import { readVmsIncrementally } from './list-cache.js';
import { inventoryTraversal, relation, retrieveProperties, type ObjectProperties, type PropertyQuery } from '../vim/property-collector.js';

/** The summary fields other than ceso's markers. */
const BASE_SUMMARY_PATHS = ['name', 'config.uuid', 'runtime.powerState', 'config.hardware.numCPU', 'config.hardware.memoryMB', 'guest.ipAddress', 'config.guestId'];
const EXTRA_CONFIG = 'config.extraConfig';
const SUMMARY_PATHS = [...BASE_SUMMARY_PATHS, EXTRA_CONFIG];

/** The markers markersOf turns into VmSummary fields: all that vm list reads of extraConfig. */
const LISTED_MARKERS = [MARKERS.managed, MARKERS.expiresAt, MARKERS.linked, MARKERS.pool, MARKERS.poolState];
const KEYED_PREFIX = `${EXTRA_CONFIG}["`;
/**
 * One extraConfig entry by key, the vSphere API's key-based array path (a real ESXi/vCenter and
 * vcsim since 0.38 answer the OptionValue; a missing key is left out). Reading the whole
 * extraConfig would carry every VM's cloud-init guestinfo, several KB each.
 */
const keyedExtraConfigPath = (key: string): string => `${KEYED_PREFIX}${key}"]`;

export const DETAIL_PATHS = [
  ...SUMMARY_PATHS,
  'config.files.vmPathName',
  'config.firmware',
  'config.annotation',
  'config.hardware.device',
  'snapshot',
  'guest.net',
];

/** Clients whose host refused keyed paths: they read the whole extraConfig from then on. */
const refusesKeyedPaths = new WeakSet<VimClient>();

/** Every ceso marker the warm pool reads (core/pool): the list's, the lease's and the reset count. */
const POOL_MARKERS = [...new Set([...LISTED_MARKERS, MARKERS.leaseId, MARKERS.leaseHolder, MARKERS.leasedAt, MARKERS.leaseExpiresAt, MARKERS.poolResets])];

/**
 * Every VM with its summary fields: from the session's list cache (list-cache.ts: only what
 * changed since the last list) where it can, else in ONE property-collector round trip (paged if
 * the host pages): the markers by key where the host answers keyed paths, else the whole
 * extraConfig (one more round trip, once per client).
 */
export async function listVms(client: VimClient): Promise<VmSummary[]> {
  const objects = await readVmsIncrementally(
    client,
    [...BASE_SUMMARY_PATHS, ...LISTED_MARKERS.map(keyedExtraConfigPath)],
    () => readVms(client, LISTED_MARKERS),
    () => !refusesKeyedPaths.has(client),
  );
  return objects.map(summaryOf).sort(byNameThenId);
}


/** As listVms, each VM with the pool's markers (read by key too): the warm pool's view of the host. */
export async function listMarkedVms(client: VimClient): Promise<MarkedVm[]> {
  return (await readVms(client, POOL_MARKERS))
    .map((object) => ({ ...summaryOf(object), markers: markersOf(extraConfigIn(object.props)).markers }))
    .sort(byNameThenId);
}

async function readVms(client: VimClient, markers: readonly string[]): Promise<ObjectProperties[]> {
  const { rootFolder } = await client.connect();
  const read = (paths: string[]): Promise<ObjectProperties[]> =>
    retrieveProperties(client, [{ obj: rootFolder, selectSet: inventoryTraversal() }], [{ type: 'VirtualMachine', paths }]);
  if (!refusesKeyedPaths.has(client)) {
    try {
      const objects = await read([...BASE_SUMMARY_PATHS, ...markers.map(keyedExtraConfigPath)]);
      if (!objects.some(missesKeyedPath)) return objects;
    } catch (error) {
      if (faultTypeOf(error) !== 'InvalidProperty') throw error;
    }
    refusesKeyedPaths.add(client);
    logger().debug('the host refuses keyed property paths; reading the whole extraConfig');
  }
  return read(SUMMARY_PATHS);
}

/** The extraConfig a read brought: whole, or the entries asked for by key. */
function extraConfigIn(props: ObjectProperties['props']): Map<string, string> {
  return EXTRA_CONFIG in props ? extraConfigOf(props[EXTRA_CONFIG]) : keyedExtraConfigOf(props);
}

/** vcsim before 0.38 answers a keyed path with a missingSet entry (InvalidProperty) per object. */
function missesKeyedPath(object: ObjectProperties): boolean {
  return object.missing?.some((entry) => entry.path.startsWith(KEYED_PREFIX)) ?? false;
}

/** Finds a VM's reference by exact name (or id) with one cheap round trip over names only. */
export async function findVm(client: VimClient, selector: VmSelector): Promise<{ ref: MoRef; name: string }> {
  const { rootFolder } = await client.connect();
  const objects = await retrieveProperties(
    client,
    [{ obj: rootFolder, selectSet: inventoryTraversal() }],
    [{ type: 'VirtualMachine', paths: ['name'] }],
  );
  const candidates = objects.map((object) => ({ ref: object.ref, id: object.ref.value, name: asString(object.props.name) ?? '' }));
  const chosen = selectOne(candidates, selector);
  return { ref: chosen.ref, name: chosen.name };
}

export async function getVm(client: VimClient, selector: VmSelector): Promise<VmDetails> {
  const { ref } = await findVm(client, selector);
  return getVmByRef(client, ref);
}

/** A VM's details together with the names of its networks and datastores, in one round trip. */
export async function getVmByRef(client: VimClient, ref: MoRef): Promise<VmDetails> {
  const { starts, requests } = vmDetailsQuery(ref);
  const details = vmDetailsOf(ref, await retrieveProperties(client, starts, requests));
  if (details === undefined) {
    throw new CesoError('VM_NOT_FOUND', `VM ${ref.value} no longer exists on the host`, { hint: 'It was removed meanwhile; run "ceso vm list"' });
  }
  return details;
}

/** The read of getVmByRef, to share a RetrievePropertiesEx (a task's last poll) with another. */
export function vmDetailsQuery(ref: MoRef): PropertyQuery {
  return {
    starts: [{ obj: ref, selectSet: [relation('vmNetworks', 'VirtualMachine', 'network'), relation('vmDatastores', 'VirtualMachine', 'datastore')] }],
    requests: [
      { type: 'VirtualMachine', paths: DETAIL_PATHS },
      { type: 'Network', paths: ['name'] },
      { type: 'Datastore', paths: ['name'] },
    ],
  };
}

/** The VM's details in what vmDetailsQuery read, or undefined when the VM was not there. */
export function vmDetailsOf(ref: MoRef, objects: ObjectProperties[]): VmDetails | undefined {
  const vm = objects.find((object) => object.ref.type === 'VirtualMachine' && object.ref.value === ref.value);
  if (vm === undefined) return undefined;
  const networkNames = new Map<string, string>();
  for (const object of objects) {
    if (object.ref.type !== 'VirtualMachine') networkNames.set(object.ref.value, asString(object.props.name) ?? object.ref.value);
  }
  return detailsOf(vm, networkNames);
}

export function extraConfigOf(value: Decoded | undefined): Map<string, string> {
  const map = new Map<string, string>();
  for (const option of asArray(value)) {
    const entry = asObject(option);
    const key = asString(entry.key);
    if (key !== undefined) map.set(key, asString(entry.value) ?? '');
  }
  return map;
}

/** The extraConfig entries read by key: each value is the OptionValue (a bare string is taken too). */
function keyedExtraConfigOf(props: ObjectProperties['props']): Map<string, string> {
  const map = new Map<string, string>();
  for (const [name, value] of Object.entries(props)) {
    if (!name.startsWith(KEYED_PREFIX) || value === undefined) continue;
    if (typeof value === 'string') {
      map.set(name.slice(KEYED_PREFIX.length, -2), value);
      continue;
    }
    const entry = asObject(value);
    map.set(asString(entry.key) ?? name.slice(KEYED_PREFIX.length, -2), asString(entry.value) ?? '');
  }
  return map;
}

function summaryOf(object: ObjectProperties): VmSummary {
  const { props } = object;
  const powerState = toPowerState(asString(props['runtime.powerState']));
  const { managed, expiresAt, linked, pool, poolState } = markersOf(extraConfigIn(props));
  return {
    name: asString(props.name) ?? '',
    id: object.ref.value,
    uuid: asString(props['config.uuid']) ?? null,
    status: statusOf(powerState),
    powerState,
    cpu: asNumber(props['config.hardware.numCPU']) ?? null,
    memoryMB: asNumber(props['config.hardware.memoryMB']) ?? null,
    ip: nonEmpty(asString(props['guest.ipAddress'])),
    guestId: nonEmpty(asString(props['config.guestId'])),
    managed,
    expiresAt,
    linked,
    pool,
    poolState,
  };
}

export function detailsOf(object: ObjectProperties, networkNames: Map<string, string>): VmDetails {
  const { props } = object;
  const summary = summaryOf(object);
  const vmxPath = nonEmpty(asString(props['config.files.vmPathName']));
  const { markers, guestinfo } = markersOf(extraConfigOf(props['config.extraConfig']));
  const devices = asArray(props['config.hardware.device']).map(asObject);
  const disks: VmDisk[] = [];
  const nics: VmNic[] = [];
  for (const device of devices) {
    const type = device._type ?? '';
    const backing = asObject(device.backing);
    const label = nonEmpty(asString(asObject(device.deviceInfo).label));
    if (type === 'VirtualDisk') {
      const bytes = asNumber(device.capacityInBytes) ?? (asNumber(device.capacityInKB) ?? 0) * 1024;
      disks.push({
        label,
        file: asString(backing.fileName) ?? '',
        capacityGB: bytes > 0 ? round(bytes / 1024 ** 3) : null,
        thin: asBoolean(backing.thinProvisioned) ?? null,
        parent: nonEmpty(asString(asObject(backing.parent).fileName)),
      });
    } else if ('macAddress' in device || /^Virtual(E1000e?|Vmxnet\d?|Pcnet32|Sriov)/.test(type)) {
      nics.push({
        label,
        network: networkNameOf(backing, networkNames),
        mac: nonEmpty(asString(device.macAddress))?.toLowerCase() ?? null,
        type: nicTypeName(type),
      });
    }
  }
  return {
    ...summary,
    vmxPath,
    datastore: vmxPath === null ? null : (parseDatastorePath(vmxPath)?.datastore ?? null),
    firmware: nonEmpty(asString(props['config.firmware'])),
    disks,
    nics,
    snapshots: snapshotTree(props.snapshot),
    annotation: nonEmpty(asString(props['config.annotation'])),
    guestinfo,
    markers,
  };
}

function networkNameOf(backing: ReturnType<typeof asObject>, networkNames: Map<string, string>): string | null {
  const deviceName = nonEmpty(asString(backing.deviceName));
  if (deviceName !== null) return deviceName;
  const network = asMoRef(backing.network);
  if (network !== undefined) return networkNames.get(network.value) ?? network.value;
  const portgroupKey = asString(asObject(backing.port).portgroupKey);
  if (portgroupKey !== undefined) return networkNames.get(portgroupKey) ?? portgroupKey;
  return null;
}


function snapshotTree(value: Decoded | undefined): VmSnapshot[] {
  const info = asObject(value);
  const current = asMoRef(info.currentSnapshot)?.value;
  const walk = (list: Decoded | undefined): VmSnapshot[] =>
    asArray(list).map((item) => {
      const node = asObject(item);
      return {
        name: asString(node.name) ?? '',
        id: asString(node.id) ?? null,
        description: nonEmpty(asString(node.description)),
        createdAt: nonEmpty(asString(node.createTime)),
        state: nonEmpty(asString(node.state)),
        current: current !== undefined && asMoRef(node.snapshot)?.value === current,
        children: walk(node.childSnapshotList),
      };
    });
  return walk(info.rootSnapshotList);
}

function nonEmpty(value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
