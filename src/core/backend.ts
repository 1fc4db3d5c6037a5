import type { Plan } from './plan.js';
import type {
  BackupEntry,
  BackupListRequest,
  BackupOptions,
  BackupOutcome,
  BackupRequest,
  RestoreOptions,
  RestoreOutcome,
  RestoreRequest,
  RestoreTarget,
} from './backup.js';
import type { CloneRequest, CreateRequest, DeleteRequest, PowerRequest } from './requests.js';
import type { ImportOutcome, ImportRequest } from './import.js';
import type { ReconfigureOptions, ReconfigureOutcome, ReconfigureRequest } from './reconfigure.js';
import type { TemplateInfo } from './templates.js';
import type { PowerState, Via, VmDetails, VmSelector, VmStatus, VmSummary } from './vm.js';
import type {
  SnapshotCreateOutcome,
  SnapshotCreateRequest,
  SnapshotDeleteOutcome,
  SnapshotDeleteRequest,
  SnapshotDeleteTarget,
  SnapshotRevertOutcome,
  SnapshotRevertRequest,
  SnapshotTree,
} from './snapshots.js';

/** A planned change and how to read its outcome once the plan has run. */
export interface Mutation<R> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  plan: Plan<any>;
  finish: () => Promise<R>;
  /** Releases what planning opened (a download the plan streams from), whether or not the plan ran. */
  close?: () => Promise<void>;
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

/** A VM with all of its ceso.* markers (the pool's record lives in them). */
export interface MarkedVm extends VmSummary {
  markers: Record<string, string>;
}

/** ceso.* markers to set on one VM; null removes a marker. */
export interface MarkerChange {
  vm: { name: string; id: string };
  set: Record<string, string | null>;
}

/** What `--wait` waits for: an address on the VM's NIC, or cloud-init's ready marker too. */
export type GuestWaitUntil = 'ip' | 'ready';

export interface GuestWaitOptions {
  /** What to wait for; 'now' reads once and answers at once. */
  until: GuestWaitUntil | 'now';
  /** How long to wait (ignored for 'now'). */
  timeoutMs: number;
  /**
   * The address (no prefix) the VM's first NIC must report: the --ip of the create or clone just
   * made. Without it, the static address of the VM's guestinfo metadata network config, if any;
   * else any IPv4 address counts.
   */
  expectedIp?: string;
  /** Stops the wait (Ctrl-C): it fails with INTERRUPTED, the VM is left as it is. */
  signal?: AbortSignal;
  /**
   * With 'now': fail as a wait for this would (INVALID_INPUT, NOT_SUPPORTED), whatever the power
   * state: checked before powering a VM on to wait for it.
   */
  validate?: GuestWaitUntil;
}

/** What the host reported of the guest when the wait ended (or at once, for 'now'). */
export interface GuestWaitOutcome {
  name: string;
  id: string;
  /**
   * The IPv4 address (or the expected address) the guest reports on the VM's first NIC, matched
   * by MAC in guest.net; null until it reports one (and, with a static address, that one).
   */
  ip: string | null;
  /**
   * Whether cloud-init has reported ceso's ready marker for this instance; null when it cannot
   * be known (no ceso metadata, or a host that shows no guest-set keys).
   */
  ready: boolean | null;
  /** How long ceso waited, in milliseconds; null for 'now'. */
  waitedMs: number | null;
  powerState: PowerState | null;
  /** guest.toolsRunningStatus: guestToolsRunning, guestToolsNotRunning, guestToolsExecutingScripts. */
  toolsStatus: string | null;
}

/**
 * What a host can do for ceso, whichever path serves it. The API path (src/esxi) and the SSH
 * path (src/ssh) implement it with the same result shapes; commands never know which ran.
 * Mutations come back as plans: validated against the host with reads only, run by core/operations.
 */
export interface HostBackend {
  readonly via: Via;
  listVms(): Promise<VmSummary[]>;
  /** Every VM with its ceso.* markers, in one read (the warm pool's view of the host). */
  listMarkedVms(): Promise<MarkedVm[]>;
  /**
   * Sets or removes ceso.* markers on a VM, whatever its power state (ReconfigVM_Task). Over SSH
   * only a powered-off VM's .vmx can be edited, so SSH answers NOT_SUPPORTED.
   */
  planSetMarkers(change: MarkerChange): Promise<Mutation<{ name: string; id: string }>>;
  getVm(selector: VmSelector): Promise<VmDetails>;
  planCreate(request: CreateRequest, options: { diskFromDefaults: boolean }): Promise<Mutation<VmDetails>>;
  planClone(request: CloneRequest): Promise<Mutation<VmDetails>>;
  planDelete(request: DeleteRequest): Promise<Mutation<DeleteOutcome> & { target: VmDetails }>;
  planPower(request: PowerRequest): Promise<Mutation<PowerOutcome>>;
  /**
   * CPUs, memory, disks (grow one, add thin ones), a NIC's port group, hot-add flags and the
   * annotation in one change (core/reconfigure.ts decides what changes and what is refused, the
   * same on both paths). A request the VM already satisfies plans no step: `changed` is empty.
   */
  planReconfigure(request: ReconfigureRequest, options?: ReconfigureOptions): Promise<Mutation<ReconfigureOutcome>>;
  /** The VMs that can serve as templates (see core/templates.ts), fit or not, with the reasons. */
  listTemplates(options: { defaultTemplate?: string }): Promise<TemplateInfo[]>;
  /** An OVA/OVF imported as a template (the API path only; SSH answers NOT_SUPPORTED). */
  planImport(request: ImportRequest): Promise<Mutation<ImportOutcome>>;
  /**
   * Reads the guest's address and readiness, or waits until it reports them (reads only, never a
   * change). A VM that is not powered on fails with INVALID_POWER_STATE (at once, or when it stops
   * during the wait); a wait that runs out fails with TIMEOUT naming what was last seen.
   */
  waitForGuest(selector: VmSelector, options: GuestWaitOptions): Promise<GuestWaitOutcome>;
  /** A VM's snapshot tree (core/snapshots.ts): reads only. */
  listSnapshots(selector: VmSelector): Promise<SnapshotTree>;
  /** A new snapshot; a name the VM already has is SNAPSHOT_EXISTS. Undone (removed) if a later step fails. */
  planSnapshotCreate(request: SnapshotCreateRequest): Promise<Mutation<SnapshotCreateOutcome>>;
  /** Back to a snapshot (the current one by default): one revert call; the VM comes back in the snapshot's power state unless powerOn is false. */
  planSnapshotRevert(request: SnapshotRevertRequest): Promise<Mutation<SnapshotRevertOutcome>>;
  /** Removes a snapshot (its children too, or every snapshot) with consolidation, then checks that none of its files is left. */
  planSnapshotDelete(request: SnapshotDeleteRequest): Promise<Mutation<SnapshotDeleteOutcome> & { target: SnapshotDeleteTarget }>;
  /** The backups under a destination (core/backup.ts), read from their manifests: reads only. */
  listBackups(request: BackupListRequest): Promise<BackupEntry[]>;
  /** A hot backup: snapshot, thin disk copies, the snapshot removed, the manifest last, rotation. Undone on failure. */
  planBackup(request: BackupRequest, options?: BackupOptions): Promise<Mutation<BackupOutcome>>;
  /** A new VM from a backup (new identity), or the original VM put back onto it (in place). Undone on failure. */
  planRestore(request: RestoreRequest, options?: RestoreOptions): Promise<Mutation<RestoreOutcome> & { target: RestoreTarget }>;
  close(): Promise<void>;
}
