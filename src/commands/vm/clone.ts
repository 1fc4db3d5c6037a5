import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { changeFlags, idempotencyFlags, guestFlags, provisionFlags, resourceFlags, waitFlags } from '../../cli/flags.js';
import { renderVm } from '../../cli/render.js';
import type { DryRunResult } from '../../core/operations.js';
import { announceWait, waitAfterChange, waitRequestFrom, type WaitFields } from '../../core/readiness.js';
import { cloneRequestFrom } from '../../core/requests.js';
import { planCloneVm } from '../../core/services.js';
import type { Via, VmDetails } from '../../core/vm.js';

export type VmCloneResult = DryRunResult | (VmDetails & { via: Via; durationMs: number; replayed?: boolean } & Omit<WaitFields, 'ip'>);

export default class VmClone extends BaseCommand<typeof VmClone> {
  static override summary = 'Cold-clone a powered-off VM, with a new identity and optionally a new IP';
  static override description =
    'Copies every disk of a powered-off VM into a new VM with a new uuid and MAC, and writes fresh cloud-init ' +
    'metadata (a NEW instance-id, its own hostname and, with --ip/--gateway/--dns, its own address) so the guest ' +
    're-configures itself. The source’s user data is kept unless --ssh-key or --user-data replace it.';
  static override examples = [
    '<%= config.bin %> vm clone web1 web2 --ip 192.168.1.101/24 --gateway 192.168.1.1',
    '<%= config.bin %> vm clone web1 web2 --dry-run --json',
    '<%= config.bin %> vm clone web1 web2 --linked   # a child of web1’s ceso-linked-base snapshot, no copy',
  ];

  static override args = {
    source: Args.string({ description: 'The powered-off VM to copy', required: true }),
    name: Args.string({ description: 'Name of the new VM (also its hostname)', required: true }),
  };

  static override flags = {
    'source-id': Flags.string({ description: 'The source’s managed object id, when several VMs share its name' }),
    ...resourceFlags,
    ...guestFlags,
    ...provisionFlags,
    ...waitFlags,
    ...changeFlags,
    ...idempotencyFlags,
  };

  static override audited = true;

  async run(): Promise<VmCloneResult> {
    const source = { name: this.args.source, ...(this.flags['source-id'] === undefined ? {} : { id: this.flags['source-id'] }) };
    const request = cloneRequestFrom(source, this.args.name, this.flags, this.target().defaults);
    const wait = waitRequestFrom(this.flags, { powersOn: request.powerOn, why: '--no-power-on leaves it off', ipCidr: request.guest.ipCidr });
    return this.idempotent('vm clone', () => this.withVmLock([this.args.source, this.args.name], () => this.withServices(async (services) => {
      const result = await this.runMutation(await planCloneVm(services, request), { dryRun: this.flags['dry-run'] });
      if ('dryRun' in result) return result;
      const via = services.backend.via;
      if (wait !== undefined) announceWait(result.name, wait, this.jsonEnabled());
      const waited = await waitAfterChange(services.backend, { name: result.name, id: result.id }, wait);
      const vm = { ...result, ip: waited.ip ?? result.ip, ready: waited.ready, waitedMs: waited.waitedMs, via };
      this.print(renderVm(vm));
      return vm;
    })));
  }
}
