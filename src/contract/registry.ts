// One entry per command with a `--json` result. Adding a command's contract is one line here:
//
//   'vm reap': command<VmReapResult>()({ summary: '…', result: s.vmReapResult }),
//
// `command<T>()` fails `tsc` unless the command's declared result type T and the schema's
// output type are the same (each assignable to the other), so the two cannot drift. A test
// fails when a command in oclif.manifest.json has no entry.
import * as z from 'zod/mini';
import type { CesoError, ErrorCode } from '../core/errors.js';
import type { PowerAction } from '../core/requests.js';
import type { RenderedPlan } from '../core/plan.js';
import type { DeleteOutcome, GuestWaitOutcome, PowerOutcome } from '../core/backend.js';
import type { PowerState, Via, VmDetails, VmStatus, VmSummary } from '../core/vm.js';
import type { VmListResult } from '../commands/vm/list.js';
import type { VmInfoResult } from '../commands/vm/info.js';
import type { VmCreateResult } from '../commands/vm/create.js';
import type { VmCloneResult } from '../commands/vm/clone.js';
import type { VmDeleteResult } from '../commands/vm/delete.js';
import type { VmPowerResult } from '../commands/vm/power.js';
import type { VmIpResult } from '../commands/vm/ip.js';
import type { VmReapResult } from '../commands/vm/reap.js';
import type { VmBackupResult } from '../commands/vm/backup.js';
import type { VmRestoreResult } from '../commands/vm/restore.js';
import type { BackupListResult } from '../commands/backup/list.js';
import type { BackupEntry } from '../core/backup.js';
import type { VmReconfigureResult } from '../commands/vm/reconfigure.js';
import type { VmSnapshotCreateResult } from '../commands/vm/snapshot/create.js';
import type { VmSnapshotDeleteResult } from '../commands/vm/snapshot/delete.js';
import type { VmSnapshotListResult } from '../commands/vm/snapshot/list.js';
import type { VmSnapshotRevertResult } from '../commands/vm/snapshot/revert.js';
import type { SnapshotNode, SnapshotTree } from '../core/snapshots.js';
import type { TemplateImportResult } from '../commands/template/import.js';
import type { TemplateListResult } from '../commands/template/list.js';
import type { TemplateInfo } from '../core/templates.js';
import type { AuditResult } from '../commands/audit.js';
import type { HostTrustResult } from '../commands/host/trust.js';
import type { MetricsResult } from '../commands/metrics.js';
import type { ConfigInitResult } from '../commands/config/init.js';
import type { ConfigValidateResult } from '../commands/config/validate.js';
import type { PoolAcquireResult } from '../commands/pool/acquire.js';
import type { PoolDestroyResult } from '../commands/pool/destroy.js';
import type { PoolFillResult } from '../commands/pool/fill.js';
import type { PoolReapResult } from '../commands/pool/reap.js';
import type { PoolReleaseResult } from '../commands/pool/release.js';
import type { PoolStatusResult } from '../commands/pool/status.js';
import type { LockListResult } from '../commands/lock/list.js';
import type { LockReleaseResult } from '../commands/lock/release.js';
import type { StateMigrateResult } from '../commands/state/migrate.js';
import * as s from './schemas.js';

export type Mode = z.output<typeof s.modeSchema>;

/**
 * The same type, after flattening intersections (`VmDetails & { via }` equals the schema's one
 * object): same keys, same optionality, same value types, all the way down.
 */
export type Same<A, B> = (<T>() => T extends Flat<A> ? 1 : 2) extends <T>() => T extends Flat<B> ? 1 : 2 ? true : false;
type Flat<T> = T extends ReadonlyArray<infer E> ? Array<Flat<E>> : T extends object ? { [K in keyof T]: Flat<T[K]> } : T;

type Agrees<Declared, Schema extends z.ZodMiniType> =
  Same<Declared, z.output<Schema>> extends true ? unknown : { 'the declared result type and the contract schema differ': { declared: Declared; schema: z.output<Schema> } };

export interface ContractEntry<S extends z.ZodMiniType = z.ZodMiniType> {
  /** What the output is, for the schema's description and `ceso schema`. */
  summary: string;
  /** The value the command's run() returns. */
  result: S;
  /** Whether the output carries `mode` (BaseCommand.toSuccessJson adds it once a host is resolved). Default true. */
  mode?: boolean;
}

