import { CesoError, invalidInput } from './errors.js';
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
