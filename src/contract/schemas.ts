// The shapes of ceso's `--json` output, defined once. Commands' result types are checked against
// these (src/contract/registry.ts); `npm run build` turns them into the JSON Schema files under
// schema/ (scripts/build-schemas.mjs); tests validate real outputs against those files.
//
// Rules of the contract: objects are closed (a new field is a contract change, made here);
// values ceso could not learn are null, never omitted, in VM objects.
// zod/mini, never zod: this module is imported by the commands' graph only for types.
import * as z from 'zod/mini';
import { ERROR_CODES, type ErrorCode } from '../core/errors.js';

const int = () => z.number().check(z.int());
const count = () => z.number().check(z.int(), z.gte(0));
const described = <S extends z.ZodMiniType>(schema: S, description: string): S => schema.check(z.describe(description)) as S;

export const modeSchema = described(z.enum(['standard', 'restricted']), 'The security mode the command ran under');
export const viaSchema = described(z.enum(['api', 'ssh']), 'The path that served the command: the vSphere API or SSH (vim-cmd)');
export const powerStateSchema = z.enum(['poweredOn', 'poweredOff', 'suspended']);
export const vmStatusSchema = z.enum(['running', 'stopped', 'suspended']);
export const powerActionSchema = z.enum(['on', 'off', 'shutdown', 'reset', 'suspend']);
const durationSchema = described(count(), 'Wall time of the change in milliseconds');

// --- VMs ------------------------------------------------------------------------------------

const vmSummaryShape = {
  name: z.string(),
  id: described(z.string(), 'The managed object id (the vmid on a standalone host)'),
  uuid: z.nullable(z.string()),
  status: z.nullable(vmStatusSchema),
  powerState: z.nullable(powerStateSchema),
  cpu: z.nullable(int()),
  memoryMB: z.nullable(int()),
  ip: z.nullable(z.string()),
  guestId: z.nullable(z.string()),
  managed: described(z.boolean(), 'Whether the VM carries ceso.managed = "true"'),
  expiresAt: described(z.nullable(z.string()), 'ceso.expiresAt (ISO 8601) when the VM has a TTL'),
  linked: described(z.boolean(), 'Whether the VM is a linked clone (ceso.linked = "true"): its disk is a child of a template’s base snapshot disk'),
  pool: described(z.nullable(z.string()), 'The warm pool the VM belongs to (ceso.pool), else null'),
  poolState: described(z.nullable(z.string()), 'Its state in the pool (ceso.poolState): building, ready, leased, resetting or failed'),
};

export const vmSummarySchema = z.strictObject(vmSummaryShape);

export const vmDiskSchema = z.strictObject({
  label: z.nullable(z.string()),
  file: z.string(),
  capacityGB: z.nullable(z.number()),
  thin: z.nullable(z.boolean()),
  parent: described(z.nullable(z.string()), 'The disk this one is a child (delta) of, as a datastore path; null for a disk without a parent'),
});

export const vmNicSchema = z.strictObject({
  label: z.nullable(z.string()),
  network: z.nullable(z.string()),
  mac: z.nullable(z.string()),
  type: z.nullable(z.string()),
});

export const vmSnapshotSchema = z.strictObject({
  name: z.string(),
  id: z.nullable(z.string()),
  description: z.nullable(z.string()),
  createdAt: z.nullable(z.string()),
  state: z.nullable(z.string()),
  current: z.boolean(),
  get children(): z.ZodMiniArray<typeof vmSnapshotSchema> {
    return z.array(vmSnapshotSchema);
  },
});
// Registered, not .check()ed: a check clones the object while its getter cannot yet see it.
vmSnapshotSchema.register(z.globalRegistry, { id: 'VmSnapshot', description: 'A snapshot and, under children, the snapshots taken from it' });

export const guestinfoKeySchema = z.strictObject({
  key: z.string().check(z.regex(/^guestinfo\./)),
  bytes: count(),
});

const vmDetailsShape = {
  ...vmSummaryShape,
  vmxPath: z.nullable(z.string()),
  datastore: z.nullable(z.string()),
  firmware: z.nullable(z.string()),
  disks: z.array(vmDiskSchema),
  nics: z.array(vmNicSchema),
  snapshots: z.array(vmSnapshotSchema),
  annotation: z.nullable(z.string()),
  guestinfo: described(z.array(guestinfoKeySchema), 'guestinfo.* keys present: names and sizes, never values'),
  markers: described(z.record(z.string().check(z.regex(/^ceso\./)), z.string()), 'ceso.* extraConfig markers'),
};

