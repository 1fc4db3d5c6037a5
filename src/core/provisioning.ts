import { decodeGuestinfoValue } from '../cloudinit/encoding.js';
import { buildGuestinfo, retargetUserData } from '../cloudinit/index.js';
import { CesoError, invalidInput } from './errors.js';
import type { CloneRequest, CreateRequest, GuestRequest } from './requests.js';
import { MARKERS, type PowerState } from './vm.js';

/** The rules create and clone follow whichever path (API or SSH) carries them out. */

export const KB_PER_GB = 1024 * 1024;
export const DEFAULT_CPU = 2;
export const DEFAULT_MEMORY_MB = 4096;

export function gb(kb: number): number {
  return Math.round((kb / KB_PER_GB) * 10) / 10;
}

export function assertNameFree(name: string, vms: ReadonlyArray<{ name: string; id: string }>): void {
  const taken = vms.filter((vm) => vm.name === name);
  if (taken.length > 0) {
    throw new CesoError('VM_EXISTS', `a VM named "${name}" already exists (id ${taken.map((vm) => vm.id).join(', ')})`, {
      hint: 'Choose another name, or delete the existing VM first',
    });
  }
}

export function templateNotFound(name: string): CesoError {
  return new CesoError('TEMPLATE_NOT_FOUND', `template "${name}" does not exist on this host`, {
    hint: 'Pass --template with the name of a powered-off Ubuntu VM, or set defaults.template (see README: preparing a template)',
  });
}

/** A template, and a cold clone's source, must be powered off. */
export function assertPoweredOff(source: { name: string; powerState: PowerState | null }, role: 'template' | 'source'): void {
  if (source.powerState === 'poweredOff') return;
  const state = source.powerState ?? 'in an unknown state';
  if (role === 'template') {
    throw new CesoError('INVALID_POWER_STATE', `template "${source.name}" is ${state}; a template must be powered off`, {
      hint: `Power it off first (ceso vm power ${source.name} off), or choose another --template`,
    });
  }
  throw new CesoError('INVALID_POWER_STATE', `"${source.name}" is ${state}; a cold clone needs the source powered off`, {
    hint: `Power it off first: ceso vm power ${source.name} shutdown`,
  });
}

/**
 * The new VM's first disk: as asked, never smaller than the source's. A size that only came from
 * the defaults quietly becomes the source's when that is larger; an explicit smaller one is an error.
 */
export function diskSizeKB(requestedGB: number | undefined, sourceKB: number, options: { fromDefaults: boolean; role: 'template' | 'source' }): number {
  const requestedKB = (requestedGB ?? 0) * KB_PER_GB;
  if (!options.fromDefaults && requestedKB > 0 && requestedKB < sourceKB) {
    throw invalidInput(`--disk ${requestedGB}: smaller than the ${options.role}'s disk (${gb(sourceKB)} GB); disks cannot shrink`, `Use --disk ${Math.ceil(sourceKB / KB_PER_GB)} or more`);
  }
  return Math.max(requestedKB, sourceKB);
}

/** ceso's extraConfig markers on every VM it makes. */
export function markersFor(options: { template: string; clonedFrom?: string; expiresAt?: string | undefined; now?: Date }): Record<string, string> {
  return {
    [MARKERS.managed]: 'true',
    [MARKERS.createdAt]: (options.now ?? new Date()).toISOString(),
    [MARKERS.template]: options.template,
    ...(options.clonedFrom === undefined ? {} : { 'ceso.clonedFrom': options.clonedFrom }),
    ...(options.expiresAt === undefined ? {} : { [MARKERS.expiresAt]: options.expiresAt }),
  };
}

/**
 * A thin copy takes about what the source uses (all of it when the host does not say): refused
 * when the datastore cannot hold that; a warning when the disk could outgrow the free space.
 */
