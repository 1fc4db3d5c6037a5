import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../cli/base-command.js';
import { changeFlags } from '../../../cli/flags.js';
import type { DryRunResult } from '../../../core/operations.js';
import { planSnapshotRevert } from '../../../core/services.js';
import type { SnapshotRevertOutcome } from '../../../core/snapshots.js';
import type { Via } from '../../../core/vm.js';

export type VmSnapshotRevertResult = DryRunResult | (SnapshotRevertOutcome & { via: Via; durationMs: number });

export default class VmSnapshotRevert extends BaseCommand<typeof VmSnapshotRevert> {
  static override summary = 'Revert a VM to a snapshot (the current one by default)';
  static override description =
    'The VM comes back as the snapshot saw it, in the snapshot’s power state: running from a memory snapshot of a running VM, ' +
    'powered off from a disk-only one; --no-power-on keeps it from being powered on. What changed since the snapshot is lost. ' +
    'Name the snapshot by name, path (a/b/c) or id. The result is the VM afterwards plus the snapshot.';
  static override examples = ['<%= config.bin %> vm snapshot revert web1', '<%= config.bin %> vm snapshot revert web1 before-upgrade --json', '<%= config.bin %> vm snapshot revert web1 3 --no-power-on'];

  static override args = {
    name: Args.string({ description: 'The VM’s exact name', required: true }),
    snapshot: Args.string({ description: 'The snapshot: a name, a path a/b/c or an id (default: the current snapshot)' }),
  };

  static override flags = {
    id: Flags.string({ description: 'The VM’s managed object id, when several VMs share its name' }),
    'no-power-on': Flags.boolean({ description: 'Do not power the VM on, whatever the snapshot’s power state (suppressPowerOn)', default: false }),
    ...changeFlags,
  };

  static override audited = true;

  async run(): Promise<VmSnapshotRevertResult> {
    const vm = { name: this.args.name, ...(this.flags.id === undefined ? {} : { id: this.flags.id }) };
    const request = { vm, ...(this.args.snapshot === undefined ? {} : { snapshot: this.args.snapshot }), powerOn: !this.flags['no-power-on'] };
    return this.withVmLock(this.args.name, () => this.withServices(async (services) => {
      const mutation = await planSnapshotRevert(services, request);
      const result = await this.runMutation(mutation, { dryRun: this.flags['dry-run'] });
      if ('dryRun' in result) return result;
      this.print(`Reverted ${result.name} to snapshot "${result.snapshot.path}" (id ${result.snapshot.id}); it is ${result.status ?? 'in an unknown state'}`);
      return { ...result, via: services.backend.via };
    }));
  }
}