export const vmDetailsSchema = z.strictObject(vmDetailsShape);

// --- Plans (--dry-run) -----------------------------------------------------------------------

const stepShape = {
  step: described(int().check(z.gte(1)), 'Position in the plan, from 1'),
  id: described(z.string(), 'Stable identifier, e.g. "copy-disk-0"'),
  description: z.string(),
};

export const planStepSchema = z.union([
  z.strictObject({
    ...stepShape,
    kind: z.literal('api'),
    method: described(z.string(), 'The vSphere API method'),
    object: described(z.string(), 'The managed object it is called on'),
    arguments: z.record(z.string(), z.unknown()),
  }),
  z.strictObject({
    ...stepShape,
    kind: z.literal('ssh'),
    command: described(z.string(), 'The exact shell command run on the host'),
  }),
]);

export const renderedPlanSchema = z.strictObject({
  operation: z.string(),
  target: z.string(),
  via: viaSchema,
  steps: z.array(planStepSchema),
  review: described(z.exactOptional(z.record(z.string(), z.unknown())), 'Documents for review (cloud-init decoded, secrets masked)'),
  warnings: z.array(z.string()),
});

export const dryRunSchema = described(
  z.strictObject({ dryRun: z.literal(true), plan: renderedPlanSchema }),
  'A --dry-run: the plan, and nothing changed',
);

// --- Outcomes of changes -------------------------------------------------------------------

export const deleteOutcomeSchema = z.strictObject({
  name: z.string(),
  id: z.string(),
  deleted: z.literal(true),
  removed: described(z.array(z.string()), 'Datastore paths removed, the folder last'),
});

export const powerOutcomeSchema = z.strictObject({
  name: z.string(),
  id: z.string(),
  action: powerActionSchema,
  previousState: z.nullable(powerStateSchema),
  powerState: z.nullable(powerStateSchema),
  status: z.nullable(vmStatusSchema),
  changed: described(z.boolean(), 'False when the VM was already in the requested state'),
  message: z.string(),
});

/** A change that ran: its outcome, the path that served it and how long it took. */
const ran = <S extends z.ZodMiniObject>(outcome: S) => z.extend(outcome, { via: viaSchema, durationMs: durationSchema });

// --- Waiting for the guest (--wait ip|ready, vm ip) ------------------------------------------

const guestIpSchema = described(
  z.nullable(z.string()),
  'The IPv4 address (or the VM’s static address) the guest reports on the VM’s first NIC through VMware Tools; null until it reports one',
);
const waitedShape = {
  ready: described(
    z.nullable(z.boolean()),
    'Whether cloud-init has reported ceso’s ready marker (guestinfo.ceso.ready) for this instance; null when not asked (no --wait) or not knowable (no ceso metadata)',
  ),
  waitedMs: described(z.nullable(count()), 'How long ceso waited for the guest, in milliseconds; null without --wait'),
};

export const guestWaitOutcomeSchema = z.strictObject({
  name: z.string(),
  id: described(z.string(), 'The managed object id (the vmid on a standalone host)'),
  ip: guestIpSchema,
  ...waitedShape,
  powerState: z.nullable(powerStateSchema),
  toolsStatus: described(z.nullable(z.string()), 'guest.toolsRunningStatus: guestToolsRunning, guestToolsNotRunning or guestToolsExecutingScripts'),
});

// --- Command results (what each command's run() returns; `mode` is added on output) ---------

