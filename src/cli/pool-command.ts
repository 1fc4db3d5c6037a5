import type { Command } from '@oclif/core';
import { Args } from '@oclif/core';
import { loadConfig } from '../config/load.js';
import { CesoError } from '../core/errors.js';
import { acquireVmLock, lockHolderOf } from '../core/lock.js';
import type { DryRunResult } from '../core/operations.js';
import { Policy } from '../core/policy.js';
import { LocalLedger, type LockProvider } from '../core/pool/ledger.js';
import type { PoolContext } from '../core/pool/service.js';
import { poolSpec, type PoolSpec } from '../core/pool/spec.js';
import { untilInterrupted } from '../core/readiness.js';
import type { Via } from '../core/vm.js';
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

  protected spec(): PoolSpec {
    this.cachedSpec ??= poolSpec(loadConfig(this.flags.config).file, this.poolName, this.target().defaults);
    return this.cachedSpec;
  }

  protected override impliedHost(): string | undefined {
    return loadConfig(this.flags.config).file.pools?.[this.poolName]?.host;
  }

  /**
   * Runs one pool operation. Changes need the vSphere API (ceso writes the pool's markers on
   * running VMs); status, reading only, works over SSH too.
   */
  protected withPool<R>(action: PoolAction, operation: (context: PoolContext) => Promise<R>): Promise<R & { via: Via }> {
    const spec = this.spec();
    new Policy(this.target().security).checkPool(spec.name, action);
    const host = this.lockHost();
    const locks: LockProvider = {
      take: (name, timeoutMs) => acquireVmLock({ host, vm: name, command: `ceso ${(this.id ?? '').replace(/:/g, ' ')} ${spec.name}`, timeoutMs }),
      holder: (name) => lockHolderOf({ host, vm: name }),
    };
    const lockTimeoutMs = ((this.flags as { 'lock-timeout'?: number })['lock-timeout'] ?? 0) * 1000;
    const report = process.stderr.isTTY === true && !this.jsonEnabled() ? (line: string) => process.stderr.write(`${line}\n`) : undefined;
    return this.withBackend((backend) =>
      untilInterrupted(async (signal) => {
        if (action !== 'status' && action !== 'destroy' && backend.via === 'ssh') {
          throw new CesoError('NOT_SUPPORTED', `pool ${action} needs the vSphere API: ceso keeps the pool's leases in the VMs' extraConfig, which vim-cmd cannot change on a running VM`, {
            hint: 'Run it with --via api (or auto) once the API answers; over SSH pool status and pool destroy work',
          });
        }
        const context: PoolContext = {
          backend,
          spec,
          ledger: new LocalLedger(backend, spec.name, locks),
          locks,
          defaults: this.target().defaults,
          lockTimeoutMs,
          signal,
          ...(report === undefined ? {} : { report }),
        };
        const result = await operation(context);
        return { ...result, via: backend.via };
      }),
    );
  }

  /** A dry run's plan, printed as every plan is. */
  protected printPlan(result: DryRunResult): void {
    this.print(renderPlanText(result.plan));
  }
}
