/**
 * Datastore paths (`[ds] dir/file`) and the host's files (`<volumesRoot>/<ds>/dir/file`).
 * Datastore names may hold spaces and parentheses (`SSD Home`, `datastore (1)`); every path
 * reaches the shell quoted. Paths ceso builds itself are checked to stay inside a datastore.
 */
import { posix } from 'node:path';
import { CesoError } from '../core/errors.js';
import { parseDatastorePath } from '../core/vm.js';

/** A datastore name ceso may build a path from: no "/", not "." or "..", no control characters. */
export function isSafeDatastoreName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes(']') && !hasControl(name);
}

function hasControl(text: string): boolean {
  return [...text].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f);
}

/** The host file a datastore path names; `[] /abs/path` (system VMs) is the absolute path itself. */
export function hostPath(volumesRoot: string, datastorePath: string): string {
  const parsed = parseDatastorePath(datastorePath);
  if (parsed === null) throw new CesoError('HOST_FAULT', `not a datastore path: ${datastorePath}`);
  if (parsed.datastore === '') return parsed.path;
  return `${volumesRoot.replace(/\/+$/, '')}/${parsed.datastore}/${parsed.path}`;
}

/**
 * A file name from a .vmx (`web1.vmdk`, `/vmfs/volumes/ds/dir/x.vmdk`, `[ds] dir/x.vmdk`) as a
 * datastore path, given the .vmx's own datastore path.
 */
export function vmxFileToDatastorePath(fileName: string, vmxDatastorePath: string): string | null {
  const trimmed = fileName.trim();
  if (trimmed.startsWith('[')) return trimmed;
  const vmx = parseDatastorePath(vmxDatastorePath);
  if (trimmed.startsWith('/')) {
    const match = /^\/vmfs\/volumes\/([^/]+)\/(.+)$/.exec(posix.normalize(trimmed));
    return match ? `[${match[1]}] ${match[2]}` : null;
  }
  if (vmx === null) return null;
  const directory = posix.dirname(vmx.path);
  return `[${vmx.datastore}] ${posix.normalize(directory === '.' ? trimmed : `${directory}/${trimmed}`)}`;
}

/** The folder holding a .vmx, as a datastore path, when it is a real sub-folder of a datastore. */
export function folderOf(vmxDatastorePath: string): string | null {
  const parsed = parseDatastorePath(vmxDatastorePath);
  if (parsed === null || parsed.datastore === '' || !parsed.path.includes('/')) return null;
  const directory = parsed.path.slice(0, parsed.path.lastIndexOf('/'));
  if (!isSafeFolder(directory) || !isSafeDatastoreName(parsed.datastore)) return null;
  return `[${parsed.datastore}] ${directory}`;
}

/** A relative folder inside a datastore that `rm -rf` may be given: no "..", ".", empty or absolute parts. */
export function isSafeFolder(relative: string): boolean {
  if (relative === '' || relative.startsWith('/')) return false;
  return relative.split('/').every((part) => part !== '' && part !== '.' && part !== '..' && !hasControl(part));
}
