import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { changeFlags, guestFlags } from '../../cli/flags.js';
import { renderVm } from '../../cli/render.js';
import { restoreRequestFrom, type RestoreOutcome } from '../../core/backup.js';
import type { DryRunResult } from '../../core/operations.js';
import { planRestore } from '../../core/services.js';
import type { Via } from '../../core/vm.js';

export type VmRestoreResult = DryRunResult | (RestoreOutcome & { via: Via; durationMs: number });

export default class VmRestore extends BaseCommand<typeof VmRestore> {
  static override summary = 'Restore a backup: as a new VM, or onto the original VM in place';
  static override description =
    'BACKUP is a backup folder ("[datastore1] backups/web1/web1-20261201T120000Z"), VM@STAMP (web1@20261201T120000Z) or VM@latest ' +
    '(looked up under --to, else backup.to, else the "backups" folder of every datastore). The manifest, the configuration copy and every ' +
    'disk descriptor and extent are checked first; a damaged or incomplete backup is refused naming what is wrong. ' +
    'With --name: a new VM, its disks copied out of the backup (which stays as it is), with a new uuid, MAC and cloud-init instance-id as ' +
    'vm clone makes them (re-IP with --ip/--gateway/--dns; the user data kept unless --ssh-key/--user-data replace it). ' +
    'With --in-place: the original VM, powered off and without snapshots, gets the backup’s disks and configuration back ' +
    '(it asks on a terminal; elsewhere it needs --yes); its previous disks are removed once it uses the restored ones.';
  static override examples = [
    '<%= config.bin %> vm restore web1@latest --name web1-restored --ip 192.168.1.120/24 --gateway 192.168.1.1 --power-on',
    '<%= config.bin %> vm restore "[datastore2] backups/web1/web1-20261201T120000Z" --in-place --yes',
    '<%= config.bin %> vm restore web1@20261201T120000Z --name web1-copy --dry-run --json',
  ];

  static override args = {
    backup: Args.string({ description: 'The backup: "[DATASTORE] PATH/VM-STAMP", VM@STAMP or VM@latest', required: true }),
  };

  static override flags = {
    name: Flags.string({ description: 'Restore as a new VM of this name (also its hostname)', exclusive: ['in-place'] }),
    'in-place': Flags.boolean({ description: 'Put the original VM back onto the backup (it must be powered off)', exclusive: ['name'] }),
    to: Flags.string({ description: 'Where VM@STAMP is looked up: "[DATASTORE] FOLDER" or DATASTORE[/FOLDER] (default: backup.to, else "backups" on every datastore)' }),
    ...guestFlags,
    datastore: Flags.string({ description: 'Datastore of the new VM (default: defaults.datastore, else the backed-up VM’s)' }),
    network: Flags.string({ description: 'Port group of the new VM’s NIC (default: defaults.network, else the backed-up VM’s)' }),
    'power-on': Flags.boolean({ description: 'Power the restored VM on' }),
    ttl: Flags.string({ description: 'Expiry recorded on the new VM as ceso.expiresAt, e.g. 2h, 7d' }),
    yes: Flags.boolean({ char: 'y', description: 'Do not ask for confirmation (--in-place)' }),
    ...changeFlags,
  };

  static override audited = true;

  async run(): Promise<VmRestoreResult> {
    const { request, locks } = restoreRequestFrom(this.args.backup, this.flags, this.target());
    return this.withVmLock(locks, () => this.withServices(async (services) => {
      const mutation = await planRestore(services, request, this.flags.yes === true);
      const restore = mutation.target;
      const result = await this.runMutation(mutation, {
        dryRun: this.flags['dry-run'],
        ...(request.inPlace
          ? {
              confirm: () =>
                this.confirmDestruction(
                  `put ${restore.vm?.name ?? 'the VM'} back onto the backup ${restore.backup}, replacing ${restore.replaced.length === 0 ? 'its configuration' : restore.replaced.join(', ')}`,
                  this.flags.yes === true,
                ),
            }
          : {}),
      });
      if ('dryRun' in result) return result;
      for (const warning of result.warnings) process.stderr.write(`Warning: ${warning}\n`);
      this.print(`${result.inPlace ? `Restored ${result.name} in place` : `Restored ${result.name}`} from ${result.backup}\n\n${renderVm(result)}`);
      return { ...result, via: services.backend.via };
    }));
  }
}