export const vmListHostResult = z.array(z.extend(vmSummarySchema, { via: viaSchema }));
export const vmInfoResult = z.extend(vmDetailsSchema, { via: viaSchema });
const replayedShape = {
  replayed: z.optional(described(z.boolean(), 'With --idempotency-key: true when this is the first run’s result, replayed (nothing was changed now); false on the first run')),
};
export const vmCreateResult = z.union([dryRunSchema, z.extend(ran(vmDetailsSchema), { ...waitedShape, ...replayedShape })]);
export const vmCloneResult = z.union([dryRunSchema, z.extend(ran(vmDetailsSchema), { ...waitedShape, ...replayedShape })]);
export const vmDeleteResult = z.union([dryRunSchema, z.extend(ran(deleteOutcomeSchema), replayedShape)]);
export const vmPowerResult = z.union([dryRunSchema, z.extend(ran(powerOutcomeSchema), { ip: described(z.nullable(z.string()), 'With --wait: the address the guest reports (see vm ip); null without --wait'), ...waitedShape })]);
export const vmIpResult = z.extend(guestWaitOutcomeSchema, { via: viaSchema });

// --- Reconfigure -----------------------------------------------------------------------------

export const reconfigureChangedSchema = described(
  z.array(z.string().check(z.regex(/^(cpu|memoryMB|annotation|cpuHotAdd|memoryHotAdd|disks\[\d+\](\.capacityGB)?|nics\[\d+\]\.network)$/))),
  'The fields of this result the change set, in this order: "cpu", "memoryMB", "disks[i].capacityGB" (disk i grew), ' +
    '"disks[i]" (disk i was added), "nics[i].network" (NIC i moved), "annotation", "cpuHotAdd", "memoryHotAdd" ' +
    '(i indexes this result’s disks and nics, from 0). Empty when the VM already had what was asked (nothing was sent to the host)',
);

export const vmReconfigureResult = z.union([
  dryRunSchema,
  z.extend(ran(vmDetailsSchema), {
    cpuHotAdd: described(z.nullable(z.boolean()), 'CPU hot add (config.cpuHotAddEnabled; vcpu.hotadd in the .vmx); null when the host does not say'),
    memoryHotAdd: described(z.nullable(z.boolean()), 'Memory hot add (config.memoryHotAddEnabled; mem.hotadd in the .vmx); null when the host does not say'),
    changed: reconfigureChangedSchema,
  }),
]);

// --- Snapshots -------------------------------------------------------------------------------

export const snapshotNodeSchema = z.strictObject({
  id: described(z.string(), 'The snapshot tree’s integer id (the same over the API and over SSH)'),
  name: z.string(),
  path: described(z.string(), 'The names from the root down to this snapshot, joined by "/"'),
  description: z.nullable(z.string()),
  createdAt: described(z.nullable(z.string()), 'ISO 8601, whole seconds'),
  powerState: described(z.nullable(powerStateSchema), 'The power state the snapshot restores: poweredOff for a disk-only snapshot'),
  memory: described(z.boolean(), 'Whether it holds the VM’s memory (its power state is poweredOn or suspended)'),
  quiesced: described(z.nullable(z.boolean()), 'Whether the guest was quiesced; null when the host does not say'),
  get children(): z.ZodMiniArray<typeof snapshotNodeSchema> {
    return z.array(snapshotNodeSchema);
  },
});
// Registered, not .check()ed (see VmSnapshot).
snapshotNodeSchema.register(z.globalRegistry, { id: 'SnapshotNode', description: 'A snapshot and, under children, the snapshots taken from it' });

export const snapshotRefSchema = z.strictObject({ id: z.string(), name: z.string(), path: z.string() });
const vmRefSchema = z.strictObject({ name: z.string(), id: described(z.string(), 'The managed object id (the vmid on a standalone host)') });

export const snapshotTreeSchema = z.strictObject({
  vm: vmRefSchema,
  current: described(z.nullable(z.string()), 'The id of the snapshot the VM runs from (what revert goes back to by default); null when none or unknown'),
  snapshots: z.array(snapshotNodeSchema),
});

export const snapshotCreateOutcomeSchema = z.strictObject({
  name: described(z.string(), 'The VM’s name'),
  id: described(z.string(), 'The VM’s id'),
  snapshot: snapshotNodeSchema,
});

export const snapshotDeleteOutcomeSchema = z.strictObject({
  name: described(z.string(), 'The VM’s name'),
  id: described(z.string(), 'The VM’s id'),
  deleted: described(z.array(snapshotRefSchema), 'The snapshots removed'),
  removedFiles: described(z.array(z.string()), 'Datastore paths that left the VM’s folder (deltas merged away, snapshot state files)'),
  current: z.nullable(z.string()),
});

