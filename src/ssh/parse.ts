/**
 * Parsers for what the ESXi shell prints (see the reference esxi-shell.md): getallvms rows,
 * get.summary / get.guest / device.getdevices / datastore summaries (vmodl dumps), snapshot trees,
 * power states, faults in the older and newer formats, registervm and vmkfstools output.
 */
import { nicTypeName, parseDatastorePath, toPowerState, type PowerState, type VmDisk, type VmNic, type VmSnapshot } from '../core/vm.js';
import { VmodlRef, parseVmodl, pick, readVmodl, pickArray, pickBoolean, pickNumber, pickString, typeName, type VmodlValue } from './vmodl.js';

/** A vmid: digits on a real host (the test bed's simulator prints its moref values, e.g. vm-12). */
export const VMID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

// ---- vim-cmd vmsvc/getallvms ----------------------------------------------------------------

export interface VmRow {
  id: string;
  name: string;
  /** The .vmx as a datastore path: `[ds] dir/x.vmx`; `[] /abs/x.vmx` for system VMs. */
  file: string;
  datastore: string;
  guestId: string | null;
  version: string | null;
  annotation: string | null;
}

export interface GetAllVms {
  rows: VmRow[];
  /** vmids the host skipped (`Skipping invalid VM '16'`). */
  skipped: string[];
}

const ROW_START = /^([A-Za-z0-9][A-Za-z0-9_.-]*)\s+(\S.*)$/;
const FILE_TOKEN = /^\[[^\]]*\]\s?.*\.vmx$/i;
const VERSION_TOKEN = /^vmx-\d+$/;

/**
 * Columns are separated by runs of three or more spaces; the header's widths do not line up
 * with the rows. The name is everything between the vmid and the first column that is a .vmx
 * datastore path (names may hold spaces, brackets and parentheses). Lines that are not rows
 * continue the previous row's annotation.
 */
export function parseGetAllVms(output: string): GetAllVms {
  const rows: VmRow[] = [];
  const skipped: string[] = [];
  let last: VmRow | undefined;
  for (const raw of output.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const skip = /Skipping invalid VM '([^']*)'/.exec(line);
    if (skip) {
      skipped.push(skip[1] as string);
      continue;
    }
    if (/^Vmid\s+Name\s+File/.test(line)) continue;
    const row = parseRow(line.trimEnd());
    if (row !== null) {
      rows.push(row);
      last = row;
    } else if (last !== undefined && line.trim() !== '') {
      last.annotation = last.annotation === null ? line.trimEnd() : `${last.annotation}\n${line.trimEnd()}`;
    }
  }
  return { rows, skipped };
}

function parseRow(line: string): VmRow | null {
  const start = ROW_START.exec(line);
  if (start === null) return null;
  const id = start[1] as string;
  const rest = start[2] as string;
  // Tokens separated by 3+ spaces, with their offsets in `rest`.
  const tokens: Array<{ text: string; at: number }> = [];
  const separator = / {3,}|\t+/g;
  let from = 0;
  for (const match of rest.matchAll(separator)) {
    tokens.push({ text: rest.slice(from, match.index), at: from });
    from = (match.index as number) + match[0].length;
  }
  tokens.push({ text: rest.slice(from), at: from });
  const fileIndex = tokens.findIndex((token, index) => index >= 1 && FILE_TOKEN.test(token.text));
  if (fileIndex === -1) return null;
  const file = (tokens[fileIndex] as { text: string }).text;
  const name = rest.slice(0, (tokens[fileIndex] as { at: number }).at).trimEnd();
  let guestId: string | null = null;
  let version: string | null = null;
  let next = fileIndex + 1;
  const first = tokens[next];
  if (first !== undefined && !VERSION_TOKEN.test(first.text)) {
    guestId = first.text;
    next += 1;
  }
  const versionToken = tokens[next];
  let annotation: string | null = null;
  if (versionToken !== undefined && VERSION_TOKEN.test(versionToken.text)) {
    version = versionToken.text;
    const after = rest.slice(versionToken.at + versionToken.text.length).trim();
    annotation = after === '' ? null : after;
  } else if (versionToken !== undefined) {
    const after = rest.slice(versionToken.at).trim();
    annotation = after === '' ? null : after;
  }
  return { id, name, file, datastore: parseDatastorePath(file)?.datastore ?? '', guestId, version, annotation };
}

// ---- faults -----------------------------------------------------------------------------------

