import type { Command } from '@oclif/core';
import { Args } from '@oclif/core';
import { CesoError } from '../core/errors.js';
import type { DryRunResult } from '../core/operations.js';
import { Policy } from '../core/policy.js';
import { LocalLedger, type LockProvider } from '../core/pool/ledger.js';
import { SharedLedger } from '../core/pool/shared-ledger.js';
import type { PoolContext } from '../core/pool/service.js';
import { poolSpec, type PoolSpec } from '../core/pool/spec.js';
import { untilInterrupted } from '../core/readiness.js';
import type { Via } from '../core/vm.js';
import type { HostBackend } from '../core/backend.js';
import type { HostTarget } from '../config/resolve.js';
import { BaseCommand } from './base-command.js';
import { renderPlanText } from './render.js';

export const poolArg = { pool: Args.string({ description: 'The pool’s name (pools: in the config)', required: true }) };

type PoolAction = Parameters<Policy['checkPool']>[1];

/**
 * Every `ceso pool …` command: the pool's spec from the config, its host (pools.<name>.host
 * unless --host), the policy rule of the action, and a PoolContext for one call of core/pool.
 */
export abstract class PoolCommand<T extends typeof Command> extends BaseCommand<T> {
  private cachedSpec: PoolSpec | undefined;

  protected get poolName(): string {
    return (this.args as { pool: string }).pool;
  }

  protected spec(target: HostTarget = this.target()): PoolSpec {
    this.cachedSpec ??= poolSpec(this.loadedConfig().file, this.poolName, target.defaults);
    return this.cachedSpec;
  }

  protected override impliedHost(): string | undefined {
    return this.loadedConfig().file.pools?.[this.poolName]?.host;
  }

  /**
   * Runs one pool operation on the host in use. Changes need the vSphere API (ceso writes the
   * pool's markers on running VMs); status and destroy work over SSH too. Ctrl-C stops it.
   */
  protected withPool<R>(action: PoolAction, operation: (context: PoolContext) => Promise<R>): Promise<R & { via: Via }> {
    const target = this.target();
    return this.withBackend((backend) => untilInterrupted((signal) => this.onHost(action, backend, target, operation, signal)));
  }

  /** The operation on one host's backend (the host in use, or one host of a fan-out). */
  protected async onHost<R>(action: PoolAction, backend: HostBackend, target: HostTarget, operation: (context: PoolContext) => Promise<R>, signal?: AbortSignal): Promise<R & { via: Via }> {
    const spec = this.spec(target);
    new Policy(target.security).checkPool(spec.name, action);
    if (action !== 'status' && action !== 'destroy' && backend.via === 'ssh') {
      throw new CesoError('NOT_SUPPORTED', `pool ${action} needs the vSphere API: ceso keeps the pool's leases in the VMs' extraConfig, which vim-cmd cannot change on a running VM`, {
        hint: 'Run it with --via api (or auto) once the API answers; over SSH pool status and pool destroy work',
      });
    }
    const host = this.lockHost(target);
    // The same store the vm commands lock through: a pool build and a vm delete of one VM exclude each other.
    const store = await this.stateStore();
    const locks: LockProvider = {
      take: (name, timeoutMs) => store.acquireLock({ host, vm: name, command: `ceso ${(this.id ?? '').replace(/:/g, ' ')} ${spec.name}`, timeoutMs, ...(signal === undefined ? {} : { signal }) }),
      workers: async () => {
        const held = new Map((await store.listLocks()).filter((entry) => entry.host === host && entry.state === 'held').map((entry) => [entry.vm, entry]));
        return (name) => {
          const entry = held.get(name);
          return entry === undefined ? null : { pid: entry.holder.pid, hostname: entry.holder.machine, command: entry.holder.command, since: entry.since };
        };
      },
    };
    const report = process.stderr.isTTY === true && !this.jsonEnabled() ? (line: string) => process.stderr.write(`${line}\n`) : undefined;
    const context: PoolContext = {
      backend,
      spec,
      ledger: store.poolLeases === null ? new LocalLedger(backend, spec.name, locks) : new SharedLedger(backend, spec.name, host, store.poolLeases, locks),
      locks,
      defaults: target.defaults,
      lockTimeoutMs: ((this.flags as { 'lock-timeout'?: number })['lock-timeout'] ?? 0) * 1000,
      ...(signal === undefined ? {} : { signal }),
      ...(report === undefined ? {} : { report }),
    };
    return { ...(await operation(context)), via: backend.via };
  }

  /** A dry run's plan, printed as every plan is. */
  protected printPlan(result: DryRunResult): void {
    this.print(renderPlanText(result.plan));
  }
}
