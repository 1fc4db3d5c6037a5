/**
 * `vm reconfigure`: the rules both paths follow. The flags become a ReconfigureRequest (checked
 * before any call to the host); each path reads the VM into a ReconfigureView (one
 * RetrievePropertiesEx over the API, vim-cmd and the .vmx over SSH) and `planChanges` decides,
 * the same way for both, what changes and what is refused — before anything is changed:
 *
 * - a disk never shrinks; a disk of a VM with snapshots, or a child (linked) disk, never grows;
 * - a VM that is not powered off takes more CPUs or memory only with its hot-add flag on, never
 *   fewer, and its hot-add flags change only while it is powered off; a suspended VM changes no
 *   hardware;
 * - memory is a multiple of 4 MB (checked with the flags), CPUs fill whole sockets;
 * - the disks asked for fit in their datastore's free space; a port group must exist.
 *
 * Asking for what the VM already has changes nothing and is a success with `changed: []`.
 */
import type { VmSelector, PowerState, VmDetails } from './vm.js';
import { CesoError, invalidInput, isCesoError } from './errors.js';
import { describePowerState } from './power.js';

/** KB in GB with one decimal, for messages (as core/provisioning's gb; not imported: this module loads with the CLI). */
function gb(kb: number): number {
  return Math.round((kb / 1024 / 1024) * 10) / 10;
}

function networkNotFound(name: string, known: readonly string[]): CesoError {
  return new CesoError('NETWORK_NOT_FOUND', `network "${name}" does not exist on this host`, {
    hint: `Use one of: ${known.join(', ') || '(none)'} (--network)`,
  });
}

// ---- the request ----------------------------------------------------------------------------


/**
 * A well-formed memory size the host refuses (not a multiple of 4 MB) is one of reconfigure's
 * refusals (exit 4, like the hot-add rules); a malformed value stays INVALID_INPUT (exit 2).
 */
function notMultipleOf4(message: string, hint: string): CesoError {
  return new CesoError('CONFLICT', message, { hint, details: { reason: 'memoryNotMultipleOf4MB' } });
}

export type DiskSelector = { index: number } | { label: string } | { key: number };
export type NicSelector = { index: number } | { label: string };

export interface ReconfigureRequest {
  vm: VmSelector;
  cpu?: number;
  memoryMB?: number;
  /** Grow one disk (disk 1 unless selected otherwise) to this size. */
  disk?: { select: DiskSelector; capacityKB: number };
  /** New thin disks, in order. */
  addDisks: Array<{ capacityKB: number }>;
  /** Move one NIC (NIC 1 unless selected otherwise) to this port group. */
  network?: { select: NicSelector; portgroup: string };
  cpuHotAdd?: boolean;
  memoryHotAdd?: boolean;
  /** '' clears it. */
  annotation?: string;
}

export interface ReconfigureOptions {
  /**
   * Called with the VM as read, before anything is decided: restricted mode's managedOnly rule,
   * checked on the read the plan makes anyway (no extra round trip).
   */
  authorize?: (vm: { name: string; managed: boolean }) => void;
}

/** What `vm reconfigure` returns: the VM after the change (as vm info), its hot-add flags, and what changed. */
export interface ReconfigureOutcome extends VmDetails {
  /** config.cpuHotAddEnabled (vcpu.hotadd); null when the host does not say. */
  cpuHotAdd: boolean | null;
  /** config.memoryHotAddEnabled (mem.hotadd); null when the host does not say. */
  memoryHotAdd: boolean | null;
  /**
   * The fields of this result that the change set, in field order: "cpu", "memoryMB",
   * "disks[i].capacityGB" (disk i grew), "disks[i]" (disk i was added), "nics[i].network",
   * "annotation", "cpuHotAdd", "memoryHotAdd". Empty when the VM already had what was asked.
   */
  changed: string[];
}

export interface ReconfigureFlags {
  cpu?: number | undefined;
  memory?: string | undefined;
  'memory-mb'?: number | undefined;
  disk?: string | undefined;
  'disk-label'?: string | undefined;
  'disk-key'?: number | undefined;
  'add-disk'?: string[] | undefined;
  network?: string | undefined;
  nic?: string | undefined;
  'cpu-hot-add'?: string | undefined;
  'memory-hot-add'?: string | undefined;
  annotation?: string | undefined;
}

