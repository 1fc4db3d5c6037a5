import { changeFlags } from '../../cli/flags.js';
import { PoolCommand, poolArg } from '../../cli/pool-command.js';
import type { DryRunResult } from '../../core/operations.js';
import { describeCounts } from '../../core/pool/members.js';
import { planReap, reap, type ReapOutcome } from '../../core/pool/service.js';
import type { Via } from '../../core/vm.js';

export type PoolReapResult = (DryRunResult | ReapOutcome) & { via: Via };

export default class PoolReap extends PoolCommand<typeof PoolReap> {
  static override summary = 'Take back leases past their end and repair what interrupted runs left';
  static override description =
    'Every lease whose expiry has passed is ended and its VM reset to the golden snapshot (ready again); building or resetting VMs ' +
    'that no ceso process works on any more are deleted or reset, failed ones deleted. Run it from cron next to vm reap.';
  static override examples = ['<%= config.bin %> pool reap bench', '<%= config.bin %> pool reap bench --dry-run --json'];

  static override args = poolArg;
  static override flags = { ...changeFlags };
  static override audited = true;

  async run(): Promise<PoolReapResult> {
    const result = await this.withPool('reap', async (context): Promise<DryRunResult | ReapOutcome> => (this.flags['dry-run'] ? planReap(context) : reap(context)));
    if ('dryRun' in result) this.printPlan(result);
    else this.print(`Pool ${result.pool}: reclaimed ${result.reclaimed.length} expired lease(s), repaired ${result.repaired.length}; now ${describeCounts(result.counts)}`);
    return result;
  }
}
