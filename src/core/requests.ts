import type { ImportRequest } from './import.js';
import { readFileSync } from 'node:fs';
import { normalizeDomain, normalizeHostname, parseCidr, parseIp, validateGateway, validateSshPublicKey } from '../cloudinit/validate.js';
import { invalidInput } from './errors.js';
import type { DefaultsConfig } from '../config/schema.js';
import type { VmSelector } from './vm.js';

/** Validated guest configuration: what cloud-init gets. */
export interface GuestRequest {
  hostname: string;
  domain?: string;
  ipCidr?: string;
  gateway?: string;
  dns: string[];
  sshKeys: string[];
  userData?: string;
}

export interface ResourceRequest {
  cpu?: number;
  memoryMB?: number;
  diskGB?: number;
  datastore?: string;
  network?: string;
}

export interface LinkedRequest {
  /** A linked clone: the new VM's disk is a child of the source's base snapshot disk. */
  linked: boolean;
  /** Thin disks to add (GB as KB), next free unit of the first disk's controller. */
  addDisksKB: number[];
}

export interface CreateRequest extends ResourceRequest, LinkedRequest {
  name: string;
  template: string;
  guest: GuestRequest;
  powerOn: boolean;
  expiresAt?: string;
  /** More ceso.* markers for the new VM (a warm pool's ceso.pool and ceso.poolState); never from flags. */
  markers?: Record<string, string>;
}

export interface CloneRequest extends ResourceRequest, LinkedRequest {
  name: string;
  source: VmSelector;
  guest: GuestRequest;
  /** True when --ssh-key or --user-data replace the source's user data. */
  replaceUserData: boolean;
  powerOn: boolean;
  expiresAt?: string;
}

export interface DeleteRequest {
  vm: VmSelector;
  force: boolean;
}

export type PowerAction = 'on' | 'off' | 'shutdown' | 'reset' | 'suspend';
export const POWER_ACTIONS: readonly PowerAction[] = ['on', 'off', 'shutdown', 'reset', 'suspend'];

export interface PowerRequest {
  vm: VmSelector;
  action: PowerAction;
  timeoutMs: number;
}

const VM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function validateVmName(name: string, what = 'the VM name'): string {
  if (name.length < 1 || name.length > 80 || !VM_NAME.test(name)) {
    throw invalidInput(
      `${what} "${name.length > 90 ? `${name.slice(0, 90)}…` : name}" is invalid: use 1 to 80 characters of letters, digits, ".", "_" or "-", starting with a letter or digit`,
      'Choose a name such as web-01',
    );
  }
  return name;
}

/** The guest hostname is the VM name lowercased; it must be a DNS label (no "." or "_"). */
export function hostnameFor(name: string): string {
  const candidate = name.toLowerCase();
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(candidate)) {
    throw invalidInput(
      `the VM name "${name}" does not make a valid hostname: a hostname is 1 to 63 letters, digits or "-", not starting or ending with "-" (no "." or "_")`,
      'Choose a name such as web-01, and put the domain in --domain',
    );
  }
  return normalizeHostname(candidate);
}

export interface GuestFlags {
  ip?: string | undefined;
  gateway?: string | undefined;
  dns?: string[] | undefined;
  domain?: string | undefined;
  'ssh-key'?: string[] | undefined;
  'user-data'?: string | undefined;
}

export interface ResourceFlags {
  cpu?: number | undefined;
  memory?: number | undefined;
  disk?: number | undefined;
  datastore?: string | undefined;
  network?: string | undefined;
}

export function guestRequestFrom(name: string, flags: GuestFlags): GuestRequest {
  const hostname = hostnameFor(name);
  const guest: GuestRequest = { hostname, dns: [], sshKeys: [] };
  if (flags.domain !== undefined) guest.domain = normalizeDomain(flags.domain);
  if (flags.ip !== undefined) {
    const cidr = parseCidr(flags.ip, '--ip');
    guest.ipCidr = cidr.cidr;
    if (flags.gateway !== undefined) guest.gateway = validateGateway(flags.gateway, cidr);
  } else if (flags.gateway !== undefined) {
    throw invalidInput('--gateway needs --ip: without a static address the guest takes its gateway from DHCP', 'Add --ip 192.168.1.100/24, or drop --gateway');
  }
  guest.dns = (flags.dns ?? []).map((server) => parseIp(server, '--dns').address);
  guest.sshKeys = (flags['ssh-key'] ?? []).flatMap(readSshKeys);
  if (flags['user-data'] !== undefined) guest.userData = readTextFile(flags['user-data'], '--user-data');
  return guest;
}

function readSshKeys(value: string): string[] {
  if (!value.startsWith('@')) return [validateSshPublicKey(value)];
  const lines = readTextFile(value.slice(1), '--ssh-key')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (lines.length === 0) throw invalidInput(`--ssh-key ${value}: the file holds no public key`, 'Point --ssh-key at a .pub file');
  return lines.map(validateSshPublicKey);
}

function readTextFile(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw invalidInput(`${flag} ${path}: cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`, 'Check the path');
  }
}

