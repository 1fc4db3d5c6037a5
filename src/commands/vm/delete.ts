import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { changeFlags, idempotencyFlags } from '../../cli/flags.js';
import type { DeleteOutcome } from '../../core/backend.js';
import type { DryRunResult } from '../../core/operations.js';
import { planDeleteVm } from '../../core/services.js';
import type { Via } from '../../core/vm.js';

export type VmDeleteResult = DryRunResult | (DeleteOutcome & { via: Via; durationMs: number; replayed?: boolean });

export default class VmDelete extends BaseCommand<typeof VmDelete> {
  static override summary = 'Delete a VM and every file in its folder';
  static override description =
    'Refuses a VM that ceso did not create, or one that is powered on, unless --force (which powers it off first). ' +
    'Asks for confirmation on a terminal; elsewhere it needs --yes. Checks afterwards that nothing is left.';
  static override examples = ['<%= config.bin %> vm delete web1', '<%= config.bin %> vm delete web1 --yes --json', '<%= config.bin %> vm delete web1 --dry-run'];

  static override args = {
    name: Args.string({ description: 'The VM’s exact name', required: true }),
  };

  static override flags = {
    id: Flags.string({ description: 'The VM’s managed object id, when several VMs share its name' }),
    force: Flags.boolean({ description: 'Also delete a VM not made by ceso, or a running one (powered off first)' }),
    yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation' }),
    ...changeFlags,
    ...idempotencyFlags,
  };

  static override audited = true;

  async run(): Promise<VmDeleteResult> {
    const vm = { name: this.args.name, ...(this.flags.id === undefined ? {} : { id: this.flags.id }) };
    return this.idempotent('vm delete', () => this.withVmLock(this.args.name, () => this.withServices(async (services) => {
      const mutation = await planDeleteVm(services, { vm, force: this.flags.force }, this.flags.yes);
      const { target } = mutation;
      const result = await this.runMutation(mutation, {
        dryRun: this.flags['dry-run'],
        confirm: () =>
          this.confirmDestruction(
            `destroy ${target.name} (id ${target.id}, ${target.status ?? 'unknown state'}) with ${target.disks.length} disk(s) in ${target.vmxPath ?? 'an unknown folder'}`,
            this.flags.yes,
          ),
      });
      if ('dryRun' in result) return result;
      this.print(`Deleted ${result.name} (id ${result.id}); removed ${result.removed.join(', ')}`);
      return { ...result, via: services.backend.via };
    })));
  }
}