const MAX_DISK_GB = 62_000;

function gbFlag(value: string, flag: string, max: number): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number)) throw invalidInput(`${flag} ${value}: expected a number of GB, e.g. 40 or 0.5`, `Give the size in GB, e.g. ${flag} 40`);
  if (!(number > 0) || number > max) throw invalidInput(`${flag} ${value}: expected a size in GB greater than 0 and at most ${max}`, `Give the size in GB, e.g. ${flag} 40`);
  return number;
}

/** A size in GB as whole MB, in KB: what both paths send (vmkfstools -X/-c take it as is). */
function diskKB(value: string, flag: string): number {
  return Math.ceil(gbFlag(value, flag, MAX_DISK_GB) * 1024) * 1024;
}

function onOff(value: string | undefined): boolean | undefined {
  return value === undefined ? undefined : value === 'on';
}

/** Validates every flag of `vm reconfigure` before any call to the host (exit 2 for a malformed value). */
export function reconfigureRequestFrom(vm: VmSelector, flags: ReconfigureFlags): ReconfigureRequest {
  const request: ReconfigureRequest = { vm, addDisks: [] };
  if (flags.cpu !== undefined) {
    if (!Number.isInteger(flags.cpu) || flags.cpu < 1 || flags.cpu > 768) throw invalidInput(`--cpu ${flags.cpu}: expected a whole number from 1 to 768`, 'Pass the number of virtual CPUs, e.g. --cpu 4');
    request.cpu = flags.cpu;
  }
  if (flags.memory !== undefined && flags['memory-mb'] !== undefined) throw invalidInput('--memory and --memory-mb say the same thing: pass one', 'Drop --memory or --memory-mb');
  if (flags.memory !== undefined) {
    const memoryMB = Math.round(gbFlag(flags.memory, '--memory', 24_576) * 1024);
    if (memoryMB % 4 !== 0) throw notMultipleOf4(`--memory ${flags.memory}: ${memoryMB} MB is not a multiple of 4 MB, which ESXi needs`, 'Use whole or half GB such as 4 or 0.5, or --memory-mb with a multiple of 4');
    request.memoryMB = memoryMB;
  }
  if (flags['memory-mb'] !== undefined) {
    const memoryMB = flags['memory-mb'];
    if (!Number.isInteger(memoryMB) || memoryMB < 4 || memoryMB > 24_576 * 1024) throw invalidInput(`--memory-mb ${memoryMB}: expected a whole number of MB from 4 to ${24_576 * 1024}`, 'e.g. --memory-mb 4096, or --memory 4 in GB');
    if (memoryMB % 4 !== 0) {
      throw notMultipleOf4(`--memory-mb ${memoryMB}: not a multiple of 4 MB, which ESXi needs`, `Use ${Math.floor(memoryMB / 4) * 4 || 4} or ${Math.ceil(memoryMB / 4) * 4}`);
    }
    request.memoryMB = memoryMB;
  }
  if (flags['disk-label'] !== undefined && flags['disk-key'] !== undefined) throw invalidInput('--disk-label and --disk-key both pick the disk to grow: pass one', 'Drop --disk-label or --disk-key');
  if ((flags['disk-label'] !== undefined || flags['disk-key'] !== undefined) && flags.disk === undefined) {
    throw invalidInput('--disk-label and --disk-key pick the disk --disk grows: add --disk GB', 'e.g. --disk 80 --disk-label "Hard disk 2"');
  }
  if (flags.disk !== undefined) {
    const select: DiskSelector =
      flags['disk-key'] !== undefined ? { key: flags['disk-key'] } : flags['disk-label'] !== undefined ? { label: flags['disk-label'] } : { index: 0 };
    request.disk = { select, capacityKB: diskKB(flags.disk, '--disk') };
  }
  request.addDisks = (flags['add-disk'] ?? []).map((value) => ({ capacityKB: diskKB(value, '--add-disk') }));
  if (flags.nic !== undefined && flags.network === undefined) throw invalidInput('--nic picks the NIC --network moves: add --network PORTGROUP', 'e.g. --network "VM Network" --nic 2');
  if (flags.network !== undefined) {
    if (flags.network.trim() === '' || [...flags.network].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f)) throw invalidInput(`--network ${JSON.stringify(flags.network)}: expected a port group name`, 'e.g. --network "VM Network"');
    const nic = flags.nic;
    let select: NicSelector = { index: 0 };
    if (nic !== undefined) {
      if (/^\d+$/.test(nic)) {
        if (Number(nic) < 1) throw invalidInput(`--nic ${nic}: NICs are numbered from 1`, 'e.g. --nic 1 for the first NIC');
        select = { index: Number(nic) - 1 };
      } else {
        select = { label: nic };
      }
    }
    request.network = { select, portgroup: flags.network };
  }
  const cpuHotAdd = onOff(flags['cpu-hot-add']);
  if (cpuHotAdd !== undefined) request.cpuHotAdd = cpuHotAdd;
  const memoryHotAdd = onOff(flags['memory-hot-add']);
  if (memoryHotAdd !== undefined) request.memoryHotAdd = memoryHotAdd;
  if (flags.annotation !== undefined) {
    if (flags.annotation.includes('\0')) throw invalidInput('--annotation: a NUL character cannot be stored', 'Remove the NUL character');
    request.annotation = flags.annotation;
  }
  const asked = [request.cpu, request.memoryMB, request.disk, request.network, request.cpuHotAdd, request.memoryHotAdd, request.annotation].some((value) => value !== undefined) || request.addDisks.length > 0;
  if (!asked) {
    throw invalidInput('nothing to change: pass at least one of --cpu, --memory/--memory-mb, --disk, --add-disk, --network, --cpu-hot-add, --memory-hot-add, --annotation', `See ceso vm reconfigure --help`);
  }
  return request;
}

