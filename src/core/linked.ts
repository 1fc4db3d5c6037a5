/**
 * Linked clones, whichever path serves them: which VMs depend on a VM's disks (a child disk whose
 * parent lives in its folder, or the ceso.parentDisk marker naming one), and the refusals that keep
 * a parent disk from being deleted or written: deleting the VM, or a snapshot that freezes a parent
 * (a ceso-linked-base snapshot, or one above it in the tree, whose removal would merge the disk).
 */
import { CesoError } from './errors.js';
import { isLinkedBase } from './provisioning.js';
import type { SnapshotNode } from './snapshots.js';
import { MARKERS, parseDatastorePath } from './vm.js';

export interface LinkedDependent {
  name: string;
  id: string;
  /** The parent disk (datastore path) it hangs from. */
  parent: string;
}

/** A VM as the dependents check needs it: its disks' parents and its markers. */
export interface DiskUser {
  name: string;
  id: string;
  parents: readonly string[];
  markers: ReadonlyMap<string, string> | Record<string, string>;
}

/** `[ds] folder` of a .vmx path, or null when the VM is not in a folder. */
export function vmFolderOf(vmxPath: string | null): string | null {
  if (vmxPath === null) return null;
  const parsed = parseDatastorePath(vmxPath);
  if (parsed === null || !parsed.path.includes('/')) return null;
  return `[${parsed.datastore}] ${parsed.path.slice(0, parsed.path.lastIndexOf('/'))}`;
}

function marker(markers: DiskUser['markers'], key: string): string | undefined {
  return markers instanceof Map ? markers.get(key) : (markers as Record<string, string>)[key];
}

/** The other VMs with a disk whose parent is one of the target's files (in its folder). */
export function dependentsOf(target: { id: string; vmxPath: string | null }, vms: readonly DiskUser[]): LinkedDependent[] {
  const folder = vmFolderOf(target.vmxPath);
  if (folder === null) return [];
  const inFolder = (file: string): boolean => file.startsWith(`${folder}/`);
  const dependents: LinkedDependent[] = [];
  for (const vm of vms) {
    if (vm.id === target.id) continue;
    const parents = [...vm.parents, marker(vm.markers, MARKERS.parentDisk) ?? ''].filter((file) => file !== '' && inFolder(file));
    if (parents.length > 0) dependents.push({ name: vm.name, id: vm.id, parent: parents[0] as string });
  }
  return dependents.sort((a, b) => a.name.localeCompare(b.name));
}

export function hasDependents(what: string, dependents: readonly LinkedDependent[], hint: string): CesoError {
  return new CesoError('HAS_DEPENDENTS', `${what}: ${dependents.length} linked clone(s) depend on its disk: ${dependents.map((item) => `${item.name} (id ${item.id})`).join(', ')}`, {
    hint,
    details: { dependents: dependents.map((item) => ({ name: item.name, id: item.id, parent: item.parent })) },
  });
}

/** Deleting a VM whose disks linked clones hang from is refused, --force or not. */
export function assertNoDependents(vm: { name: string }, dependents: readonly LinkedDependent[]): void {
  if (dependents.length === 0) return;
  throw hasDependents(`"${vm.name}" cannot be deleted`, dependents, `Delete its linked clones first (ceso vm delete ${dependents[0]?.name ?? 'NAME'}); --force does not override this`);
}

/**
 * Removing a ceso-linked-base snapshot, or one above it (its removal merges the base disk into
 * its parent), while linked clones exist writes or removes their parent: refused.
 */
export function assertSnapshotsFree(vm: { name: string }, roots: readonly SnapshotNode[], removedIds: readonly string[], dependents: readonly LinkedDependent[]): void {
  if (dependents.length === 0) return;
  const removed = new Set(removedIds);
  const holdsBase = (node: SnapshotNode): boolean => isLinkedBase(node.name) || node.children.some(holdsBase);
  const walk = (nodes: readonly SnapshotNode[]): SnapshotNode[] => nodes.flatMap((node) => [node, ...walk(node.children)]);
  const hit = walk(roots).filter((node) => removed.has(node.id) && holdsBase(node));
  if (hit.length === 0) return;
  throw hasDependents(
    `snapshot ${hit.map((node) => `"${node.path}"`).join(', ')} of "${vm.name}" cannot be deleted`,
    dependents,
    `Its disk is the parent of linked clones: delete them first (ceso vm delete ${dependents[0]?.name ?? 'NAME'})`,
  );
}
