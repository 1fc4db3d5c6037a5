import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { renderTable } from '../../cli/table.js';
import { gib, parseDestination, type BackupEntry } from '../../core/backup.js';
import { Policy } from '../../core/policy.js';
import { listBackups } from '../../core/services.js';
import type { Via } from '../../core/vm.js';

export type BackupListResult = Array<BackupEntry & { via: Via }>;

export default class BackupList extends BaseCommand<typeof BackupList> {
  static override summary = 'List the backups on the datastores, from their manifests';
  static override description =
    'Every backup folder under the destination (--to, else backup.to, else the "backups" folder of every datastore), newest first, ' +
    'with the VM, time and size its ceso-backup.json records. A folder without a valid manifest (a backup that did not finish, or a damaged one) ' +
    'is listed with complete = false and the reason under problem.';
  static override examples = ['<%= config.bin %> backup list', '<%= config.bin %> backup list --vm web1 --json', '<%= config.bin %> backup list --to "[datastore2] backups"'];

  static override flags = {
    vm: Flags.string({ description: 'Only the backups of this VM' }),
    to: Flags.string({ description: 'Where to look: "[DATASTORE] FOLDER" or DATASTORE[/FOLDER] (default: backup.to, else "backups" on every datastore)' }),
  };

  async run(): Promise<BackupListResult> {
    const configured = this.target().backup;
    const destination = this.flags.to !== undefined ? parseDestination(this.flags.to, '--to') : configured.to !== undefined ? parseDestination(configured.to, 'backup.to') : undefined;
    const request = { ...(this.flags.vm === undefined ? {} : { vm: this.flags.vm }), ...(destination === undefined ? {} : { destination }) };
    const { backups, via } = await this.withBackend(async (backend) => ({
      backups: await listBackups({ backend, policy: new Policy(this.target().security) }, request),
      via: backend.via,
    }));
    this.print(
      backups.length === 0
        ? 'No backups found'
        : renderTable(backups, [
            { header: 'VM', value: (backup) => backup.vm },
            { header: 'TIME', value: (backup) => backup.time },
            { header: 'SIZE', value: (backup) => (backup.size === null ? null : gib(backup.size)) },
            { header: 'COMPLETE', value: (backup) => backup.complete },
            { header: 'PATH', value: (backup) => backup.path },
            { header: 'PROBLEM', value: (backup) => backup.problem },
          ]),
    );
    return backups.map((backup) => ({ ...backup, via }));
  }
}
