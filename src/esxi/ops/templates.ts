/**
 * `template list` over the API: every VM in ONE RetrievePropertiesEx, then the candidates kept
 * client-side (vcsim does not answer keyed paths such as config.extraConfig["ceso.template"], so
 * the whole extraConfig is read). The rules of what is a candidate and what makes one unfit are
 * here, pure, and shared with the SSH path (src/ssh/ops/templates.ts) so both answer alike.
 */
import { byNameThenId } from '../../core/order.js';
import type { TemplateInfo } from '../../core/templates.js';
import { MARKERS, nicTypeName, toPowerState, type PowerState, type VmDisk } from '../../core/vm.js';
import { asArray, asBoolean, asNumber, asObject, asString } from '../soap/xml.js';
import type { VimClient } from '../vim/client.js';
import { inventoryTraversal, retrieveProperties, type ObjectProperties } from '../vim/property-collector.js';
import { extraConfigOf } from './inventory.js';

const TEMPLATE_PATHS = ['name', 'config.template', 'runtime.powerState', 'config.guestId', 'config.hardware.device', 'config.extraConfig'];

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

/** The VMs that can serve as templates, fit or not: ONE property-collector round trip. */
export async function listTemplates(client: VimClient, options: { defaultTemplate?: string }): Promise<TemplateInfo[]> {
  const { rootFolder } = await client.connect();
  const objects = await retrieveProperties(
    client,
    [{ obj: rootFolder, selectSet: inventoryTraversal() }],
    [{ type: 'VirtualMachine', paths: TEMPLATE_PATHS }],
  );
  return templatesOf(objects.map(factsOf), options.defaultTemplate);
}

function factsOf(object: ObjectProperties): TemplateFacts {
  const { props } = object;
  const disks: VmDisk[] = [];
  let nicCount = 0;
  // The device mapping of vm info (inventory.ts detailsOf), so both commands show a disk alike.
  for (const device of asArray(props['config.hardware.device']).map(asObject)) {
    const type = device._type ?? '';
    if (type === 'VirtualDisk') {
      const backing = asObject(device.backing);
      const bytes = asNumber(device.capacityInBytes) ?? (asNumber(device.capacityInKB) ?? 0) * 1024;
      disks.push({
        label: nonEmpty(asString(asObject(device.deviceInfo).label)),
        file: asString(backing.fileName) ?? '',
        capacityGB: bytes > 0 ? Math.round((bytes / 1024 ** 3) * 100) / 100 : null,
        thin: asBoolean(backing.thinProvisioned) ?? null,
        parent: nonEmpty(asString(asObject(backing.parent).fileName)),
      });
    } else if ('macAddress' in device || nicTypeName(type) !== type || /^Virtual(E1000e?|Vmxnet\d?|Pcnet32|Sriov)/.test(type)) {
      nicCount += 1;
    }
  }
  return {
    name: asString(props.name) ?? '',
    id: object.ref.value,
    guestId: nonEmpty(asString(props['config.guestId'])),
    powerState: toPowerState(asString(props['runtime.powerState'])),
    markedTemplate: asBoolean(props['config.template']) ?? null,
    extraConfig: extraConfigOf(props['config.extraConfig']),
    disks,
    nicCount,
  };
}

function nonEmpty(value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value;
}