export function checkSpace(datastore: { name: string; freeBytes: number | null }, source: { name: string; usedBytes: number; provisionedBytes: number }, diskKB: number): string[] {
  if (datastore.freeBytes === null) return [];
  const neededBytes = source.usedBytes > 0 ? source.usedBytes : source.provisionedBytes;
  if (datastore.freeBytes < neededBytes) {
    throw new CesoError('INSUFFICIENT_SPACE', `datastore "${datastore.name}" has ${gb(datastore.freeBytes / 1024)} GB free; copying "${source.name}" needs about ${gb(neededBytes / 1024)} GB`, {
      hint: 'Free space on the datastore or choose another --datastore',
    });
  }
  return datastore.freeBytes < diskKB * 1024
    ? [`datastore "${datastore.name}" has less free space (${gb(datastore.freeBytes / 1024)} GB) than the thin disk may grow to (${gb(diskKB)} GB)`]
    : [];
}

/** The datastore of that name, accessible, or DATASTORE_NOT_FOUND listing the ones there are. */
export function pickDatastore<D extends { name: string; accessible: boolean }>(datastores: readonly D[], name: string): D {
  const datastore = datastores.find((item) => item.name === name);
  if (datastore === undefined) {
    throw new CesoError('DATASTORE_NOT_FOUND', `datastore "${name}" does not exist on this host`, {
      hint: `Use one of: ${datastores.map((item) => item.name).join(', ') || '(none)'} (--datastore or defaults.datastore)`,
    });
  }
  if (!datastore.accessible) {
    throw new CesoError('CONFLICT', `datastore "${name}" is not accessible`, { hint: 'Check the storage on the host, or choose another --datastore' });
  }
  return datastore;
}

export function networkNotFound(name: string, known: readonly string[]): CesoError {
  return new CesoError('NETWORK_NOT_FOUND', `network "${name}" does not exist on this host`, {
    hint: `Use one of: ${known.join(', ') || '(none)'} (--network or defaults.network)`,
  });
}

/**
 * What a create or a clone makes, decided the same way on both paths; each path adds where it
 * goes (datastore, network) and the source as it reads it.
 */
export interface ProvisionSettings {
  operation: 'create' | 'clone';
  name: string;
  cpu: number;
  memoryMB: number;
  diskKB: number;
  guest: GuestRequest;
  /** The user data to write: built from the request, or the source's kept with a new hostname. */
  userData: { build: true } | { raw: string };
  markers: Record<string, string>;
  powerOn: boolean;
  /** A linked clone: the first disk is a child of the source's base snapshot disk. */
  linked: boolean;
  /** Thin disks to add, in KB. */
  addDisksKB: number[];
}

/** The snapshot whose disks linked clones use as their parents. */
export const LINKED_BASE = 'ceso-linked-base';

export function isLinkedBase(name: string): boolean {
  return name === LINKED_BASE || /^ceso-linked-base-\d+$/.test(name);
}

/** A base snapshot name the VM does not have yet: ceso-linked-base, then ceso-linked-base-2, -3, ... */
export function nextLinkedBaseName(taken: readonly string[]): string {
  if (!taken.includes(LINKED_BASE)) return LINKED_BASE;
  for (let n = 2; ; n += 1) if (!taken.includes(`${LINKED_BASE}-${n}`)) return `${LINKED_BASE}-${n}`;
}

/**
 * A linked clone's first disk has its parent's size: a child disk cannot grow. A --disk larger
 * than the source's is refused before anything is made; a size from the defaults is ignored.
 */
export function linkedDiskKB(requestedGB: number | undefined, sourceKB: number, options: { fromDefaults: boolean; role: 'template' | 'source' }): number {
  if (options.fromDefaults || requestedGB === undefined) return sourceKB;
  const requestedKB = requestedGB * KB_PER_GB;
  if (requestedKB > sourceKB) {
    throw new CesoError('CONFLICT', `--disk ${requestedGB} with --linked: a linked clone's disk is a child of the ${options.role}'s (${gb(sourceKB)} GB) and cannot grow`, {
      hint: `Drop --disk, and add a disk instead with --add-disk ${Math.ceil((requestedKB - sourceKB) / KB_PER_GB)}; or make a full copy without --linked`,
      details: { reason: 'linked-disk-cannot-grow', capacityGB: gb(sourceKB), requestedGB },
    });
  }
  return diskSizeKB(requestedGB, sourceKB, { fromDefaults: false, role: options.role });
}

