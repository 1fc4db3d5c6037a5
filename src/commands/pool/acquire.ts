import { Flags } from '@oclif/core';
import { idempotencyFlags } from '../../cli/flags.js';
import { PoolCommand, poolArg } from '../../cli/pool-command.js';
import { currentUser } from '../../core/audit.js';
import type { DryRunResult } from '../../core/operations.js';
import { acquire, planAcquire, type Lease } from '../../core/pool/service.js';
import { parseLease } from '../../core/pool/spec.js';
import type { Via } from '../../core/vm.js';
import { hostname } from 'node:os';

export type PoolAcquireResult = (DryRunResult & { via: Via }) | (Lease & { via: Via; replayed?: boolean });

export default class PoolAcquire extends PoolCommand<typeof PoolAcquire> {
  static override summary = 'Lease one ready VM of a warm pool';
  static override description =
    'Hands out one ready VM, atomically: concurrent acquires never get the same VM. The lease ends at expiresAt ' +
    '(--lease, else pools.<name>.lease); keep its leaseId to release it. With no ready VM it fails at once with POOL_EMPTY (exit 4), ' +
    'or waits up to --wait seconds for one.';
  static override examples = [
    '<%= config.bin %> pool acquire bench --json',
    '<%= config.bin %> pool acquire bench --lease 30m --holder ci-job-4711 --wait 120',
  ];

  static override args = poolArg;

  static override flags = {
    wait: Flags.integer({ description: 'Seconds to wait for a ready VM (0: POOL_EMPTY at once)', default: 0, min: 0, max: 86_400 }),
    lease: Flags.string({ description: 'How long the lease lasts, e.g. 90s, 30m, 2h (default: pools.<name>.lease)' }),
    holder: Flags.string({ description: 'Who holds the lease, shown by pool status (default: user@machine)' }),
    'dry-run': Flags.boolean({ description: 'Show which VM would be leased; change nothing', default: false }),
    ...idempotencyFlags,
  };

  static override audited = true;

  async run(): Promise<PoolAcquireResult> {
    const leaseMs = this.flags.lease === undefined ? this.spec().leaseMs : parseLease(this.flags.lease);
    const holder = (this.flags.holder ?? `${currentUser()}@${hostname()}`).slice(0, 200);
    const request = { holder, leaseMs, waitMs: this.flags.wait * 1000 };
    // An agent that retries an acquire after a timeout gets the lease it already has, never a second VM.
    const result: PoolAcquireResult = this.flags['dry-run']
      ? await this.withPool('acquire', async (context) => planAcquire(context, await context.ledger.members(), request))
      : await this.idempotent('pool acquire', () => this.withPool('acquire', (context) => acquire(context, request)));
    if ('dryRun' in result) this.printPlan(result);
    else this.print(`Leased ${result.vm} (${result.ip ?? 'no address yet'}) to ${result.holder} until ${result.expiresAt}; lease ${result.leaseId}`);
    return result;
  }
}
