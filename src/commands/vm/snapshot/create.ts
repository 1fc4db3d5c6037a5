import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../cli/base-command.js';
import { changeFlags } from '../../../cli/flags.js';
import type { DryRunResult } from '../../../core/operations.js';
import { planSnapshotCreate } from '../../../core/services.js';
import { validateSnapshotDescription, validateSnapshotName, type SnapshotCreateOutcome } from '../../../core/snapshots.js';
import type { Via } from '../../../core/vm.js';

export type VmSnapshotCreateResult = DryRunResult | (SnapshotCreateOutcome & { via: Via; durationMs: number });

export default class VmSnapshotCreate extends BaseCommand<typeof VmSnapshotCreate> {
  static override summary = 'Take a snapshot of a VM';
  static override description =
    'Snapshot names are unique per VM: a name the VM already has is refused (SNAPSHOT_EXISTS). --memory keeps a running VM’s memory, ' +
    'so a revert brings it back running; --quiesce asks VMware Tools to quiesce the guest’s file systems and is refused when Tools is not running. ' +
    'If anything fails after the host made the snapshot, or on Ctrl-C, the snapshot is removed again.';
  static override examples = [
    '<%= config.bin %> vm snapshot create web1 before-upgrade',
    '<%= config.bin %> vm snapshot create web1 golden --memory --description "warm, logged in" --json',
    '<%= config.bin %> vm snapshot create db1 nightly --quiesce --dry-run',
  ];

  static override args = {
    name: Args.string({ description: 'The VM’s exact name', required: true }),
    snapshot: Args.string({ description: 'Name of the new snapshot (unique on the VM; no "/", not only digits)', required: true }),
  };

  static override flags = {
    id: Flags.string({ description: 'The VM’s managed object id, when several VMs share its name' }),
    memory: Flags.boolean({ description: 'Include the running VM’s memory: reverting brings it back running', default: false }),
    quiesce: Flags.boolean({ description: 'Quiesce the guest’s file systems first (needs VMware Tools running)', default: false }),
    description: Flags.string({ description: 'A description stored with the snapshot (one line)' }),
    ...changeFlags,
  };

  static override audited = true;

  async run(): Promise<VmSnapshotCreateResult> {
    const vm = { name: this.args.name, ...(this.flags.id === undefined ? {} : { id: this.flags.id }) };
    const request = {
      vm,
      name: validateSnapshotName(this.args.snapshot),
      ...(this.flags.description === undefined ? {} : { description: validateSnapshotDescription(this.flags.description) }),
      memory: this.flags.memory,
      quiesce: this.flags.quiesce,
    };
    return this.withVmLock(this.args.name, () => this.withServices(async (services) => {
      const mutation = await planSnapshotCreate(services, request);
      const result = await this.runMutation(mutation, { dryRun: this.flags['dry-run'] });
      if ('dryRun' in result) return result;
      this.print(`Took snapshot "${result.snapshot.path}" (id ${result.snapshot.id}) of ${result.name}${result.snapshot.memory ? ', with its memory' : ''}`);
      return { ...result, via: services.backend.via };
    }));
  }
}
