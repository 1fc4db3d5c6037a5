/**
 * Snapshots over SSH, with the API path's rules and results (core/snapshots.ts):
 * `vim-cmd vmsvc/snapshot.create <vmid> <name> <description> <includeMemory> <quiesced>`,
 * `snapshot.get`, `snapshot.revert <vmid> <snapshotId> <suppressPowerOn>`,
 * `snapshot.remove <vmid> <snapshotId> <removeChildren>` and `snapshot.removeall <vmid>`, every
 * argument single-quoted, ids from snapshot.get. The tree comes from snapshot.get; the current
 * snapshot and each snapshot's files from the VM's .vmsd (snapshot.current, snapshotN.uid,
 * snapshotN.filename, snapshotN.diskM.fileName), quiesced from `get.snapshotinfo` where the host
 * has it. Each read is ONE remote command (sections of one script).
 */
import type { Mutation } from '../../core/backend.js';
import { CesoError } from '../../core/errors.js';
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
  type SnapshotRef,
} from '../../core/snapshots.js';
import type { PowerState, VmSelector, VmSnapshot } from '../../core/vm.js';
import { newNonce, sectionsScript, splitSections, vimCmd, vmid, type SectionOutput } from '../commands.js';
import type { SshContext } from '../context.js';
import { parseDevices, parsePowerState, parseSnapshots, type VmRow } from '../parse.js';
import { folderOf, hostPath, vmxFileToDatastorePath } from '../paths.js';
import { quote } from '../quote.js';
import { checkOutput, run } from '../run.js';
import { VmodlRef, parseVmodl, pick, pickArray, pickBoolean, pickNumber, pickString, type VmodlValue } from '../vmodl.js';
import { VmxFile } from '../vmx.js';
import { findVm, readVm } from './inventory.js';
import { assertSnapshotsFree } from '../../core/linked.js';
import { linkedDependents } from './linked.js';

const flag = (value: boolean): string => quote(value ? '1' : '0');

export const snapshotCmd = {
  get: (id: string) => vimCmd.snapshots(id),
  info: (id: string) => `vim-cmd vmsvc/get.snapshotinfo ${vmid(id)}`,
  create: (id: string, name: string, description: string, memory: boolean, quiesce: boolean) =>
    `vim-cmd vmsvc/snapshot.create ${vmid(id)} ${quote(name)} ${quote(description)} ${flag(memory)} ${flag(quiesce)}`,
  revert: (id: string, snapshot: string, suppressPowerOn: boolean) => `vim-cmd vmsvc/snapshot.revert ${vmid(id)} ${quote(snapshot)} ${flag(suppressPowerOn)}`,
  remove: (id: string, snapshot: string, removeChildren: boolean) => `vim-cmd vmsvc/snapshot.remove ${vmid(id)} ${quote(snapshot)} ${flag(removeChildren)}`,
  removeAll: (id: string) => `vim-cmd vmsvc/snapshot.removeall ${vmid(id)}`,
};

// ---- reading ----------------------------------------------------------------------------------

interface SshSnapshotRead {
  row: VmRow;
  tree: SnapshotTree;
  vmsd: Map<string, string>;
  powerState: PowerState | null;
  toolsStatus: string | null;
  /** With files: the folder as a datastore path, its files, the VM's disks and every descriptor's parent. */
  folder: string | null;
  listing: string[];
  diskTops: string[];
  parents: Map<string, string>;
}

interface ReadOptions {
  guest?: boolean;
  files?: boolean;
}

/** Extents and other files that are not disk descriptors. */
const NOT_DESCRIPTOR = '*-flat.vmdk|*-delta.vmdk|*-sesparse.vmdk|*-ctk.vmdk|*-rdm.vmdk|*-rdmp.vmdk';

