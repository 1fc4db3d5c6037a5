import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { renderFields, renderTable } from '../../cli/table.js';
import type { Via, VmDetails, VmSnapshot } from '../../core/vm.js';

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
    this.print(describe(vm));
    return { ...vm, via };
  }
}

function describe(vm: VmDetails): string {
  const sections = [
    renderFields([
      ['Name', vm.name],
      ['Id', vm.id],
      ['UUID', vm.uuid],
      ['Status', vm.status],
      ['CPU', vm.cpu],
      ['Memory MB', vm.memoryMB],
      ['IP', vm.ip],
      ['Guest OS', vm.guestId],
      ['Firmware', vm.firmware],
      ['VMX', vm.vmxPath],
      ['Managed by ceso', vm.managed],
      ['Expires', vm.expiresAt],
      ['Annotation', vm.annotation],
    ]),
  ];
  if (vm.disks.length > 0) sections.push(renderTable(vm.disks, [
    { header: 'DISK', value: (disk) => disk.file },
    { header: 'GB', value: (disk) => disk.capacityGB },
    { header: 'THIN', value: (disk) => disk.thin },
  ]));
  if (vm.nics.length > 0) sections.push(renderTable(vm.nics, [
    { header: 'NIC', value: (nic) => nic.label },
    { header: 'NETWORK', value: (nic) => nic.network },
    { header: 'MAC', value: (nic) => nic.mac },
    { header: 'TYPE', value: (nic) => nic.type },
  ]));
  if (vm.snapshots.length > 0) sections.push(`Snapshots:\n${snapshotLines(vm.snapshots, '  ').join('\n')}`);
  if (vm.guestinfo.length > 0) sections.push(`Guestinfo keys:\n${vm.guestinfo.map((key) => `  ${key.key} (${key.bytes} bytes)`).join('\n')}`);
  const markers = Object.entries(vm.markers);
  if (markers.length > 0) sections.push(`Markers:\n${markers.map(([key, value]) => `  ${key} = ${value}`).join('\n')}`);
  return sections.join('\n\n');
}

function snapshotLines(snapshots: VmSnapshot[], indent: string): string[] {
  return snapshots.flatMap((snapshot) => [
    `${indent}${snapshot.name}${snapshot.current ? ' (current)' : ''}`,
    ...snapshotLines(snapshot.children, `${indent}  `),
  ]);
}
