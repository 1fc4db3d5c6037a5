import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { renderTable } from '../cli/table.js';
import { parseSince, type AuditRecord } from '../core/audit.js';

export type AuditResult = AuditRecord[];

export default class Audit extends BaseCommand<typeof Audit> {
  static override summary = 'Show the audit trail of the changes made with ceso';
  static override description =
    'Every mutating command, dry-runs included, appends one JSON line to ~/.ceso/audit.log ($CESO_HOME/audit.log, mode 0600): ' +
    'time, OS user, host, command, arguments (secrets masked), mode, path (api or ssh), dry-run, outcome, error code, VM and duration. ' +
    'With state.backend postgres the records go to the shared database instead (ceso_audit_events, append-only), and this command reads them there. ' +
    'This command reads it, oldest first; it needs no host.';
  static override examples = [
    '<%= config.bin %> audit',
    '<%= config.bin %> audit --since 1h',
    '<%= config.bin %> audit --since 2d --json',
    '<%= config.bin %> audit --since 2024-05-01T00:00:00Z',
  ];

  static override flags = {
    since: Flags.string({ description: 'Only records from this long ago (30m, 1h, 2d, 1w) or after an ISO timestamp' }),
  };

  async run(): Promise<AuditResult> {
    const since = this.flags.since === undefined ? undefined : parseSince(this.flags.since);
    const { records, skipped, path } = await (await this.stateStore()).readAudit(since === undefined ? {} : { since });
    if (skipped > 0) process.stderr.write(`Warning: skipped ${skipped} unreadable line(s) in ${path}\n`);
    if (records.length === 0) {
      this.print(since === undefined ? `No audit records in ${path}` : `No audit records since ${since.toISOString()} in ${path}`);
      return records;
    }
    this.print(
      renderTable(records, [
        { header: 'TIME', value: (record) => shortTime(record.time) },
        { header: 'USER', value: (record) => record.user },
        { header: 'HOST', value: (record) => record.host },
        { header: 'COMMAND', value: (record) => record.command },
        { header: 'VM', value: (record) => record.vm },
        { header: 'VIA', value: (record) => record.via },
        { header: 'DRY-RUN', value: (record) => record.dryRun },
        { header: 'OUTCOME', value: (record) => record.outcome },
        { header: 'CODE', value: (record) => record.errorCode },
        { header: 'MS', value: (record) => record.durationMs },
      ]),
    );
    return records;
  }
}

/** 2024-05-01T12:00:00.123Z -> 2024-05-01 12:00:00Z */
function shortTime(time: string): string {
  return time.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
