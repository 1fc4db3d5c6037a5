import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { changeFlags, idempotencyFlags, guestFlags, provisionFlags, resourceFlags, waitFlags } from '../../cli/flags.js';
import { renderVm } from '../../cli/render.js';
import type { DryRunResult } from '../../core/operations.js';
import { announceWait, waitAfterChange, waitRequestFrom, type WaitFields } from '../../core/readiness.js';
import { createRequestFrom } from '../../core/requests.js';
import { planCreateVm } from '../../core/services.js';
import type { Via, VmDetails } from '../../core/vm.js';

export type VmCreateResult = DryRunResult | (VmDetails & { via: Via; durationMs: number; replayed?: boolean } & Omit<WaitFields, 'ip'>);

export default class VmCreate extends BaseCommand<typeof VmCreate> {
  static override summary = 'Create an Ubuntu VM from a template, configured by cloud-init';
  static override description =
    'Copies the template’s disks (thin), creates the VM with a fresh MAC and uuid, writes cloud-init guestinfo ' +
    '(hostname, network by MAC, the ubuntu user with your SSH keys), grows the disk and powers it on. ' +
    'On vCenter it clones natively. With --linked no disk is copied: the disk is a child of the template’s ' +
    'ceso-linked-base snapshot (taken once), made in the same CreateVM_Task. If any step fails, or on Ctrl-C, what was made is removed again.';
  static override examples = [
    '<%= config.bin %> vm create web1 --ip 192.168.1.100/24 --gateway 192.168.1.1 --dns 1.1.1.1 --ssh-key @~/.ssh/id_ed25519.pub',
    '<%= config.bin %> vm create web1 --template ubuntu-24.04-template --cpu 4 --memory 8 --disk 80 --dry-run',
    '<%= config.bin %> vm create ci-runner-7 --ttl 2h --json',
    '<%= config.bin %> vm create web2 --ip 192.168.1.101/24 --gateway 192.168.1.1 --wait ready --json',
    '<%= config.bin %> vm create ci-8 --linked --add-disk 20 --ttl 2h --wait ip',
  ];

  static override args = {
    name: Args.string({ description: 'Name of the new VM (also its hostname)', required: true }),
  };

  static override flags = {
    template: Flags.string({ description: 'Powered-off VM to copy (default: defaults.template)' }),
    ...resourceFlags,
    ...guestFlags,
    ...provisionFlags,
    ...waitFlags,
    ...changeFlags,
    ...idempotencyFlags,
  };

  static override audited = true;

  async run(): Promise<VmCreateResult> {
    const target = this.target();
    const { request, diskFromDefaults } = createRequestFrom(this.args.name, this.flags, target.defaults);
    const wait = waitRequestFrom(this.flags, { powersOn: request.powerOn, why: '--no-power-on leaves it off', ipCidr: request.guest.ipCidr });
    return this.idempotent('vm create', () => this.withVmLock(this.args.name, () => this.withServices(async (services) => {
      const create = async () => this.runMutation(await planCreateVm(services, request, { diskFromDefaults }), { dryRun: this.flags['dry-run'] });
      // The first linked clone of a template takes its base snapshot: linked creates of one
      // template are planned and made one at a time (seconds each; the waits run in parallel).
      const result = request.linked ? await this.withVmLock(request.template, create, { minimumWaitSeconds: 600 }) : await create();
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
