import { Args, Flags } from '@oclif/core';
import { changeFlags } from '../../cli/flags.js';
import { PoolCommand, poolArg } from '../../cli/pool-command.js';
import { invalidInput } from '../../core/errors.js';
import type { DryRunResult } from '../../core/operations.js';
import { planRelease, release, type ResetOutcome } from '../../core/pool/service.js';
import type { Via } from '../../core/vm.js';

export type PoolReleaseResult = (DryRunResult | (ResetOutcome & { durationMs: number })) & { via: Via };

export default class PoolRelease extends PoolCommand<typeof PoolRelease> {
  static override summary = 'Give a leased VM back: it is reset to its golden snapshot and ready again';
  static override description =
    'Ends the lease (the VM’s current one, or exactly --lease ID), reverts the VM to ceso-golden (it comes back running from memory) ' +
    'and waits until it reports its address: then it is ready for the next acquire. A VM reset maxResets times, or whose revert fails, ' +
    'is rebuilt from the template. A lease that is not current any more (released, or expired and reclaimed) is LEASE_NOT_HELD (exit 4) and changes nothing.';
  static override examples = [
    '<%= config.bin %> pool release bench --lease 6f1c…',
    '<%= config.bin %> pool release bench bench-003 --json',
  ];

  static override args = { ...poolArg, vm: Args.string({ description: 'The leased VM (or give --lease)' }) };

  static override flags = {
    lease: Flags.string({ description: 'The lease id pool acquire returned: released only while it is the VM’s current lease' }),
    ...changeFlags,
  };

  static override audited = true;

  async run(): Promise<PoolReleaseResult> {
    const { vm } = this.args;
    const { lease } = this.flags;
    if (vm === undefined && lease === undefined) throw invalidInput('name the VM to release, or give --lease ID', 'e.g. ceso pool release bench --lease <leaseId from pool acquire>');
    const target = { ...(vm === undefined ? {} : { vm }), ...(lease === undefined ? {} : { leaseId: lease }) };
    const started = performance.now();
    const result = await this.withPool('release', async (context) => {
      if (this.flags['dry-run']) return planRelease(context, await context.ledger.members(), target);
      return { ...(await release(context, target)), durationMs: Math.round(performance.now() - started) };
    });
    if ('dryRun' in result) this.printPlan(result);
    else this.print(`Released ${result.vm}: ${result.method === 'revert' ? `reverted to its golden snapshot (reset ${result.resets})` : `rebuilt (${result.reason ?? ''})`}; ready at ${result.ip ?? 'no address'}`);
    return result;
  }
}
