import { homedir } from 'node:os';
import { join } from 'node:path';
import { CesoError } from '../core/errors.js';
import { cesoHome } from './home.js';
import type { LoadedConfig } from './load.js';
import {
  backupSchema,
  defaultsSchema,
  securitySchema,
  sshSchema,
  stateSchema,
  thumbprintPattern,
  type BackupConfig,
  type DefaultsConfig,
  type EsxiConfig,
  type SecurityConfig,
  type SshConfig,
} from './schema.js';

export interface ApiEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  insecure: boolean;
  thumbprint?: string;
  timeoutMs: number;
  connectTimeoutMs: number;
}

export interface SshEndpoint extends Omit<SshConfig, 'host' | 'connectTimeoutSeconds'> {
  host: string;
  connectTimeoutMs: number;
}

/** Everything a command needs to reach one host, after flags, environment and file are merged. */
export interface HostTarget {
  /** The entry's name in `hosts:`, or "default" for the top-level `esxi:` section or environment-only use. */
  name: string;
  configPath: string;
  api: ApiEndpoint;
  ssh: SshEndpoint;
  defaults: DefaultsConfig;
  security: SecurityConfig;
  /** `backup:` of the file (vm backup, backup list, vm restore). */
  backup: BackupConfig;
}

export interface TargetFlags {
  host?: string | undefined;
  /** false for commands that never log in (host trust): a missing password is then no error. */
  requirePassword?: boolean;
}

/** Splits `host`, `host:port`, `[v6]:port` and bare IPv6 addresses. */
export function splitHostPort(value: string, defaultPort: number): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (bracketed) return { host: bracketed[1] as string, port: bracketed[2] ? Number(bracketed[2]) : defaultPort };
  const parts = value.split(':');
  if (parts.length === 2 && /^\d+$/.test(parts[1] as string)) {
    const port = Number(parts[1]);
    if (port < 1 || port > 65535) throw invalidHost(value);
    return { host: parts[0] as string, port };
  }
  if (parts.length > 2) return { host: value, port: defaultPort };
  return { host: value, port: defaultPort };
}

function invalidHost(value: string): CesoError {
  return new CesoError('CONFIG_INVALID', `"${value}" is not a valid host or host:port`, {
    hint: 'Write the API host as 192.168.1.10 or esxi1.example.com:443',
  });
}

function parseBoolean(name: string, value: string): boolean {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new CesoError('CONFIG_INVALID', `${name}="${value}" is not a boolean`, { hint: `Set ${name} to true or false` });
}

