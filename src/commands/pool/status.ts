import { PoolCommand, poolArg } from '../../cli/pool-command.js';
import { renderTable } from '../../cli/table.js';
import { describeCounts } from '../../core/pool/members.js';
import { poolStatus, type PoolStatus } from '../../core/pool/service.js';
import type { Via } from '../../core/vm.js';

export type PoolStatusResult = PoolStatus & { via: Via };

export default class PoolStatusCommand extends PoolCommand<typeof PoolStatusCommand> {
  static override summary = 'Show a warm pool: every VM with its state, holder and lease expiry';
  static override description =
    'Reads the pool from the VMs’ own markers (ceso.pool, ceso.poolState, the lease), so any machine sees the same. ' +
    'States: building, ready, leased, resetting, failed. A building or resetting VM that no ceso process works on is stale, ' +
    'and a lease past its end is expired: pool fill and pool reap repair them. Works over SSH too.';
  static override examples = ['<%= config.bin %> pool status bench', '<%= config.bin %> pool status bench --json'];

  static override args = poolArg;

  async run(): Promise<PoolStatusResult> {
    const status = await this.withPool('status', (context) => poolStatus(context));
    this.print(
      [
        `Pool ${status.pool} (template ${status.template}, size ${status.size}, max ${status.max}): ${describeCounts(status.counts)}`,
        renderTable(status.vms, [
          { header: 'NAME', value: (vm) => vm.name },
          { header: 'STATE', value: (vm) => `${vm.state}${vm.stale ? ' (stale)' : ''}${vm.expired ? ' (expired)' : ''}` },
          { header: 'POWER', value: (vm) => vm.powerState },
          { header: 'IP', value: (vm) => vm.ip },
          { header: 'HOLDER', value: (vm) => vm.holder },
          { header: 'LEASE ENDS', value: (vm) => vm.leaseExpiresAt },
          { header: 'RESETS', value: (vm) => vm.resets },
        ]),
      ].join('\n'),
    );
    return status;
  }
}
