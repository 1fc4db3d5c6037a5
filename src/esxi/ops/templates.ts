/**
 * `template list` over the API: every VM in ONE RetrievePropertiesEx, then the candidates kept
 * client-side (vcsim does not answer keyed paths such as config.extraConfig["ceso.template"], so
 * the whole extraConfig is read). What is a candidate and what makes one unfit is decided in
 * core/templates.ts, the same for the SSH path.
 */
import { templatesOf, type TemplateFacts, type TemplateInfo } from '../../core/templates.js';
import { nicTypeName, toPowerState, type VmDisk } from '../../core/vm.js';
import { asArray, asBoolean, asNumber, asObject, asString } from '../soap/xml.js';
import type { VimClient } from '../vim/client.js';
import { inventoryTraversal, retrieveProperties, type ObjectProperties } from '../vim/property-collector.js';
import { extraConfigOf } from './inventory.js';

const TEMPLATE_PATHS = ['name', 'config.template', 'runtime.powerState', 'config.guestId', 'config.hardware.device', 'config.extraConfig'];

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