/** A contract entry whose schema must agree with the command's declared result type. */
export function command<Declared>() {
  return <S extends z.ZodMiniType>(entry: ContractEntry<S> & { result: Agrees<Declared, S> }): ContractEntry<S> => entry;
}

export const CONTRACT = {
  'vm list': command<VmListResult>()({ summary: 'Every VM on the host (with --host a,b,… or --all-hosts: per host)', result: s.vmListResult }),
  'vm info': command<VmInfoResult>()({ summary: 'One VM in detail', result: s.vmInfoResult }),
  'vm create': command<VmCreateResult>()({ summary: 'The VM created, or the plan of a --dry-run', result: s.vmCreateResult }),
  'vm clone': command<VmCloneResult>()({ summary: 'The clone, or the plan of a --dry-run', result: s.vmCloneResult }),
  'vm delete': command<VmDeleteResult>()({ summary: 'What was removed, or the plan of a --dry-run', result: s.vmDeleteResult }),
  'vm power': command<VmPowerResult>()({ summary: 'The power change, or the plan of a --dry-run', result: s.vmPowerResult }),
  'vm ip': command<VmIpResult>()({ summary: 'The address and readiness the guest reports: now, or once --wait ip|ready is met', result: s.vmIpResult }),
  'vm reap': command<VmReapResult>()({ summary: 'The expired managed VMs deleted (or, on a --dry-run, their plans; with --host a,b,… or --all-hosts: per host)', result: s.vmReapResult }),
  'vm reconfigure': command<VmReconfigureResult>()({ summary: 'The VM after the change (as vm info, plus its hot-add flags and the fields that changed), or the plan of a --dry-run', result: s.vmReconfigureResult }),
  'vm snapshot create': command<VmSnapshotCreateResult>()({ summary: 'The snapshot taken, or the plan of a --dry-run', result: s.vmSnapshotCreateResult }),
  'vm snapshot list': command<VmSnapshotListResult>()({ summary: 'The VM’s snapshot tree and its current snapshot', result: s.vmSnapshotListResult }),
  'vm snapshot revert': command<VmSnapshotRevertResult>()({ summary: 'The VM after the revert (as vm info) plus the snapshot, or the plan of a --dry-run', result: s.vmSnapshotRevertResult }),
  'vm snapshot delete': command<VmSnapshotDeleteResult>()({ summary: 'The snapshots deleted and the files that went, or the plan of a --dry-run', result: s.vmSnapshotDeleteResult }),
  'vm backup': command<VmBackupResult>()({ summary: 'The backup made (folder, disks, rotation), or the plan of a --dry-run', result: s.vmBackupResult }),
  'vm restore': command<VmRestoreResult>()({ summary: 'The VM restored (as vm info, plus the backup and what was replaced), or the plan of a --dry-run', result: s.vmRestoreResult }),
  'backup list': command<BackupListResult>()({ summary: 'The backups found on the datastores, newest first, complete or not', result: s.backupListResult }),
  'template import': command<TemplateImportResult>()({ summary: 'The template imported (as vm info, plus bytesUploaded and dropped), or the plan of a --dry-run', result: s.templateImportResult }),
  'template list': command<TemplateListResult>()({ summary: 'The VMs that can serve as templates, fit or not, with the reasons', result: s.templateListResult }),
  'pool status': command<PoolStatusResult>()({ summary: 'The pool’s VMs with their states, holders and lease ends, and counts by state', result: s.poolStatusResult }),
  'pool acquire': command<PoolAcquireResult>()({ summary: 'The lease: the VM, its address, the lease id and when it ends; or the plan of a --dry-run', result: s.poolAcquireResult }),
  'pool release': command<PoolReleaseResult>()({ summary: 'The VM reset (or rebuilt) and ready again, or the plan of a --dry-run', result: s.poolReleaseResult }),
  'pool fill': command<PoolFillResult>()({ summary: 'The VMs built, failed and repaired, and the counts after; or the plan of a --dry-run', result: s.poolFillResult }),
  'pool reap': command<PoolReapResult>()({ summary: 'The expired leases reclaimed and what was repaired; or the plan of a --dry-run', result: s.poolReapResult }),
  'pool destroy': command<PoolDestroyResult>()({ summary: 'The VMs deleted; or the plan of a --dry-run', result: s.poolDestroyResult }),
  // audit needs no host, so BaseCommand adds no mode: each record carries the mode it ran under.
  audit: command<AuditResult>()({ summary: 'The audit trail, oldest first', result: s.auditResult, mode: false }),
  metrics: command<MetricsResult>()({ summary: 'The metrics printed (or written to --textfile) as families of samples, and each host’s answer', result: s.metricsResult }),
  'host trust': command<HostTrustResult>()({ summary: 'The host’s certificate thumbprints and SSH host key, and whether they are pinned', result: s.hostTrustResult }),
  // config init and validate read no host: no mode is added (validate reports the file's own mode).
  'config init': command<ConfigInitResult>()({ summary: 'The starter configuration file written', result: s.configInitResult, mode: false }),
  'config validate': command<ConfigValidateResult>()({ summary: 'A valid configuration: its hosts, default host and mode', result: s.configValidateResult, mode: false }),
  // The shared state needs no host: no mode.
  'lock list': command<LockListResult>()({ summary: 'The locks held on VMs and idempotency keys, in the configured state backend', result: s.lockListResult, mode: false }),
  'lock release': command<LockReleaseResult>()({ summary: 'The lock removed by --force', result: s.lockReleaseResult, mode: false }),
  'state migrate': command<StateMigrateResult>()({ summary: 'The schema version before and after, and the migrations applied (or, on a --dry-run, to apply)', result: s.stateMigrateResult, mode: false }),
  schema: command<SchemaResult>()({ summary: 'The commands with a schema, or one command’s schemas', result: s.schemaResult, mode: false }),
} as const satisfies Record<string, ContractEntry>;

