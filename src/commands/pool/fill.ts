import { changeFlags } from '../../cli/flags.js';
import { PoolCommand, poolArg } from '../../cli/pool-command.js';
import type { DryRunResult } from '../../core/operations.js';
import { describeCounts } from '../../core/pool/members.js';
import { fill, planFill, type FillOutcome } from '../../core/pool/service.js';
import type { Via } from '../../core/vm.js';

export type PoolFillResult = (DryRunResult | (FillOutcome & { durationMs: number })) & { via: Via };

export default class PoolFill extends PoolCommand<typeof PoolFill> {
  static override summary = 'Build a warm pool’s VMs until `size` of them are ready';
  static override description =
    'Builds <pool>-<nnn> VMs (linked clones of the template unless linked: false), several at once: create, power on, wait until ' +
    'cloud-init reports ready, then a golden snapshot with memory (ceso-golden) that every release returns to. First it repairs what ' +
    'an interrupted run left (stale building and failed VMs are deleted, stale resetting ones reset). Failed builds are deleted and counted; ' +
    'the pool never grows past max.';
  static override examples = ['<%= config.bin %> pool fill bench', '<%= config.bin %> pool fill bench --dry-run', '<%= config.bin %> pool fill bench --json'];

  static override args = poolArg;
  static override flags = { ...changeFlags };
  static override audited = true;

  async run(): Promise<PoolFillResult> {
    const started = performance.now();
    const result = await this.withPool('fill', async (context) =>
      this.flags['dry-run'] ? planFill(context) : { ...(await fill(context)), durationMs: Math.round(performance.now() - started) },
    );
    if ('dryRun' in result) this.printPlan(result);
    else this.print(`Pool ${result.pool}: built ${result.built.length}${result.built.length > 0 ? ` (${result.built.map((vm) => vm.name).join(', ')})` : ''}, repaired ${result.repaired.length}, failed ${result.failed.length}; now ${describeCounts(result.counts)}`);
    return result;
  }
}
