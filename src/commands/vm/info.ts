import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { renderVm } from '../../cli/render.js';
import type { Via, VmDetails } from '../../core/vm.js';

export type VmInfoResult = VmDetails & { via: Via };

export default class VmInfo extends BaseCommand<typeof VmInfo> {
  static override summary = 'Show one VM in detail';
  static override description =
    'Shows a VM’s hardware, disks, NICs, snapshots, guestinfo keys (names and sizes, never values) and ceso markers. ' +
    'When several VMs share the name, pick one with --id.';
  static override examples = ['<%= config.bin %> vm info web1', '<%= config.bin %> vm info web1 --json', '<%= config.bin %> vm info web1 --id 42'];

  static override args = {
    name: Args.string({ description: 'The VM’s exact name', required: true }),
  };

  static override flags = {
    id: Flags.string({ description: 'The VM’s managed object id, to choose among VMs that share a name' }),
  };

  async run(): Promise<VmInfoResult> {
    const selector = { name: this.args.name, ...(this.flags.id === undefined ? {} : { id: this.flags.id }) };
    const { vm, via } = await this.withBackend(async (backend) => ({ vm: await backend.getVm(selector), via: backend.via }));
    this.print(renderVm(vm));
    return { ...vm, via };
  }
}
