/**
 * Snapshots, whichever path serves them: the tree ceso reports, how a snapshot is named on the
 * command line (a name, a path `a/b/c` or an id), the rules for new names, and which datastore
 * files a snapshot owns (what a delete must leave behind no trace of).
 *
 * Ids are the snapshot tree's integer id (VirtualMachineSnapshotTree.id over the API, the
 * "Snapshot Id" of `vim-cmd vmsvc/snapshot.get` over SSH), as strings, so both paths agree.
 * `memory` is true when the snapshot's power state is poweredOn or suspended: the host sets a
 * snapshot taken without memory to poweredOff (CreateSnapshot_Task: "When set to FALSE, the
 * power state of the snapshot is set to powered off"), and a suspended VM's snapshot holds its
 * suspended memory. Both paths report that state, so the rule gives the same answer on both.
 * Creation times are whole seconds (vim-cmd prints no fractions), on both paths.
 */
import { CesoError, invalidInput, isCesoError } from './errors.js';
import type { PowerState, VmDetails, VmSelector } from './vm.js';

export interface SnapshotNode {
  /** The snapshot tree's integer id, as a string. */
  id: string;
  name: string;
  /** The names from the root down to this snapshot, joined by "/". */
  path: string;
  description: string | null;
  /** ISO 8601, whole seconds. */
  createdAt: string | null;
  /** The VM's power state the snapshot restores: poweredOff for a disk-only snapshot. */
  powerState: PowerState | null;
  /** Whether the snapshot holds the VM's memory (its power state is poweredOn or suspended). */
  memory: boolean;
  /** Whether the guest's file systems were quiesced; null when the host does not say (SSH without get.snapshotinfo). */
  quiesced: boolean | null;
  children: SnapshotNode[];
}

export interface SnapshotTree {
  vm: { name: string; id: string };
  /** The id of the snapshot the VM runs from (what a revert without a name goes back to); null when none or unknown. */
  current: string | null;
  snapshots: SnapshotNode[];
}

/** A snapshot as a path reads it from the host, before ceso shapes it. */
export interface RawSnapshot {
  id: string;
  name: string;
  description: string | null;
  createdAt: string | null;
  state: string | null;
  quiesced: boolean | null;
  children: RawSnapshot[];
}

export interface SnapshotRef {
  id: string;
  name: string;
  path: string;
}

export interface SnapshotCreateRequest {
  vm: VmSelector;
  name: string;
  description?: string;
  memory: boolean;
  quiesce: boolean;
}

export interface SnapshotRevertRequest {
  vm: VmSelector;
  /** A name, path or id; undefined: the current snapshot. */
  snapshot?: string;
  /** False with --no-power-on (suppressPowerOn). */
  powerOn: boolean;
}

export interface SnapshotDeleteRequest {
  vm: VmSelector;
  /** A name, path or id; undefined with `all`. */
  snapshot?: string;
  /** Also remove the snapshots taken from it. */
  children: boolean;
  /** Remove every snapshot of the VM. */
  all: boolean;
}

/** name and id are the VM's, as in every VM mutation's outcome. */
export interface SnapshotCreateOutcome {
  name: string;
  id: string;
  snapshot: SnapshotNode;
}

/** The VM after the revert, and the snapshot it went back to. */
export type SnapshotRevertOutcome = VmDetails & { snapshot: SnapshotNode };

export interface SnapshotDeleteOutcome {
  name: string;
  id: string;
  /** The snapshots removed (with --children or --all, every one of them). */
  deleted: SnapshotRef[];
  /** The files that left the VM's folder (datastore paths). */
  removedFiles: string[];
  /** The VM's current snapshot afterwards. */
  current: string | null;
}

/** What a delete is about to remove, for its confirmation. */
export interface SnapshotDeleteTarget {
  vm: { name: string; id: string };
  deleted: SnapshotRef[];
}

// ---- the tree -------------------------------------------------------------------------------

export function toPowerStateOrNull(value: string | null): PowerState | null {
  return value === 'poweredOn' || value === 'poweredOff' || value === 'suspended' ? value : null;
}

/** An ISO time cut to whole seconds; anything unparsable as it is. */
export function wholeSeconds(value: string | null): string | null {
  if (value === null || value === '') return null;
  const time = Date.parse(value);
  return Number.isFinite(time) ? new Date(Math.floor(time / 1000) * 1000).toISOString() : value;
}