export const vmSnapshotListResult = z.extend(snapshotTreeSchema, { via: viaSchema });
export const vmSnapshotCreateResult = z.union([dryRunSchema, ran(snapshotCreateOutcomeSchema)]);
export const vmSnapshotRevertResult = z.union([dryRunSchema, z.extend(ran(vmDetailsSchema), { snapshot: described(snapshotNodeSchema, 'The snapshot reverted to') })]);
export const vmSnapshotDeleteResult = z.union([dryRunSchema, ran(snapshotDeleteOutcomeSchema)]);

// --- Backups ---------------------------------------------------------------------------------

export const backupEntrySchema = z.strictObject({
  vm: described(z.string(), 'The VM backed up (from the manifest, else the folder’s name)'),
  time: described(z.nullable(z.string()), 'ISO time the backup began (the snapshot’s point in time); null when unknown'),
  size: described(z.nullable(count()), 'Bytes of the backup’s files as the datastore lists them'),
  path: described(z.string(), 'The backup folder, e.g. "[datastore1] backups/web1/web1-20261201T120000Z"'),
  complete: described(z.boolean(), 'Whether the folder holds a valid ceso-backup.json (written last: the backup finished)'),
  problem: described(z.nullable(z.string()), 'Why it is not complete; null when it is'),
});

export const backupOutcomeSchema = z.strictObject({
  name: z.string(),
  id: z.string(),
  backup: backupEntrySchema,
  snapshot: described(z.nullable(z.string()), 'The snapshot the disks were copied from (removed again); null for a VM copied powered off'),
  disks: z.array(
    z.strictObject({
      source: described(z.string(), 'The disk the VM used when the backup began'),
      file: described(z.string(), 'The copy in the backup folder'),
      capacityBytes: count(),
      bytes: described(count(), 'The copy’s descriptor and extents as the datastore lists them'),
    }),
  ),
  removed: described(z.array(z.string()), 'Older backups removed by rotation (--keep)'),
  kept: described(z.array(z.string()), 'The VM’s complete backups after rotation, newest first'),
  warnings: z.array(z.string()),
});

export const vmBackupResult = z.union([dryRunSchema, ran(backupOutcomeSchema)]);
export const backupListResult = z.array(z.extend(backupEntrySchema, { via: viaSchema }));
export const vmRestoreResult = z.union([
  dryRunSchema,
  z.extend(ran(vmDetailsSchema), {
    backup: described(z.string(), 'The backup folder restored from'),
    inPlace: described(z.boolean(), 'True for --in-place (the original VM), false for a new VM'),
    replaced: described(z.array(z.string()), 'In place: the VM’s previous files removed once it used the restored ones; [] for a new VM'),
    warnings: z.array(z.string()),
  }),
]);

// --- Templates -------------------------------------------------------------------------------

export const templateInfoSchema = z.strictObject({
  name: z.string(),
  id: described(z.string(), 'The managed object id (the vmid on a standalone host)'),
  guestId: z.nullable(z.string()),
  disks: z.array(vmDiskSchema),
  importedFrom: described(z.nullable(z.string()), 'ceso.importedFrom: the source ceso imported it from'),
  fit: described(z.boolean(), 'Whether vm create --template NAME can use it now'),
  unfitReasons: described(z.array(z.string()), 'Why not (e.g. "powered on: a template must be powered off", "no disk"); empty when fit'),
});

export const templateListResult = z.array(z.extend(templateInfoSchema, { via: viaSchema }));

export const droppedItemSchema = z.strictObject({
  name: described(z.string(), 'The OVF item’s ElementName, e.g. serial0'),
  kind: described(z.string(), 'What it is, e.g. serial port'),
  reason: described(z.string(), 'The host’s message (OvfUnsupportedType)'),
});

export const templateImportResult = z.union([
  dryRunSchema,
  z.extend(ran(vmDetailsSchema), {
    bytesUploaded: described(count(), 'Bytes sent to the host over the NFC lease (the streamOptimized disks)'),
    dropped: described(z.array(droppedItemSchema), 'OVF items the host refused and the template was made without'),
  }),
]);

export const reapEntrySchema = z.strictObject({
  name: z.string(),
  id: z.string(),
  expiresAt: z.string(),
  deleted: described(z.boolean(), 'False on a --dry-run and when the deletion failed'),
  error: described(z.nullable(z.strictObject({ code: z.string(), message: z.string() })), 'Why this VM could not be deleted (the others still are)'),
});

