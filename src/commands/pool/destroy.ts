import { Flags } from '@oclif/core';
import { changeFlags } from '../../cli/flags.js';
import { PoolCommand, poolArg } from '../../cli/pool-command.js';
import type { DryRunResult } from '../../core/operations.js';
import { destroy, planDestroy, type DestroyOutcome } from '../../core/pool/service.js';
import type { Via } from '../../core/vm.js';

export type PoolDestroyResult = (DryRunResult | DestroyOutcome) & { via: Via };

export default class PoolDestroy extends PoolCommand<typeof PoolDestroy> {
  static override summary = 'Delete every VM of a warm pool, leased ones too';
  static override description =
    'Powers off and deletes each VM carrying ceso.pool = <pool>, while no lease can be handed out. The template and its base snapshot stay. ' +
    'Asks for confirmation on a terminal; elsewhere it needs --yes.';
  static override examples = ['<%= config.bin %> pool destroy bench --yes', '<%= config.bin %> pool destroy bench --dry-run'];

  static override args = poolArg;
  static override flags = {
    yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation' }),
    ...changeFlags,
  };
  static override audited = true;

  async run(): Promise<PoolDestroyResult> {
    const result = await this.withPool('destroy', async (context) => {
      const plan = await planDestroy(context);
      if (this.flags['dry-run']) return plan;
      await this.confirmDestruction(`delete the ${plan.plan.steps.length} VM(s) of pool ${context.spec.name}`, this.flags.yes);
      return destroy(context);
    });
    if ('dryRun' in result) this.printPlan(result);
    else this.print(`Pool ${result.pool}: deleted ${result.deleted.length} VM(s)${result.deleted.length > 0 ? `: ${result.deleted.join(', ')}` : ''}`);
    return result;
  }
}
