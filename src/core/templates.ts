/** What `template list` reports of a VM that can serve as a template, and the rules both paths decide it by. */
import { byNameThenId } from './order.js';
import { MARKERS, type PowerState, type VmDisk } from './vm.js';

export interface TemplateInfo {
  name: string;
  id: string;
  guestId: string | null;
  disks: VmDisk[];
  /** ceso.importedFrom, when ceso imported it. */
  importedFrom: string | null;
  /** Whether `vm create --template NAME` can use it now. */
  fit: boolean;
  /** Why not, in words ("powered on", "no disk", "no network adapter"); empty when fit. */
  unfitReasons: string[];
}

/** What either path reads of a VM to decide whether it is a template and whether it is fit. */
export interface TemplateFacts {
  name: string;
  id: string;
  guestId: string | null;
  powerState: PowerState | null;
  /** config.template: marked as a template (vCenter); null when unknown. */
  markedTemplate: boolean | null;
  /** extraConfig (the .vmx's keys over SSH). */
  extraConfig: ReadonlyMap<string, string>;
  disks: VmDisk[];
  nicCount: number;
}

export const UNFIT = {
  poweredOn: 'powered on: a template must be powered off',
  suspended: 'suspended: a template must be powered off',
  unknownPower: 'power state unknown: a template must be powered off',
  noDisk: 'no disk',
  noNic: 'no network adapter (NIC)',
} as const;

/** An extraConfig value by key, keys compared without case (as ESXi does in the .vmx). */
export function markerValue(extraConfig: ReadonlyMap<string, string>, key: string): string | undefined {
  const exact = extraConfig.get(key);
  if (exact !== undefined) return exact;
  const lower = key.toLowerCase();
  for (const [candidate, value] of extraConfig) if (candidate.toLowerCase() === lower) return value;
  return undefined;
}

/**
 * A ceso template (ceso.template = "true": a VM ceso MADE carries the template's name there and
 * is not one), a VM marked as a template, or the one the config names as defaults.template.
 */
export function isTemplateCandidate(
  vm: Pick<TemplateFacts, 'name' | 'markedTemplate' | 'extraConfig'>,
  defaultTemplate: string | undefined,
): boolean {
  return markerValue(vm.extraConfig, MARKERS.template) === 'true' || vm.markedTemplate === true || (defaultTemplate !== undefined && vm.name === defaultTemplate);
}

/** Why `vm create --template NAME` could not use it now; empty when it can. */
export function unfitReasons(vm: Pick<TemplateFacts, 'powerState' | 'disks' | 'nicCount'>): string[] {
  const reasons: string[] = [];
  if (vm.powerState === 'poweredOn') reasons.push(UNFIT.poweredOn);
  else if (vm.powerState === 'suspended') reasons.push(UNFIT.suspended);
  else if (vm.powerState === null) reasons.push(UNFIT.unknownPower);
  if (vm.disks.length === 0) reasons.push(UNFIT.noDisk);
  if (vm.nicCount === 0) reasons.push(UNFIT.noNic);
  return reasons;
}

export function templateInfoOf(vm: TemplateFacts): TemplateInfo {
  const reasons = unfitReasons(vm);
  const importedFrom = markerValue(vm.extraConfig, MARKERS.importedFrom);
  return {
    name: vm.name,
    id: vm.id,
    guestId: vm.guestId,
    disks: vm.disks,
    importedFrom: importedFrom === undefined || importedFrom === '' ? null : importedFrom,
    fit: reasons.length === 0,
    unfitReasons: reasons,
  };
}

/** The candidates among facts, described and sorted like `vm list`. */
export function templatesOf(vms: readonly TemplateFacts[], defaultTemplate: string | undefined): TemplateInfo[] {
  return vms
    .filter((vm) => isTemplateCandidate(vm, defaultTemplate))
    .map(templateInfoOf)
    .sort(byNameThenId);
}