export const vmReapHostResult = z.strictObject({
  dryRun: z.boolean(),
  checked: described(count(), 'How many VMs were looked at'),
  reaped: described(z.array(reapEntrySchema), 'Every managed VM whose expiry had passed'),
  plans: described(z.array(renderedPlanSchema), 'On a --dry-run, the deletion plan of each'),
  via: viaSchema,
});

export const auditRecordSchema = z.strictObject({
  time: described(z.string(), 'ISO time the command started'),
  user: described(z.string(), 'OS user running ceso'),
  host: described(z.string(), 'The host entry name and address'),
  command: described(z.string(), 'e.g. "vm create"'),
  arguments: described(z.record(z.string(), z.unknown()), 'Parsed arguments and flags, secrets masked'),
  mode: modeSchema,
  via: z.nullable(viaSchema),
  dryRun: z.boolean(),
  outcome: z.enum(['success', 'error']),
  errorCode: z.nullable(z.string()),
  vmId: z.nullable(z.string()),
  vm: z.nullable(z.string()),
  durationMs: durationSchema,
});

export const auditResult = z.array(auditRecordSchema);

// --- Shared state (src/state): lock list, lock release, state migrate -----------------------

const stateBackendSchema = described(z.enum(['local', 'postgres']), 'Where the state lives: files in CESO_HOME (local) or the shared PostgreSQL database');
const stateLocationSchema = described(z.string(), 'The CESO_HOME directory, or the database URL without its password');

export const lockEntrySchema = z.strictObject({
  id: described(z.string(), 'The id ceso lock release takes'),
  host: described(z.string(), 'Host key "address:port" (idempotency-key for the lock of an idempotency key)'),
  vm: described(z.string(), 'The VM name (or the idempotency key)'),
  holder: z.strictObject({
    user: described(z.string(), 'OS user of the holder'),
    machine: described(z.string(), 'Host name of the holder’s machine'),
    pid: count(),
    command: described(z.string(), 'What the holder is doing, e.g. "ceso vm delete"'),
  }),
  since: described(z.string(), 'ISO time the lock was taken'),
  expiresAt: described(z.nullable(z.string()), 'ISO time it lapses unless its holder renews it (postgres); null for a local lock, which lasts as long as its process'),
  state: described(z.enum(['held', 'expired', 'stale']), 'held; expired (postgres: past expiresAt, the next ceso takes it over); stale (local: the holder process is gone)'),
});

export const lockListResult = z.strictObject({ backend: stateBackendSchema, location: stateLocationSchema, locks: z.array(lockEntrySchema) });
export const lockReleaseResult = z.strictObject({ backend: stateBackendSchema, released: lockEntrySchema });

export const stateMigrateResult = z.strictObject({
  backend: stateBackendSchema,
  location: stateLocationSchema,
  dryRun: z.boolean(),
  fromVersion: described(z.nullable(count()), 'Schema version before (null for the local backend)'),
  toVersion: described(z.nullable(count()), 'Schema version after, or on a --dry-run the one it would reach'),
  applied: described(z.array(z.strictObject({ version: count(), name: z.string() })), 'The migrations applied (on a --dry-run: those that would be)'),
});

export const hostTrustResult = z.strictObject({
  host: described(z.string(), 'The host entry name'),
  address: described(z.string(), 'host:port of the API endpoint'),
  thumbprintSha256: z.string(),
  thumbprintSha1: z.string(),
  certificate: z.strictObject({ subject: z.string(), issuer: z.string(), validFrom: z.string(), validTo: z.string() }),
  sshHostKey: described(
    z.nullable(z.strictObject({ fingerprint: described(z.string(), 'SHA256:… as ssh-keygen -lf prints it'), type: z.string() })),
    'null when the SSH endpoint could not be read',
  ),
  pinned: described(z.boolean(), 'Whether the configuration file now pins this certificate (and this SSH key, when it was read)'),
  configPath: z.string(),
});

export const configInitResult = z.strictObject({
  configPath: z.string(),
  overwritten: described(z.boolean(), 'True when --force replaced an existing file'),
});

