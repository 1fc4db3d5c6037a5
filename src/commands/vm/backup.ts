import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { changeFlags } from '../../cli/flags.js';
import { backupRequestFrom, gib, type BackupOutcome } from '../../core/backup.js';
import type { DryRunResult } from '../../core/operations.js';
import { planBackup } from '../../core/services.js';
import type { Via } from '../../core/vm.js';

export type VmBackupResult = DryRunResult | (BackupOutcome & { via: Via; durationMs: number });

export default class VmBackup extends BaseCommand<typeof VmBackup> {
  static override summary = 'Back up a VM while it runs: snapshot, thin disk copies, manifest, rotation';
  static override description =
    'As ghettoVCB does on free ESXi hosts: copies the .vmx (and nvram), takes a snapshot ceso-backup-<UTC time> of a running VM, copies each ' +
    'disk as it was before the snapshot thin into <destination>/<vm>/<vm>-<time>/, removes the snapshot (consolidating), writes ' +
    'ceso-backup.json last (its presence marks the backup complete), then keeps only the newest --keep backups of the VM. ' +
    'A powered-off VM is copied without a snapshot. A ceso-backup-* snapshot left by a killed run is removed first. ' +
    'On failure or Ctrl-C the partial folder and the snapshot are removed again and the VM keeps running.';
  static override examples = [
    '<%= config.bin %> vm backup web1',
    '<%= config.bin %> vm backup web1 --to "[datastore2] backups" --keep 7 --quiesce',
    '<%= config.bin %> vm backup web1 --dry-run --json',
  ];

  static override args = {
    name: Args.string({ description: 'The VM’s exact name', required: true }),
  };

  static override flags = {
    id: Flags.string({ description: 'The VM’s managed object id, when several VMs share its name' }),
    to: Flags.string({ description: 'Destination: "[DATASTORE] FOLDER" or DATASTORE[/FOLDER] (default: backup.to, else "backups" on the VM’s datastore)' }),
    keep: Flags.integer({ description: 'How many backups of the VM to keep, this one counted (default: backup.keep, 3)', min: 1 }),
    quiesce: Flags.boolean({ description: 'Quiesce the guest’s file systems for the snapshot (needs VMware Tools running)' }),
    memory: Flags.boolean({ description: 'Include the running VM’s memory in the snapshot (slower; the backup holds the disks only)' }),
    ...changeFlags,
  };

  static override audited = true;

  async run(): Promise<VmBackupResult> {
    const vm = { name: this.args.name, ...(this.flags.id === undefined ? {} : { id: this.flags.id }) };
    const target = this.target();
    const request = backupRequestFrom(vm, this.flags, target.backup, target.api);
    return this.withVmLock(this.args.name, () => this.withServices(async (services) => {
      const mutation = await planBackup(services, request);
      const result = await this.runMutation(mutation, { dryRun: this.flags['dry-run'] });
      if ('dryRun' in result) return result;
      for (const warning of result.warnings) process.stderr.write(`Warning: ${warning}\n`);
      this.print(
        [
          `Backed up ${result.name} to ${result.backup.path}: ${result.disks.length} disk(s), ${gib(result.backup.size ?? 0)}${result.snapshot === null ? ', copied powered off' : `, from snapshot "${result.snapshot}" (removed again)`}`,
          ...(result.removed.length > 0 ? [`Removed older backups: ${result.removed.join(', ')}`] : []),
          `Kept ${result.kept.length} backup(s) of ${result.name}`,
        ].join('\n'),
      );
      return { ...result, via: services.backend.via };
    }));
  }
}
