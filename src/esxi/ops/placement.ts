import { CesoError } from '../../core/errors.js';
import type { MoRef} from '../soap/xml.js';
import { Typed, asBoolean, asMoRef, asNumber, asString } from '../soap/xml.js';
import type { VimClient } from '../vim/client.js';
import { retrieveProperties, type ObjectProperties, type PropertyQuery } from '../vim/property-collector.js';
import { networkNotFound, pickDatastore } from '../../core/provisioning.js';

export interface DatastoreInfo {
  ref: MoRef;
  name: string;
  freeBytes: number | null;
  capacityBytes: number | null;
  accessible: boolean;
}

export interface NetworkInfo {
  ref: MoRef;
  name: string;
}

/** Where new VMs go: the datacenter's VM folder, a resource pool, and the datastores and networks. */
export interface Placement {
  datacenter: MoRef;
  vmFolder: MoRef;
  resourcePool: MoRef;
  datastores: DatastoreInfo[];
  networks: NetworkInfo[];
}

/** Reads the placement inventory in one round trip: datacenter, its datastores, networks and pools. */
export async function readPlacement(client: VimClient): Promise<Placement> {
  const { rootFolder } = await client.connect();
  const { starts, requests } = placementQuery(rootFolder);
  return placementOf(await retrieveProperties(client, starts, requests));
}

/** The read of readPlacement, to share a RetrievePropertiesEx with another (see placementOf). */
export function placementQuery(rootFolder: MoRef): PropertyQuery {
  const folder = new Typed('TraversalSpec', {
    name: 'folder',
    type: 'Folder',
    path: 'childEntity',
    skip: false,
    selectSet: [{ name: 'folder' }, { name: 'dcDatastores' }, { name: 'dcNetworks' }, { name: 'dcHosts' }],
  });
  const spec = (name: string, path: string, next: string[] = []): Typed =>
    new Typed('TraversalSpec', { name, type: 'Datacenter', path, skip: false, selectSet: next.map((item) => ({ name: item })) });
  return {
    starts: [{ obj: rootFolder, selectSet: [folder, spec('dcDatastores', 'datastore'), spec('dcNetworks', 'network'), spec('dcHosts', 'hostFolder', ['folder'])] }],
    requests: [
      { type: 'Datacenter', paths: ['name', 'vmFolder'] },
      { type: 'Datastore', paths: ['name', 'summary.freeSpace', 'summary.capacity', 'summary.accessible'] },
      { type: 'Network', paths: ['name'] },
      { type: 'ComputeResource', paths: ['resourcePool'] },
    ],
  };
}

/** The placement in what placementQuery read. */
export function placementOf(objects: ObjectProperties[]): Placement {
  const datacenter = objects.find((object) => object.ref.type === 'Datacenter');
  const compute = objects.find((object) => asMoRef(object.props.resourcePool) !== undefined);
  const vmFolder = asMoRef(datacenter?.props.vmFolder);
  const resourcePool = asMoRef(compute?.props.resourcePool);
  if (datacenter === undefined || vmFolder === undefined || resourcePool === undefined) {
    throw new CesoError('HOST_FAULT', 'the host has no datacenter, VM folder or resource pool to place a VM in');
  }
  return {
    datacenter: datacenter.ref,
    vmFolder,
    resourcePool,
    datastores: objects
      .filter((object) => object.ref.type === 'Datastore')
      .map((object) => ({
        ref: object.ref,
        name: asString(object.props.name) ?? object.ref.value,
        freeBytes: asNumber(object.props['summary.freeSpace']) ?? null,
        capacityBytes: asNumber(object.props['summary.capacity']) ?? null,
        accessible: asBoolean(object.props['summary.accessible']) ?? true,
      })),
    networks: objects
      .filter((object) => object.ref.type === 'Network' || object.ref.type === 'DistributedVirtualPortgroup' || object.ref.type === 'OpaqueNetwork')
      .map((object) => ({ ref: object.ref, name: asString(object.props.name) ?? object.ref.value })),
  };
}

export function findDatastore(placement: Placement, name: string): DatastoreInfo {
  return pickDatastore(placement.datastores, name);
}

export function findNetwork(placement: Placement, name: string): NetworkInfo {
  const network = placement.networks.find((item) => item.name === name);
  if (network === undefined) throw networkNotFound(name, placement.networks.map((item) => item.name));
  return network;
}
