/**
 * A warm pool as the configuration declares it (`pools:`), checked once: what pool fill builds,
 * how long a lease lasts, when a VM is rebuilt instead of reset. The VM names are `<pool>-<nnn>`.
 */
import type { ConfigFile, DefaultsConfig, PoolConfig } from '../../config/schema.js';
import { CesoError, invalidInput } from '../errors.js';
import { createRequestFrom, type CreateRequest } from '../requests.js';
import { MARKERS } from '../vm.js';

/** The snapshot (with memory) every reset returns a pool VM to. */
export const GOLDEN_SNAPSHOT = 'ceso-golden';

export const POOL_STATES = ['building', 'ready', 'leased', 'resetting', 'failed'] as const;
export type PoolVmState = (typeof POOL_STATES)[number];

export interface PoolSpec {
  name: string;
  template: string;
  /** Ready VMs to keep on top of the leased ones. */
  size: number;
  /** VMs of the pool in all, whatever their state. */
  max: number;
  linked: boolean;
  /** The default lease, as written and in milliseconds. */
  lease: string;
  leaseMs: number;
  maxResets: number;
  /** The named host the pool lives on, when the config says. */
  host?: string;
  parallel: number;
  readyTimeoutMs: number;
  config: PoolConfig;
}

export function poolSpec(file: ConfigFile, name: string, defaults: Partial<DefaultsConfig>): PoolSpec {
  const config = file.pools?.[name];
  if (config === undefined) {
    const known = Object.keys(file.pools ?? {});
    throw new CesoError('POOL_NOT_FOUND', `no pool "${name}" in the configuration`, {
      hint: known.length > 0 ? `Use one of: ${known.join(', ')}` : 'Declare it under pools: in the config file (see the README, "Warm pools")',
    });
  }
  const template = config.template ?? defaults.template;
  if (template === undefined) {
    throw new CesoError('CONFIG_INVALID', `pool "${name}" names no template and there is no defaults.template`, { hint: `Set pools.${name}.template in the config file` });
  }
  const max = config.max ?? Math.max(config.size * 2, 1);
  if (max < config.size) {
    throw new CesoError('CONFIG_INVALID', `pool "${name}": max (${max}) is smaller than size (${config.size})`, { hint: `Set pools.${name}.max to ${config.size} or more` });
  }
  return {
    name,
    template,
    size: config.size,
    max,
    linked: config.linked,
    lease: config.lease,
    leaseMs: parseLease(config.lease, `pools.${name}.lease`),
    maxResets: config.maxResets,
    ...(config.host === undefined ? {} : { host: config.host }),
    parallel: config.parallel,
    readyTimeoutMs: config.readyTimeoutSeconds * 1000,
    config,
  };
}

const LEASE = /^(\d+)(s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `90s`, `30m`, `2h`, `7d`, `1w` in milliseconds: a lease always ends. */
export function parseLease(value: string, flag = '--lease'): number {
  const match = LEASE.exec(value.trim());
  if (!match || Number(match[1]) === 0) throw invalidInput(`${flag} ${value}: expected a duration such as 90s, 30m, 2h or 7d`, 'Every lease ends: give how long it lasts');
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number);
}

/** `bench-001`, `bench-002`, …: the lowest numbers no VM on the host uses. */
export function freeMemberNames(pool: string, taken: ReadonlySet<string>, count: number): string[] {
  const names: string[] = [];
  for (let n = 1; names.length < count && n < 100_000; n += 1) {
    const name = `${pool}-${String(n).padStart(3, '0')}`;
    if (!taken.has(name)) names.push(name);
  }
  return names;
}

/** What pool fill asks of `vm create` for one member: the pool's sizes, DHCP, its markers. */
export function memberCreateRequest(spec: PoolSpec, name: string, defaults: Partial<DefaultsConfig>): { request: CreateRequest; diskFromDefaults: boolean } {
  const { config } = spec;
  const { request, diskFromDefaults } = createRequestFrom(
    name,
    {
      template: spec.template,
      ...(config.cpu === undefined ? {} : { cpu: config.cpu }),
      ...(config.memory === undefined ? {} : { memory: String(config.memory) }),
      ...(config.disk === undefined ? {} : { disk: String(config.disk) }),
      ...(config.datastore === undefined ? {} : { datastore: config.datastore }),
      ...(config.network === undefined ? {} : { network: config.network }),
      ...(config.sshKeys === undefined ? {} : { 'ssh-key': config.sshKeys }),
      ...(config.ttl === undefined ? {} : { ttl: config.ttl }),
      linked: spec.linked,
    },
    defaults,
  );
  request.markers = { [MARKERS.pool]: spec.name, [MARKERS.poolState]: 'building' };
  return { request, diskFromDefaults };
}