export const configValidateResult = z.strictObject({
  configPath: z.string(),
  valid: z.literal(true),
  hosts: described(z.array(z.strictObject({ name: z.string(), address: z.string() })), 'Every host the file defines: "default" is the top-level esxi section'),
  defaultHost: described(z.nullable(z.string()), 'The host used without --host; null when the file defines none'),
  mode: modeSchema,
  warnings: z.array(z.string()),
});

const schemaEntrySchema = z.strictObject({
  command: described(z.string(), 'The command as typed, e.g. "vm list"'),
  id: described(z.string(), 'The schema id, e.g. "vm-list" (schema/vm-list.json)'),
  summary: z.string(),
});

export const schemaResult = z.union([
  z.strictObject({ commands: z.array(schemaEntrySchema) }),
  z.strictObject({
    ...schemaEntrySchema.shape,
    result: described(z.record(z.string(), z.unknown()), 'JSON Schema of the --json success output'),
    error: described(z.record(z.string(), z.unknown()), 'JSON Schema of the --json error output'),
  }),
]);

// --- Errors ----------------------------------------------------------------------------------

const codes = Object.entries(ERROR_CODES).map(([code, { exit, summary }]) => described(z.literal(code as ErrorCode), `${summary} (exit ${exit})`));

const errorBodySchema = z.strictObject({
  code: described(z.union(codes), 'Stable error code; the exit code follows from it'),
  message: z.string(),
  hint: described(z.exactOptional(z.string()), 'What to do about it'),
  details: described(z.exactOptional(z.record(z.string(), z.unknown())), 'Machine-readable particulars (e.g. cleanedUp, leftovers)'),
});

export const errorSchema = described(z.strictObject({ error: errorBodySchema }), 'Every failure, on stdout with --json; the exit code is not 0');

// --- Several hosts (--host a,b,…, --all-hosts; core/fleet.ts) --------------------------------

const hostFailureSchema = z.strictObject({
  host: described(z.string(), 'The host entry name ("default": the top-level esxi section)'),
  ok: z.literal(false),
  error: described(errorBodySchema, 'Why the host did not answer (as the error output of a single-host run)'),
});

/** `{hosts: [{host, ok: true, …answer}, {host, ok: false, error}]}`, one entry per host in the order asked. */
function fleetResultSchema<S extends z.ZodMiniObject>(answer: S) {
  const answered = z.extend(answer, { host: described(z.string(), 'The host entry name ("default": the top-level esxi section)'), ok: z.literal(true) });
  return described(
    z.strictObject({ hosts: z.array(z.union([answered, hostFailureSchema])) }),
    'With --host a,b,… or --all-hosts: every host asked for, in that order, with its answer or its error; the exit code is 0 only when every host answered',
  );
}

export const vmListResult = z.union([vmListHostResult, fleetResultSchema(z.strictObject({ vms: vmListHostResult }))]);
export const vmReapResult = z.union([vmReapHostResult, fleetResultSchema(vmReapHostResult)]);

// --- Metrics ---------------------------------------------------------------------------------

export const metricSampleSchema = z.strictObject({
  name: described(z.string(), 'The series: the family’s name, or for a histogram its _bucket, _sum or _count'),
  labels: z.record(z.string(), z.string()),
  value: z.number(),
});

export const metricFamilySchema = z.strictObject({
  name: z.string().check(z.regex(/^ceso_[a-z_]+$/)),
  type: z.enum(['gauge', 'counter', 'histogram']),
  help: z.string(),
  samples: z.array(metricSampleSchema),
});

export const metricsResult = z.strictObject({
  hosts: described(
    z.array(z.union([z.strictObject({ host: z.string(), ok: z.literal(true), via: viaSchema, vms: described(count(), 'VMs listed') }), hostFailureSchema])),
    'Every host asked for (ceso_host_up): its path and VM count, or its error',
  ),
  metrics: described(z.array(metricFamilySchema), 'The metric families of the text output, in its order, with the same samples'),
  textfile: described(z.nullable(z.string()), 'The file written (--textfile), else null (the text went to stdout, unless --json)'),
});

// --- Warm pools (ceso pool …) ---------------------------------------------------------------

