// zod/mini rather than zod: the same validation, but tree-shaken to what is used. Classic zod
// brought some 700 kB into every command's start-up (see scripts/build.mjs).
import * as z from 'zod/mini';

const text = () => z.string().check(z.minLength(1));
const port = () => z.number().check(z.int(), z.gte(1), z.lte(65535));
const seconds = (max: number) => z.number().check(z.gt(0), z.lte(max));

/** `AA:BB:…` as ESXi's console shows it: 20 bytes (SHA-1) or 32 bytes (SHA-256) of hex pairs. */
export const thumbprintPattern = /^([0-9A-Fa-f]{2}:){19}[0-9A-Fa-f]{2}$|^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/;

export const esxiSchema = z.strictObject({
  host: text(),
  user: z._default(text(), 'root'),
  password: z.optional(z.string()),
  insecure: z._default(z.boolean(), false),
  thumbprint: z.optional(z.string().check(z.regex(thumbprintPattern, 'expected a SHA-1 or SHA-256 thumbprint as hex pairs joined by ":"'))),
  timeoutSeconds: z._default(seconds(3600), 30),
  connectTimeoutSeconds: z._default(seconds(300), 5),
});

export const sshSchema = z.strictObject({
  host: z.optional(text()),
  port: z._default(port(), 22),
  user: z._default(text(), 'root'),
  keyPath: z.optional(text()),
  password: z.optional(z.string()),
  knownHosts: z.optional(text()),
  hostKey: z.optional(z.string().check(z.regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'expected an OpenSSH fingerprint like SHA256:abc… (ssh-keygen -lf)'))),
  volumesRoot: z._default(z.string().check(z.startsWith('/', 'expected an absolute path')), '/vmfs/volumes'),
  connectTimeoutSeconds: z._default(seconds(300), 10),
});

const defaultsShape = {
  template: z.optional(text()),
  datastore: z.optional(text()),
  network: z.optional(text()),
  cpu: z.number().check(z.int(), z.gte(1), z.lte(768)),
  memory: z.number().check(z.gt(0), z.lte(24576)),
  disk: z.number().check(z.gt(0), z.lte(62000)),
};

export const defaultsSchema = z.strictObject({
  ...defaultsShape,
  cpu: z._default(defaultsShape.cpu, 2),
  memory: z._default(defaultsShape.memory, 4),
  disk: z._default(defaultsShape.disk, 40),
});

const partialDefaultsSchema = z.strictObject({
  ...defaultsShape,
  cpu: z.optional(defaultsShape.cpu),
  memory: z.optional(defaultsShape.memory),
  disk: z.optional(defaultsShape.disk),
});

export const securitySchema = z.strictObject({
  mode: z._default(z.enum(['standard', 'restricted']), 'standard'),
  allowedTemplates: z.optional(z.array(text())),
  namePrefix: z.optional(text()),
  allowUserData: z._default(z.boolean(), false),
  /** vm restore --in-place (it replaces a VM's disks) in restricted mode. */
  allowRestoreInPlace: z._default(z.boolean(), false),
  /** The warm pools an agent may acquire from, release to and read (pool acquire|release|status). */
  pools: z.optional(z.array(text())),
  /** The warm pools an agent may also fill, reap and destroy. */
  poolAdmin: z.optional(z.array(text())),
  requireTTL: z._default(z.boolean(), false),
  maxTTL: z.optional(text()),
  limits: z.optional(
    z.strictObject({
      cpu: z.optional(z.number().check(z.int(), z.gt(0))),
      memoryGB: z.optional(z.number().check(z.gt(0))),
      diskGB: z.optional(z.number().check(z.gt(0))),
      vms: z.optional(z.number().check(z.int(), z.gte(0))),
    }),
  ),
});

/** Where `vm backup` writes and `backup list` / `vm restore` look, and how many backups a VM keeps. */
export const backupSchema = z.strictObject({
  to: z.optional(text()),
  keep: z._default(z.number().check(z.int(), z.gte(1), z.lte(1000)), 3),
});

