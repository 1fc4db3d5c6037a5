import { BaseCommand } from '../../cli/base-command.js';
import { changeFlags } from '../../cli/flags.js';
import { renderTable } from '../../cli/table.js';
import { EXIT } from '../../core/errors.js';
import { reapExpired, type ReapResult } from '../../core/services.js';
import type { Via } from '../../core/vm.js';

export type VmReapResult = ReapResult & { via: Via };

export default class VmReap extends BaseCommand<typeof VmReap> {
  static override summary = 'Delete the managed VMs whose expiry (--ttl) has passed';
  static override description =
    'Deletes every VM that carries ceso.managed = "true" and a ceso.expiresAt in the past — and only those — ' +
    'powering it off first, and reports each. One failure does not stop the others; any failure makes the exit code 8.';
  static override examples = ['<%= config.bin %> vm reap --dry-run', '<%= config.bin %> vm reap --json'];

  static override flags = { ...changeFlags };

  static override audited = true;

  async run(): Promise<VmReapResult> {
    const result = await this.withServices(async (services) => ({
      ...(await reapExpired(services, { dryRun: this.flags['dry-run'], lock: (vm, run) => this.withVmLock(vm, run) })),
      via: services.backend.via,
    }));
    const failed = result.reaped.filter((entry) => entry.error !== null);
    if (failed.length > 0) process.exitCode = EXIT.HOST_FAILED;
    this.print(
      result.reaped.length === 0
        ? `No expired managed VMs among ${result.checked}.`
        : renderTable(result.reaped, [
            { header: 'NAME', value: (entry) => entry.name },
            { header: 'ID', value: (entry) => entry.id },
            { header: 'EXPIRED', value: (entry) => entry.expiresAt },
            { header: 'RESULT', value: (entry) => (entry.error !== null ? `failed: ${entry.error.code}` : result.dryRun ? 'would delete' : 'deleted') },
          ]),
    );
    return result;
  }
}