// ---- the VM as both paths read it -----------------------------------------------------------

export type ControllerKind = 'scsi' | 'sata' | 'nvme' | 'ide';

export interface ReconfigureDisk {
  key: number;
  label: string | null;
  /** The datastore path of the disk's descriptor. */
  file: string;
  capacityKB: number;
  controllerKey: number | null;
  unitNumber: number | null;
  /** The disk's parent (a child / linked-clone disk), or null. */
  parent: string | null;
}

export interface ReconfigureNic {
  key: number;
  label: string | null;
  network: string | null;
  /** Lowercase; how the NIC is found in the result. */
  mac: string | null;
}

export interface ReconfigureController {
  key: number;
  kind: ControllerKind;
  busNumber: number;
  /** vSphere type: ParaVirtualSCSIController, VirtualLsiLogicController, VirtualAHCIController, ... */
  type: string;
  /** Unit numbers taken on it (disks, CD-ROMs). */
  usedUnits: number[];
}

export interface ReconfigureView {
  name: string;
  id: string;
  managed: boolean;
  powerState: PowerState | null;
  cpu: number | null;
  memoryMB: number | null;
  coresPerSocket: number | null;
  cpuHotAdd: boolean;
  memoryHotAdd: boolean;
  /** config.hotPlugMemoryLimit (MB): how far memory may grow while on; null when not known. */
  hotPlugMemoryLimitMB: number | null;
  annotation: string | null;
  snapshotCount: number;
  /** The .vmx as a datastore path. */
  vmxPath: string | null;
  disks: ReconfigureDisk[];
  nics: ReconfigureNic[];
  controllers: ReconfigureController[];
  datastores: Array<{ name: string; freeBytes: number | null }>;
  /** The port groups of the host; null when this path cannot list them. */
  networks: string[] | null;
  /** Files already in the VM's folder (lowercase datastore paths), where the path can list them. */
  folderFiles?: ReadonlySet<string>;
}

export interface DiskAddition {
  capacityKB: number;
  controller: ReconfigureController;
  unitNumber: number;
  /** `[ds] dir/base_N.vmdk` */
  file: string;
  /** `scsi0:1`: the .vmx device this disk is. */
  device: string;
}

export interface PlannedChanges {
  cpu?: number;
  memoryMB?: number;
  cpuHotAdd?: boolean;
  memoryHotAdd?: boolean;
  annotation?: string;
  grow?: { index: number; disk: ReconfigureDisk; capacityKB: number };
  add: DiskAddition[];
  network?: { index: number; nic: ReconfigureNic; portgroup: string };
}

export function hasChanges(changes: PlannedChanges): boolean {
  return (
    changes.cpu !== undefined ||
    changes.memoryMB !== undefined ||
    changes.cpuHotAdd !== undefined ||
    changes.memoryHotAdd !== undefined ||
    changes.annotation !== undefined ||
    changes.grow !== undefined ||
    changes.add.length > 0 ||
    changes.network !== undefined
  );
}