export function resolveTarget(loaded: LoadedConfig, flags: TargetFlags, env: NodeJS.ProcessEnv = process.env): HostTarget {
  const { file } = loaded;
  const hostNames = Object.keys(file.hosts ?? {});
  const selected = flags.host ?? file.defaultHost;
  let name = 'default';
  let esxi: Partial<EsxiConfig> | undefined = file.esxi;
  let ssh: Partial<SshConfig> | undefined = file.ssh;
  let hostDefaults: Record<string, unknown> | undefined;

  if (selected !== undefined) {
    const entry = file.hosts?.[selected];
    if (entry === undefined) {
      const known = hostNames.length > 0 ? `known hosts: ${hostNames.join(', ')}` : 'the file defines no hosts';
      throw new CesoError('HOST_NOT_CONFIGURED', `host "${selected}" is not defined in ${loaded.path} (${known})`, {
        hint: selected.includes(',')
          ? 'This command takes one host: give one name (the commands with --all-hosts take several, comma-separated)'
          : `Add it under hosts: in ${loaded.path}, or pick one of the names listed`,
      });
    }
    name = selected;
    esxi = entry.esxi;
    ssh = entry.ssh ?? file.ssh;
    hostDefaults = entry.defaults;
  }

  const unset = loaded.unsetVariables.filter(
    (item) =>
      (!item.path.startsWith('hosts.') || item.path.startsWith(`hosts.${name}.`)) &&
      !item.path.startsWith('state.') &&
      !(flags.requirePassword === false && item.path.endsWith('password')),
  );
  if (unset.length > 0) {
    const problems = unset.map((item) => `${loaded.path}: ${item.path}: environment variable ${item.variable} is not set`);
    throw new CesoError('CONFIG_INVALID', problems.join('\n'), {
      hint: `Export ${[...new Set(unset.map((item) => item.variable))].join(', ')} or write the value into the file`,
      details: { file: loaded.path, problems },
    });
  }

  const address = env.CESO_HOST ?? esxi?.host;
  if (address === undefined || address === '') {
    throw new CesoError(
      'CONFIG_NOT_FOUND',
      loaded.exists ? `${loaded.path}: esxi.host: missing, and CESO_HOST is not set` : `no configuration at ${loaded.path} and CESO_HOST is not set`,
      { hint: 'Copy config.example.yaml to ~/.ceso/config.yaml and fill in esxi.host, or set CESO_HOST, CESO_USER and CESO_PASSWORD' },
    );
  }
  const { host, port } = splitHostPort(address, 443);
  const user = env.CESO_USER ?? esxi?.user ?? 'root';
  const password = env.CESO_PASSWORD ?? esxi?.password;
  if ((password === undefined || password === '') && flags.requirePassword !== false) {
    throw new CesoError('CONFIG_INVALID', `no password for ${user}@${host}`, {
      hint: 'Set esxi.password in the config (e.g. password: ${ESXI_PASSWORD}) or export CESO_PASSWORD',
    });
  }
  const thumbprint = env.CESO_THUMBPRINT ?? esxi?.thumbprint;
  if (thumbprint !== undefined && !thumbprintPattern.test(thumbprint)) {
    throw new CesoError('CONFIG_INVALID', `CESO_THUMBPRINT: "${thumbprint}" is not a SHA-1 or SHA-256 thumbprint`, {
      hint: 'Copy the thumbprint ceso printed for the host, e.g. AA:BB:…',
    });
  }
  const insecure = env.CESO_INSECURE !== undefined ? parseBoolean('CESO_INSECURE', env.CESO_INSECURE) : (esxi?.insecure ?? false);

  const sshConfig = sshSchema.parse(ssh ?? {});
  if (sshConfig.keyPath !== undefined) sshConfig.keyPath = expandHome(sshConfig.keyPath);
  if (sshConfig.knownHosts !== undefined) sshConfig.knownHosts = expandHome(sshConfig.knownHosts);
  return {
    name,
    configPath: loaded.path,
    api: {
      host,
      port,
      user,
      password: password ?? '',
      insecure,
      ...(thumbprint === undefined ? {} : { thumbprint: thumbprint.toUpperCase() }),
      timeoutMs: (esxi?.timeoutSeconds ?? 30) * 1000,
      connectTimeoutMs: (esxi?.connectTimeoutSeconds ?? 5) * 1000,
    },
    ssh: {
      ...sshConfig,
      host: sshConfig.host ?? host,
      connectTimeoutMs: sshConfig.connectTimeoutSeconds * 1000,
    },
    defaults: defaultsSchema.parse({ ...file.defaults, ...hostDefaults }),
    security: resolveSecurity(file.security, env),
    backup: backupSchema.parse(file.backup ?? {}),
  };
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

/** Restricted mode can be switched on from the file or the environment, and off by neither (core/fleet.ts reads it for a fan-out too). */
export function resolveSecurity(fromFile: SecurityConfig | undefined, env: NodeJS.ProcessEnv): SecurityConfig {
  const security = securitySchema.parse(fromFile ?? {});
  const requested = env.CESO_MODE;
  if (requested === undefined || requested === '') return security;
  if (requested !== 'restricted' && requested !== 'standard') {
    throw new CesoError('CONFIG_INVALID', `CESO_MODE="${requested}" is not a mode`, {
      hint: 'Set CESO_MODE to restricted (or leave it unset)',
    });
  }
  return requested === 'restricted' ? { ...security, mode: 'restricted' } : security;
}

export interface ResolvedLocalState {
  backend: 'local';
  home: string;
}

export interface ResolvedPostgresState {
  backend: 'postgres';
  /** The connection URL, password included: never print it (redactUrl). */
  url: string;
  connectTimeoutMs: number;
  lockTtlMs: number;
}

export type ResolvedState = ResolvedLocalState | ResolvedPostgresState;

/** The `state:` section: the local backend unless it says postgres; CESO_STATE_URL gives (and overrides) the URL. */
export function resolveState(loaded: LoadedConfig, env: NodeJS.ProcessEnv = process.env): ResolvedState {
  const state = stateSchema.parse(loaded.file.state ?? {});
  if (state.backend === 'local') return { backend: 'local', home: cesoHome(env) };
  const url = env.CESO_STATE_URL !== undefined && env.CESO_STATE_URL !== '' ? env.CESO_STATE_URL : state.url;
  if (url === undefined || url === '') {
    const unset = loaded.unsetVariables.find((item) => item.path === 'state.url');
    throw new CesoError(
      'CONFIG_INVALID',
      unset === undefined
        ? `${loaded.path}: state.backend is postgres but there is no state.url, and CESO_STATE_URL is not set`
        : `${loaded.path}: state.url: environment variable ${unset.variable} is not set`,
      { hint: 'Export CESO_STATE_URL=postgres://USER:PASSWORD@HOST:5432/DATABASE, or write state.url (e.g. url: ${CESO_STATE_URL})' },
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CesoError('CONFIG_INVALID', 'state.url (or CESO_STATE_URL) is not a URL', { hint: 'Write it as postgres://USER:PASSWORD@HOST:5432/DATABASE (percent-encode special characters of the password)' });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new CesoError('CONFIG_INVALID', `state.url (or CESO_STATE_URL) must be a postgres:// URL, not ${redactUrl(url)}`, { hint: 'Write it as postgres://USER:PASSWORD@HOST:5432/DATABASE' });
  }
  return { backend: 'postgres', url, connectTimeoutMs: state.connectTimeoutSeconds * 1000, lockTtlMs: state.lockTtlSeconds * 1000 };
}

/** A database URL safe to print: no password, no query string (it may hold one too). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const user = parsed.username === '' ? '' : `${parsed.username}${parsed.password === '' ? '' : ':***'}@`;
    return `${parsed.protocol}//${user}${parsed.host}${parsed.pathname}`;
  } catch {
    return '(a URL that does not parse)';
  }
}