export function resourcesFrom(flags: ResourceFlags, defaults: { [K in keyof DefaultsConfig]?: DefaultsConfig[K] | undefined }): ResourceRequest {
  const resources: ResourceRequest = {};
  const cpu = flags.cpu ?? defaults.cpu;
  if (cpu !== undefined) {
    if (!Number.isInteger(cpu) || cpu < 1 || cpu > 768) throw invalidInput(`--cpu ${cpu}: expected a whole number from 1 to 768`);
    resources.cpu = cpu;
  }
  const memory = flags.memory ?? defaults.memory;
  if (memory !== undefined) {
    if (!(memory > 0) || memory > 24576) throw invalidInput(`--memory ${memory}: expected a size in GB greater than 0`);
    resources.memoryMB = Math.round(memory * 1024);
    if (resources.memoryMB % 4 !== 0) throw invalidInput(`--memory ${memory}: ESXi needs a multiple of 4 MB`, 'Use whole or half GB such as 4 or 0.5');
  }
  const disk = flags.disk ?? defaults.disk;
  if (disk !== undefined) {
    if (!(disk > 0) || disk > 62000) throw invalidInput(`--disk ${disk}: expected a size in GB greater than 0`);
    resources.diskGB = disk;
  }
  const datastore = flags.datastore ?? defaults.datastore;
  if (datastore !== undefined) resources.datastore = datastore;
  const network = flags.network ?? defaults.network;
  if (network !== undefined) resources.network = network;
  return resources;
}

const DURATION = /^(\d+)(m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30m`, `2h`, `7d`, `1w` in milliseconds. */
export function parseDuration(value: string, flag = '--ttl'): number {
  const match = DURATION.exec(value.trim());
  if (!match || Number(match[1]) === 0) throw invalidInput(`${flag} ${value}: expected a duration such as 30m, 2h, 7d or 1w`);
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number);
}

export interface ProvisionFlags extends GuestFlags {
  cpu?: number | undefined;
  memory?: string | undefined;
  disk?: string | undefined;
  datastore?: string | undefined;
  network?: string | undefined;
  template?: string | undefined;
  'no-power-on'?: boolean | undefined;
  ttl?: string | undefined;
  linked?: boolean | undefined;
  'add-disk'?: string[] | undefined;
}

function linkedFrom(flags: ProvisionFlags): LinkedRequest {
  const addDisksKB = (flags['add-disk'] ?? []).map((value) => {
    const number = Number(value);
    if (value.trim() === '' || !Number.isFinite(number) || !(number > 0) || number > 62000) {
      throw invalidInput(`--add-disk ${value}: expected a size in GB greater than 0 and at most 62000`, 'Give the size in GB, e.g. --add-disk 20');
    }
    return Math.ceil(number * 1024) * 1024;
  });
  return { linked: flags.linked === true, addDisksKB };
}

function sizeFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number)) throw invalidInput(`${flag} ${value}: expected a number of GB, e.g. 4 or 0.5`);
  return number;
}

function resourceFlagsOf(flags: ProvisionFlags): ResourceFlags {
  return {
    cpu: flags.cpu,
    memory: sizeFlag(flags.memory, '--memory'),
    disk: sizeFlag(flags.disk, '--disk'),
    datastore: flags.datastore,
    network: flags.network,
  };
}

function expiryFrom(ttl: string | undefined, now: Date): string | undefined {
  return ttl === undefined ? undefined : new Date(now.getTime() + parseDuration(ttl)).toISOString();
}

/** Validates every flag of `vm create` before any call to the host. */
export function createRequestFrom(
  name: string,
  flags: ProvisionFlags,
  defaults: Partial<DefaultsConfig>,
  now = new Date(),
): { request: CreateRequest; diskFromDefaults: boolean } {
  validateVmName(name);
  const template = flags.template ?? defaults.template;
  if (template === undefined) {
    throw invalidInput('no template: pass --template or set defaults.template in the config', 'See the README on preparing an Ubuntu template');
  }
  const resourceFlags = resourceFlagsOf(flags);
  const expiresAt = expiryFrom(flags.ttl, now);
  return {
    request: {
      name,
      template,
      ...resourcesFrom(resourceFlags, defaults),
      guest: guestRequestFrom(name, flags),
      powerOn: flags['no-power-on'] !== true,
      ...linkedFrom(flags),
      ...(expiresAt === undefined ? {} : { expiresAt }),
    },
    diskFromDefaults: resourceFlags.disk === undefined,
  };
}

/** Validates every flag of `vm clone`; unset sizes follow the source VM, not the config defaults. */
export function cloneRequestFrom(
  source: VmSelector,
  name: string,
  flags: ProvisionFlags,
  defaults: Partial<DefaultsConfig>,
  now = new Date(),
): CloneRequest {
  validateVmName(name);
  const expiresAt = expiryFrom(flags.ttl, now);
  return {
    name,
    source,
    ...resourcesFrom(resourceFlagsOf(flags), { datastore: defaults.datastore, network: defaults.network }),
    guest: guestRequestFrom(name, flags),
    replaceUserData: (flags['ssh-key']?.length ?? 0) > 0 || flags['user-data'] !== undefined,
    powerOn: flags['no-power-on'] !== true,
    ...linkedFrom(flags),
    ...(expiresAt === undefined ? {} : { expiresAt }),
  };
}

/** Validates `template import` before anything is read or asked of the host. */
export function importRequestFrom(source: string, flags: { name: string; datastore?: string | undefined; network?: string | undefined }, defaults: Partial<DefaultsConfig>): ImportRequest {
  validateVmName(flags.name, 'the template name (--name)');
  if (source.trim() === '') throw invalidInput('the source is empty', 'Give an .ova or .ovf file, or an http(s):// URL of an .ova');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source) && !/^https?:\/\//i.test(source)) {
    throw invalidInput(`unsupported source ${source.replace(/\/\/[^/@]*@/, '//')}: only http(s):// URLs and local files`, 'Download the package first, or serve it over HTTP(S)');
  }
  const datastore = flags.datastore ?? defaults.datastore;
  const network = flags.network ?? defaults.network;
  return { source, name: flags.name, ...(datastore === undefined ? {} : { datastore }), ...(network === undefined ? {} : { network }) };
}