/** Units a controller offers: SCSI 0-15 without its own unit 7, SATA 0-29, NVMe 0-14, IDE 0-1. */
const UNITS: Record<ControllerKind, { count: number; reserved: number[] }> = {
  scsi: { count: 16, reserved: [7] },
  sata: { count: 30, reserved: [] },
  nvme: { count: 15, reserved: [] },
  ide: { count: 2, reserved: [] },
};

/** `VirtualLsiLogicController` -> scsi, `VirtualAHCIController` -> sata, ... */
export function controllerKind(type: string): ControllerKind | null {
  if (/SCSI|LsiLogic|BusLogic/i.test(type)) return 'scsi';
  if (/AHCI|SATA/i.test(type)) return 'sata';
  if (/NVME/i.test(type)) return 'nvme';
  if (/IDE/i.test(type)) return 'ide';
  return null;
}

const BUS_ORDER: Record<ControllerKind, number> = { scsi: 0, ide: 1, sata: 2, nvme: 3 };

/**
 * The disks as "disk 1, 2, …" counts them: by controller (SCSI, IDE, SATA, NVMe, then bus
 * number) and unit, as the .vmx names them (scsi0:0 is disk 1) — not in the device list's order,
 * which a host may change when a device is edited.
 */
export function orderedDisks(view: Pick<ReconfigureView, 'disks' | 'controllers'>): ReconfigureDisk[] {
  const rank = (disk: ReconfigureDisk): number[] => {
    const controller = view.controllers.find((item) => item.key === disk.controllerKey);
    return controller === undefined ? [9, 0, disk.unitNumber ?? 0] : [BUS_ORDER[controller.kind], controller.busNumber, disk.unitNumber ?? 0];
  };
  return [...view.disks].sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return (x[0] as number) - (y[0] as number) || (x[1] as number) - (y[1] as number) || (x[2] as number) - (y[2] as number);
  });
}

/** The NICs as "NIC 1, 2, …" counts them: by device key (ethernet0 first). */
export function orderedNics(view: Pick<ReconfigureView, 'nics'>): ReconfigureNic[] {
  return [...view.nics].sort((a, b) => a.key - b.key);
}

function diskName(view: ReconfigureView, index: number): string {
  const disk = orderedDisks(view)[index] as ReconfigureDisk;
  return `disk ${index + 1} (${disk.label === null ? '' : `"${disk.label}", `}${disk.file})`;
}

function listDisks(view: ReconfigureView): string {
  return orderedDisks(view).map((disk, index) => `${index + 1}: ${disk.label ?? disk.file} (key ${disk.key})`).join(', ') || 'none';
}

function pickDisk(view: ReconfigureView, select: DiskSelector): number {
  const disks = orderedDisks(view);
  const index = 'index' in select ? (select.index < disks.length ? select.index : -1) : 'key' in select ? disks.findIndex((disk) => disk.key === select.key) : disks.findIndex((disk) => disk.label === select.label);
  if (index < 0) {
    const what = 'index' in select ? `disk ${select.index + 1}` : 'key' in select ? `disk with key ${select.key}` : `disk labelled "${select.label}"`;
    throw new CesoError('NOT_FOUND', `"${view.name}" has no ${what} (its disks: ${listDisks(view)})`, {
      hint: `Pick one with --disk-label or --disk-key (ceso vm info ${view.name} lists them), or add one with --add-disk`,
    });
  }
  return index;
}

function pickNic(view: ReconfigureView, select: NicSelector): number {
  const nics = orderedNics(view);
  const index = 'index' in select ? (select.index < nics.length ? select.index : -1) : nics.findIndex((nic) => nic.label === select.label);
  if (index < 0) {
    const what = 'index' in select ? `NIC ${select.index + 1}` : `NIC labelled "${select.label}"`;
    const list = nics.map((nic, i) => `${i + 1}: ${nic.label ?? '?'} on ${nic.network ?? '?'}`).join(', ') || 'none';
    throw new CesoError('NOT_FOUND', `"${view.name}" has no ${what} (its NICs: ${list})`, { hint: `Pick one with --nic N or --nic LABEL (ceso vm info ${view.name} lists them)` });
  }
  return index;
}

