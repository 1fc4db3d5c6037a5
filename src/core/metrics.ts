/**
 * ceso's Prometheus metrics: a complete snapshot per run. Gauges come from each host's VM list
 * (no per-VM labels: VMs come and go, series would churn); counters and the duration histogram
 * come from the audit trail, so they are cumulative for as long as its records are kept. The
 * trail is read through an AuditReader, so another state backend can supply the records.
 */
import { readAudit, type AuditRecord } from './audit.js';
import type { HostOutcome } from './fleet.js';
import type { MetricFamily, MetricSample } from './prometheus.js';
import { isExpired } from './services.js';
import type { VmSummary } from './vm.js';

/** The audit records to count, in any order. */
export type AuditReader = () => Promise<readonly AuditRecord[]>;

/** The local audit log (<cesoHome>/audit.log). */
export const localAuditReader: AuditReader = async () => readAudit();

/** Seconds: VM operations take from seconds (power) to an hour (an import or backup). */
export const DURATION_BUCKETS = [1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600] as const;
const POWER_STATES = ['poweredOn', 'poweredOff', 'suspended'] as const;
const POOL_STATES = ['building', 'ready', 'leased', 'resetting', 'failed'] as const;

export interface MetricsInput {
  /** Every host asked for, in order: its VMs, or why it did not answer. */
  hosts: ReadonlyArray<HostOutcome<readonly VmSummary[]>>;
  audit: readonly AuditRecord[];
  version: string;
  now?: Date;
}

export function cesoMetrics(input: MetricsInput): MetricFamily[] {
  const now = input.now ?? new Date();
  const answered = input.hosts.flatMap((outcome) => (outcome.ok ? [{ host: outcome.host, vms: outcome.value }] : []));
  const operations = operationsOf(input.audit, new Set(input.hosts.map((outcome) => outcome.host)));
  return [
    gauge('ceso_host_up', 'Whether the host answered (1) or not (0) in this collection', input.hosts.map((outcome) => sample('ceso_host_up', { host: outcome.host }, outcome.ok ? 1 : 0))),
    gauge(
      'ceso_vms',
      'VMs on the host by power state',
      answered.flatMap(({ host, vms }) => countBy(vms, (vm) => vm.powerState ?? 'unknown', POWER_STATES).map(([state, value]) => sample('ceso_vms', { host, power_state: state }, value))),
    ),
    gauge('ceso_vms_managed', 'VMs on the host that ceso manages (ceso.managed = "true")', answered.map(({ host, vms }) => sample('ceso_vms_managed', { host }, vms.filter((vm) => vm.managed).length))),
    gauge('ceso_vms_expired', 'Managed VMs past their ceso.expiresAt, not yet reaped', answered.map(({ host, vms }) => sample('ceso_vms_expired', { host }, vms.filter((vm) => isExpired(vm, now)).length))),
    gauge('ceso_pool_vms', 'VMs of a warm pool on the host by pool state (ceso.pool, ceso.poolState)', answered.flatMap(({ host, vms }) => poolSamples(host, vms))),
    histogram(operations),
    {
      name: 'ceso_operations_total',
      type: 'counter',
      help: 'Changes ceso made (audit trail, dry runs excluded) by command, outcome and host',
      samples: sortSamples(
        [...groupBy(operations, (operation) => key({ op: operation.op, outcome: operation.outcome, host: operation.host }))].map(([labels, group]) => sample('ceso_operations_total', JSON.parse(labels) as Record<string, string>, group.length)),
      ),
    },
    gauge('ceso_build_info', 'The ceso version that collected these metrics (always 1)', [sample('ceso_build_info', { version: input.version }, 1)]),
  ];
}

interface Operation {
  op: string;
  outcome: string;
  host: string;
  via: string;
  seconds: number;
}

/**
 * The changes made on the hosts asked for: audit records without dry runs, by the host entry's
 * name (records say "lab1 (192.168.1.10:443)"); a record of a command that failed before it had a
 * host is no host's operation.
 */
