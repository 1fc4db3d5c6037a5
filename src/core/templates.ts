/** What `template list` reports of a VM that can serve as a template, on either path. */
import type { VmDisk } from './vm.js';

export interface TemplateInfo {
  name: string;
  id: string;
  guestId: string | null;
  disks: VmDisk[];
  /** ceso.importedFrom, when ceso imported it. */
  importedFrom: string | null;
  /** Whether `vm create --template NAME` can use it now. */
  fit: boolean;
  /** Why not, in words ("powered on", "no disk", "no network adapter"); empty when fit. */
  unfitReasons: string[];
}
