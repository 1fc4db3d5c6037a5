import type { Via, VmDetails, VmSelector, VmSummary } from './vm.js';

/**
 * What a host can do for ceso, whichever path serves it. The API path (src/esxi) and the SSH
 * path (src/ssh) implement it with the same result shapes; commands never know which ran.
 */
export interface HostBackend {
  readonly via: Via;
  listVms(): Promise<VmSummary[]>;
  getVm(selector: VmSelector): Promise<VmDetails>;
  close(): Promise<void>;
}