function powerRefusal(view: ReconfigureView, message: string, reason: string, hint?: string): CesoError {
  return new CesoError('INVALID_POWER_STATE', `"${view.name}" is ${describePowerState(view.powerState)}: ${message}`, {
    hint: hint ?? `Power it off first (ceso vm power ${view.name} shutdown), reconfigure it, then power it on`,
    details: { reason, powerState: view.powerState },
  });
}

function conflict(message: string, hint: string, details: Record<string, unknown>): CesoError {
  return new CesoError('CONFLICT', message, { hint, details });
}

/** The name a new disk gets: `<vmx base>_<n>.vmdk` in the VM's folder, the first n free. */
function newDiskFile(view: ReconfigureView, taken: Set<string>): string {
  const vmx = view.vmxPath ?? `[${view.datastores[0]?.name ?? ''}] ${view.name}/${view.name}.vmx`;
  const base = vmx.replace(/\.vmx$/i, '');
  for (let n = 1; ; n++) {
    const file = `${base}_${n}.vmdk`;
    if (!taken.has(file.toLowerCase())) {
      taken.add(file.toLowerCase());
      return file;
    }
  }
}

function datastoreOf(path: string): string | null {
  const match = /^\[([^\]]*)\]/.exec(path);
  return match ? (match[1] as string) : null;
}

/**
 * What the request changes on this VM, or the first reason it is refused (nothing changed yet).
 * Values the VM already has are left out.
 */