const poolDryRun = z.extend(dryRunSchema, { via: viaSchema });
const poolStateSchema = described(z.enum(['building', 'ready', 'leased', 'resetting', 'failed']), 'The VM’s state in the pool (ceso.poolState)');
const poolCountsSchema = described(
  z.strictObject({ building: count(), ready: count(), leased: count(), resetting: count(), failed: count() }),
  'How many of the pool’s VMs are in each state',
);
const failedVmSchema = z.strictObject({ name: z.string(), error: z.strictObject({ code: z.string(), message: z.string() }) });

const poolStatusHostResult = z.strictObject({
  pool: z.string(),
  template: z.string(),
  size: described(count(), 'Ready VMs pool fill keeps on top of the leased ones'),
  max: described(count(), 'VMs of the pool in all, at most'),
  counts: poolCountsSchema,
  vms: z.array(
    z.strictObject({
      name: z.string(),
      id: z.string(),
      state: poolStateSchema,
      powerState: z.nullable(powerStateSchema),
      ip: z.nullable(z.string()),
      holder: described(z.nullable(z.string()), 'Who holds the lease (ceso.leaseHolder); the lease id is never shown'),
      leasedAt: z.nullable(z.string()),
      leaseExpiresAt: z.nullable(z.string()),
      expired: described(z.boolean(), 'A lease past its end that pool reap has not reclaimed yet'),
      resets: described(count(), 'Resets to the golden snapshot since the VM was built'),
      stale: described(z.boolean(), 'Building or resetting, or failed, with no ceso process at work on it: pool fill and pool reap repair it'),
      worker: described(
        z.nullable(z.strictObject({ pid: int(), hostname: z.string(), command: z.string(), since: z.string() })),
        'The ceso process at work on the VM now (its lock holder), if any',
      ),
    }),
  ),
  via: viaSchema,
});

export const poolStatusResult = z.union([poolStatusHostResult, fleetResultSchema(poolStatusHostResult)]);

export const poolAcquireResult = z.union([
  poolDryRun,
  z.strictObject({
    pool: z.string(),
    vm: z.string(),
    id: z.string(),
    ip: described(z.nullable(z.string()), 'The address the guest reports'),
    leaseId: described(z.string(), 'The lease’s id: give it to pool release --lease; a release under an old lease id changes nothing'),
    holder: z.string(),
    leasedAt: z.string(),
    expiresAt: described(z.string(), 'When the lease ends: pool reap takes the VM back after that'),
    via: viaSchema,
    ...replayedShape,
  }),
]);

const resetOutcomeShape = {
  pool: z.string(),
  vm: z.string(),
  id: z.string(),
  method: described(z.enum(['revert', 'rebuild']), 'revert: back to ceso-golden; rebuild: deleted and built anew (maxResets reached, or the revert failed)'),
  reason: described(z.nullable(z.string()), 'Why it was rebuilt'),
  state: z.literal('ready'),
  ip: z.nullable(z.string()),
  resets: count(),
};

export const poolReleaseResult = z.union([poolDryRun, z.strictObject({ ...resetOutcomeShape, durationMs: durationSchema, via: viaSchema })]);

const repairSchema = z.strictObject({ name: z.string(), was: poolStateSchema, action: z.enum(['reset', 'rebuilt', 'deleted']) });

export const poolFillResult = z.union([
  poolDryRun,
  z.strictObject({
    pool: z.string(),
    built: z.array(z.strictObject({ name: z.string(), id: z.string(), ip: z.nullable(z.string()) })),
    failed: described(z.array(failedVmSchema), 'Builds that failed (each was deleted again)'),
    repaired: described(z.array(repairSchema), 'What an interrupted run had left, and what was done about it'),
    counts: poolCountsSchema,
    durationMs: durationSchema,
    via: viaSchema,
  }),
]);

export const poolReapResult = z.union([
  poolDryRun,
  z.strictObject({
    pool: z.string(),
    reclaimed: described(z.array(z.strictObject(resetOutcomeShape)), 'Leases past their end, taken back and reset'),
    repaired: z.array(repairSchema),
    failed: z.array(failedVmSchema),
    counts: poolCountsSchema,
    via: viaSchema,
  }),
]);

export const poolDestroyResult = z.union([poolDryRun, z.strictObject({ pool: z.string(), deleted: z.array(z.string()), failed: z.array(failedVmSchema), via: viaSchema })]);
