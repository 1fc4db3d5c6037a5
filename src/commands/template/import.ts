import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { changeFlags } from '../../cli/flags.js';
import { renderVm } from '../../cli/render.js';
import type { ImportOutcome } from '../../core/import.js';
import type { DryRunResult } from '../../core/operations.js';
import { importRequestFrom } from '../../core/requests.js';
import { planImportTemplate } from '../../core/services.js';
import type { Via } from '../../core/vm.js';

export type TemplateImportResult = DryRunResult | (ImportOutcome & { via: Via; durationMs: number });

export default class TemplateImport extends BaseCommand<typeof TemplateImport> {
  static override summary = 'Import an OVA/OVF (e.g. Ubuntu’s cloud image) as a template';
  static override description =
    'Reads the package (an .ova, an .ovf with its files beside it, or an http(s):// URL of an .ova streamed straight to the host), ' +
    'asks the host for an import spec (CreateImportSpec), creates the VM (ImportVApp) and uploads its disks thin over the host’s NFC lease. ' +
    'Items the host does not support (a serial port on some hosts) are left out and named. The template is never powered on and gets ' +
    'no OVF environment or vApp property mapping, so cloud-init reads ceso’s guestinfo on every VM made from it. ' +
    'On failure or Ctrl-C the lease is aborted and the half-made VM and its folder are deleted. Needs the API (not SSH).';
  static override examples = [
    '<%= config.bin %> template import ubuntu-24.04-server-cloudimg-amd64.ova --name ubuntu-24.04',
    '<%= config.bin %> template import https://cloud-images.ubuntu.com/releases/22.04/release/ubuntu-22.04-server-cloudimg-amd64.ova --name ubuntu-22.04 --datastore datastore1',
    '<%= config.bin %> template import ./jammy.ovf --name jammy --network "VM Network" --dry-run',
  ];

  static override args = {
    source: Args.string({ description: 'An .ova file, an .ovf file (its files beside it), or an http(s):// URL of an .ova', required: true }),
  };

  static override flags = {
    name: Flags.string({ description: 'Name of the template VM', required: true }),
    datastore: Flags.string({ description: 'Datastore for the template (default: defaults.datastore, else the one with most free space)' }),
    network: Flags.string({ description: 'Port group every OVF network is mapped to (default: defaults.network, else "VM Network")' }),
    ...changeFlags,
  };

  static override audited = true;

  async run(): Promise<TemplateImportResult> {
    const request = importRequestFrom(this.args.source, this.flags, this.target().defaults);
    return this.withVmLock(request.name, () => this.withServices(async (services) => {
      const result = await this.runMutation(await planImportTemplate(services, request), { dryRun: this.flags['dry-run'] });
      if ('dryRun' in result) return result;
      for (const item of result.dropped) process.stderr.write(`Warning: left out ${item.name}: ${item.kind} (${item.reason})\n`);
      this.print(renderVm(result));
      return { ...result, via: services.backend.via };
    }));
  }
}
