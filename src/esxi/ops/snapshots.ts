/**
 * Snapshots over the API: CreateSnapshot_Task, RevertToSnapshot_Task, RemoveSnapshot_Task and
 * RemoveAllSnapshots_Task, with the rules of core/snapshots.ts. Reading a VM's tree is one
 * RetrievePropertiesEx after the name lookup; a revert is those two reads, the task and one read
 * of the VM afterwards. A delete also reads the snapshots' disks and lists the VM's folder
 * before and after, to check that nothing of the removed snapshots is left on the datastore.
 */
import { CesoError } from '../../core/errors.js';
import type { Mutation } from '../../core/backend.js';
import type { Plan, PlanStep } from '../../core/plan.js';
import {
  assertNameFree,
  buildTree,
  checkCreateFlags,
  currentSnapshot,
  filesOwnedBy,
  findById,
  flatten,
  leftoverError,
  refOf,
  resolveSnapshot,
  snapshotLeftovers,
  subtreeIds,
  withStrayRemoved,
  type RawSnapshot,
  type SnapshotCreateOutcome,
  type SnapshotCreateRequest,
  type SnapshotDeleteOutcome,
  type SnapshotDeleteRequest,
  type SnapshotDeleteTarget,
  type SnapshotDiskModel,
  type SnapshotNode,
  type SnapshotRevertOutcome,
  type SnapshotRevertRequest,
  type SnapshotTree,
} from '../../core/snapshots.js';
import { parseDatastorePath, toPowerState, type PowerState, type VmSelector } from '../../core/vm.js';
import { asArray, asBoolean, asMoRef, asObject, asString, type Decoded, type MoRef } from '../soap/xml.js';
import { faultTypeOf, type VimClient } from '../vim/client.js';
import { relation, retrieveProperties } from '../vim/property-collector.js';
import { findVm, getVmByRef } from './inventory.js';
import { apiAction, runTask } from './steps.js';
import { assertSnapshotsFree } from '../../core/linked.js';
import { linkedDependents } from './linked.js';

interface SnapshotRead {
  ref: MoRef;
  tree: SnapshotTree;
  /** Snapshot id -> its managed object. */
  refs: Map<string, MoRef>;
  powerState: PowerState | null;
  toolsStatus: string | null;
  props: Record<string, Decoded | undefined>;
  /** The VM's datastores: name -> browser. */
  browsers: Map<string, MoRef>;
}

const TREE_PATHS = ['name', 'snapshot', 'runtime.powerState'];

/** A VM's `snapshot` property (VirtualMachineSnapshotInfo) as a tree, with each snapshot's managed object by id. */
export function snapshotTreeOf(vm: { name: string; id: string }, value: Decoded | undefined): { tree: SnapshotTree; refs: Map<string, MoRef> } {
  const info = asObject(value);
  const refs = new Map<string, MoRef>();
  const walk = (list: Decoded | undefined): RawSnapshot[] =>
    asArray(list).map((item) => {
      const node = asObject(item);
      const id = asString(node.id) ?? '';
      const snapshot = asMoRef(node.snapshot);
      if (snapshot !== undefined) refs.set(id, snapshot);
      return {
        id,
        name: asString(node.name) ?? '',
        description: asString(node.description) ?? null,
        createdAt: asString(node.createTime) ?? null,
        state: asString(node.state) ?? null,
        quiesced: asBoolean(node.quiesced) ?? false,
        children: walk(node.childSnapshotList),
      };
    });
  const roots = walk(info.rootSnapshotList);
  const currentRef = asMoRef(info.currentSnapshot)?.value;
  const current = currentRef === undefined ? null : ([...refs].find(([, snapshot]) => snapshot.value === currentRef)?.[0] ?? null);
  return { tree: buildTree(vm, roots, current), refs };
}

