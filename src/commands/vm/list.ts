import { BaseCommand } from '../../cli/base-command.js';
import { fleetFlags, renderByHost } from '../../cli/fleet.js';
import { renderTable } from '../../cli/table.js';
import { fleetExitCode, fleetResult, type FleetResult } from '../../core/fleet.js';
import type { Via, VmSummary } from '../../core/vm.js';

export type VmListHostResult = Array<VmSummary & { via: Via }>;
/** One host (no --host list, no --all-hosts): the VMs, as always; several: `{hosts: [{host, ok, vms | error}]}`. */
export type VmListResult = VmListHostResult | FleetResult<{ vms: VmListHostResult }>;

export default class VmList extends BaseCommand<typeof VmList> {
  static override summary = 'List every VM on the host (or on several hosts)';
  static override description =
    'Lists all VMs with their power state, size, IP and whether ceso manages them. ' +
    'All VMs come back in one property-collector round trip. ' +
    'With --host a,b,… or --all-hosts the hosts are read in parallel and the result is grouped by host; ' +
    'a host that fails is reported with its error while the others are listed, and the exit code is the first failure’s.';
  static override examples = [
    '<%= config.bin %> vm list',
    '<%= config.bin %> vm list --json',
    '<%= config.bin %> vm list --host lab2',
    '<%= config.bin %> vm list --host lab1,lab2',
    '<%= config.bin %> vm list --all-hosts --json',
  ];

  static override flags = { ...fleetFlags };

  async run(): Promise<VmListResult> {
    const fleet = await this.onEachHost(async ({ backend }) => withVia(await backend.listVms(), backend.via));
    if (fleet !== undefined) {
      process.exitCode = fleetExitCode(fleet);
      this.print(renderByHost(fleet, (vms) => ({ heading: `${vms.length} VM(s)`, body: renderVms(vms) })));
      return fleetResult(fleet, (vms) => ({ vms }));
    }
    const vms = await this.withBackend(async (backend) => withVia(await backend.listVms(), backend.via));
    this.print(renderVms(vms));
    return vms;
  }
}

function withVia(vms: VmSummary[], via: Via): VmListHostResult {
  return vms.map((vm) => ({ ...vm, via }));
}

function renderVms(vms: VmListHostResult): string {
  return renderTable(vms, [
    { header: 'NAME', value: (vm) => vm.name },
    { header: 'ID', value: (vm) => vm.id },
    { header: 'STATUS', value: (vm) => vm.status },
    { header: 'CPU', value: (vm) => vm.cpu },
    { header: 'MEMORY MB', value: (vm) => vm.memoryMB },
    { header: 'IP', value: (vm) => vm.ip },
    { header: 'GUEST', value: (vm) => vm.guestId },
    { header: 'MANAGED', value: (vm) => vm.managed },
    { header: 'EXPIRES', value: (vm) => vm.expiresAt },
  ]);
}
