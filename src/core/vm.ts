import { READY_KEY } from '../cloudinit/ready.js';
import { compareText } from './order.js';

/** The VM as ceso reports it, whichever path (API or SSH) read it. Unknown values are null. */

export type PowerState = 'poweredOn' | 'poweredOff' | 'suspended';
export type VmStatus = 'running' | 'stopped' | 'suspended';
export type Via = 'api' | 'ssh';

export const MARKER_PREFIX = 'ceso.';
export const MARKERS = {
  managed: 'ceso.managed',
  createdAt: 'ceso.createdAt',
  /** On a VM ceso made: the template it came from; on a template ceso imported: "true". */
  template: 'ceso.template',
  expiresAt: 'ceso.expiresAt',
  /** On a template ceso imported: the source it came from (the file's name, or the URL without credentials or query). */
  importedFrom: 'ceso.importedFrom',
  /** On a linked clone: "true". */
  linked: 'ceso.linked',
  /** On a linked clone: the datastore path of the disk its first disk is a child of. */
  parentDisk: 'ceso.parentDisk',
  /** On a VM of a warm pool: the pool's name (core/pool.ts). */
  pool: 'ceso.pool',
  /** building | ready | leased | resetting | failed. */
  poolState: 'ceso.poolState',
  /** While leased: the lease's id (the fence every change of the lease checks). */
  leaseId: 'ceso.leaseId',
  leaseHolder: 'ceso.leaseHolder',
  /** While leased: when the lease began (ISO 8601). */
  leasedAt: 'ceso.leasedAt',
  /** While leased: when the lease ends (ISO 8601). */
  leaseExpiresAt: 'ceso.leaseExpiresAt',
  /** How many times the VM was reset to its golden snapshot. */
  poolResets: 'ceso.poolResets',
} as const;

export interface VmSummary {
  name: string;
  /** The managed object id (the vmid on a standalone host). */
  id: string;
  uuid: string | null;
  status: VmStatus | null;
  powerState: PowerState | null;
  cpu: number | null;
  memoryMB: number | null;
  ip: string | null;
  guestId: string | null;
  managed: boolean;
  expiresAt: string | null;
  /** Whether the VM is a linked clone (ceso.linked = "true"): its disk is a child of a template's. */
  linked: boolean;
  /** The warm pool the VM belongs to (ceso.pool), and its state there (ceso.poolState). */
  pool: string | null;
  poolState: string | null;
}

export interface VmDisk {
  label: string | null;
  file: string;
  capacityGB: number | null;
  thin: boolean | null;
  /** The disk this one is a child (delta) of, as a datastore path; null for a disk without a parent. */
  parent: string | null;
}

export interface VmNic {
  label: string | null;
  network: string | null;
  mac: string | null;
  type: string | null;
}

export interface VmSnapshot {
  name: string;
  id: string | null;
  description: string | null;
  createdAt: string | null;
  state: string | null;
  current: boolean;
  children: VmSnapshot[];
}

export interface GuestinfoKey {
  key: string;
  bytes: number;
}

export interface VmDetails extends VmSummary {
  vmxPath: string | null;
  datastore: string | null;
  firmware: string | null;
  disks: VmDisk[];
  nics: VmNic[];
  snapshots: VmSnapshot[];
  annotation: string | null;
  /** guestinfo.* keys present: names and sizes, never values. */
  guestinfo: GuestinfoKey[];
  /** ceso.* extraConfig markers. */
  markers: Record<string, string>;
}

export interface VmSelector {
  name?: string;
  id?: string;
}

export function statusOf(powerState: PowerState | null): VmStatus | null {
  switch (powerState) {
    case 'poweredOn':
      return 'running';
    case 'poweredOff':
      return 'stopped';
    case 'suspended':
      return 'suspended';
    default:
      return null;
  }
}

export function toPowerState(value: string | undefined): PowerState | null {
  return value === 'poweredOn' || value === 'poweredOff' || value === 'suspended' ? value : null;
}

/** Splits `[datastore1] web1/web1.vmx` into its datastore and path. */
export function parseDatastorePath(path: string): { datastore: string; path: string } | null {
  const match = /^\[([^\]]*)\]\s*(.*)$/.exec(path);
  return match ? { datastore: match[1] as string, path: match[2] as string } : null;
}

/**
 * Keys the guest sets at run time (vmware-rpctool info-set): they live in the VM's process, not in
 * its .vmx, so the API shows them and SSH does not. They are reports, not configuration: `vm ip`
 * reads them; the guestinfo list of `vm info` leaves them out on both paths.
 */
const GUEST_SET_KEYS = new Set([READY_KEY]);

/** Reads ceso's markers and guestinfo sizes out of a VM's extraConfig. */
export function markersOf(extraConfig: ReadonlyMap<string, string>): {
  managed: boolean;
  expiresAt: string | null;
  linked: boolean;
  pool: string | null;
  poolState: string | null;
  markers: Record<string, string>;
  guestinfo: GuestinfoKey[];
} {
  const markers: Record<string, string> = {};
  const guestinfo: GuestinfoKey[] = [];
  for (const [key, value] of extraConfig) {
    if (key.startsWith(MARKER_PREFIX)) markers[key] = value;
    else if (key.startsWith('guestinfo.') && !GUEST_SET_KEYS.has(key)) guestinfo.push({ key, bytes: Buffer.byteLength(value) });
  }
  guestinfo.sort((a, b) => compareText(a.key, b.key));
  return {
    managed: markers[MARKERS.managed] === 'true',
    expiresAt: markers[MARKERS.expiresAt] ?? null,
    linked: markers[MARKERS.linked] === 'true',
    pool: markers[MARKERS.pool] ?? null,
    poolState: markers[MARKERS.pool] === undefined ? null : (markers[MARKERS.poolState] ?? null),
    markers,
    guestinfo,
  };
}

const NIC_TYPES: Record<string, string> = {
  VirtualVmxnet3: 'vmxnet3',
  VirtualVmxnet2: 'vmxnet2',
  VirtualVmxnet: 'vmxnet',
  VirtualE1000: 'e1000',
  VirtualE1000e: 'e1000e',
  VirtualPCNet32: 'pcnet32',
  VirtualSriovEthernetCard: 'sriov',
};

/** A NIC's vSphere device type as ceso reports it (VirtualVmxnet3 -> vmxnet3); unknown types as they are. */
export function nicTypeName(deviceType: string): string {
  return NIC_TYPES[deviceType] ?? deviceType;
}