const poolNamePattern = /^[a-z0-9][a-z0-9-]{0,39}$/;

/** A warm pool (core/pool): `size` ready VMs on top of the leased ones, at most `max` VMs in all. */
export const poolSchema = z.strictObject({
  template: z.optional(text()),
  size: z.number().check(z.int(), z.gte(0), z.lte(500)),
  max: z.optional(z.number().check(z.int(), z.gte(1), z.lte(500))),
  cpu: z.optional(defaultsShape.cpu),
  memory: z.optional(defaultsShape.memory),
  disk: z.optional(defaultsShape.disk),
  network: z.optional(text()),
  datastore: z.optional(text()),
  linked: z._default(z.boolean(), true),
  /** The VMs' own TTL (ceso.expiresAt: vm reap deletes them then), e.g. "7d". */
  ttl: z.optional(text()),
  /** A lease's length when pool acquire gives no --lease. */
  lease: z._default(text(), '2h'),
  /** Resets to the golden snapshot before a VM is rebuilt from the template. */
  maxResets: z._default(z.number().check(z.int(), z.gte(0), z.lte(100000)), 25),
  /** The named host (hosts:) the pool lives on; --host overrides it. */
  host: z.optional(text()),
  /** VMs built at once by pool fill. */
  parallel: z._default(z.number().check(z.int(), z.gte(1), z.lte(32)), 4),
  /** How long a build or reset waits for the guest (seconds). */
  readyTimeoutSeconds: z._default(seconds(7200), 600),
  /** SSH public keys (the text, or @file) for the ubuntu user of every pool VM. */
  sshKeys: z.optional(z.array(text())),
});

/** Commands over several hosts (--host a,b, --all-hosts; core/fleet.ts): how many hosts are read at once. */
export const fleetSchema = z.strictObject({
  parallel: z._default(z.number().check(z.int(), z.gte(1), z.lte(64)), 8),
});

/**
 * Where locks, the audit trail and idempotency keys live (src/state): files in CESO_HOME (local,
 * one machine) or a PostgreSQL database every machine shares. url may be \${CESO_STATE_URL};
 * the environment variable CESO_STATE_URL also sets it.
 */
export const stateSchema = z.strictObject({
  backend: z._default(z.enum(['local', 'postgres']), 'local'),
  url: z.optional(z.string()),
  connectTimeoutSeconds: z._default(seconds(300), 5),
  /** A postgres lock lapses this long after its holder's last heartbeat (every third of it). */
  lockTtlSeconds: z._default(z.number().check(z.gte(1), z.lte(3600)), 60),
});

export const hostEntrySchema = z.strictObject({
  esxi: esxiSchema,
  ssh: z.optional(sshSchema),
  defaults: z.optional(partialDefaultsSchema),
});

export const configFileSchema = z.strictObject({
  esxi: z.optional(esxiSchema),
  ssh: z.optional(sshSchema),
  hosts: z.optional(z.record(z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected a host name of letters, digits, ".", "_" or "-"')), hostEntrySchema)),
  defaultHost: z.optional(text()),
  defaults: z.optional(defaultsSchema),
  security: z.optional(securitySchema),
  backup: z.optional(backupSchema),
  pools: z.optional(z.record(z.string().check(z.regex(poolNamePattern, 'expected a pool name of 1 to 40 lowercase letters, digits or "-", starting with a letter or digit')), poolSchema)),
  fleet: z.optional(fleetSchema),
  state: z.optional(stateSchema),
});

export type EsxiConfig = z.infer<typeof esxiSchema>;
export type SshConfig = z.infer<typeof sshSchema>;
export type DefaultsConfig = z.infer<typeof defaultsSchema>;
export type SecurityConfig = z.infer<typeof securitySchema>;
export type BackupConfig = z.infer<typeof backupSchema>;
export type PoolConfig = z.infer<typeof poolSchema>;
export type FleetConfig = z.infer<typeof fleetSchema>;
export type StateConfig = z.infer<typeof stateSchema>;
export type ConfigFile = z.infer<typeof configFileSchema>;