/** One remote command: snapshot.get, get.snapshotinfo, the .vmsd, and (options) the guest, the disks and the folder. */
async function readSnapshots(context: SshContext, row: VmRow, options: ReadOptions = {}): Promise<SshSnapshotRead> {
  const nonce = newNonce();
  const vmxFile = hostPath(context.volumesRoot, row.file);
  const vmsdFile = vmxFile.replace(/\.vmx$/i, '.vmsd');
  const folder = folderOf(row.file);
  const folderPath = folder === null ? null : hostPath(context.volumesRoot, folder);
  const sections = [
    { label: 'snapshots', command: snapshotCmd.get(row.id) },
    { label: 'info', command: snapshotCmd.info(row.id) },
    { label: 'vmsd', command: `if [ -f ${quote(vmsdFile)} ]; then cat ${quote(vmsdFile)}; fi` },
  ];
  if (options.guest === true) {
    sections.push({ label: 'power', command: vimCmd.powerState(row.id) }, { label: 'guest', command: vimCmd.guest(row.id) });
  }
  if (options.files === true) {
    sections.push({ label: 'devices', command: vimCmd.devices(row.id) });
    if (folderPath !== null) {
      sections.push(
        { label: 'listing', command: `ls -A ${quote(folderPath)}` },
        {
          label: 'descriptors',
          command:
            `cd ${quote(folderPath)} && for f in *.vmdk; do case "$f" in ${NOT_DESCRIPTOR}) continue;; esac; ` +
            `[ -f "$f" ] || continue; p=$(head -c 8192 "$f" | grep '^parentFileNameHint=' | head -n 1); printf '%s\\t%s\\n' "$f" "$p"; done`,
        },
      );
    }
  }
  const result = await context.shell.exec(sectionsScript(nonce, sections));
  const output = splitSections(nonce, result.stdout);
  const what = `read the snapshots of ${row.name} (vmid ${row.id})`;
  const part = (label: string, command: string, check = true): string => {
    const section = output.get(label);
    if (section === undefined) {
      checkOutput(result, 'sh', { what });
      throw new CesoError('HOST_FAULT', `${what}: the host printed no ${label}`);
    }
    if (check) checkSection(section, command, what);
    return section.output;
  };
  const vmsd = VmxFile.parse(part('vmsd', 'cat')).toMap();
  const info = parseSnapshotInfo(output.get('info'));
  const listed = parseSnapshots(part('snapshots', snapshotCmd.get(row.id)));
  const current = vmsdValue(vmsd, 'snapshot.current') ?? info.current;
  const tree = buildTree({ name: row.name, id: row.id }, listed.map((node) => rawOf(node, info.quiesced)), current);
  const read: SshSnapshotRead = { row, tree, vmsd, powerState: null, toolsStatus: null, folder, listing: [], diskTops: [], parents: new Map() };
  if (options.guest === true) {
    read.powerState = parsePowerState(part('power', vimCmd.powerState(row.id)));
    const guest = parseVmodl(part('guest', vimCmd.guest(row.id)).replace(/^\s*Guest information:\s*/, ''));
    read.toolsStatus = pickString(guest ?? undefined, 'toolsRunningStatus');
  }
  if (options.files === true) {
    read.diskTops = parseDevices(part('devices', vimCmd.devices(row.id))).disks.map((disk) => disk.file).filter((file) => file !== '');
    if (folder !== null) {
      const listing = output.get('listing');
      read.listing = listing === undefined || listing.code !== 0 ? [] : listing.output.split('\n').filter((name) => name !== '').map((name) => `${folder}/${name}`).sort();
      for (const line of (output.get('descriptors')?.output ?? '').split('\n')) {
        const [name, hint] = line.split('\t');
        const parent = /^parentFileNameHint="(.*)"\s*$/.exec(hint ?? '')?.[1];
        if (name === undefined || name === '' || parent === undefined || parent === '') continue;
        const resolved = resolveHint(context, parent, row.file);
        if (resolved !== null) read.parents.set(`${folder}/${name}`, resolved);
      }
    }
  }
  return read;
}

function checkSection(section: SectionOutput, command: string, what: string): void {
  checkOutput({ stdout: section.output, stderr: '', code: section.code }, command, { what });
}

function rawOf(node: VmSnapshot, quiesced: Map<string, boolean>): RawSnapshot {
  return {
    id: node.id ?? '',
    name: node.name,
    description: node.description,
    createdAt: node.createdAt,
    state: node.state,
    quiesced: node.id === null ? null : (quiesced.get(node.id) ?? null),
    children: node.children.map((child) => rawOf(child, quiesced)),
  };
}

function vmsdValue(vmsd: Map<string, string>, key: string): string | null {
  for (const [name, value] of vmsd) if (name.toLowerCase() === key.toLowerCase()) return value === '' ? null : value;
  return null;
}