/** One read of the VM (after the name lookup): its tree and whatever else `paths` asks for. */
async function readSnapshots(client: VimClient, ref: MoRef, paths: string[] = [], withDatastores = false): Promise<SnapshotRead> {
  const objects = await retrieveProperties(
    client,
    [{ obj: ref, ...(withDatastores ? { selectSet: [relation('vmDatastores', 'VirtualMachine', 'datastore')] } : {}) }],
    [{ type: 'VirtualMachine', paths: [...TREE_PATHS, ...paths] }, ...(withDatastores ? [{ type: 'Datastore', paths: ['name', 'browser'] }] : [])],
  );
  const vm = objects.find((object) => object.ref.type === 'VirtualMachine');
  if (vm === undefined) throw new CesoError('VM_NOT_FOUND', `VM ${ref.value} no longer exists on the host`, { hint: 'It was removed meanwhile; run "ceso vm list"' });
  const { props } = vm;
  const name = asString(props.name) ?? ref.value;
  const { tree, refs } = snapshotTreeOf({ name, id: ref.value }, props.snapshot);
  const browsers = new Map<string, MoRef>();
  for (const object of objects) {
    const browser = asMoRef(object.props.browser);
    if (object.ref.type === 'Datastore' && browser !== undefined) browsers.set(asString(object.props.name) ?? object.ref.value, browser);
  }
  return {
    ref,
    tree,
    refs,
    powerState: toPowerState(asString(props['runtime.powerState'])),
    toolsStatus: asString(props['guest.toolsRunningStatus']) ?? null,
    props,
    browsers,
  };
}

export async function listSnapshots(client: VimClient, selector: VmSelector): Promise<SnapshotTree> {
  const { ref } = await findVm(client, selector);
  return (await readSnapshots(client, ref)).tree;
}

function snapshotRef(read: SnapshotRead, node: SnapshotNode): MoRef {
  const ref = read.refs.get(node.id);
  if (ref === undefined) throw new CesoError('HOST_FAULT', `the host reported snapshot ${node.id} of ${read.tree.vm.name} without its managed object`);
  return ref;
}

// ---- create ---------------------------------------------------------------------------------

interface CreateState {
  snapshot?: MoRef;
  node?: SnapshotNode;
}

export async function planSnapshotCreate(client: VimClient, request: SnapshotCreateRequest): Promise<Mutation<SnapshotCreateOutcome>> {
  const { ref } = await findVm(client, request.vm);
  const before = await readSnapshots(client, ref, ['guest.toolsRunningStatus']);
  const { tree } = before;
  const vm = tree.vm;
  assertNameFree(tree, request.name);
  const warnings = checkCreateFlags(vm, request, before.powerState, before.toolsStatus);
  const args = { name: request.name, description: request.description ?? '', memory: request.memory, quiesce: request.quiesce };
  const known = new Set(flatten(tree.snapshots).map((node) => node.id));
  const remove = async (snapshot: MoRef): Promise<void> => {
    await runTask(client, 'RemoveSnapshot_Task', snapshot, { removeChildren: false, consolidate: true }, `remove snapshot "${request.name}" of ${vm.name}`);
  };
  const steps: Array<PlanStep<CreateState>> = [
    {
      id: 'create-snapshot',
      description: `take snapshot "${request.name}" of ${vm.name}${request.memory ? ' with its memory' : ''}${request.quiesce ? ', quiescing the guest' : ''}`,
      action: apiAction('CreateSnapshot_Task', ref, args),
      // Not given the abort signal: a snapshot the host is taking is waited for, then removed by the undo.
      run: async (state) => {
        try {
          const result = await runTask(client, 'CreateSnapshot_Task', ref, args, `snapshot ${vm.name}`);
          const snapshot = asMoRef(result as Decoded | undefined);
          if (snapshot !== undefined) state.snapshot = snapshot;
        } catch (error) {
          throw await withStrayRemoved(error, async () => {
            const after = await readSnapshots(client, ref);
            const strays = flatten(after.tree.snapshots).filter((node) => !known.has(node.id) && node.name === request.name);
            for (const node of strays) await remove(snapshotRef(after, node));
            return strays.map(refOf);
          });
        }
      },
      undo: {
        description: `remove snapshot "${request.name}" of ${vm.name}`,
        run: async (state) => {
          if (state.snapshot !== undefined) await remove(state.snapshot);
        },
      },
    },
    {
      id: 'check-snapshot',
      description: `read back snapshot "${request.name}" and check its name is still unique`,
      action: apiAction('RetrievePropertiesEx', client.serviceContent.propertyCollector, { specSet: { propSet: { type: 'VirtualMachine', pathSet: ['snapshot'] }, objectSet: { obj: ref } } }),
      run: async (state) => {
        const after = await readSnapshots(client, ref);
        const id = state.snapshot === undefined ? undefined : [...after.refs].find(([, snapshot]) => snapshot.value === state.snapshot?.value)?.[0];
        const node = id === undefined ? flatten(after.tree.snapshots).find((item) => !known.has(item.id) && item.name === request.name) : findById(after.tree, id);
        if (node === undefined) throw new CesoError('HOST_FAULT', `the host reported snapshot "${request.name}" of ${vm.name} made, but it is not in the VM's snapshot tree`);
        state.snapshot ??= snapshotRef(after, node);
        const twins = flatten(after.tree.snapshots).filter((item) => item.name === request.name && item.id !== node.id);
        if (twins.length > 0) {
          throw new CesoError('SNAPSHOT_EXISTS', `another snapshot named "${request.name}" appeared on ${vm.name} meanwhile (id ${twins.map((item) => item.id).join(', ')})`, {
            hint: 'Another tool took a snapshot of the same name at the same time; ceso removed its own',
          });
        }
        state.node = node;
      },
    },
  ];
  const plan: Plan<CreateState> = { operation: 'snapshot create', target: vm.name, via: 'api', steps, warnings, state: {} };
  return {
    plan,
    finish: async () => {
      if (plan.state.node === undefined) throw new CesoError('INTERNAL', 'the snapshot plan made no snapshot');
      return { ...vm, snapshot: plan.state.node };
    },
  };
}

