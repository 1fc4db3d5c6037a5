import type { Plan } from './plan.js';
import type { CloneRequest, CreateRequest, DeleteRequest, PowerRequest } from './requests.js';
import type { PowerState, Via, VmDetails, VmSelector, VmStatus, VmSummary } from './vm.js';

/** A planned change and how to read its outcome once the plan has run. */
export interface Mutation<R> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  plan: Plan<any>;
  finish: () => Promise<R>;
}

export interface DeleteOutcome {
  name: string;
  id: string;
  deleted: true;
  removed: string[];
}

export interface PowerOutcome {
  name: string;
  id: string;
  action: PowerRequest['action'];
  previousState: PowerState | null;
  powerState: PowerState | null;
  status: VmStatus | null;
  changed: boolean;
  message: string;
}

/**
 * What a host can do for ceso, whichever path serves it. The API path (src/esxi) and the SSH
 * path (src/ssh) implement it with the same result shapes; commands never know which ran.
 * Mutations come back as plans: validated against the host with reads only, run by core/operations.
 */
export interface HostBackend {
  readonly via: Via;
  listVms(): Promise<VmSummary[]>;
  getVm(selector: VmSelector): Promise<VmDetails>;
  planCreate(request: CreateRequest, options: { diskFromDefaults: boolean }): Promise<Mutation<VmDetails>>;
  planClone(request: CloneRequest): Promise<Mutation<VmDetails>>;
  planDelete(request: DeleteRequest): Promise<Mutation<DeleteOutcome> & { target: VmDetails }>;
  planPower(request: PowerRequest): Promise<Mutation<PowerOutcome>>;
  close(): Promise<void>;
}
