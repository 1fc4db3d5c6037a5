import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { waitFlags } from '../../cli/flags.js';
import type { GuestWaitOutcome } from '../../core/backend.js';
import { announceWait, guestAddress, waitRequestFrom } from '../../core/readiness.js';
import { describePowerState } from '../../core/power.js';
import type { Via } from '../../core/vm.js';

export type VmIpResult = GuestWaitOutcome & { via: Via };

export default class VmIp extends BaseCommand<typeof VmIp> {
  static override summary = 'Show the IP address the guest reports, or wait for it (--wait ip|ready)';
  static override description =
    'Without --wait, answers at once with what the host reports now. The address is the one the guest reports through ' +
    'VMware Tools on the VM’s first NIC (matched by its MAC); when the VM’s cloud-init metadata gives the NIC a static ' +
    'address, only that address counts. --wait ip waits until it is there; --wait ready also waits until cloud-init has ' +
    'finished the user data (ceso’s ready marker, guestinfo.ceso.ready, equals the VM’s instance-id). A powered-off VM ' +
    'cannot be waited for (exit 4); a wait that runs out is exit 8 TIMEOUT, naming what was last seen.';
  static override examples = [
    '<%= config.bin %> vm ip web1',
    'ssh ubuntu@$(<%= config.bin %> vm ip web1 --wait ip)',
    '<%= config.bin %> vm ip web1 --wait ready --wait-timeout 900 --json',
  ];

  static override args = {
    name: Args.string({ description: 'The VM’s exact name', required: true }),
  };

  static override flags = {
    id: Flags.string({ description: 'The VM’s managed object id, to choose among VMs that share a name' }),
    ...waitFlags,
  };

  async run(): Promise<VmIpResult> {
    const selector = { name: this.args.name, ...(this.flags.id === undefined ? {} : { id: this.flags.id }) };
    const wait = waitRequestFrom(this.flags, { powersOn: true });
    const { outcome, via } = await this.withBackend(async (backend) => {
      if (wait !== undefined) announceWait(this.args.name, wait, this.jsonEnabled());
      return { outcome: await guestAddress(backend, selector, wait), via: backend.via };
    });
    if (outcome.ip !== null) {
      this.print(outcome.ip);
    } else if (!this.jsonEnabled()) {
      process.stderr.write(`${outcome.name} reports no IP address yet: ${describePowerState(outcome.powerState)}, VMware Tools ${outcome.toolsStatus ?? 'status unknown'}\n`);
    }
    return { ...outcome, via };
  }
}