export function planChanges(view: ReconfigureView, request: ReconfigureRequest): PlannedChanges {
  const changes: PlannedChanges = { add: [] };
  const off = view.powerState === 'poweredOff';
  const suspended = view.powerState === 'suspended';

  // Disks first: what they are does not depend on the power state.
  if (request.disk !== undefined) {
    const index = pickDisk(view, request.disk.select);
    const disk = orderedDisks(view)[index] as ReconfigureDisk;
    const wanted = request.disk.capacityKB;
    if (wanted < disk.capacityKB) {
      throw conflict(
        `${diskName(view, index)} of "${view.name}" is ${gb(disk.capacityKB)} GB: --disk ${gb(wanted)} would shrink it, and a disk cannot shrink`,
        `Pass --disk ${Math.ceil(disk.capacityKB / 1024 / 1024)} or more, or add another disk with --add-disk`,
        { reason: 'disk-shrink', disk: disk.file, capacityGB: gb(disk.capacityKB), requestedGB: gb(wanted) },
      );
    }
    if (wanted > disk.capacityKB) {
      if (view.snapshotCount > 0) {
        throw conflict(
          `"${view.name}" has ${view.snapshotCount} snapshot(s): ${diskName(view, index)} cannot grow while snapshots hold its earlier state`,
          `Remove the VM's snapshots first, then grow the disk; or add a disk with --add-disk ${gb(wanted - disk.capacityKB)}`,
          { reason: 'disk-has-snapshots', disk: disk.file, snapshots: view.snapshotCount },
        );
      }
      if (disk.parent !== null) {
        throw conflict(
          `${diskName(view, index)} of "${view.name}" is a child (linked) disk of ${disk.parent}: a disk with a parent cannot grow`,
          `Add a disk with --add-disk ${gb(wanted - disk.capacityKB)} instead, or make a full copy (ceso vm clone) and grow that`,
          { reason: 'disk-has-parent', disk: disk.file, parent: disk.parent },
        );
      }
      changes.grow = { index, disk, capacityKB: wanted };
    }
  }
  if (request.addDisks.length > 0) {
    const first = orderedDisks(view).find((disk) => disk.controllerKey !== null);
    const controller =
      view.controllers.find((item) => item.key === first?.controllerKey && item.kind !== 'ide') ?? view.controllers.find((item) => item.kind !== 'ide');
    if (controller === undefined) {
      throw conflict(`"${view.name}" has no SCSI, SATA or NVMe controller to add a disk to`, 'Add a disk controller to the VM first (vSphere client)', { reason: 'no-controller' });
    }
    const taken = new Set([...view.disks.map((disk) => disk.file.toLowerCase()), ...(view.folderFiles ?? [])]);
    const used = new Set(controller.usedUnits);
    for (const addition of request.addDisks) {
      const { count, reserved } = UNITS[controller.kind];
      let unit = -1;
      for (let candidate = 0; candidate < count; candidate++) {
        if (!reserved.includes(candidate) && !used.has(candidate)) {
          unit = candidate;
          break;
        }
      }
      if (unit < 0) {
        throw conflict(`the ${controller.kind.toUpperCase()} controller ${controller.busNumber} of "${view.name}" has no free unit for another disk`, 'Grow an existing disk with --disk instead, or add a controller first', {
          reason: 'no-free-unit',
        });
      }
      used.add(unit);
      changes.add.push({ capacityKB: addition.capacityKB, controller, unitNumber: unit, file: newDiskFile(view, taken), device: `${controller.kind}${controller.busNumber}:${unit}` });
    }
  }

  if (request.cpu !== undefined && request.cpu !== view.cpu) {
    const cores = view.coresPerSocket ?? 1;
    if (cores > 1 && request.cpu % cores !== 0) {
      throw conflict(`--cpu ${request.cpu} does not fill whole sockets of "${view.name}", which has ${cores} cores per socket`, `Pass a multiple of ${cores}`, { reason: 'cores-per-socket', coresPerSocket: cores });
    }
    if (!off) {
      if (suspended) throw powerRefusal(view, `its CPUs cannot change (--cpu ${request.cpu})`, 'suspended', `Power it on or off first (ceso vm power ${view.name} on)`);
      if (view.cpu !== null && request.cpu < view.cpu) throw powerRefusal(view, `CPUs cannot be removed while it runs (--cpu ${request.cpu}, it has ${view.cpu})`, 'cpu-hot-remove');
      if (!view.cpuHotAdd) {
        throw powerRefusal(
          view,
          `CPU hot add is off, so --cpu ${request.cpu} (it has ${view.cpu ?? '?'}) needs it powered off`,
          'cpu-hot-add-disabled',
          `Power it off first (ceso vm power ${view.name} shutdown) and reconfigure it; --cpu-hot-add on (while it is off) allows this while it runs next time`,
        );
      }
    }
    changes.cpu = request.cpu;
  }
  if (request.memoryMB !== undefined && request.memoryMB !== view.memoryMB) {
    if (!off) {
      if (suspended) throw powerRefusal(view, `its memory cannot change (${request.memoryMB} MB)`, 'suspended', `Power it on or off first (ceso vm power ${view.name} on)`);
      if (view.memoryMB !== null && request.memoryMB < view.memoryMB) {
        throw powerRefusal(view, `memory cannot be removed while it runs (${request.memoryMB} MB asked, it has ${view.memoryMB} MB)`, 'memory-hot-remove');
      }
      if (!view.memoryHotAdd) {
        throw powerRefusal(
          view,
          `memory hot add is off, so ${request.memoryMB} MB (it has ${view.memoryMB ?? '?'} MB) needs it powered off`,
          'memory-hot-add-disabled',
          `Power it off first (ceso vm power ${view.name} shutdown) and reconfigure it; --memory-hot-add on (while it is off) allows this while it runs next time`,
        );
      }
      if (view.hotPlugMemoryLimitMB !== null && view.hotPlugMemoryLimitMB > 0 && request.memoryMB > view.hotPlugMemoryLimitMB) {
        throw powerRefusal(view, `memory can grow to at most ${view.hotPlugMemoryLimitMB} MB while it runs (hotPlugMemoryLimit), not ${request.memoryMB} MB`, 'memory-hot-add-limit');
      }
    }
    changes.memoryMB = request.memoryMB;
  }
  for (const [flag, wanted, current] of [
    ['--cpu-hot-add', request.cpuHotAdd, view.cpuHotAdd],
    ['--memory-hot-add', request.memoryHotAdd, view.memoryHotAdd],
  ] as const) {
    if (wanted === undefined || wanted === current) continue;
    if (!off) throw powerRefusal(view, `${flag} can only change while it is powered off`, 'hot-add-flag-while-on');
    if (flag === '--cpu-hot-add') changes.cpuHotAdd = wanted;
    else changes.memoryHotAdd = wanted;
  }
  if (suspended && (changes.grow !== undefined || changes.add.length > 0)) {
    throw powerRefusal(view, 'its disks cannot change', 'suspended', `Power it on or off first (ceso vm power ${view.name} on)`);
  }

  if (request.network !== undefined) {
    const index = pickNic(view, request.network.select);
    const nic = orderedNics(view)[index] as ReconfigureNic;
    if (nic.network !== request.network.portgroup) {
      if (view.networks !== null && !view.networks.includes(request.network.portgroup)) throw networkNotFound(request.network.portgroup, view.networks);
      if (suspended) throw powerRefusal(view, 'its NICs cannot change', 'suspended', `Power it on or off first (ceso vm power ${view.name} on)`);
      changes.network = { index, nic, portgroup: request.network.portgroup };
    }
  }
  if (request.annotation !== undefined && (request.annotation === '' ? null : request.annotation) !== view.annotation) changes.annotation = request.annotation;

  checkDiskSpace(view, changes);
  return changes;
}

