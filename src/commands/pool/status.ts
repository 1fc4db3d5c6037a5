import { fleetFlags, renderByHost } from '../../cli/fleet.js';
import { PoolCommand, poolArg } from '../../cli/pool-command.js';
import { renderTable } from '../../cli/table.js';
import { fleetExitCode, fleetResult, type FleetResult } from '../../core/fleet.js';
import { describeCounts } from '../../core/pool/members.js';
import { poolStatus, type PoolStatus } from '../../core/pool/service.js';
import type { Via } from '../../core/vm.js';

export type PoolStatusHostResult = PoolStatus & { via: Via };
/** One host: the pool's status; with --host a,b,… or --all-hosts: `{hosts: [{host, ok, …status | error}]}`. */
export type PoolStatusResult = PoolStatusHostResult | FleetResult<PoolStatusHostResult>;

export default class PoolStatusCommand extends PoolCommand<typeof PoolStatusCommand> {
  static override summary = 'Show a warm pool: every VM with its state, holder and lease expiry';
  static override description =
    'Reads the pool from the VMs’ own markers (ceso.pool, ceso.poolState, the lease), so any machine sees the same. ' +
    'States: building, ready, leased, resetting, failed. A building or resetting VM that no ceso process works on is stale, ' +
    'and a lease past its end is expired: pool fill and pool reap repair them. Works over SSH too. ' +
    'With --host a,b,… or --all-hosts the pool’s VMs on each host, read in parallel.';
  static override examples = ['<%= config.bin %> pool status bench', '<%= config.bin %> pool status bench --json', '<%= config.bin %> pool status bench --all-hosts'];

  static override args = poolArg;
  static override flags = { ...fleetFlags };

  async run(): Promise<PoolStatusResult> {
    const fleet = await this.onEachHost(({ backend }, target) => this.onHost('status', backend, target, (context) => poolStatus(context)));
    if (fleet !== undefined) {
      process.exitCode = fleetExitCode(fleet);
      this.print(renderByHost(fleet, (status) => ({ heading: describeCounts(status.counts), body: renderVms(status) })));
      return fleetResult(fleet, (status) => status);
    }
    const status = await this.withPool('status', (context) => poolStatus(context));
    this.print(`Pool ${status.pool} (template ${status.template}, size ${status.size}, max ${status.max}): ${describeCounts(status.counts)}\n${renderVms(status)}`);
    return status;
  }
}

function renderVms(status: PoolStatus): string {
  return renderTable(status.vms, [
    { header: 'NAME', value: (vm) => vm.name },
    { header: 'STATE', value: (vm) => `${vm.state}${vm.stale ? ' (stale)' : ''}${vm.expired ? ' (expired)' : ''}` },
    { header: 'POWER', value: (vm) => vm.powerState },
    { header: 'IP', value: (vm) => vm.ip },
    { header: 'HOLDER', value: (vm) => vm.holder },
    { header: 'LEASE ENDS', value: (vm) => vm.leaseExpiresAt },
    { header: 'RESETS', value: (vm) => vm.resets },
  ]);
}
