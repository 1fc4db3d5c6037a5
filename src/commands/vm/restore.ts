import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { changeFlags, guestFlags } from '../../cli/flags.js';
import { renderVm } from '../../cli/render.js';
import { parseBackupReference, parseDestination, type RestoreOutcome, type RestoreRequest } from '../../core/backup.js';
import { invalidInput } from '../../core/errors.js';
import type { DryRunResult } from '../../core/operations.js';
import { cloneRequestFrom } from '../../core/requests.js';
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
    const reference = parseBackupReference(this.args.backup);
    const inPlace = this.flags['in-place'] === true;
    const newName = this.flags.name;
    if (!inPlace && newName === undefined) throw invalidInput('say what to restore to: --name NEW (a new VM) or --in-place (the original VM)', 'e.g. ceso vm restore web1@latest --name web1-restored');
    const guestFlagsGiven = ['ip', 'gateway', 'dns', 'domain', 'ssh-key', 'user-data', 'datastore', 'network', 'ttl'].filter((flag) => (this.flags as Record<string, unknown>)[flag] !== undefined);
    if (inPlace && guestFlagsGiven.length > 0) {
      throw invalidInput(`--in-place restores the VM as it was: ${guestFlagsGiven.map((flag) => `--${flag}`).join(', ')} only apply to a new VM (--name)`);
    }
    const target = this.target();
    const configured = target.backup;
    const destination = this.flags.to !== undefined ? parseDestination(this.flags.to, '--to') : configured.to !== undefined ? parseDestination(configured.to, 'backup.to') : undefined;
    const source = reference.kind === 'vm' ? reference.vm : (reference.vm ?? 'backup');
    const request: RestoreRequest = {
      backup: reference,
      ...(destination === undefined ? {} : { destination }),
      inPlace,
      ...(newName === undefined
        ? {}
        : { newVm: cloneRequestFrom({ name: source }, newName, { ...this.flags, 'no-power-on': this.flags['power-on'] !== true, datastore: this.flags.datastore, network: this.flags.network }, target.defaults) }),
    };
    const locks = [...(reference.vm === null ? [] : [reference.vm]), ...(newName === undefined ? [] : [newName])];
    return this.withVmLock(locks, () => this.withServices(async (services) => {
      const mutation = await planRestore(services, request, this.flags.yes === true);
      const restore = mutation.target;
      if (inPlace && restore.vm !== null && reference.vm !== null && restore.vm.name !== reference.vm) {
        throw invalidInput(`the backup is of ${restore.vm.name}, not ${reference.vm}: name it as ${restore.vm.name}@STAMP for --in-place`);
      }
      const result = await this.runMutation(mutation, {
        dryRun: this.flags['dry-run'],
        ...(inPlace
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
