/**
 * `template list` over SSH, with the API path's result shape and order: ONE remote command, like
 * `vm list` (commands.ts listScript): getallvms, then for every vmid get.summary (power state,
 * guest OS, config.template) and the ceso.* lines of its .vmx, and device.getdevices (disks,
 * NICs) only for the VMs the script itself sees are candidates. The final choice is made here by
 * the rules the API path uses (core/templates.ts); a candidate the script's quick test missed
 * gets its devices read in one more command.
 */
import { CesoError } from '../../core/errors.js';
import { isTemplateCandidate, templatesOf, type TemplateFacts, type TemplateInfo } from '../../core/templates.js';
import { GETALLVMS, newNonce, perVmScript, sectionsScript, splitSections, vimCmd, type SectionOutput } from '../commands.js';
import type { SshContext } from '../context.js';
import { nonEmpty, parseDevices, parseGetAllVms, parseSummary, type VmRow } from '../parse.js';
import { quote } from '../quote.js';
import { checkOutput } from '../run.js';
import { parseVmodl, pickBoolean } from '../vmodl.js';
import { VmxFile } from '../vmx.js';
import { extraConfigOf } from './inventory.js';

const VANISHED = ['NotFound', 'ManagedObjectNotFound'];

export async function listTemplates(context: SshContext, options: { defaultTemplate?: string }): Promise<TemplateInfo[]> {
  const nonce = newNonce();
  const result = await context.shell.exec(templatesScript(nonce, context.volumesRoot, options.defaultTemplate), { timeoutMs: 600_000 });
  const sections = splitSections(nonce, result.stdout);
  const all = sections.get('getallvms');
  if (all === undefined) {
    checkOutput(result, 'sh', { what: 'list the templates' });
    throw new CesoError('HOST_FAULT', 'list the templates: the host printed no inventory', {
      details: { stdout: result.stdout.slice(0, 2000), stderr: result.stderr.slice(0, 2000) },
    });
  }
  check(all, GETALLVMS, 'list the VMs (vim-cmd vmsvc/getallvms)');

  const candidates: Array<{ row: VmRow; facts: Omit<TemplateFacts, 'disks' | 'nicCount'>; devices: SectionOutput | undefined }> = [];
  for (const row of parseGetAllVms(all.output).rows) {
    const section = sections.get(`vm.${row.id}`);
    if (section === undefined) continue;
    const what = `read ${row.name} (vmid ${row.id})`;
    if (check(section, vimCmd.summary(row.id), what, VANISHED)) continue; // unregistered while the list ran
    const summary = parseSummary(section.output);
    const facts = {
      name: summary.name ?? row.name,
      id: row.id,
      guestId: summary.guestId ?? nonEmpty(row.guestId),
      powerState: summary.powerState,
      markedTemplate: pickBoolean(parseVmodl(section.output), 'config.template'),
      extraConfig: extraConfigOf(VmxFile.parse(sections.get(`vmx.${row.id}`)?.output ?? '')),
    };
    if (isTemplateCandidate(facts, options.defaultTemplate)) candidates.push({ row, facts, devices: sections.get(`dev.${row.id}`) });
  }

  const missed = candidates.filter((candidate) => candidate.devices === undefined);
  if (missed.length > 0) {
    const again = newNonce();
    const reread = await context.shell.exec(sectionsScript(again, missed.map(({ row }) => ({ label: `dev.${row.id}`, command: vimCmd.devices(row.id) }))));
    const resections = splitSections(again, reread.stdout);
    for (const candidate of missed) candidate.devices = resections.get(`dev.${candidate.row.id}`);
  }

  const facts: TemplateFacts[] = [];
  for (const { row, facts: known, devices } of candidates) {
    if (devices === undefined) throw new CesoError('HOST_FAULT', `read the devices of ${row.name} (vmid ${row.id}): the host printed nothing`);
    if (check(devices, vimCmd.devices(row.id), `read the devices of ${row.name} (vmid ${row.id})`, VANISHED)) continue;
    const hardware = parseDevices(devices.output);
    facts.push({
      ...known,
      disks: hardware.disks.map(({ label, file, capacityGB, thin, parent }) => ({ label, file, capacityGB, thin, parent })),
      nicCount: hardware.nics.length,
    });
  }
  return templatesOf(facts, options.defaultTemplate);
}

/** Checks a section's output; true when it is one of the tolerated faults (the VM is gone). */
function check(section: SectionOutput, command: string, what: string, tolerate: readonly string[] = []): boolean {
  return checkOutput({ stdout: section.output, stderr: '', code: section.code }, command, { what, tolerate }).fault !== null;
}

/**
 * listScript's loop (commands.ts) plus, for a VM whose summary says `template = true`, whose .vmx
 * has ceso.template = "true", or whose summary holds the name defaults.template names (vim-cmd
 * prints names raw between quotes), its device.getdevices as section `dev.<id>`. The quick test
 * may over-select (the final choice is made in TypeScript), never misses a marked one; a name
 * with a newline is not looked for here and is caught by the follow-up read.
 */
export function templatesScript(nonce: string, volumesRoot: string, defaultTemplate?: string, parallel = 8): string {
  const want = defaultTemplate === undefined || defaultTemplate === '' || defaultTemplate.includes('\n') ? '' : `name = "${defaultTemplate}"`;
  return perVmScript({
    nonce,
    volumesRoot,
    tempName: 'ceso-templates',
    parallel,
    variables: `want=${quote(want)}`,
    perVm: [
      `  c=0`,
      `  case "$s" in *'template = true'*) c=1 ;; esac`,
      `  if printf '%s\\n' "$x" | grep -qi '^[[:space:]]*ceso\\.template[[:space:]]*=[[:space:]]*"true"'; then c=1; fi`,
      `  if [ -n "$want" ] && printf '%s\\n' "$s" | grep -qF -- "$want"; then c=1; fi`,
      `  if [ "$c" = 1 ]; then`,
      `    d=$(vim-cmd vmsvc/device.getdevices "$1" </dev/null 2>&1); rc=$?`,
      `    echo "$n dev.$1"; printf '%s\\n' "$d"; echo "$n dev.$1 rc $rc"`,
      `  fi`,
    ],
  });
}
