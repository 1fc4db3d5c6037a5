import { hasDependents, type LinkedDependent } from '../../core/linked.js';
import { parseDatastorePath } from '../../core/vm.js';
import type { SshContext } from '../context.js';
import type { VmRow } from '../parse.js';
import { folderOf } from '../paths.js';
import { quote } from '../quote.js';

export { hasDependents };

/**
 * The linked clones whose disks hang from the files of the VM's folder, in ONE remote command:
 * the descriptors one folder deep on every datastore whose parentFileNameHint names the folder
 * (absolutely, as a child in another folder does), and the .vmx files whose ceso.parentDisk does.
 */
export async function linkedDependents(context: SshContext, vm: { id: string; vmxPath: string | null }, rows: readonly VmRow[]): Promise<LinkedDependent[]> {
  const folder = vm.vmxPath === null ? null : folderOf(vm.vmxPath);
  if (folder === null) return [];
  const parsed = parseDatastorePath(folder);
  if (parsed === null) return [];
  const root = context.volumesRoot.replace(/\/+$/, '');
  const hint = `parentFileNameHint="/vmfs/volumes/${parsed.datastore}/${parsed.path}/`;
  const marker = `ceso.parentDisk = "${folder}/`;
  const command =
    `for f in ${quote(root)}/*/*/*.vmdk ${quote(root)}/*/*/*.vmx; do [ -f "$f" ] || continue; ` +
    `case "$f" in *.vmdk) [ "$(wc -c < "$f")" -lt 65536 ] && grep -q -F -e ${quote(hint)} "$f" && printf '%s\\n' "$f";; ` +
    `*) grep -q -F -e ${quote(marker)} "$f" && printf '%s\\n' "$f";; esac; done; true`;
  const result = await context.shell.exec(command);
  const own = `${root}/${parsed.datastore}/${parsed.path}/`;
  const dependents = new Map<string, LinkedDependent>();
  for (const line of result.stdout.split('\n')) {
    if (line === '' || !line.startsWith(`${root}/`) || line.startsWith(own)) continue;
    const relative = line.slice(root.length + 1);
    const datastore = relative.slice(0, relative.indexOf('/'));
    const rest = relative.slice(datastore.length + 1);
    const childFolder = `[${datastore}] ${rest.slice(0, rest.lastIndexOf('/'))}`;
    for (const row of rows) {
      if (row.id === vm.id || !row.file.startsWith(`${childFolder}/`) || dependents.has(row.id)) continue;
      dependents.set(row.id, { name: row.name, id: row.id, parent: folder });
    }
  }
  return [...dependents.values()].sort((a, b) => a.name.localeCompare(b.name));
}
