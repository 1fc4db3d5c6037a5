import { CesoError } from './errors.js';
import type { VmSelector } from './vm.js';

/** Picks the one VM a selector names from candidates, or fails with VM_NOT_FOUND / AMBIGUOUS. */
export function selectOne<T extends { name: string; id: string }>(candidates: readonly T[], selector: VmSelector): T {
  if (selector.id !== undefined) {
    const byId = candidates.find((vm) => vm.id === selector.id);
    if (byId === undefined || (selector.name !== undefined && byId.name !== selector.name)) {
      throw new CesoError('VM_NOT_FOUND', `no VM has id "${selector.id}"${selector.name === undefined ? '' : ` and name "${selector.name}"`}`, {
        hint: 'Run "ceso vm list" to see the VMs and their ids',
      });
    }
    return byId;
  }
  const name = selector.name ?? '';
  const matches = candidates.filter((vm) => vm.name === name);
  if (matches.length === 0) {
    throw new CesoError('VM_NOT_FOUND', `no VM is named "${name}"`, {
      hint: 'Names are exact and case-sensitive; run "ceso vm list" to see them',
    });
  }
  if (matches.length > 1) {
    const ids = matches.map((vm) => vm.id);
    throw new CesoError('AMBIGUOUS', `${matches.length} VMs are named "${name}" (ids ${ids.join(', ')})`, {
      hint: `Pick one with --id, e.g. --id ${ids[0]}`,
      details: { ids },
    });
  }
  return matches[0] as T;
}