/**
 * `vim-cmd vmsvc/get.snapshotinfo` (a vim.vm.SnapshotInfo dump), where the host has it: the
 * current snapshot and whether each was quiesced, which snapshot.get does not print.
 */
export function parseSnapshotInfo(section: SectionOutput | undefined): { current: string | null; quiesced: Map<string, boolean> } {
  const quiesced = new Map<string, boolean>();
  if (section === undefined || section.code !== 0 || !/rootSnapshotList/.test(section.output)) return { current: null, quiesced };
  const dump = parseVmodl(section.output);
  const currentRef = pick(dump ?? undefined, 'currentSnapshot');
  let current: string | null = null;
  const walk = (list: VmodlValue[]): void => {
    for (const node of list) {
      const id = pickNumber(node, 'id');
      if (id === null) continue;
      const value = pickBoolean(node, 'quiesced');
      if (value !== null) quiesced.set(String(id), value);
      const ref = pick(node, 'snapshot');
      if (currentRef instanceof VmodlRef && ref instanceof VmodlRef && ref.value === currentRef.value) current = String(id);
      walk(pickArray(node, 'childSnapshotList'));
    }
  };
  walk(pickArray(dump ?? undefined, 'rootSnapshotList'));
  return { current, quiesced };
}

/** A descriptor's parentFileNameHint as a datastore path (relative to the VM's folder, or absolute). */
function resolveHint(context: SshContext, hint: string, vmxPath: string): string | null {
  const root = context.volumesRoot.replace(/\/+$/, '');
  if (hint.startsWith(`${root}/`) && root !== '/vmfs/volumes') {
    const rest = hint.slice(root.length + 1);
    const slash = rest.indexOf('/');
    return slash <= 0 ? null : `[${rest.slice(0, slash)}] ${rest.slice(slash + 1)}`;
  }
  return vmxFileToDatastorePath(hint, vmxPath);
}

/** The chain ending in `top`, base first, by the descriptors' parents. */
function chainOf(top: string, parents: Map<string, string>): string[] {
  const chain = [top];
  let at = top;
  for (let depth = 0; depth < 256; depth += 1) {
    const parent = parents.get(at);
    if (parent === undefined || chain.includes(parent)) break;
    chain.unshift(parent);
    at = parent;
  }
  return chain;
}

/** The VM's chains and, from the .vmsd, each snapshot's chains and state files (.vmsn, .vmem). */
function diskModel(read: SshSnapshotRead): SnapshotDiskModel {
  const byIndex = new Map<string, Map<string, string>>();
  for (const [key, value] of read.vmsd) {
    const match = /^snapshot(\d+)\.(.+)$/i.exec(key);
    if (match === null) continue;
    const entry = byIndex.get(match[1] as string) ?? new Map<string, string>();
    entry.set((match[2] as string).toLowerCase(), value);
    byIndex.set(match[1] as string, entry);
  }
  const described = new Map<string, { chains: string[][]; stateFiles: string[] }>();
  for (const entry of byIndex.values()) {
    const uid = entry.get('uid');
    if (uid === undefined) continue;
    const tops = [...entry].filter(([key]) => /^disk\d+\.filename$/.test(key)).map(([, value]) => vmxFileToDatastorePath(value, read.row.file)).filter((path): path is string => path !== null);
    const vmsn = entry.get('filename');
    const vmsnPath = vmsn === undefined || vmsn === '' ? null : vmxFileToDatastorePath(vmsn, read.row.file);
    const stateFiles = vmsnPath === null ? [] : [vmsnPath, vmsnPath.replace(/\.vmsn$/i, '.vmem')];
    described.set(uid, { chains: tops.map((top) => chainOf(top, read.parents)), stateFiles });
  }
  const snapshots: SnapshotDiskModel['snapshots'] = new Map();
  for (const node of flatten(read.tree.snapshots)) snapshots.set(node.id, described.get(node.id) ?? { chains: null, stateFiles: [] });
  return { current: read.diskTops.map((top) => chainOf(top, read.parents)), snapshots };
}

export async function listSnapshots(context: SshContext, selector: VmSelector): Promise<SnapshotTree> {
  const { row } = await findVm(context, selector);
  return (await readSnapshots(context, row)).tree;
}