export interface VimFault {
  /** The fault's type without its namespace: NotFound, InvalidPowerState, ... */
  type: string;
  /** vim.fault or vmodl.fault. */
  namespace: string;
  message: string;
  /** The text before the fault, e.g. "Power on failed:". */
  prefix: string;
}

/** A fault opens a line, maybe after a prefix such as "Power on failed: "; members (`x = (vim.fault...`) do not count. */
const FAULT_HEAD = /^([^\n=(]*?:[ \t]*)?\((vim\.fault|vmodl\.fault)\.([A-Za-z]+)\)[ \t]*\{/m;

/** The first fault in vim-cmd's output (older or newer format), or null. */
export function parseFault(output: string): VimFault | null {
  const head = FAULT_HEAD.exec(output);
  if (head === null) return null;
  const prefix = (head[1] ?? '').trim();
  const body = readVmodl(output.slice(head.index + (head[1] ?? '').length));
  const message = pickString(body, 'msg') ?? pickString(body, 'faultMessage') ?? '';
  return { type: head[3] as string, namespace: head[2] as string, message, prefix };
}

// ---- get.summary --------------------------------------------------------------------------------

export interface SummaryInfo {
  name: string | null;
  vmPathName: string | null;
  uuid: string | null;
  powerState: PowerState | null;
  cpu: number | null;
  memoryMB: number | null;
  guestId: string | null;
  ip: string | null;
  annotation: string | null;
  committedBytes: number | null;
}

export function parseSummary(output: string): SummaryInfo {
  const summary = parseVmodl(output);
  return {
    name: pickString(summary, 'config.name'),
    vmPathName: nonEmpty(pickString(summary, 'config.vmPathName')),
    uuid: nonEmpty(pickString(summary, 'config.uuid')),
    powerState: toPowerState(pickString(summary, 'runtime.powerState') ?? undefined),
    cpu: pickNumber(summary, 'config.numCpu'),
    memoryMB: pickNumber(summary, 'config.memorySizeMB'),
    guestId: nonEmpty(pickString(summary, 'config.guestId')),
    ip: nonEmpty(pickString(summary, 'guest.ipAddress')),
    annotation: nonEmpty(pickString(summary, 'config.annotation')),
    committedBytes: pickNumber(summary, 'storage.committed'),
  };
}

/** A bare `<unset>` as the whole answer: hostd is (re)starting. */
export function isBareUnset(output: string): boolean {
  return output.trim() === '<unset>';
}

// ---- get.guest ----------------------------------------------------------------------------------

export interface GuestNet {
  mac: string | null;
  network: string | null;
  ips: string[];
}

export interface GuestInfo {
  ip: string | null;
  hostName: string | null;
  toolsStatus: string | null;
  net: GuestNet[];
}

export function parseGuest(output: string): GuestInfo {
  const body = output.replace(/^\s*Guest information:\s*/, '');
  const guest = isBareUnset(body) ? null : parseVmodl(body);
  return {
    ip: nonEmpty(pickString(guest ?? undefined, 'ipAddress')),
    hostName: nonEmpty(pickString(guest ?? undefined, 'hostName')),
    toolsStatus: nonEmpty(pickString(guest ?? undefined, 'toolsStatus')),
    net: pickArray(guest ?? undefined, 'net').map((nic) => ({
      mac: nonEmpty(pickString(nic, 'macAddress'))?.toLowerCase() ?? null,
      network: nonEmpty(pickString(nic, 'network')),
      ips: pickArray(nic, 'ipAddress').filter((ip): ip is string => typeof ip === 'string' && ip !== ''),
    })),
  };
}

// ---- device.getdevices --------------------------------------------------------------------------

export interface DeviceInfo {
  key: number;
  type: string;
  label: string | null;
  controllerKey: number | null;
  unitNumber: number | null;
  busNumber: number | null;
}

export interface HardwareInfo {
  disks: Array<VmDisk & { key: number; controllerKey: number | null; unitNumber: number | null; capacityKB: number | null }>;
  nics: Array<VmNic & { key: number }>;
  controllers: DeviceInfo[];
}

/** The short device type: `vim.vm.device.VirtualDisk` -> `VirtualDisk`. */
function shortType(type: string): string {
  return type.slice(type.lastIndexOf('.') + 1);
}

/** `vim-cmd vmsvc/device.getdevices` (a vim.vm.VirtualHardware dump): disks, NICs, controllers. */
export function parseDevices(output: string): HardwareInfo {
  const hardware = parseVmodl(output);
  const hardwareInfo: HardwareInfo = { disks: [], nics: [], controllers: [] };
  for (const device of pickArray(hardware, 'device')) {
    const type = shortType(typeName(device));
    const key = pickNumber(device, 'key') ?? 0;
    const label = nonEmpty(pickString(device, 'deviceInfo.label'));
    if (type === 'VirtualDisk') {
      const bytes = pickNumber(device, 'capacityInBytes');
      const kb = pickNumber(device, 'capacityInKB');
      const capacityBytes = bytes !== null && bytes > 0 ? bytes : (kb ?? 0) * 1024;
      hardwareInfo.disks.push({
        key,
        label,
        file: pickString(device, 'backing.fileName') ?? '',
        capacityGB: capacityBytes > 0 ? Math.round((capacityBytes / 1024 ** 3) * 100) / 100 : null,
        thin: pickBoolean(device, 'backing.thinProvisioned'),
        parent: nonEmpty(pickString(device, 'backing.parent.fileName')),
        controllerKey: pickNumber(device, 'controllerKey'),
        unitNumber: pickNumber(device, 'unitNumber'),
        capacityKB: capacityBytes > 0 ? Math.ceil(capacityBytes / 1024) : null,
      });
    } else if (pick(device, 'macAddress') !== undefined || /^Virtual(E1000e?|Vmxnet\d?|PCNet32|Pcnet32|Sriov)/.test(type)) {
      hardwareInfo.nics.push({
        key,
        label,
        network: nonEmpty(pickString(device, 'backing.deviceName')) ?? nonEmpty(pickString(device, 'backing.port.portgroupKey')) ?? networkRefOf(pick(device, 'backing.network')),
        mac: nonEmpty(pickString(device, 'macAddress'))?.toLowerCase() ?? null,
        type: nicTypeName(type),
      });
    } else if (/Controller$/.test(type)) {
      hardwareInfo.controllers.push({
        key,
        type,
        label,
        controllerKey: pickNumber(device, 'controllerKey'),
        unitNumber: pickNumber(device, 'unitNumber'),
        busNumber: pickNumber(device, 'busNumber'),
      });
    }
  }
  return hardwareInfo;
}

function networkRefOf(value: VmodlValue | undefined): string | null {
  return value instanceof VmodlRef ? value.value : null;
}

// ---- datastores ---------------------------------------------------------------------------------

export interface DatastoreSummary {
  name: string;
  url: string | null;
  freeBytes: number | null;
  capacityBytes: number | null;
  accessible: boolean;
}

/** `vim-cmd hostsvc/datastore/listsummary`: an array of vim.Datastore.Summary. */
export function parseDatastores(output: string): DatastoreSummary[] {
  const value = parseVmodl(output);
  const list = Array.isArray(value) ? value : value === null ? [] : [value];
  return list.flatMap((item) => {
    const name = pickString(item, 'name');
    if (name === null) return [];
    return [
      {
        name,
        url: nonEmpty(pickString(item, 'url')),
        freeBytes: pickNumber(item, 'freeSpace'),
        capacityBytes: pickNumber(item, 'capacity'),
        accessible: pickBoolean(item, 'accessible') ?? true,
      },
    ];
  });
}

// ---- snapshots ----------------------------------------------------------------------------------

/**
 * `vim-cmd vmsvc/snapshot.get`: `Get Snapshot:` alone when there are none, else a tree whose
 * depth is given by the leading dashes (`|-ROOT`, `--|-CHILD`, fields prefixed with two dashes
 * per level; "Desciption" is VMware's spelling; padding varies).
 */
export function parseSnapshots(output: string, currentId: string | null = null): VmSnapshot[] {
  const roots: VmSnapshot[] = [];
  const stack: Array<{ depth: number; node: VmSnapshot }> = [];
  let pendingDepth: number | null = null;
  let current: { depth: number; node: VmSnapshot } | undefined;
  for (const raw of output.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const head = /^(-*)\|-(ROOT|CHILD)\s*$/.exec(line);
    if (head) {
      pendingDepth = (head[1] as string).length / 2 + 1;
      current = undefined;
      continue;
    }
    const field = /^(-*)Snapshot\s+(Name|Id|Desc\w*|Created On|State)\s*:\s?(.*)$/.exec(line);
    if (!field) continue;
    const depth = (field[1] as string).length / 2;
    const value = (field[3] as string).trimEnd();
    if (field[2] === 'Name' || current === undefined) {
      const node: VmSnapshot = { name: '', id: null, description: null, createdAt: null, state: null, current: false, children: [] };
      const level = pendingDepth ?? depth;
      pendingDepth = null;
      while (stack.length > 0 && (stack[stack.length - 1] as { depth: number }).depth >= level) stack.pop();
      const parent = stack[stack.length - 1];
      if (parent === undefined) roots.push(node);
      else parent.node.children.push(node);
      current = { depth: level, node };
      stack.push(current);
    }
    const node = current.node;
    switch (field[2]) {
      case 'Name':
        node.name = value;
        break;
      case 'Id':
        node.id = nonEmpty(value);
        node.current = currentId !== null && node.id === currentId;
        break;
      case 'Created On':
        node.createdAt = snapshotTime(value);
        break;
      case 'State':
        node.state = snapshotState(value);
        break;
      default:
        node.description = nonEmpty(value);
    }
  }
  return roots;
}

/** `2/23/2015 18:12:50` (month/day/year, host time = UTC on ESXi) to ISO 8601. */
function snapshotTime(value: string): string | null {
  const match = /^(\d{1,2})\/(\d{1,2})\/(\d{4})\s+(\d{1,2}):(\d{2}):(\d{2})$/.exec(value.trim());
  if (!match) return nonEmpty(value);
  const [, month, day, year, hour, minute, second] = match.map(Number) as [number, number, number, number, number, number, number];
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second)).toISOString();
}

