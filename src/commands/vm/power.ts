import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { changeFlags, waitFlags } from '../../cli/flags.js';
import type { PowerOutcome } from '../../core/backend.js';
import type { DryRunResult } from '../../core/operations.js';
import { announceWait, checkReadyBeforeChange, waitAfterChange, waitRequestFrom, type WaitFields } from '../../core/readiness.js';
import { POWER_ACTIONS, type PowerAction } from '../../core/requests.js';
import { planPowerVm } from '../../core/services.js';
import type { Via } from '../../core/vm.js';

export type VmPowerResult = DryRunResult | (PowerOutcome & { via: Via; durationMs: number } & WaitFields);

export default class VmPower extends BaseCommand<typeof VmPower> {
  static override summary = 'Power a VM on, off, shut it down, reset or suspend it';
  static override description =
    '"shutdown" asks the guest (VMware Tools) and waits for it to power off up to --timeout; "off" cuts the power. ' +
    'Asking for the state a VM is already in succeeds and says so. With "on", --wait ip|ready then waits for the guest (see ceso vm ip).';
  static override examples = ['<%= config.bin %> vm power web1 on', '<%= config.bin %> vm power web1 on --wait ready --json', '<%= config.bin %> vm power web1 shutdown --timeout 300', '<%= config.bin %> vm power web1 off --json'];

  static override args = {
    name: Args.string({ description: 'The VM’s exact name', required: true }),
    action: Args.string({ description: 'What to do', required: true, options: [...POWER_ACTIONS] }),
  };

  static override flags = {
    id: Flags.string({ description: 'The VM’s managed object id, when several VMs share its name' }),
    timeout: Flags.integer({ description: 'Seconds to wait for a guest shutdown', default: 120, min: 1 }),
    ...waitFlags,
    ...changeFlags,
  };

  static override audited = true;

  async run(): Promise<VmPowerResult> {
    const vm = { name: this.args.name, ...(this.flags.id === undefined ? {} : { id: this.flags.id }) };
    const request = { vm, action: this.args.action as PowerAction, timeoutMs: this.flags.timeout * 1000 };
    const wait = waitRequestFrom(this.flags, { powersOn: request.action === 'on', why: `only "on" can be waited for, not "${request.action}"` });
    return this.withVmLock(this.args.name, () => this.withServices(async (services) => {
      const mutation = await planPowerVm(services, request);
      await checkReadyBeforeChange(services.backend, vm, wait);
      const result = await this.runMutation(mutation, { dryRun: this.flags['dry-run'] });
      if ('dryRun' in result) return result;
      const via = services.backend.via;
      this.print(result.message);
      if (wait !== undefined) announceWait(result.name, wait, this.jsonEnabled());
      const waited = await waitAfterChange(services.backend, { name: result.name, id: result.id }, wait);
      if (waited.ip !== null) this.print(`${result.name}: ${waited.ip}${waited.ready === true ? ' (ready)' : ''}`);
      return { ...result, ...waited, via };
    }));
  }
}
