import { BaseCommand } from '../../cli/base-command.js';
import { renderTable } from '../../cli/table.js';
import type { TemplateInfo } from '../../core/templates.js';
import type { Via, VmDisk } from '../../core/vm.js';

export type TemplateListResult = Array<TemplateInfo & { via: Via }>;

export default class TemplateList extends BaseCommand<typeof TemplateList> {
  static override summary = 'List the VMs that can serve as templates';
  static override description =
    'Lists the templates ceso imported (ceso.template = "true"), the VMs marked as templates and the VM named by ' +
    'defaults.template, with their guest OS and disks, and whether vm create can use each now: a template must be ' +
    'powered off and have a disk and a network adapter. VMs ceso created are not templates and are not listed.';
  static override examples = [
    '<%= config.bin %> template list',
    '<%= config.bin %> template list --json',
    '<%= config.bin %> template list --host lab2 --via ssh',
  ];

  async run(): Promise<TemplateListResult> {
    const { defaults } = this.target();
    const options = defaults.template === undefined ? {} : { defaultTemplate: defaults.template };
    const { templates, via } = await this.withBackend(async (backend) => ({ templates: await backend.listTemplates(options), via: backend.via }));
    const lines: string[] = [];
    if (templates.length === 0) {
      lines.push('No templates: import one with ceso template import ..., or power off a VM and set defaults.template');
    } else {
      lines.push(
        renderTable(templates, [
          { header: 'NAME', value: (template) => template.name },
          { header: 'ID', value: (template) => template.id },
          { header: 'GUEST', value: (template) => template.guestId },
          { header: 'DISKS', value: (template) => template.disks.map(diskText).join(', ') },
          { header: 'IMPORTED FROM', value: (template) => template.importedFrom },
          { header: 'FIT', value: (template) => (template.fit ? 'yes' : `no: ${template.unfitReasons.join('; ')}`) },
        ]),
      );
    }
    if (defaults.template !== undefined && !templates.some((template) => template.name === defaults.template)) {
      lines.push(`defaults.template "${defaults.template}" names no VM on this host`);
    }
    this.print(lines.join('\n'));
    return templates.map((template) => ({ ...template, via }));
  }
}

/** "10 GB thin", "40 GB thick", "? GB" when the host did not say. */
function diskText(disk: VmDisk): string {
  const size = disk.capacityGB === null ? '? GB' : `${disk.capacityGB} GB`;
  return disk.thin === null ? size : `${size} ${disk.thin ? 'thin' : 'thick'}`;
}