// ---- create ---------------------------------------------------------------------------------

interface CreateState {
  id?: string;
  node?: SnapshotNode;
}

export async function planSnapshotCreate(context: SshContext, request: SnapshotCreateRequest): Promise<Mutation<SnapshotCreateOutcome>> {
  const { row } = await findVm(context, request.vm);
  const before = await readSnapshots(context, row, { guest: true });
  const vm = before.tree.vm;
  assertNameFree(before.tree, request.name);
  const warnings = checkCreateFlags(vm, request, before.powerState, before.toolsStatus);
  const known = new Set(flatten(before.tree.snapshots).map((node) => node.id));
  const create = snapshotCmd.create(row.id, request.name, request.description ?? '', request.memory, request.quiesce);
  const fresh = async (): Promise<SnapshotNode[]> => {
    const after = await readSnapshots(context, row);
    return flatten(after.tree.snapshots).filter((node) => !known.has(node.id) && node.name === request.name);
  };
  const remove = async (id: string): Promise<void> => {
    await run(context.shell, snapshotCmd.remove(row.id, id, false), { what: `remove snapshot "${request.name}" of ${vm.name}` });
  };
  const steps: Array<PlanStep<CreateState>> = [
    {
      id: 'create-snapshot',
      description: `take snapshot "${request.name}" of ${vm.name}${request.memory ? ' with its memory' : ''}${request.quiesce ? ', quiescing the guest' : ''}`,
      action: { kind: 'ssh', command: create },
      run: async () => {
        try {
          await run(context.shell, create, { what: `snapshot ${vm.name}` });
        } catch (error) {
          throw await withStrayRemoved(error, async () => {
            const strays = await fresh();
            for (const node of strays) await remove(node.id);
            return strays.map(refOf);
          });
        }
      },
      undo: {
        description: `remove snapshot "${request.name}" of ${vm.name}`,
        run: async (state) => {
          const ids = state.id !== undefined ? [state.id] : (await fresh()).map((node) => node.id);
          for (const id of ids) await remove(id);
        },
      },
    },
    {
      id: 'check-snapshot',
      description: `read back snapshot "${request.name}" (its id) and check its name is still unique`,
      action: { kind: 'ssh', command: snapshotCmd.get(row.id) },
      run: async (state) => {
        const after = await readSnapshots(context, row);
        const made = flatten(after.tree.snapshots).filter((node) => !known.has(node.id) && node.name === request.name);
        const node = made[made.length - 1];
        if (node === undefined) throw new CesoError('HOST_FAULT', `vim-cmd reported snapshot "${request.name}" of ${vm.name} made, but snapshot.get does not show it`);
        state.id = node.id;
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
  const plan: Plan<CreateState> = { operation: 'snapshot create', target: vm.name, via: 'ssh', steps, warnings, state: {} };
  return {
    plan,
    finish: async () => {
      if (plan.state.node === undefined) throw new CesoError('INTERNAL', 'the snapshot plan made no snapshot');
      return { ...vm, snapshot: plan.state.node };
    },
  };
}

// ---- revert ---------------------------------------------------------------------------------

export async function planSnapshotRevert(context: SshContext, request: SnapshotRevertRequest): Promise<Mutation<SnapshotRevertOutcome>> {
  const { row } = await findVm(context, request.vm);
  const { tree } = await readSnapshots(context, row);
  const node = request.snapshot === undefined ? currentSnapshot(tree) : resolveSnapshot(tree, request.snapshot);
  const command = snapshotCmd.revert(row.id, node.id, !request.powerOn);
  const steps: Array<PlanStep<Record<string, never>>> = [
    {
      id: 'revert-snapshot',
      description: `revert ${tree.vm.name} to snapshot "${node.path}" (id ${node.id}, ${node.powerState ?? 'unknown state'}${request.powerOn ? '' : ', not powering on'})`,
      action: { kind: 'ssh', command },
      run: async () => {
        await run(context.shell, command, { what: `revert ${tree.vm.name} to "${node.path}"` });
      },
    },
  ];
  return {
    plan: { operation: 'snapshot revert', target: tree.vm.name, via: 'ssh', steps, warnings: [`${tree.vm.name} loses what changed since "${node.path}" was taken`], state: {} },
    finish: async () => ({ ...(await readVm(context, row)).details, snapshot: node }),
  };
}

// ---- delete ---------------------------------------------------------------------------------

export async function planSnapshotDelete(context: SshContext, request: SnapshotDeleteRequest): Promise<Mutation<SnapshotDeleteOutcome> & { target: SnapshotDeleteTarget }> {
  const { row, rows } = await findVm(context, request.vm);
  const before = await readSnapshots(context, row, { files: true });
  const { tree } = before;
  const vm = tree.vm;
  const node = request.all ? undefined : resolveSnapshot(tree, request.snapshot ?? '');
  const removedIds = node === undefined ? flatten(tree.snapshots).map((item) => item.id) : request.children ? subtreeIds(node) : [node.id];
  const deleted: SnapshotRef[] = removedIds.map((id) => refOf(findById(tree, id) as SnapshotNode));
  if (deleted.length > 0) {
    assertSnapshotsFree(vm, tree.snapshots, removedIds, await linkedDependents(context, { id: vm.id, vmxPath: row.file }, rows));
  }
  const owned = filesOwnedBy(diskModel(before), removedIds);
  const warnings: string[] = [];
  if (before.folder === null) warnings.push(`the folder of ${vm.name} is not a datastore folder ceso may list: the check for leftover delta files is skipped`);
  const outcome: { value?: SnapshotDeleteOutcome } = {};
  /** After the removal: the snapshots are gone and none of their files is left in the folder (one exec). */
  const check = async (): Promise<void> => {
    const after = await readSnapshots(context, row, { files: true });
    const remaining = flatten(after.tree.snapshots);
    const stillThere = remaining.filter((item) => removedIds.includes(item.id));
    if (stillThere.length > 0) {
      throw new CesoError('HOST_FAULT', `vim-cmd reported the removal done, but ${vm.name} still has ${stillThere.map((item) => `"${item.path}" (id ${item.id})`).join(', ')}`, {
        details: { snapshotsLeft: stillThere.map(refOf) },
      });
    }
    const current = after.diskTops.map((top) => chainOf(top, after.parents));
    const leftovers = before.folder === null ? [] : snapshotLeftovers({ owned, listing: after.listing, current, snapshotsLeft: remaining.length });
    if (leftovers.length > 0) throw leftoverError(vm.name, deleted, leftovers, current);
    const gone = new Set(after.listing);
    outcome.value = { ...vm, deleted, removedFiles: before.listing.filter((file) => !gone.has(file)), current: after.tree.current };
  };
  const checked = `, then check that ${owned.length === 0 ? 'none of its files' : owned.join(', ')} ${owned.length === 1 ? 'is' : 'are'} gone${before.folder === null ? '' : ` from ${before.folder}`}`;
  const steps: Array<PlanStep<Record<string, never>>> = [];
  if (deleted.length === 0) {
    warnings.push(`${vm.name} has no snapshots: nothing to delete`);
  } else {
    // One step: once vim-cmd has started the removal it cannot be undone or stopped, so the check
    // runs with it, Ctrl-C or not.
    const command = node === undefined ? snapshotCmd.removeAll(row.id) : snapshotCmd.remove(row.id, node.id, request.children);
    const children = node?.children.length ?? 0;
    steps.push({
      id: node === undefined ? 'remove-all-snapshots' : 'remove-snapshot',
      description:
        (node === undefined
          ? `remove all ${deleted.length} snapshot(s) of ${vm.name}, consolidating its disks`
          : `remove snapshot "${node.path}" (id ${node.id}) of ${vm.name}${request.children ? ` and the ${deleted.length - 1} snapshot(s) taken from it` : children > 0 ? ` (its ${children} child snapshot(s) stay)` : ''}, consolidating its disks`) + checked,
      action: { kind: 'ssh', command },
      run: async () => {
        await run(context.shell, command, { what: node === undefined ? `remove the snapshots of ${vm.name}` : `remove snapshot "${node.path}" of ${vm.name}` });
        await check();
      },
    });
  }
  return {
    plan: { operation: 'snapshot delete', target: vm.name, via: 'ssh', steps, warnings, state: {} },
    target: { vm, deleted },
    finish: async () => outcome.value ?? { ...vm, deleted: [], removedFiles: [], current: tree.current },
  };
}