export function buildTree(vm: { name: string; id: string }, roots: RawSnapshot[], current: string | null): SnapshotTree {
  const shape = (raw: RawSnapshot, parent: string | null): SnapshotNode => {
    const powerState = toPowerStateOrNull(raw.state);
    const path = parent === null ? raw.name : `${parent}/${raw.name}`;
    return {
      id: raw.id,
      name: raw.name,
      path,
      description: raw.description === '' ? null : raw.description,
      createdAt: wholeSeconds(raw.createdAt),
      powerState,
      memory: powerState === 'poweredOn' || powerState === 'suspended',
      quiesced: raw.quiesced,
      children: raw.children.map((child) => shape(child, path)),
    };
  };
  const snapshots = roots.map((root) => shape(root, null));
  const known = current !== null && flatten(snapshots).some((node) => node.id === current);
  return { vm, current: known ? current : null, snapshots };
}

/** Every node, parents before their children. */
export function flatten(nodes: readonly SnapshotNode[]): SnapshotNode[] {
  return nodes.flatMap((node) => [node, ...flatten(node.children)]);
}

export function refOf(node: SnapshotNode): SnapshotRef {
  return { id: node.id, name: node.name, path: node.path };
}

/** A node without its children: what create and revert report. */
export function findById(tree: SnapshotTree, id: string): SnapshotNode | undefined {
  return flatten(tree.snapshots).find((node) => node.id === id);
}

/** The ids of a node and every snapshot taken from it. */
export function subtreeIds(node: SnapshotNode): string[] {
  return flatten([node]).map((item) => item.id);
}

// ---- naming a snapshot ------------------------------------------------------------------------

/**
 * The snapshot `reference` names: a path (`a/b/c`, names from a root), else every snapshot whose
 * name is `reference` together with the one whose id it is. One match is the answer; none is
 * SNAPSHOT_NOT_FOUND; several (the API allows duplicate names) are AMBIGUOUS, listing them.
 */
export function resolveSnapshot(tree: SnapshotTree, reference: string): SnapshotNode {
  const all = flatten(tree.snapshots);
  const vm = tree.vm.name;
  if (all.length === 0) {
    throw new CesoError('SNAPSHOT_NOT_FOUND', `${vm} has no snapshots`, { hint: `Take one with: ceso vm snapshot create ${vm} NAME` });
  }
  const matches = reference.includes('/')
    ? all.filter((node) => node.path === reference)
    : all.filter((node) => node.name === reference || node.id === reference);
  if (matches.length === 0) {
    throw new CesoError('SNAPSHOT_NOT_FOUND', `${vm} has no snapshot named "${reference}" (by name, path or id)`, {
      hint: `Its snapshots: ${all.map((node) => `${node.path} (id ${node.id})`).join(', ')}; see ceso vm snapshot list ${vm}`,
      details: { vm, snapshot: reference, snapshots: all.map(refOf) },
    });
  }
  if (matches.length > 1) {
    throw new CesoError('AMBIGUOUS', `${matches.length} snapshots of ${vm} match "${reference}": ${matches.map((node) => `${node.path} (id ${node.id})`).join(', ')}`, {
      hint: `Name one by its id, e.g. ${matches[0]?.id}${reference.includes('/') ? '' : ', or by its path'}`,
      details: { vm, snapshot: reference, matches: matches.map(refOf) },
    });
  }
  return matches[0] as SnapshotNode;
}

/** The snapshot the VM runs from: what revert goes back to without a name. */
export function currentSnapshot(tree: SnapshotTree): SnapshotNode {
  const vm = tree.vm.name;
  if (tree.snapshots.length === 0) {
    throw new CesoError('SNAPSHOT_NOT_FOUND', `${vm} has no snapshots`, { hint: `Take one with: ceso vm snapshot create ${vm} NAME` });
  }
  const node = tree.current === null ? undefined : findById(tree, tree.current);
  if (node === undefined) {
    throw new CesoError('SNAPSHOT_NOT_FOUND', `the host does not say which snapshot of ${vm} is current`, {
      hint: `Name the snapshot (ceso vm snapshot list ${vm} shows them)`,
    });
  }
  return node;
}

// ---- new snapshots ------------------------------------------------------------------------------

