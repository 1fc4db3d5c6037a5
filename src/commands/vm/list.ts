import { BaseCommand } from '../../cli/base-command.js';
import { renderTable } from '../../cli/table.js';
import type { Via, VmSummary } from '../../core/vm.js';

export type VmListResult = Array<VmSummary & { via: Via }>;

export default class VmList extends BaseCommand<typeof VmList> {
  static override summary = 'List every VM on the host';
  static override description =
    'Lists all VMs with their power state, size, IP and whether ceso manages them. ' +
    'All VMs come back in one property-collector round trip.';
  static override examples = ['<%= config.bin %> vm list', '<%= config.bin %> vm list --json', '<%= config.bin %> vm list --host lab2'];

  async run(): Promise<VmListResult> {
    const { vms, via } = await this.withBackend(async (backend) => ({ vms: await backend.listVms(), via: backend.via }));
    this.print(
      renderTable(vms, [
        { header: 'NAME', value: (vm) => vm.name },
        { header: 'ID', value: (vm) => vm.id },
        { header: 'STATUS', value: (vm) => vm.status },
        { header: 'CPU', value: (vm) => vm.cpu },
        { header: 'MEMORY MB', value: (vm) => vm.memoryMB },
        { header: 'IP', value: (vm) => vm.ip },
        { header: 'GUEST', value: (vm) => vm.guestId },
        { header: 'MANAGED', value: (vm) => vm.managed },
        { header: 'EXPIRES', value: (vm) => vm.expiresAt },
      ]),
    );
    return vms.map((vm) => ({ ...vm, via }));
  }
}
