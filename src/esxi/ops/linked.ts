import { dependentsOf, type DiskUser, type LinkedDependent } from '../../core/linked.js';
import { asArray, asObject, asString } from '../soap/xml.js';
import type { VimClient } from '../vim/client.js';
import { inventoryTraversal, retrieveProperties } from '../vim/property-collector.js';
import { extraConfigOf } from './inventory.js';

/** Every VM's disk parents and markers, in one RetrievePropertiesEx. */
async function diskUsers(client: VimClient): Promise<DiskUser[]> {
  const { rootFolder } = await client.connect();
  const objects = await retrieveProperties(client, [{ obj: rootFolder, selectSet: inventoryTraversal() }], [{ type: 'VirtualMachine', paths: ['name', 'config.hardware.device', 'config.extraConfig'] }]);
  return objects.map((object) => ({
    name: asString(object.props.name) ?? object.ref.value,
    id: object.ref.value,
    parents: asArray(object.props['config.hardware.device'])
      .map(asObject)
      .filter((device) => device._type === 'VirtualDisk')
      .map((device) => asString(asObject(asObject(device.backing).parent).fileName) ?? '')
      .filter((file) => file !== ''),
    markers: extraConfigOf(object.props['config.extraConfig']),
  }));
}

/** The linked clones whose disks hang from the VM's. */
export async function linkedDependents(client: VimClient, vm: { id: string; vmxPath: string | null }): Promise<LinkedDependent[]> {
  return dependentsOf(vm, await diskUsers(client));
}
