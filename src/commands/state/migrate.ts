import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { resolveState } from '../../config/resolve.js';
import type { MigrationReport } from '../../state/postgres.js';

export type StateMigrateResult = MigrationReport;

export default class StateMigrate extends BaseCommand<typeof StateMigrate> {
  static override summary = 'Create or update the tables of the shared state database (state.backend postgres)';
  static override description =
    'Applies the numbered migrations the database lacks, in one transaction (any ceso command does this by itself when the tables are missing or older). ' +
    'A database migrated by a newer ceso is refused (STATE_SCHEMA_NEWER). With state.backend local there is nothing to migrate. Needs no host.';
  static override examples = ['<%= config.bin %> state migrate --dry-run', '<%= config.bin %> state migrate --json'];

  static override flags = {
    'dry-run': Flags.boolean({ description: 'Show the migrations that would be applied; change nothing', default: false }),
  };

  async run(): Promise<StateMigrateResult> {
    const state = resolveState(this.loadedConfig());
    const dryRun = this.flags['dry-run'];
    if (state.backend === 'local') {
      this.print(`state.backend is local (${state.home}): files, no schema to migrate`);
      return { backend: 'local', location: state.home, dryRun, fromVersion: null, toVersion: null, applied: [] };
    }
    const { openPostgresStore } = await import('../../state/postgres.js');
    const store = await openPostgresStore(state, { migrate: false, version: this.config.version });
    try {
      const report = await store.migrate({ dryRun });
      const list = report.applied.map((migration) => `  ${migration.version}: ${migration.name}`).join('\n');
      if (report.applied.length === 0) this.print(`${report.location}: schema version ${report.fromVersion}, up to date`);
      else this.print(`${report.location}: ${dryRun ? 'would migrate' : 'migrated'} from version ${report.fromVersion} to ${report.toVersion}:\n${list}`);
      return report;
    } finally {
      await store.close();
    }
  }
}