/**
 * The disks asked for (grown by the difference, added whole) must fit in the free space of their
 * datastores, as if they were filled: refused otherwise, before anything is made.
 */
function checkDiskSpace(view: ReconfigureView, changes: PlannedChanges): void {
  const needed = new Map<string, number>();
  const add = (file: string, kb: number): void => {
    const datastore = datastoreOf(file);
    if (datastore !== null) needed.set(datastore, (needed.get(datastore) ?? 0) + kb * 1024);
  };
  if (changes.grow !== undefined) add(changes.grow.disk.file, changes.grow.capacityKB - changes.grow.disk.capacityKB);
  for (const addition of changes.add) add(addition.file, addition.capacityKB);
  for (const [name, bytes] of needed) {
    const free = view.datastores.find((datastore) => datastore.name === name)?.freeBytes ?? null;
    if (free !== null && bytes > free) {
      throw new CesoError('INSUFFICIENT_SPACE', `datastore "${name}" has ${gb(free / 1024)} GB free; the disk space asked for needs ${gb(bytes / 1024)} GB`, {
        hint: 'Free space on the datastore, or ask for less',
        details: { datastore: name, freeBytes: free, neededBytes: bytes },
      });
    }
  }
}

/** One line per change, for plans and the human summary. */
export function describeChanges(view: ReconfigureView, changes: PlannedChanges): string[] {
  const lines: string[] = [];
  if (changes.cpu !== undefined) lines.push(`CPUs ${view.cpu ?? '?'} -> ${changes.cpu}`);
  if (changes.memoryMB !== undefined) lines.push(`memory ${view.memoryMB ?? '?'} MB -> ${changes.memoryMB} MB`);
  if (changes.grow !== undefined) lines.push(`grow ${diskName(view, changes.grow.index)} ${gb(changes.grow.disk.capacityKB)} GB -> ${gb(changes.grow.capacityKB)} GB`);
  for (const addition of changes.add) lines.push(`add a thin ${gb(addition.capacityKB)} GB disk ${addition.file} at ${addition.device}`);
  if (changes.network !== undefined) lines.push(`move NIC ${changes.network.index + 1} (${changes.network.nic.label ?? '?'}) from ${changes.network.nic.network ?? '?'} to ${changes.network.portgroup}`);
  if (changes.annotation !== undefined) lines.push(changes.annotation === '' ? 'clear the annotation' : `set the annotation (${changes.annotation.length} characters)`);
  if (changes.cpuHotAdd !== undefined) lines.push(`CPU hot add ${changes.cpuHotAdd ? 'on' : 'off'}`);
  if (changes.memoryHotAdd !== undefined) lines.push(`memory hot add ${changes.memoryHotAdd ? 'on' : 'off'}`);
  return lines;
}

/** The VM after the change, as both paths read it. */
export interface ReconfiguredVm {
  details: VmDetails;
  cpuHotAdd: boolean | null;
  memoryHotAdd: boolean | null;
}

/**
 * Which planned changes the VM now shows, as paths into the result (see ReconfigureOutcome);
 * `missing` lists the planned changes it does not show (yet).
 */
