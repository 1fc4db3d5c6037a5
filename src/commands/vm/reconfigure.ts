import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { changeFlags } from '../../cli/flags.js';
import { renderVm } from '../../cli/render.js';
import type { DryRunResult } from '../../core/operations.js';
import { reconfigureRequestFrom, type ReconfigureOutcome } from '../../core/reconfigure.js';
import { planReconfigureVm } from '../../core/services.js';
import type { Via } from '../../core/vm.js';

export type VmReconfigureResult = DryRunResult | (ReconfigureOutcome & { via: Via; durationMs: number });

const onOff = ['on', 'off'] as const;

export default class VmReconfigure extends BaseCommand<typeof VmReconfigure> {
  static override summary = 'Change a VM’s CPUs, memory, disks, network, hot-add flags or annotation';
  static override description =
    'Everything asked changes in one step (over the API one ReconfigVM_Task; over SSH a .vmx edit and reload, powered-off VMs only), ' +
    'or nothing does. Refused before anything changes, with the reason and the fix: shrinking a disk; growing a disk of a VM with ' +
    'snapshots, or a child (linked) disk; more or fewer CPUs or memory while the VM runs without its hot-add flag (and never fewer); ' +
    'hot-add flags changed while it runs; memory that is not a multiple of 4 MB; disks that do not fit in the datastore. ' +
    'Asking for what the VM already has changes nothing and succeeds with "changed": []. The result is the VM as vm info shows it, ' +
    'with its hot-add flags and the fields that changed.';
  static override examples = [
    '<%= config.bin %> vm reconfigure web1 --cpu 4 --memory 8',
    '<%= config.bin %> vm reconfigure web1 --disk 80 --dry-run',
    '<%= config.bin %> vm reconfigure web1 --disk 120 --disk-label "Hard disk 2"',
    '<%= config.bin %> vm reconfigure web1 --add-disk 100 --add-disk 20 --json',
    '<%= config.bin %> vm reconfigure web1 --network "VM Network 2" --nic 2',
    '<%= config.bin %> vm reconfigure web1 --cpu-hot-add on --memory-hot-add on',
    '<%= config.bin %> vm reconfigure web1 --annotation "owner: team-a"',
  ];

  static override args = {
    name: Args.string({ description: 'The VM’s exact name', required: true }),
  };

  static override flags = {
    id: Flags.string({ description: 'The VM’s managed object id, when several VMs share its name' }),
    cpu: Flags.integer({ description: 'Virtual CPUs' }),
    memory: Flags.string({ description: 'Memory in GB (e.g. 8 or 0.5)', exclusive: ['memory-mb'] }),
    'memory-mb': Flags.integer({ description: 'Memory in MB, a multiple of 4', exclusive: ['memory'] }),
    disk: Flags.string({ description: 'Grow disk 1 (or the one --disk-label / --disk-key picks) to this many GB; disks never shrink' }),
    'disk-label': Flags.string({ description: 'The disk --disk grows, by label (e.g. "Hard disk 2")', dependsOn: ['disk'], exclusive: ['disk-key'] }),
    'disk-key': Flags.integer({ description: 'The disk --disk grows, by device key (e.g. 2001)', dependsOn: ['disk'], exclusive: ['disk-label'] }),
    'add-disk': Flags.string({ description: 'Add a thin disk of this many GB on the first disk’s controller, next free unit (repeatable)', multiple: true }),
    network: Flags.string({ description: 'Move NIC 1 (or the one --nic picks) to this port group' }),
    nic: Flags.string({ description: 'The NIC --network moves: its number from 1, or its label (e.g. "Network adapter 2")', dependsOn: ['network'] }),
    'cpu-hot-add': Flags.option({ options: onOff, description: 'CPU hot add (the VM must be powered off to change it)' })(),
    'memory-hot-add': Flags.option({ options: onOff, description: 'Memory hot add (the VM must be powered off to change it)' })(),
    annotation: Flags.string({ description: 'The VM’s notes ("" clears them)' }),
    ...changeFlags,
  };

  static override audited = true;

  async run(): Promise<VmReconfigureResult> {
    const vm = { name: this.args.name, ...(this.flags.id === undefined ? {} : { id: this.flags.id }) };
    const request = reconfigureRequestFrom(vm, this.flags);
    return this.withVmLock(this.args.name, () =>
      this.withServices(async (services) => {
        const mutation = await planReconfigureVm(services, request);
        const result = await this.runMutation(mutation, { dryRun: this.flags['dry-run'] });
        if ('dryRun' in result) return result;
        this.print(result.changed.length === 0 ? `${result.name} already has what was asked: nothing changed` : `Reconfigured ${result.name}: ${result.changed.join(', ')}`);
        this.print(renderVm(result));
        return { ...result, via: services.backend.via };
      }),
    );
  }
}
