import { parseDatastorePath, toPowerState, type PowerState } from '../../core/vm.js';
import type { MoRef} from '../soap/xml.js';
import { asArray, asBoolean, asNumber, asObject, asString, type DecodedObject } from '../soap/xml.js';
import type { VimClient } from '../vim/client.js';
import { retrieveProperties, type ObjectProperties, type PropertyQuery } from '../vim/property-collector.js';
import type { SnapshotTree } from '../../core/snapshots.js';
import { extraConfigOf } from './inventory.js';
import { snapshotTreeOf } from './snapshots.js';

export interface SourceDisk {
  key: number;
  label: string;
  controllerKey: number;
  unitNumber: number;
  fileName: string;
  capacityKB: number;
  /** The disk this one is a child of (backing.parent.fileName), or null. */
  parentFileName: string | null;
}

export interface SourceController {
  key: number;
  type: string;
  busNumber: number;
  sharedBus?: string;
}

export interface SourceNic {
  key: number;
  label: string;
  type: string;
  mac: string | null;
}

/** The hardware of a VM that another is made from (a template, or a clone's source). */
export interface SourceVm {
  ref: MoRef;
  name: string;
  uuid: string | null;
  powerState: PowerState | null;
  guestId: string;
  firmware: string | null;
  cpu: number;
  memoryMB: number;
  vmxPath: string;
  datastore: string;
  directory: string;
  controllers: SourceController[];
  disks: SourceDisk[];
  nics: SourceNic[];
  extraConfig: Map<string, string>;
  committedBytes: number;
  snapshots: SnapshotTree;
}

const CONTROLLER_TYPES = /Controller$/;
const STORAGE_CONTROLLERS = /SCSI|LsiLogic|BusLogic|AHCI|NVME|Sata/i;

export async function readSourceVm(client: VimClient, ref: MoRef): Promise<SourceVm> {
  return (await readSourceVmWith(client, ref, { starts: [], requests: [] })).source;
}

/** As readSourceVm, reading `also` in the same RetrievePropertiesEx: the source, and the other objects read. */
export async function readSourceVmWith(client: VimClient, ref: MoRef, also: PropertyQuery): Promise<{ source: SourceVm; objects: ObjectProperties[] }> {
  const objects = await retrieveProperties(
    client,
    [{ obj: ref }, ...also.starts],
    [
      {
        type: 'VirtualMachine',
        paths: [
          'name',
          'config.uuid',
          'runtime.powerState',
          'config.guestId',
          'config.firmware',
          'config.hardware.numCPU',
          'config.hardware.memoryMB',
          'config.hardware.device',
          'config.files.vmPathName',
          'config.extraConfig',
          'summary.storage.committed',
          'snapshot',
        ],
      },
      ...also.requests,
    ],
  );
  const object = objects.find((candidate) => candidate.ref.type === ref.type && candidate.ref.value === ref.value);
  return { source: sourceVmOf(ref, object), objects: objects.filter((candidate) => candidate !== object) };
}

function sourceVmOf(ref: MoRef, object: ObjectProperties | undefined): SourceVm {
  const props = object?.props ?? {};
  const vmxPath = asString(props['config.files.vmPathName']) ?? '';
  const parsed = parseDatastorePath(vmxPath);
  const devices = asArray(props['config.hardware.device']).map(asObject);
  const name = asString(props.name) ?? ref.value;
  return {
    ref,
    name,
    uuid: asString(props['config.uuid']) ?? null,
    powerState: toPowerState(asString(props['runtime.powerState'])),
    guestId: asString(props['config.guestId']) ?? 'otherGuest64',
    firmware: asString(props['config.firmware']) ?? null,
    cpu: asNumber(props['config.hardware.numCPU']) ?? 1,
    memoryMB: asNumber(props['config.hardware.memoryMB']) ?? 1024,
    vmxPath,
    datastore: parsed?.datastore ?? '',
    directory: parsed?.path.includes('/') ? parsed.path.slice(0, parsed.path.lastIndexOf('/')) : '',
    controllers: devices.filter(isStorageController).map((device) => ({
      key: asNumber(device.key) ?? 0,
      type: device._type ?? 'VirtualLsiLogicController',
      busNumber: asNumber(device.busNumber) ?? 0,
      ...(asString(device.sharedBus) === undefined ? {} : { sharedBus: asString(device.sharedBus) as string }),
    })),
    disks: devices
      .filter((device) => device._type === 'VirtualDisk')
      .map((device) => ({
        key: asNumber(device.key) ?? 0,
        label: asString(asObject(device.deviceInfo).label) ?? 'Hard disk',
        controllerKey: asNumber(device.controllerKey) ?? 0,
        unitNumber: asNumber(device.unitNumber) ?? 0,
        fileName: asString(asObject(device.backing).fileName) ?? '',
        capacityKB: capacityKB(device),
        parentFileName: asString(asObject(asObject(device.backing).parent).fileName) ?? null,
      })),
    nics: devices
      .filter((device) => 'macAddress' in device || 'addressType' in device)
      .map((device) => ({
        key: asNumber(device.key) ?? 0,
        label: asString(asObject(device.deviceInfo).label) ?? 'Network adapter 1',
        type: device._type ?? 'VirtualVmxnet3',
        mac: asString(device.macAddress) ?? null,
      })),
    extraConfig: extraConfigOf(props['config.extraConfig']),
    committedBytes: asNumber(props['summary.storage.committed']) ?? 0,
    snapshots: snapshotTreeOf({ name, id: ref.value }, props.snapshot).tree,
  };
}

function isStorageController(device: DecodedObject): boolean {
  const type = device._type ?? '';
  return CONTROLLER_TYPES.test(type) && STORAGE_CONTROLLERS.test(type);
}

function capacityKB(device: DecodedObject): number {
  const bytes = asNumber(device.capacityInBytes);
  if (bytes !== undefined && bytes > 0) return Math.ceil(bytes / 1024);
  return asNumber(device.capacityInKB) ?? 0;
}

export function isThin(device: DecodedObject): boolean {
  return asBoolean(asObject(device.backing).thinProvisioned) ?? false;
}