export function changedFields(after: ReconfiguredVm, changes: PlannedChanges): { changed: string[]; missing: string[] } {
  const changed: string[] = [];
  const missing: string[] = [];
  const check = (path: string, ok: boolean): void => {
    (ok ? changed : missing).push(path);
  };
  const { details } = after;
  const sameFile = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
  if (changes.cpu !== undefined) check('cpu', details.cpu === changes.cpu);
  if (changes.memoryMB !== undefined) check('memoryMB', details.memoryMB === changes.memoryMB);
  if (changes.grow !== undefined) {
    const { grow } = changes;
    const index = details.disks.findIndex((disk) => sameFile(disk.file, grow.disk.file));
    const wantedGB = Math.round((grow.capacityKB / 1024 / 1024) * 100) / 100;
    check(`disks[${index < 0 ? grow.index : index}].capacityGB`, index >= 0 && details.disks[index]?.capacityGB === wantedGB);
  }
  for (const addition of changes.add) {
    const index = details.disks.findIndex((disk) => sameFile(disk.file, addition.file));
    check(index < 0 ? `disks[?] (${addition.file})` : `disks[${index}]`, index >= 0);
  }
  if (changes.network !== undefined) {
    const { nic, portgroup } = changes.network;
    let index = nic.mac === null ? -1 : details.nics.findIndex((candidate) => candidate.mac === nic.mac);
    if (index < 0 && nic.label !== null) index = details.nics.findIndex((candidate) => candidate.label === nic.label);
    if (index < 0) index = changes.network.index;
    check(`nics[${index}].network`, details.nics[index]?.network === portgroup);
  }
  if (changes.annotation !== undefined) check('annotation', details.annotation === (changes.annotation === '' ? null : changes.annotation));
  if (changes.cpuHotAdd !== undefined) check('cpuHotAdd', after.cpuHotAdd === changes.cpuHotAdd);
  if (changes.memoryHotAdd !== undefined) check('memoryHotAdd', after.memoryHotAdd === changes.memoryHotAdd);
  return { changed, missing };
}

export function reconfigureOutcome(after: ReconfiguredVm, changed: string[]): ReconfigureOutcome {
  return { ...after.details, cpuHotAdd: after.cpuHotAdd, memoryHotAdd: after.memoryHotAdd, changed };
}

/**
 * A refusal the host made anyway (ceso's own checks passed: the host knows better, or the read
 * was stale), as the code ceso's check would have given, with the reason and the fix.
 */
export function reconfigureFault(error: unknown, view: ReconfigureView, changes: PlannedChanges): unknown {
  if (!isCesoError(error) || typeof error.details?.fault !== 'string') return error;
  const fault = error.details.fault;
  const text = error.message;
  const keep = { details: { ...error.details }, cause: error };
  const powerHint = `Power it off first (ceso vm power ${view.name} shutdown), reconfigure it, then power it on`;
  switch (fault) {
    case 'InvalidDeviceOperation':
      return new CesoError('CONFLICT', `the host refused the disk change of "${view.name}" (${text})`, {
        hint: 'A disk cannot shrink, nor grow while the VM has snapshots or the disk has a parent; add a disk with --add-disk instead',
        ...keep,
      });
    case 'NotSupported':
      if (changes.grow === undefined && changes.add.length === 0) return error;
      return new CesoError('CONFLICT', `the host does not support this disk change of "${view.name}" (${text})`, {
        hint: 'A disk with snapshots or a parent disk cannot grow; remove the snapshots, or add a disk with --add-disk instead',
        ...keep,
      });
    case 'CpuHotPlugNotSupported':
      return new CesoError('INVALID_POWER_STATE', `the host refused to change the CPUs of "${view.name}" while it runs (${text})`, { hint: powerHint, ...keep });
    case 'MemoryHotPlugNotSupported':
      return new CesoError('INVALID_POWER_STATE', `the host refused to change the memory of "${view.name}" while it runs (${text})`, { hint: powerHint, ...keep });
    case 'InvalidPowerState':
      return new CesoError('INVALID_POWER_STATE', `the host refused the change in the power state "${view.name}" is in (${text})`, { hint: powerHint, ...keep });
    case 'GenericVmConfigFault':
      if (changes.memoryMB === undefined) return error;
      return new CesoError('CONFLICT', `the host refused the configuration of "${view.name}" (${text})`, {
        hint: 'Memory must be a multiple of 4 MB (and within what the guest OS and hardware version allow)',
        ...keep,
      });
    case 'FileAlreadyExists':
      return new CesoError('CONFLICT', `a file the new disk needs already exists (${text})`, {
        hint: `Another tool left a disk file in the VM's folder: remove it, or grow an existing disk with --disk`,
        ...keep,
      });
    default:
      return error;
  }
}
