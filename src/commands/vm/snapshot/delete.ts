import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../cli/base-command.js';
import { changeFlags } from '../../../cli/flags.js';
import { invalidInput } from '../../../core/errors.js';
import type { DryRunResult } from '../../../core/operations.js';
import { planSnapshotDelete } from '../../../core/services.js';
import type { SnapshotDeleteOutcome } from '../../../core/snapshots.js';
import type { Via } from '../../../core/vm.js';

export type VmSnapshotDeleteResult = DryRunResult | (SnapshotDeleteOutcome & { via: Via; durationMs: number });

export default class VmSnapshotDelete extends BaseCommand<typeof VmSnapshotDelete> {
  static override summary = 'Delete a snapshot (with --children, the snapshots taken from it too), or --all';
  static override description =
    'The host merges the snapshot’s delta disk into its parent (consolidation); ceso then checks that no file of the removed snapshots ' +
    'is left on the datastore, and fails naming them if any is. Children of a snapshot deleted without --children stay. ' +
    'Asks for confirmation on a terminal; elsewhere it needs --yes.';
  static override examples = [
    '<%= config.bin %> vm snapshot delete web1 before-upgrade',
    '<%= config.bin %> vm snapshot delete web1 base --children --yes --json',
    '<%= config.bin %> vm snapshot delete web1 --all --dry-run',
  ];

  static override args = {
    name: Args.string({ description: 'The VM’s exact name', required: true }),
    snapshot: Args.string({ description: 'The snapshot: a name, a path a/b/c or an id' }),
  };

  static override flags = {
    id: Flags.string({ description: 'The VM’s managed object id, when several VMs share its name' }),
    children: Flags.boolean({ description: 'Also delete the snapshots taken from it', default: false }),
    all: Flags.boolean({ description: 'Delete every snapshot of the VM', default: false }),
    yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation', default: false }),
    ...changeFlags,
  };

  static override audited = true;

  async run(): Promise<VmSnapshotDeleteResult> {
    const vm = { name: this.args.name, ...(this.flags.id === undefined ? {} : { id: this.flags.id }) };
    if (this.flags.all && this.args.snapshot !== undefined) throw invalidInput('name a snapshot or pass --all, not both');
    if (!this.flags.all && this.args.snapshot === undefined) throw invalidInput('name the snapshot to delete, or pass --all', 'ceso vm snapshot list shows them');
    if (this.flags.all && this.flags.children) throw invalidInput('--children goes with a named snapshot; --all deletes every snapshot anyway');
    const request = { vm, ...(this.args.snapshot === undefined ? {} : { snapshot: this.args.snapshot }), children: this.flags.children, all: this.flags.all };
    return this.withVmLock(this.args.name, () => this.withServices(async (services) => {
      const mutation = await planSnapshotDelete(services, request, this.flags.yes);
      const { target } = mutation;
      const result = await this.runMutation(mutation, {
        dryRun: this.flags['dry-run'],
        confirm: async (plan) => {
          if (plan.steps.length === 0) return;
          await this.confirmDestruction(`delete ${target.deleted.length} snapshot(s) of ${target.vm.name} (${target.deleted.map((node) => `${node.path}, id ${node.id}`).join('; ')})`, this.flags.yes);
        },
      });
      if ('dryRun' in result) return result;
      this.print(
        result.deleted.length === 0
          ? `${result.name} has no snapshots: nothing deleted`
          : `Deleted ${result.deleted.map((node) => `"${node.path}"`).join(', ')} of ${result.name}${result.removedFiles.length === 0 ? '' : `; removed ${result.removedFiles.join(', ')}`}`,
      );
      return { ...result, via: services.backend.via };
    }));
  }
}
