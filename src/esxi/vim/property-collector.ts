import type { MoRef} from '../soap/xml.js';
import { Typed, asArray, asObject, asString, type Decoded, type XmlObject } from '../soap/xml.js';
import type { VimClient } from './client.js';

export interface ObjectProperties {
  ref: MoRef;
  props: Record<string, Decoded | undefined>;
  /** The paths the host could not read for this object (missingSet), with the fault's type. */
  missing?: Array<{ path: string; fault: string }>;
}

export interface PropertyRequest {
  /** Managed object type whose properties are wanted, e.g. "VirtualMachine". */
  type: string;
  paths: string[];
}

/** Where a RetrievePropertiesEx starts and what it reads: a read that can share the call with another. */
export interface PropertyQuery {
  starts: Array<{ obj: MoRef; skip?: boolean; selectSet?: Typed[] }>;
  requests: PropertyRequest[];
}

/** Walks the whole inventory from the root folder: folders, datacenters' VM folders, vApps. */
export function inventoryTraversal(): Typed[] {
  const folders = new Typed('TraversalSpec', {
    name: 'folderTraversal',
    type: 'Folder',
    path: 'childEntity',
    skip: false,
    selectSet: [{ name: 'folderTraversal' }, { name: 'datacenterVmFolder' }, { name: 'vappVms' }],
  });
  const datacenter = new Typed('TraversalSpec', {
    name: 'datacenterVmFolder',
    type: 'Datacenter',
    path: 'vmFolder',
    skip: false,
    selectSet: [{ name: 'folderTraversal' }],
  });
  const vapp = new Typed('TraversalSpec', { name: 'vappVms', type: 'VirtualApp', path: 'vm', skip: false });
  return [folders, datacenter, vapp];
}

/** Follows `path` from the starting objects to related objects of `type` (e.g. a VM's networks). */
export function relation(name: string, type: string, path: string): Typed {
  return new Typed('TraversalSpec', { name, type, path, skip: false });
}

/**
 * One RetrievePropertiesEx (plus ContinueRetrievePropertiesEx while the host pages), returning
 * each object's requested properties by path.
 */
export async function retrieveProperties(
  client: VimClient,
  starts: Array<{ obj: MoRef; skip?: boolean; selectSet?: Typed[] }>,
  requests: PropertyRequest[],
): Promise<ObjectProperties[]> {
  const { propertyCollector } = await client.connect();
  const specSet: XmlObject = {
    propSet: requests.map((request) => ({ type: request.type, all: false, pathSet: request.paths })),
    objectSet: starts.map((start) => ({ obj: start.obj, skip: start.skip ?? false, selectSet: start.selectSet })),
  };
  const results: ObjectProperties[] = [];
  let page = asObject(await client.invoke('RetrievePropertiesEx', propertyCollector, { specSet, options: {} }));
  for (let pages = 0; pages < 100_000; pages += 1) {
    for (const content of asArray(page.objects)) results.push(toObjectProperties(content));
    const token = asString(page.token);
    if (token === undefined) break;
    page = asObject(await client.invoke('ContinueRetrievePropertiesEx', propertyCollector, { token }));
  }
  return results;
}

function toObjectProperties(content: Decoded): ObjectProperties {
  const object = asObject(content);
  const props: Record<string, Decoded | undefined> = {};
  for (const property of asArray(object.propSet)) {
    const entry = asObject(property);
    const name = asString(entry.name);
    if (name !== undefined) props[name] = entry.val;
  }
  const missing = asArray(object.missingSet).map((item) => {
    const entry = asObject(item);
    return { path: asString(entry.path) ?? '', fault: asObject(asObject(entry.fault).fault)._type ?? 'SystemError' };
  });
  return missing.length === 0 ? { ref: object.obj as MoRef, props } : { ref: object.obj as MoRef, props, missing };
}