/** Markers of a linked clone, on top of ceso's usual ones. */
export function linkedMarkers(parentDisk: string): Record<string, string> {
  return { [MARKERS.linked]: 'true', [MARKERS.parentDisk]: parentDisk };
}

/** A source VM as the settings need it. */
interface SettingsSource {
  name: string;
  cpu: number;
  memoryMB: number;
  disks: ReadonlyArray<{ capacityKB: number }>;
}

/** A VM's .vmx settings (extraConfig), as either path reads them. */
interface VmSettings {
  get(key: string): string | undefined;
}

export function createSettings(request: CreateRequest, template: Pick<SettingsSource, 'name' | 'disks'>, diskFromDefaults: boolean): ProvisionSettings {
  return {
    operation: 'create',
    name: request.name,
    cpu: request.cpu ?? DEFAULT_CPU,
    memoryMB: request.memoryMB ?? DEFAULT_MEMORY_MB,
    diskKB: (request.linked ? linkedDiskKB : diskSizeKB)(request.diskGB, template.disks[0]?.capacityKB ?? 0, { fromDefaults: diskFromDefaults, role: 'template' }),
    guest: request.guest,
    userData: { build: true },
    markers: { ...markersFor({ template: template.name, expiresAt: request.expiresAt }), ...request.markers },
    powerOn: request.powerOn,
    linked: request.linked,
    addDisksKB: request.addDisksKB,
  };
}

/** A clone keeps the source's sizes and user data (re-targeted to the new hostname) unless asked otherwise. */
export function cloneSettings(request: CloneRequest, source: SettingsSource, sourceSettings: VmSettings): ProvisionSettings {
  const sourceUserData = request.replaceUserData ? undefined : decodeSourceUserData(sourceSettings);
  const { hostname, domain } = request.guest;
  const userData: ProvisionSettings['userData'] =
    sourceUserData === undefined ? { build: true } : { raw: retargetUserData(sourceUserData, { instanceId: 'clone', hostname, ...(domain === undefined ? {} : { domain }) }) };
  return {
    operation: 'clone',
    name: request.name,
    cpu: request.cpu ?? source.cpu,
    memoryMB: request.memoryMB ?? source.memoryMB,
    diskKB: (request.linked ? linkedDiskKB : diskSizeKB)(request.diskGB, source.disks[0]?.capacityKB ?? 0, { fromDefaults: false, role: 'source' }),
    guest: request.guest,
    userData,
    markers: markersFor({ template: sourceSettings.get(MARKERS.template) ?? source.name, clonedFrom: source.name, expiresAt: request.expiresAt }),
    powerOn: request.powerOn,
    linked: request.linked,
    addDisksKB: request.addDisksKB,
  };
}

/** The source's user data, or undefined when it has none ceso can read. */
function decodeSourceUserData(settings: VmSettings): string | undefined {
  const value = settings.get('guestinfo.userdata');
  if (value === undefined || value === '') return undefined;
  try {
    return decodeGuestinfoValue(value, settings.get('guestinfo.userdata.encoding') ?? '');
  } catch {
    return undefined;
  }
}

/** The guestinfo keys (metadata with network config, user data) of the new VM. */
export function guestinfoFor(settings: ProvisionSettings, identity: { instanceId: string; mac: string }): Record<string, string> {
  const { guest } = settings;
  return buildGuestinfo({
    identity: { instanceId: identity.instanceId, hostname: guest.hostname, ...(guest.domain === undefined ? {} : { domain: guest.domain }) },
    network: {
      mac: identity.mac,
      ...(guest.ipCidr === undefined ? {} : { ipCidr: guest.ipCidr }),
      ...(guest.gateway === undefined ? {} : { gateway: guest.gateway }),
      dns: guest.dns,
    },
    userData:
      'raw' in settings.userData
        ? { raw: settings.userData.raw }
        : { sshKeys: guest.sshKeys, ...(guest.userData === undefined ? {} : { extraUserData: guest.userData }) },
  });
}