function operationsOf(records: readonly AuditRecord[], hosts: ReadonlySet<string>): Operation[] {
  return records.flatMap((record) => {
    const host = record.host.replace(/ \([^()]*\)$/, '');
    if (record.dryRun || !hosts.has(host)) return [];
    return [{ op: record.command, outcome: outcomeOf(record), host, via: record.via ?? 'none', seconds: Math.max(0, record.durationMs) / 1000 }];
  });
}

/** success | error, with the error codes of a wait that ran out, an interruption and a policy refusal told apart. */
function outcomeOf(record: AuditRecord): string {
  if (record.outcome === 'success') return 'success';
  switch (record.errorCode) {
    case 'TIMEOUT':
      return 'timeout';
    case 'INTERRUPTED':
      return 'cancelled';
    case 'POLICY_DENIED':
      return 'denied';
    default:
      return 'error';
  }
}

function histogram(operations: readonly Operation[]): MetricFamily {
  const name = 'ceso_operation_duration_seconds';
  const samples: MetricSample[] = [];
  const groups = [...groupBy(operations, (operation) => key({ op: operation.op, outcome: operation.outcome, host: operation.host, via: operation.via }))].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [labelKey, group] of groups) {
    const labels = JSON.parse(labelKey) as Record<string, string>;
    for (const bound of DURATION_BUCKETS) samples.push(sample(`${name}_bucket`, { ...labels, le: String(bound) }, group.filter((operation) => operation.seconds <= bound).length));
    samples.push(sample(`${name}_bucket`, { ...labels, le: '+Inf' }, group.length));
    samples.push(sample(`${name}_sum`, labels, Number(group.reduce((total, operation) => total + operation.seconds, 0).toFixed(3))));
    samples.push(sample(`${name}_count`, labels, group.length));
  }
  return { name, type: 'histogram', help: 'How long ceso’s changes took (audit trail, dry runs excluded) by command, outcome, host and path', samples };
}

/** Every pool on the host with all its states (0 included, so "no ready VM" is a sample, not a gap). */
function poolSamples(host: string, vms: readonly VmSummary[]): MetricSample[] {
  const pools = groupBy(
    vms.filter((vm) => vm.pool !== null),
    (vm) => vm.pool as string,
  );
  return [...pools]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .flatMap(([pool, members]) => countBy(members, (vm) => vm.poolState ?? 'unknown', POOL_STATES).map(([state, value]) => sample('ceso_pool_vms', { pool, host, state }, value)));
}

/** Counts by key: the `always` keys first (0 when absent), then any other key seen, sorted. */
function countBy<T>(items: readonly T[], keyOf: (item: T) => string, always: readonly string[]): Array<[string, number]> {
  const counts = new Map<string, number>(always.map((name) => [name, 0]));
  for (const item of items) counts.set(keyOf(item), (counts.get(keyOf(item)) ?? 0) + 1);
  const extra = [...counts.keys()].filter((name) => !always.includes(name)).sort();
  return [...always, ...extra].map((name) => [name, counts.get(name) ?? 0]);
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(keyOf(item));
    if (group === undefined) groups.set(keyOf(item), [item]);
    else group.push(item);
  }
  return groups;
}

/** A stable key for a label set (the labels in the order given). */
function key(labels: Record<string, string>): string {
  return JSON.stringify(labels);
}

function sortSamples(samples: MetricSample[]): MetricSample[] {
  return samples.sort((a, b) => {
    const left = key(a.labels);
    const right = key(b.labels);
    return left < right ? -1 : left > right ? 1 : 0;
  });
}

function sample(name: string, labels: Record<string, string>, value: number): MetricSample {
  return { name, labels, value };
}

function gauge(name: string, help: string, samples: MetricSample[]): MetricFamily {
  return { name, type: 'gauge', help, samples };
}