export const MAX_SNAPSHOT_NAME = 80;
export const MAX_SNAPSHOT_DESCRIPTION = 1024;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * 1 to 80 characters, no "/" (paths use it), no control characters, no leading or trailing
 * blanks (vim-cmd's output would lose them), and not only digits (that reads as an id).
 */
export function validateSnapshotName(name: string): string {
  const problem =
    name.length === 0 || name.length > MAX_SNAPSHOT_NAME
      ? `use 1 to ${MAX_SNAPSHOT_NAME} characters`
      : name.includes('/')
        ? 'it may not contain "/" (snapshot paths are written a/b/c)'
        : CONTROL.test(name)
          ? 'it may not contain control characters'
          : name.trim() !== name
            ? 'it may not start or end with a blank'
            : /^\d+$/.test(name)
              ? 'it may not be only digits (that reads as a snapshot id)'
              : undefined;
  if (problem !== undefined) {
    throw invalidInput(`the snapshot name "${name.length > 90 ? `${name.slice(0, 90)}…` : name}" is invalid: ${problem}`, 'Choose a name such as before-upgrade');
  }
  return name;
}

export function validateSnapshotDescription(description: string): string {
  if (description.length > MAX_SNAPSHOT_DESCRIPTION) throw invalidInput(`the description is longer than ${MAX_SNAPSHOT_DESCRIPTION} characters`);
  if (CONTROL.test(description)) throw invalidInput('the description may not contain control characters (one line of text)');
  return description;
}

/** ceso keeps names unique per VM (the API would take a duplicate). */
export function assertNameFree(tree: SnapshotTree, name: string): void {
  const taken = flatten(tree.snapshots).filter((node) => node.name === name);
  if (taken.length > 0) {
    throw new CesoError('SNAPSHOT_EXISTS', `${tree.vm.name} already has a snapshot named "${name}" (${taken.map((node) => `${node.path}, id ${node.id}`).join('; ')})`, {
      hint: `Choose another name, or delete it first: ceso vm snapshot delete ${tree.vm.name} ${taken[0]?.id}`,
      details: { vm: tree.vm.name, snapshot: name, existing: taken.map(refOf) },
    });
  }
}

/**
 * What --memory and --quiesce need of the VM: quiescing needs VMware Tools running in the guest
 * (the host would silently skip it otherwise); memory of a VM that is not running is no memory.
 * Returns the plan's warnings.
 */
export function checkCreateFlags(vm: { name: string }, request: Pick<SnapshotCreateRequest, 'memory' | 'quiesce'>, powerState: PowerState | null, toolsStatus: string | null): string[] {
  if (request.memory && request.quiesce) {
    throw invalidInput('--memory and --quiesce exclude each other: a memory snapshot keeps the running guest as it is, there is nothing to quiesce', 'Pass one of them');
  }
  if (request.quiesce && (powerState !== 'poweredOn' || toolsStatus !== 'guestToolsRunning')) {
    const state = powerState !== 'poweredOn' ? `is ${powerState ?? 'in an unknown power state'}` : `reports VMware Tools ${toolsStatus ?? 'status unknown'}`;
    throw new CesoError('TOOLS_NOT_RUNNING', `--quiesce needs VMware Tools running in the guest, and ${vm.name} ${state}`, {
      hint:
        powerState !== 'poweredOn'
          ? `A powered-off VM's disks are consistent already: drop --quiesce; or power it on first (ceso vm power ${vm.name} on --wait ip)`
          : `Start VMware Tools (open-vm-tools) in the guest and wait for it (ceso vm ip ${vm.name} --wait ip), or drop --quiesce for a crash-consistent snapshot`,
      details: { vm: vm.name, powerState, toolsStatus },
    });
  }
  if (request.memory && powerState !== 'poweredOn') {
    return [`${vm.name} is ${powerState ?? 'in an unknown power state'}: --memory saves no running state${powerState === 'suspended' ? ' (the suspended memory is kept in any case)' : ''}`];
  }
  return [];
}

// ---- the files a snapshot owns ------------------------------------------------------------

/**
 * The disk chains the VM and its snapshots use, as datastore paths (base disk first, the
 * descriptor of each link), and each snapshot's own state files (.vmsn, .vmem). `chains` is null
 * for a snapshot the host does not describe.
 */
export interface SnapshotDiskModel {
  current: string[][];
  snapshots: Map<string, { chains: string[][] | null; stateFiles: string[] }>;
}

/**
 * The files removing `removed` (snapshot ids) must make disappear, as a real host consolidates:
 * each removed snapshot's state files; the links of its chains no remaining chain (the VM's own,
 * the other snapshots') uses; and the delta taken right after it — the next link after its own
 * top in the chains that remain, merged into it — when exactly one such delta exists (with
 * several branches after it, nothing is merged).
 */
export function filesOwnedBy(model: SnapshotDiskModel, removed: readonly string[]): string[] {
  const gone = new Set(removed);
  const remaining: string[][] = [...model.current];
  let complete = true;
  for (const [id, snapshot] of model.snapshots) {
    if (gone.has(id)) continue;
    if (snapshot.chains === null) complete = false;
    else remaining.push(...snapshot.chains);
  }
  const usedAfter = new Set(remaining.flat());
  const owned = new Set<string>();
  for (const id of removed) {
    const snapshot = model.snapshots.get(id);
    if (snapshot === undefined) continue;
    for (const file of snapshot.stateFiles) owned.add(file);
    if (snapshot.chains === null) continue;
    for (const chain of snapshot.chains) {
      if (complete) for (const file of chain) if (!usedAfter.has(file)) owned.add(file);
      const top = chain[chain.length - 1];
      if (top === undefined) continue;
      const next = new Set<string>();
      for (const other of remaining) {
        const at = other.indexOf(top);
        if (at >= 0 && at + 1 < other.length) next.add(other[at + 1] as string);
      }
      if (next.size === 1) owned.add([...next][0] as string);
    }
  }
  return [...owned].sort();
}

const EXTENT_SUFFIXES = ['-flat.vmdk', '-delta.vmdk', '-sesparse.vmdk', '-ctk.vmdk'];

/** A disk descriptor's own file and the extents named after it (`x.vmdk` -> x-delta.vmdk, …). */
export function diskFilesOf(descriptor: string): string[] {
  if (!descriptor.endsWith('.vmdk')) return [descriptor];
  const stem = descriptor.slice(0, -'.vmdk'.length);
  return [descriptor, ...EXTENT_SUFFIXES.map((suffix) => `${stem}${suffix}`)];
}

/** A delta disk by the host's naming (`web1-000001.vmdk`, its extents). */
export function isDeltaFile(path: string): boolean {
  return /-\d{6}(-delta|-sesparse|-ctk)?\.vmdk$/.test(path);
}

export function isSnapshotStateFile(path: string): boolean {
  return /\.(vmsn|vmem)$/i.test(path);
}

/**
 * What is left of the removed snapshots after a delete: the files they owned (filesOwnedBy, with
 * their extents) still in the VM's folder, and once no snapshot is left, any delta disk outside
 * the VM's own chains and any snapshot state file.
 */
export function snapshotLeftovers(input: { owned: readonly string[]; listing: readonly string[]; current: string[][]; snapshotsLeft: number }): string[] {
  const present = new Set(input.listing);
  const left = new Set<string>();
  for (const file of input.owned) for (const candidate of diskFilesOf(file)) if (present.has(candidate)) left.add(candidate);
  if (input.snapshotsLeft === 0) {
    const inUse = new Set(input.current.flat().flatMap(diskFilesOf));
    for (const file of input.listing) {
      if ((isDeltaFile(file) && !inUse.has(file)) || isSnapshotStateFile(file)) left.add(file);
    }
  }
  return [...left].sort();
}

/** The error of a delete that left files behind: exactly what, and what to do about it. */
export function leftoverError(vm: string, deleted: readonly SnapshotRef[], leftovers: readonly string[], current: string[][]): CesoError {
  const one = deleted.length === 1;
  return new CesoError('HOST_FAULT', `the snapshot${one ? '' : 's'} ${deleted.map((node) => `"${node.path}"`).join(', ')} of ${vm} ${one ? 'is' : 'are'} gone, but ${leftovers.length} file(s) of ${one ? 'it' : 'them'} are still on the datastore: ${leftovers.join(', ')}`, {
    hint:
      `No remaining snapshot and no disk of ${vm} uses them (its disks: ${current.map((chain) => chain[chain.length - 1]).join(', ') || 'none'}). ` +
      'If the host reports that the disks need consolidation, consolidate them (vSphere: Snapshots > Consolidate); otherwise remove the files with the datastore browser',
    details: { filesLeft: [...leftovers], deleted: [...deleted] },
  });
}

/** A failed step that may have left a snapshot: remove it, and say what was or was not removed. */
export async function withStrayRemoved(error: unknown, removeStrays: () => Promise<SnapshotRef[]>): Promise<CesoError> {
  const failure = isCesoError(error) ? error : new CesoError('INTERNAL', error instanceof Error ? error.message : String(error), { cause: error });
  try {
    const removed = await removeStrays();
    if (removed.length === 0) return failure;
    return new CesoError(failure.code, failure.message, {
      hint: `${failure.hint === undefined ? '' : `${failure.hint}. `}The snapshot the host made anyway (${removed.map((node) => `id ${node.id}`).join(', ')}) was removed again: the VM is as it was`,
      details: { ...failure.details, strayRemoved: removed },
      cause: failure,
    });
  } catch (cleanupError) {
    const reason = cleanupError instanceof Error ? cleanupError.message : String(cleanupError);
    return new CesoError(failure.code, failure.message, {
      hint: `The host may have made the snapshot anyway and ceso could not check or remove it (${reason}): check with ceso vm snapshot list`,
      details: { ...failure.details, strayUnchecked: reason },
      cause: failure,
    });
  }
}