function snapshotState(value: string): string | null {
  const known: Record<string, string> = { 'powered on': 'poweredOn', 'powered off': 'poweredOff', suspended: 'suspended' };
  return known[value.trim().toLowerCase()] ?? nonEmpty(value);
}

/** The current snapshot's id from a .vmsd file (`snapshot.current = "2"`). */
export function currentSnapshotOf(vmsd: Map<string, string>): string | null {
  for (const [key, value] of vmsd) if (key.toLowerCase() === 'snapshot.current') return nonEmpty(value);
  return null;
}

// ---- power, register, vmkfstools ----------------------------------------------------------------

/** `Retrieved runtime info` then `Powered on` / `Powered off` / `Suspended`. */
export function parsePowerState(output: string): PowerState | null {
  const match = /^\s*(Powered on|Powered off|Suspended)\s*$/im.exec(output);
  if (match === null) return null;
  const text = (match[1] as string).toLowerCase();
  return text === 'powered on' ? 'poweredOn' : text === 'powered off' ? 'poweredOff' : 'suspended';
}

/** `solo/registervm` prints the new vmid on a line of its own. */
export function parseRegisteredVmid(output: string): string | null {
  const ids = output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => VMID.test(line));
  return ids.length === 1 ? (ids[0] as string) : null;
}

