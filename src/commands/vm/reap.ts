import { BaseCommand } from '../../cli/base-command.js';
import { fleetFlags, renderByHost } from '../../cli/fleet.js';
import { changeFlags } from '../../cli/flags.js';
import { renderTable } from '../../cli/table.js';
import { EXIT, type ExitCode } from '../../core/errors.js';
import { fleetExitCode, fleetResult, type FleetResult } from '../../core/fleet.js';
import { reapExpired, type ReapResult } from '../../core/services.js';
import type { Via } from '../../core/vm.js';

export type VmReapHostResult = ReapResult & { via: Via };
/** One host: its reap result, as always; several (--host a,b,…, --all-hosts): `{hosts: [{host, ok, …reap result | error}]}`. */
export type VmReapResult = VmReapHostResult | FleetResult<VmReapHostResult>;

export default class VmReap extends BaseCommand<typeof VmReap> {
  static override summary = 'Delete the managed VMs whose expiry (--ttl) has passed';
  static override description =
    'Deletes every VM that carries ceso.managed = "true" and a ceso.expiresAt in the past — and only those — ' +
    'powering it off first, and reports each. One failure does not stop the others; any failure makes the exit code 8. ' +
    'With --host a,b,… or --all-hosts every host is reaped in parallel, each under its own locks; the exit code is the first failing host’s ' +
    '(its error, or 8 when a VM of it could not be deleted).';
  static override examples = ['<%= config.bin %> vm reap --dry-run', '<%= config.bin %> vm reap --json', '<%= config.bin %> vm reap --all-hosts --dry-run'];

  static override flags = { ...changeFlags, ...fleetFlags };

  static override audited = true;

  async run(): Promise<VmReapResult> {
    const reap = async (services: Parameters<typeof reapExpired>[0], lock: <R>(vm: string, run: () => Promise<R>) => Promise<R>): Promise<VmReapHostResult> => ({
      ...(await reapExpired(services, { dryRun: this.flags['dry-run'], lock })),
      via: services.backend.via,
    });
    const fleet = await this.onEachHost((services, target) => reap(services, (vm, run) => this.withVmLock(vm, run, { target })));
    if (fleet !== undefined) {
      process.exitCode = fleetExitCode(fleet, exitOf);
      this.print(renderByHost(fleet, (result) => ({ heading: `${result.reaped.length} expired of ${result.checked} VM(s)`, body: renderReap(result) })));
      return fleetResult(fleet, (result) => result);
    }
    const result = await this.withServices((services) => reap(services, (vm, run) => this.withVmLock(vm, run)));
    process.exitCode = exitOf(result);
    this.print(renderReap(result));
    return result;
  }
}

function exitOf(result: ReapResult): ExitCode {
  return result.reaped.some((entry) => entry.error !== null) ? EXIT.HOST_FAILED : EXIT.OK;
}

function renderReap(result: ReapResult): string {
  return result.reaped.length === 0
    ? `No expired managed VMs among ${result.checked}.`
    : renderTable(result.reaped, [
        { header: 'NAME', value: (entry) => entry.name },
        { header: 'ID', value: (entry) => entry.id },
        { header: 'EXPIRED', value: (entry) => entry.expiresAt },
        { header: 'RESULT', value: (entry) => (entry.error !== null ? `failed: ${entry.error.code}` : result.dryRun ? 'would delete' : 'deleted') },
      ]);
}