// ---- revert ---------------------------------------------------------------------------------

interface RevertState {
  done?: boolean;
}

export async function planSnapshotRevert(client: VimClient, request: SnapshotRevertRequest): Promise<Mutation<SnapshotRevertOutcome>> {
  const { ref } = await findVm(client, request.vm);
  const read = await readSnapshots(client, ref);
  const { tree } = read;
  const node = request.snapshot === undefined ? currentSnapshot(tree) : resolveSnapshot(tree, request.snapshot);
  const target = snapshotRef(read, node);
  const args = { suppressPowerOn: !request.powerOn };
  const warnings = [`${tree.vm.name} loses what changed since "${node.path}" was taken`];
  const steps: Array<PlanStep<RevertState>> = [
    {
      id: 'revert-snapshot',
      description: `revert ${tree.vm.name} to snapshot "${node.path}" (id ${node.id}, ${node.powerState ?? 'unknown state'}${request.powerOn ? '' : ', not powering on'})`,
      action: apiAction('RevertToSnapshot_Task', target, args),
      run: async (state) => {
        await runTask(client, 'RevertToSnapshot_Task', target, args, `revert ${tree.vm.name} to "${node.path}"`);
        state.done = true;
      },
    },
  ];
  const plan: Plan<RevertState> = { operation: 'snapshot revert', target: tree.vm.name, via: 'api', steps, warnings, state: {} };
  return {
    plan,
    finish: async () => {
      const vm = await getVmByRef(client, ref);
      return { ...vm, snapshot: node };
    },
  };
}

// ---- delete ---------------------------------------------------------------------------------


const DELETE_PATHS = ['config.files.vmPathName', 'config.hardware.device', 'layoutEx'];

/** Each disk's chain, base first, from a device list's backings (backing.parent links). */
function chainsOf(devices: Decoded | undefined): string[][] {
  const chains: string[][] = [];
  for (const device of asArray(devices).map(asObject)) {
    if (device._type !== 'VirtualDisk') continue;
    const chain: string[] = [];
    let backing: Decoded | undefined = device.backing;
    for (let depth = 0; backing !== undefined && depth < 256; depth += 1) {
      const fileName = asString(asObject(backing).fileName);
      if (fileName !== undefined && fileName !== '') chain.unshift(fileName);
      backing = asObject(backing).parent;
    }
    if (chain.length > 0) chains.push(chain);
  }
  return chains;
}