/** The last "NN% done." of vmkfstools' progress output. */
export function vmkfstoolsProgress(output: string): number | null {
  const matches = [...output.matchAll(/(\d{1,3})% done/g)];
  const last = matches[matches.length - 1];
  return last === undefined ? null : Math.min(100, Number(last[1]));
}

/** The descriptor's capacity: the sum of its extents' sectors (`RW 83886080 VMFS "x-flat.vmdk"`). */
export function descriptorCapacityKB(descriptor: string): number | null {
  let sectors = 0;
  for (const match of descriptor.matchAll(/^\s*(?:RW|RDONLY|NOACCESS)\s+(\d+)\s+/gm)) sectors += Number(match[1]);
  return sectors > 0 ? sectors / 2 : null;
}

export function nonEmpty(value: string | null | undefined): string | null {
  return value === undefined || value === null || value === '' ? null : value;
}

/**
 * `esxcli network vswitch standard portgroup list`: a table whose first column is the port
 * group's name (may hold single spaces); columns are separated by two or more spaces.
 */
export function parsePortgroups(output: string): string[] {
  const names: string[] = [];
  for (const line of output.split('\n')) {
    if (/^\s*$/.test(line) || /^Name\s{2,}/.test(line) || /^-{3,}/.test(line.trim())) continue;
    const name = line.split(/\s{2,}/)[0]?.trim();
    if (name !== undefined && name !== '') names.push(name);
  }
  return names;
}

/** MAC addresses named in .vmx lines (`ethernet0.generatedAddress = "00:0c:29:..."`), lowercased. */
export function parseMacLines(output: string): Set<string> {
  const macs = new Set<string>();
  for (const match of output.matchAll(/^\s*ethernet\d+\.(?:generatedA|a)ddress\s*=\s*"([0-9a-fA-F:]{17})"/gim)) macs.add((match[1] as string).toLowerCase());
  return macs;
}
