import { Command, Flags, type Interfaces } from '@oclif/core';
import { openBackend } from '../backends.js';
import type { HostBackend, Mutation } from '../core/backend.js';
import { perform, type DryRunResult } from '../core/operations.js';
import type { RenderedPlan } from '../core/plan.js';
import { Policy } from '../core/policy.js';
import type { Services } from '../core/services.js';
import { renderPlanText } from './render.js';
import { CesoError, isCesoError } from '../core/errors.js';
import { configureLogger, logger, LOG_LEVELS, type LogLevel } from '../core/log.js';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { resolveState, resolveTarget, type HostTarget } from '../config/resolve.js';
import { resolveFleet, runOnHosts, selectHosts, singleFleet, type HostOutcome } from '../core/fleet.js';
import type { Via } from '../core/vm.js';
import type { StateStore } from '../state/store.js';

/** Flags that say how to run a request, not what it asks for: a retry may change them. */
const IDEMPOTENCY_NEUTRAL_FLAGS = new Set(['idempotency-key', 'lock-timeout', 'wait-timeout', 'json', 'log-level', 'yes', 'via', 'config', 'host', 'dry-run']);

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>;
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/**
 * Every ceso command: global flags, config and host resolution, one backend per invocation,
 * and one place where errors become output and exit codes (from the table in core/errors).
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    config: Flags.string({
      description: 'Configuration file (default ~/.ceso/config.yaml, or $CESO_CONFIG)',
      helpGroup: 'GLOBAL',
    }),
    host: Flags.string({
      description: 'Named host from the configuration (default: defaultHost, else the top-level esxi section); vm list, vm reap and metrics take several, comma-separated',
      helpGroup: 'GLOBAL',
    }),
    via: Flags.option({
      options: ['auto', 'api', 'ssh'] as const,
      default: 'auto' as const,
      env: 'CESO_VIA',
      description: 'Path to the host: the vSphere API, SSH (vim-cmd), or auto (API, SSH only when the API is unreachable)',
      helpGroup: 'GLOBAL',
    })(),
    'log-level': Flags.option({
      options: LOG_LEVELS,
      default: 'warn' as LogLevel,
      description: 'Log verbosity on stderr',
      helpGroup: 'GLOBAL',
    })(),
  };

  /** Commands that can change a host: each run (dry runs too) appends a line to the audit log. */
  static audited = false;
  /** Commands that never log in (host trust) resolve the host without needing its password. */
  static needsPassword = true;

  protected flags!: BaseFlags<T>;
  protected args!: BaseArgs<T>;
  private cachedTarget: HostTarget | undefined;
  private cachedConfig: LoadedConfig | undefined;
  private store: Promise<StateStore> | undefined;
  private failure: CesoError | undefined;
  private lastVia: HostBackend['via'] | undefined;
  /** A fan-out (onEachHost): its mode, and each host as it ended, audited as one record per host. */
  private fleetMode: HostTarget['security']['mode'] | undefined;
  private fleetHosts: FleetHost[] | undefined;

  override async init(): Promise<void> {
    await super.init();
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as BaseFlags<T>;
    this.args = args as BaseArgs<T>;
    configureLogger(this.flags['log-level']);
    // An audited command needs the state store (its lock, its audit record): connecting to a
    // postgres backend now overlaps the connection with the command's own start. A failure waits
    // for the first use to be reported.
    if ((this.ctor as typeof BaseCommand).audited) this.stateStore().catch(() => undefined);
  }

  /** The host this invocation acts on, after flags, environment and file are merged. */
  protected target(): HostTarget {
    this.cachedTarget ??= resolveTarget(this.loadedConfig(), {
      host: this.flags.host ?? this.impliedHost(),
      requirePassword: (this.ctor as typeof BaseCommand).needsPassword,
    });
    return this.cachedTarget;
  }

  /** The host a command implies when --host is not given (a pool's host): none by default. */
  protected impliedHost(): string | undefined {
    return undefined;
  }

  /** The lock namespace of the host in use (per host: two hosts' VMs of one name never share a lock). */
  protected lockHost(target: HostTarget = this.target()): string {
    const { api } = target;
    return `${api.host}:${api.port}`;
  }

  protected loadedConfig(): LoadedConfig {
    this.cachedConfig ??= loadConfig(this.flags.config);
    return this.cachedConfig;
  }

  /** The state store of `state:` (src/state), opened once per invocation and closed at its end. */
  protected stateStore(): Promise<StateStore> {
    this.store ??= (async () => {
      const { openStateStore } = await import('../state/store.js');
      return openStateStore(resolveState(this.loadedConfig()), { version: this.config.version });
    })();
    return this.store;
  }

  /**
   * Runs `run` under --idempotency-key (src/state/idempotency.ts): a repeat of the same request
   * returns the first run's result with replayed: true; no key, or a dry run, just runs. The
   * request is the arguments and flags as given (not what they resolve to: --ttl 2h is the same
   * request a minute later), less those that only say how to run it (IDEMPOTENCY_NEUTRAL_FLAGS).
   */
  protected async idempotent<R extends object>(op: string, run: () => Promise<R>): Promise<R | (R & { replayed: boolean })> {
    const flags = this.flags as { 'idempotency-key'?: string; 'dry-run'?: boolean; 'lock-timeout'?: number };
    const key = flags['idempotency-key'];
    if (key === undefined || flags['dry-run'] === true) return run();
    const { runIdempotent, checkIdempotencyKey } = await import('../state/idempotency.js');
    checkIdempotencyKey(key);
    const { api } = this.target();
    const request = {
      args: this.args,
      flags: Object.fromEntries(Object.entries(this.flags as Record<string, unknown>).filter(([name]) => !IDEMPOTENCY_NEUTRAL_FLAGS.has(name))),
    };
    const outcome = await runIdempotent(
      await this.stateStore(),
      { key, op, scope: `${api.host}:${api.port}`, request, timeoutMs: (flags['lock-timeout'] ?? 0) * 1000, command: `ceso ${op}` },
      run,
    );
    if (outcome.replayed) this.print(`Idempotency key ${key}: replayed the result of the first run (${outcome.firstRunAt}); nothing was changed`);
    return { ...outcome.result, replayed: outcome.replayed };
  }

  /** Runs one operation on the host's backend and always releases the connection. */
  protected async withBackend<R>(operation: (backend: HostBackend) => Promise<R>): Promise<R> {
    const backend = await openBackend(this.target(), this.flags.via);
    try {
      return await operation(backend);
    } finally {
      this.lastVia = backend.via;
      await backend.close();
    }
  }

  /**
   * A fan-out (core/fleet.ts): with --host a,b,… or --all-hosts, runs `operation` on every host,
   * fleet.parallel at a time, each with its own backend (session, client, timeouts) and policy, and
   * returns each host's outcome in the order asked; a host's failure is its own entry. Undefined
   * when one host was asked for (the command then works as before), unless `single` is set: then
   * that one host, as a fan-out of one.
   */
  protected async onEachHost<R>(operation: (services: Services, target: HostTarget) => Promise<R>, options: { single?: boolean } = {}): Promise<Array<HostOutcome<R>> | undefined> {
    const flags = this.flags as { host?: string; 'all-hosts'?: boolean };
    const selection = selectHosts({ host: flags.host, allHosts: flags['all-hosts'] });
    if (selection === undefined && options.single !== true) return undefined;
    const requirePassword = (this.ctor as typeof BaseCommand).needsPassword;
    const fleet = selection === undefined ? singleFleet(this.target()) : resolveFleet(this.loadedConfig(), selection, { requirePassword });
    this.fleetMode = fleet.mode;
    const ran = new Map<string, { via: Via; durationMs: number }>();
    const outcomes = await runOnHosts(
      fleet,
      async (target) => {
        const started = Date.now();
        const backend = await openBackend(target, this.flags.via);
        try {
          return await operation({ backend, policy: new Policy(target.security) }, target);
        } finally {
          ran.set(target.name, { via: backend.via, durationMs: Date.now() - started });
          await backend.close();
        }
      },
      toCesoError,
    );
    if (selection !== undefined) {
      this.fleetHosts = fleet.members.map((member, index) => {
        const outcome = outcomes[index] as HostOutcome<R>;
        return { host: member.name, target: 'target' in member ? member.target : undefined, via: ran.get(member.name)?.via ?? null, durationMs: ran.get(member.name)?.durationMs ?? 0, error: outcome.ok ? undefined : outcome.error };
      });
    }
    return outcomes;
  }

  /** The backend together with the policy of the host's security mode. */
  protected withServices<R>(operation: (services: Services) => Promise<R>): Promise<R> {
    const policy = new Policy(this.target().security);
    return this.withBackend((backend) => operation({ backend, policy }));
  }

  /**
   * Plans a change, then (unless a dry run) runs it: progress on a terminal's stderr, Ctrl-C
   * undoes what was made, and `confirm` may stop it before the first change.
   */
  protected async runMutation<R>(
    mutation: Mutation<R>,
    options: { dryRun: boolean; confirm?: (plan: RenderedPlan) => Promise<void> },
  ): Promise<DryRunResult | (R & { durationMs: number })> {
    const controller = new AbortController();
    const interrupt = (): void => {
      if (!controller.signal.aborted) process.stderr.write('\nInterrupted: undoing what was made (Ctrl-C again to abandon it)...\n');
      else process.exit(130);
      controller.abort();
    };
    process.on('SIGINT', interrupt);
    process.on('SIGTERM', interrupt);
    const showProgress = process.stderr.isTTY === true && !this.jsonEnabled();
    try {
      const result = await perform(mutation, {
        dryRun: options.dryRun,
        signal: controller.signal,
        ...(options.confirm === undefined ? {} : { confirm: options.confirm }),
        onStep: (index, total, description) => {
          logger().info({ step: index, of: total }, description);
          if (showProgress) process.stderr.write(`[${index}/${total}] ${description}\n`);
        },
        onProgress: (_step, percent, detail) => {
          if (showProgress) process.stderr.write(`\r      ${percent}%${detail === undefined ? '' : `  ${detail}`}\x1b[K`);
        },
      });
      if (options.dryRun) this.print(renderPlanText((result as DryRunResult).plan));
      return result;
    } finally {
      process.off('SIGINT', interrupt);
      process.off('SIGTERM', interrupt);
    }
  }

  /** Destructive changes: --yes, or a yes typed on a terminal; never a prompt without one. */
  protected async confirmDestruction(summary: string, yes: boolean): Promise<void> {
    if (yes) return;
    if (process.stdin.isTTY !== true || this.jsonEnabled()) {
      throw new CesoError('CONFIRMATION_REQUIRED', `refusing to ${summary} without confirmation`, {
        hint: 'Pass --yes to confirm (no terminal to ask on), or run --dry-run first to see the plan',
      });
    }
    const { createInterface } = await import('node:readline/promises');
    const prompt = createInterface({ input: process.stdin, output: process.stderr });
    try {
      const answer = await prompt.question(`This will ${summary}. Type "yes" to go on: `);
      if (answer.trim().toLowerCase() !== 'yes') throw new CesoError('CONFIRMATION_REQUIRED', 'not confirmed: nothing was changed');
    } finally {
      prompt.close();
    }
  }

  /**
   * Holds the per-VM locks of this host while `run` acts on the VMs (see core/lock.ts): another
   * ceso process on the same VM waits up to --lock-timeout, then fails with LOCKED. Several names
   * are taken in sorted order, so two processes never wait on each other.
   */
  protected async withVmLock<R>(vm: string | string[], run: () => Promise<R>, options: { minimumWaitSeconds?: number; target?: HostTarget } = {}): Promise<R> {
    const names = [...new Set(Array.isArray(vm) ? vm : [vm])].sort();
    const timeoutSeconds = Math.max((this.flags as { 'lock-timeout'?: number })['lock-timeout'] ?? 0, options.minimumWaitSeconds ?? 0);
    const host = this.lockHost(options.target);
    const locks = [];
    try {
      const store = await this.stateStore();
      for (const name of names) {
        locks.push(await store.acquireLock({ host, vm: name, command: `ceso ${(this.id ?? '').replace(/:/g, ' ')}`.trim(), timeoutMs: timeoutSeconds * 1000 }));
      }
      return await run();
    } finally {
      for (const lock of locks.reverse()) await lock.release();
    }
  }

  /** Human output goes to stdout only when --json is off. */
  protected print(text: string): void {
    if (!this.jsonEnabled()) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  override async catch(error: unknown): Promise<void> {
    const failure = toCesoError(error);
    this.failure = failure;
    process.exitCode = failure.exitCode;
    if (this.jsonEnabled()) {
      process.stdout.write(`${JSON.stringify({ error: failure.toJSON() }, null, 2)}\n`);
      return;
    }
    const lines = [`Error: ${failure.message}`];
    if (failure.hint !== undefined) lines.push(`Hint: ${failure.hint}`);
    process.stderr.write(`${lines.join('\n')}\n`);
  }

  override async _run<R>(): Promise<R> {
    const started = new Date();
    let result: R | undefined;
    try {
      result = await super._run<R>();
      return result;
    } finally {
      if ((this.ctor as typeof BaseCommand).audited && this.flags !== undefined) for (const host of this.fleetHosts ?? [undefined]) await this.audit(started, result, host);
      if (this.store !== undefined) await this.store.then((store) => store.close(), () => undefined);
    }
  }

  /** One record per invocation; a fan-out's, one per host (`host`: its path, time and outcome). */
  private async audit(started: Date, result: unknown, host?: FleetHost): Promise<void> {
    const { appendAudit, currentUser } = await import('../core/audit.js');
    const outcome = (result ?? {}) as { id?: unknown; via?: unknown; name?: unknown; vm?: unknown };
    const args = (this.args ?? {}) as Record<string, unknown>;
    const target = host === undefined ? this.cachedTarget : host.target;
    const failure = host?.error ?? this.failure;
    const record: Parameters<typeof appendAudit>[0] = {
      time: started.toISOString(),
      user: currentUser(),
      host: target === undefined ? (host?.host ?? '') : `${target.name} (${target.api.host}:${target.api.port})`,
      command: this.id?.replace(/:/g, ' ') ?? '',
      arguments: { ...args, ...(this.flags as Record<string, unknown>) },
      mode: target?.security.mode ?? this.fleetMode ?? 'standard',
      via: host !== undefined ? host.via : outcome.via === 'api' || outcome.via === 'ssh' ? outcome.via : (this.lastVia ?? null),
      dryRun: (this.flags as { 'dry-run'?: boolean })['dry-run'] === true,
      outcome: failure === undefined ? 'success' : 'error',
      errorCode: failure?.code ?? null,
      vmId: typeof outcome.id === 'string' ? outcome.id : null,
      // the VM argument, else a --name flag (template import, vm restore), else the VM the result names (a pool lease's vm)
      vm: [args.name, args.vm, (this.flags as Record<string, unknown>).name, outcome.name, outcome.vm].find((value): value is string => typeof value === 'string') ?? null,
      durationMs: host?.durationMs ?? Date.now() - started.getTime(),
    };
    // The shared trail when state is in PostgreSQL; audit.log when the database cannot take it (never lost).
    try {
      await (await this.stateStore()).appendAudit(record);
    } catch (error) {
      if (isCesoError(error) && error.code === 'CONFIG_INVALID') return appendAudit(record);
      process.stderr.write(`Warning: the audit record went to the local audit.log: ${toCesoError(error).message}\n`);
      appendAudit(record);
    }
  }

  /** Every result says the security mode it ran under (each element, for list results). */
  protected override toSuccessJson(result: unknown): unknown {
    const mode = this.cachedTarget?.security.mode ?? this.fleetMode;
    if (mode === undefined) return result;
    const stamp = (value: unknown): unknown => (value !== null && typeof value === 'object' && !Array.isArray(value) ? { ...value, mode } : value);
    return Array.isArray(result) ? result.map(stamp) : stamp(result);
  }

  protected override logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  }
}

/** A host of a fan-out as it ended, for its audit record. */
interface FleetHost {
  host: string;
  target: HostTarget | undefined;
  via: Via | null;
  durationMs: number;
  error: CesoError | undefined;
}

/** Parse failures of oclif are usage errors; anything unknown is an unexpected error (exit 1). */
export function toCesoError(error: unknown): CesoError {
  if (isCesoError(error)) return error;
  const oclifError = error as { oclif?: { exit?: number }; parse?: unknown; message?: string; name?: string };
  const message = oclifError?.message ?? String(error);
  if (oclifError?.parse !== undefined || oclifError?.oclif?.exit === 2 || /Error$/.test(oclifError?.name ?? '') && /flag|argument|Expected/i.test(message)) {
    return new CesoError('INVALID_INPUT', firstLine(message), { hint: 'See --help for the flags and arguments this command takes' });
  }
  return new CesoError('INTERNAL', message, {
    hint: 'This is a bug in ceso: run again with --log-level debug and report the output',
  });
}

function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim() !== '')?.trim() ?? text;
}