/**
 * The disk chains of the VM and of each snapshot (their config as taken: backing.parent links),
 * and each snapshot's state files (layoutEx.snapshot's dataKey and memoryKey).
 */
async function diskModel(client: VimClient, read: SnapshotRead): Promise<SnapshotDiskModel> {
  const layout = asObject(read.props.layoutEx);
  const fileNames = new Map<string, string>();
  for (const file of asArray(layout.file).map(asObject)) {
    const key = asString(file.key);
    const name = asString(file.name);
    if (key !== undefined && name !== undefined) fileNames.set(key, name);
  }
  const stateFiles = new Map<string, string[]>();
  for (const entry of asArray(layout.snapshot).map(asObject)) {
    const snapshot = asMoRef(entry.key)?.value;
    if (snapshot === undefined) continue;
    const files = [asString(entry.dataKey), asString(entry.memoryKey)].flatMap((key) => (key === undefined || key === '-1' ? [] : [fileNames.get(key)].filter((name): name is string => name !== undefined)));
    stateFiles.set(snapshot, files);
  }
  const refs = [...read.refs.values()];
  const configs = refs.length === 0 ? [] : await retrieveProperties(client, refs.map((obj) => ({ obj })), [{ type: 'VirtualMachineSnapshot', paths: ['config.hardware.device'] }]);
  const chainsBySnapshot = new Map(configs.map((object) => [object.ref.value, object.props['config.hardware.device'] === undefined ? null : chainsOf(object.props['config.hardware.device'])]));
  // Without a layoutEx entry: the host's own naming, <vmx name>-Snapshot<id>.vmsn (and .vmem), as the .vmsd shows it.
  const vmx = asString(read.props['config.files.vmPathName']);
  const stem = vmx === undefined || !vmx.endsWith('.vmx') ? undefined : vmx.slice(0, -'.vmx'.length);
  const snapshots: SnapshotDiskModel['snapshots'] = new Map();
  for (const [id, snapshot] of read.refs) {
    const named = stem === undefined ? [] : [`${stem}-Snapshot${id}.vmsn`, `${stem}-Snapshot${id}.vmem`];
    snapshots.set(id, { chains: chainsBySnapshot.get(snapshot.value) ?? null, stateFiles: stateFiles.get(snapshot.value) ?? named });
  }
  return { current: chainsOf(read.props['config.hardware.device']), snapshots };
}

/** The VM's folder as a datastore path, and the browser of its datastore. */
function folderOf(read: SnapshotRead): { folder: string; browser: MoRef } | null {
  const vmx = asString(read.props['config.files.vmPathName']);
  const parsed = vmx === undefined ? null : parseDatastorePath(vmx);
  if (parsed === null || !parsed.path.includes('/')) return null;
  const browser = read.browsers.get(parsed.datastore);
  if (browser === undefined) return null;
  return { folder: `[${parsed.datastore}] ${parsed.path.slice(0, parsed.path.lastIndexOf('/'))}`, browser };
}

/** Every file in the folder (SearchDatastore_Task), as datastore paths. */
async function listFolder(client: VimClient, place: { folder: string; browser: MoRef }): Promise<string[]> {
  try {
    const result = asObject((await runTask(client, 'SearchDatastore_Task', place.browser, { datastorePath: place.folder }, `list ${place.folder}`)) as Decoded | undefined);
    return asArray(result.file)
      .map((file) => asString(asObject(file).path))
      .filter((path): path is string => path !== undefined)
      .map((path) => `${place.folder}/${path}`)
      .sort();
  } catch (error) {
    if (faultTypeOf(error) === 'FileNotFound') return [];
    throw error;
  }
}