export type ContractCommand = keyof typeof CONTRACT;
export type SchemaResult = z.output<typeof s.schemaResult>;
export type ErrorEnvelope = z.output<typeof s.errorSchema>;

/** The JSON a command prints: its result with `mode` on the object, or on each element of an array. */
export type Published<T> = T extends ReadonlyArray<infer E> ? Array<Stamped<E>> : Stamped<T>;
type Stamped<T> = T extends object ? T & { mode: Mode } : T;
export type PublishedResult<C extends ContractCommand> = Published<z.output<(typeof CONTRACT)[C]['result']>>;

/** The schema of what a command prints, mirroring BaseCommand.toSuccessJson. */
export function publishedSchema(entry: ContractEntry): z.ZodMiniType {
  if (entry.mode === false) return entry.result;
  const stamp = (schema: z.ZodMiniType): z.ZodMiniType => {
    if (schema instanceof z.ZodMiniObject) return z.extend(schema, { mode: s.modeSchema });
    if (schema instanceof z.ZodMiniUnion) return z.union((schema._zod.def.options as z.ZodMiniType[]).map(stamp));
    if (schema instanceof z.ZodMiniArray) return z.array(stamp(schema._zod.def.element as z.ZodMiniType));
    return schema;
  };
  return stamp(entry.result);
}

// The core types the results are built from, checked one by one for readable tsc errors.
type Assert<T extends true> = T;
export type ContractAssertions = [
  Assert<Same<VmSummary, z.output<typeof s.vmSummarySchema>>>,
  Assert<Same<VmDetails, z.output<typeof s.vmDetailsSchema>>>,
  Assert<Same<RenderedPlan, z.output<typeof s.renderedPlanSchema>>>,
  Assert<Same<DeleteOutcome, z.output<typeof s.deleteOutcomeSchema>>>,
  Assert<Same<PowerOutcome, z.output<typeof s.powerOutcomeSchema>>>,
  Assert<Same<TemplateInfo, z.output<typeof s.templateInfoSchema>>>,
  Assert<Same<GuestWaitOutcome, z.output<typeof s.guestWaitOutcomeSchema>>>,
  Assert<Same<SnapshotNode, z.output<typeof s.snapshotNodeSchema>>>,
  Assert<Same<SnapshotTree, z.output<typeof s.snapshotTreeSchema>>>,
  Assert<Same<PowerAction, z.output<typeof s.powerActionSchema>>>,
  Assert<Same<PowerState, z.output<typeof s.powerStateSchema>>>,
  Assert<Same<VmStatus, z.output<typeof s.vmStatusSchema>>>,
  Assert<Same<Via, z.output<typeof s.viaSchema>>>,
  Assert<Same<BackupEntry, z.output<typeof s.backupEntrySchema>>>,
  Assert<Same<ErrorCode, ErrorEnvelope['error']['code']>>,
  Assert<Same<{ error: ReturnType<CesoError['toJSON']> }, ErrorEnvelope>>,
];
