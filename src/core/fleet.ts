/**
 * Commands over several hosts at once (`--host a,b,…`, `--all-hosts`): which hosts, run one
 * operation per host with bounded parallelism (`fleet.parallel`), and each host's outcome. Every
 * host has its own target (session, client, timeouts, lock namespace: the caller opens a backend
 * per target), and one host's failure is that host's entry, never the others'.
 */
import type { LoadedConfig } from '../config/load.js';
import { resolveSecurity, resolveTarget, type HostTarget } from '../config/resolve.js';
import { CesoError, EXIT, invalidInput, type ExitCode } from './errors.js';

/** The name of the top-level `esxi:` section (as `config validate` lists it). */
export const DEFAULT_HOST = 'default';
export const DEFAULT_PARALLEL = 8;

/** Several hosts were asked for: by name, or every host of the configuration. */
export type HostSelection = { kind: 'named'; names: string[] } | { kind: 'all' };

/**
 * The fan-out the flags ask for, or undefined for one host as before: `--host a` alone keeps the
 * single-host behaviour and result shape; a comma list (even of one name twice) or `--all-hosts`
 * is a fan-out, whose result shape does not depend on how many hosts there are.
 */
export function selectHosts(flags: { host?: string | undefined; allHosts?: boolean | undefined }): HostSelection | undefined {
  if (flags.allHosts === true) {
    if (flags.host !== undefined) throw invalidInput('--host and --all-hosts exclude each other', 'Give --host a,b for some hosts or --all-hosts for every host of the configuration');
    return { kind: 'all' };
  }
  if (flags.host === undefined || !flags.host.includes(',')) return undefined;
  const names = flags.host.split(',').map((name) => name.trim());
  if (names.some((name) => name === '')) throw invalidInput(`--host "${flags.host}" has an empty host name`, 'Separate the host names by commas: --host lab1,lab2');
  return { kind: 'named', names: [...new Set(names)] };
}

/** A host of the fan-out: its target, or why it could not be resolved (e.g. its password variable is unset). */
export type FleetMember = { name: string; target: HostTarget } | { name: string; error: CesoError };

export interface Fleet {
  members: FleetMember[];
  /** How many hosts are worked on at once. */
  parallel: number;
  /** The security mode (the file's and CESO_MODE: the same for every host). */
  mode: 'standard' | 'restricted';
}

/**
 * The hosts of a selection, in the order named (for --all-hosts: "default" when the file has a
 * top-level esxi section, then `hosts:` in file order). A name the file does not define fails the
 * whole command (HOST_NOT_CONFIGURED, before any host is contacted); a defined host that cannot be
 * resolved is that host's failure only.
 */
export function resolveFleet(loaded: LoadedConfig, selection: HostSelection, options: { requirePassword?: boolean } = {}, env: NodeJS.ProcessEnv = process.env): Fleet {
  const { file } = loaded;
  const named = Object.keys(file.hosts ?? {});
  const topLevel = !named.includes(DEFAULT_HOST) && (file.esxi !== undefined || named.length === 0);
  const names = selection.kind === 'all' ? [...(topLevel ? [DEFAULT_HOST] : []), ...named] : selection.names;
  const unknown = names.find((name) => !named.includes(name) && !(name === DEFAULT_HOST && topLevel));
  // resolveTarget's own error names the file and the hosts it knows.
  if (unknown !== undefined) resolveTarget(loaded, { host: unknown }, env);

  const requirePassword = options.requirePassword ?? true;
  const members = names.map((name): FleetMember => {
    try {
      const target = named.includes(name) ? resolveTarget(loaded, { host: name, requirePassword }, env) : resolveTarget(withoutDefaultHost(loaded), { requirePassword }, env);
      return { name, target };
    } catch (error) {
      if (error instanceof CesoError) return { name, error };
      throw error;
    }
  });
  return { members, parallel: file.fleet?.parallel ?? DEFAULT_PARALLEL, mode: resolveSecurity(file.security, env).mode };
}

/** The one host a command acts on without a fan-out, as a fleet of one. */
export function singleFleet(target: HostTarget): Fleet {
  return { members: [{ name: target.name, target }], parallel: 1, mode: target.security.mode };
}

/** The top-level section, even when defaultHost names another. */
function withoutDefaultHost(loaded: LoadedConfig): LoadedConfig {
  const { defaultHost: _defaultHost, ...file } = loaded.file;
  return { ...loaded, file };
}

export type HostOutcome<R> = { host: string; ok: true; value: R } | { host: string; ok: false; error: CesoError };

/**
 * Runs `operation` on every host, at most `fleet.parallel` at a time, and returns the outcomes in
 * the fleet's order. A failure (thrown) is that host's outcome; the others go on.
 */
export async function runOnHosts<R>(fleet: Fleet, operation: (target: HostTarget) => Promise<R>, toError: (error: unknown) => CesoError = asCesoError): Promise<Array<HostOutcome<R>>> {
  const outcomes: Array<HostOutcome<R>> = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < fleet.members.length) {
      const index = next;
      next += 1;
      const member = fleet.members[index] as FleetMember;
      if ('error' in member) {
        outcomes[index] = { host: member.name, ok: false, error: member.error };
        continue;
      }
      try {
        outcomes[index] = { host: member.name, ok: true, value: await operation(member.target) };
      } catch (error) {
        outcomes[index] = { host: member.name, ok: false, error: toError(error) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(fleet.parallel, fleet.members.length)) }, worker));
  return outcomes;
}

function asCesoError(error: unknown): CesoError {
  return error instanceof CesoError ? error : new CesoError('INTERNAL', error instanceof Error ? error.message : String(error));
}

/**
 * 0 when every host answered, else the exit code of the first failure in the fleet's order;
 * `failureOf` turns an answer into a failure too (vm reap: a VM it could not delete is exit 8).
 */
export function fleetExitCode<R>(outcomes: ReadonlyArray<HostOutcome<R>>, failureOf: (value: R) => ExitCode = () => EXIT.OK): ExitCode {
  for (const outcome of outcomes) {
    const code = outcome.ok ? failureOf(outcome.value) : outcome.error.exitCode;
    if (code !== EXIT.OK) return code;
  }
  return EXIT.OK;
}

export type HostErrorJson = ReturnType<CesoError['toJSON']>;
export type HostEntry<T> = ({ host: string; ok: true } & T) | { host: string; ok: false; error: HostErrorJson };
/** The --json result of a fan-out: `{"hosts": [{"host", "ok": true, …}, {"host", "ok": false, "error"}]}`. */
export interface FleetResult<T> {
  hosts: Array<HostEntry<T>>;
}

export function fleetResult<R, T>(outcomes: ReadonlyArray<HostOutcome<R>>, fields: (value: R) => T): FleetResult<T> {
  return {
    hosts: outcomes.map((outcome): HostEntry<T> => (outcome.ok ? { host: outcome.host, ok: true, ...fields(outcome.value) } : { host: outcome.host, ok: false, error: outcome.error.toJSON() })),
  };
}