export async function planSnapshotDelete(client: VimClient, request: SnapshotDeleteRequest): Promise<Mutation<SnapshotDeleteOutcome> & { target: SnapshotDeleteTarget }> {
  const { ref } = await findVm(client, request.vm);
  const read = await readSnapshots(client, ref, DELETE_PATHS, true);
  const { tree } = read;
  const vm = tree.vm;
  const node = request.all ? undefined : resolveSnapshot(tree, request.snapshot ?? '');
  const removedIds = node === undefined ? flatten(tree.snapshots).map((item) => item.id) : request.children ? subtreeIds(node) : [node.id];
  const deleted = removedIds.map((id) => refOf(findById(tree, id) as SnapshotNode));
  if (deleted.length > 0) {
    const vmxPath = asString(read.props['config.files.vmPathName']) ?? null;
    assertSnapshotsFree(vm, tree.snapshots, removedIds, await linkedDependents(client, { id: vm.id, vmxPath }));
  }
  const model = await diskModel(client, read);
  const owned = filesOwnedBy(model, removedIds);
  const place = folderOf(read);
  const listingBefore = place === null ? [] : await listFolder(client, place);
  const steps: Array<PlanStep<Record<string, never>>> = [];
  const warnings: string[] = [];
  if (place === null) warnings.push(`the folder of ${vm.name} cannot be listed over the API: the check for leftover delta files is skipped`);
  const outcome: { value?: SnapshotDeleteOutcome } = {};
  /** After the removal: the snapshots are gone and none of their files is left in the folder. */
  const check = async (): Promise<void> => {
    const after = await readSnapshots(client, ref, ['config.hardware.device']);
    const current = chainsOf(after.props['config.hardware.device']);
    const listing = place === null ? [] : await listFolder(client, place);
    const remaining = flatten(after.tree.snapshots);
    const stillThere = remaining.filter((item) => removedIds.includes(item.id));
    if (stillThere.length > 0) {
      throw new CesoError('HOST_FAULT', `the host reported the removal done, but ${vm.name} still has ${stillThere.map((item) => `"${item.path}" (id ${item.id})`).join(', ')}`, {
        details: { snapshotsLeft: stillThere.map(refOf) },
      });
    }
    const leftovers = place === null ? [] : snapshotLeftovers({ owned, listing, current, snapshotsLeft: remaining.length });
    if (leftovers.length > 0) throw leftoverError(vm.name, deleted, leftovers, current);
    const gone = new Set(listing);
    outcome.value = { ...vm, deleted, removedFiles: listingBefore.filter((file) => !gone.has(file)), current: after.tree.current };
  };
  const checked = `, then check that ${owned.length === 0 ? 'none of its files' : owned.join(', ')} ${owned.length === 1 ? 'is' : 'are'} gone${place === null ? '' : ` from ${place.folder}`}`;
  // One step each: once the host has started a removal it cannot be undone or stopped, so the
  // check runs with it, Ctrl-C or not (the abort signal is not passed on).
  if (deleted.length === 0) {
    warnings.push(`${vm.name} has no snapshots: nothing to delete`);
  } else if (node === undefined) {
    steps.push({
      id: 'remove-all-snapshots',
      description: `remove all ${deleted.length} snapshot(s) of ${vm.name}, consolidating its disks${checked}`,
      action: apiAction('RemoveAllSnapshots_Task', ref, { consolidate: true }),
      run: async () => {
        await runTask(client, 'RemoveAllSnapshots_Task', ref, { consolidate: true }, `remove the snapshots of ${vm.name}`);
        await check();
      },
    });
  } else {
    const target = snapshotRef(read, node);
    const args = { removeChildren: request.children, consolidate: true };
    const children = node.children.length;
    steps.push({
      id: 'remove-snapshot',
      description: `remove snapshot "${node.path}" (id ${node.id}) of ${vm.name}${request.children ? ` and the ${deleted.length - 1} snapshot(s) taken from it` : children > 0 ? ` (its ${children} child snapshot(s) stay)` : ''}, consolidating its disks${checked}`,
      action: apiAction('RemoveSnapshot_Task', target, args),
      run: async () => {
        await runTask(client, 'RemoveSnapshot_Task', target, args, `remove snapshot "${node.path}" of ${vm.name}`);
        await check();
      },
    });
  }
  const plan: Plan<Record<string, never>> = { operation: 'snapshot delete', target: vm.name, via: 'api', steps, warnings, state: {} };
  return {
    plan,
    target: { vm, deleted },
    finish: async () => outcome.value ?? { ...vm, deleted: [], removedFiles: [], current: tree.current },
  };
}
