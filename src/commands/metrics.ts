import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { fleetFlags } from '../cli/fleet.js';
import { fleetExitCode, fleetResult, type HostEntry } from '../core/fleet.js';
import { cesoMetrics, localAuditReader } from '../core/metrics.js';
import { renderExposition, writeTextfile, type MetricFamily } from '../core/prometheus.js';
import type { Via } from '../core/vm.js';

export interface MetricsResult {
  /** Every host asked for: whether it answered (then its path and how many VMs), else its error. */
  hosts: Array<HostEntry<{ via: Via; vms: number }>>;
  /** The metric families as exposed, with their samples. */
  metrics: MetricFamily[];
  /** The file written (--textfile), else null. */
  textfile: string | null;
}

export default class Metrics extends BaseCommand<typeof Metrics> {
  static override summary = 'Prometheus metrics of the hosts and of ceso’s changes';
  static override description =
    'Prints a snapshot in the Prometheus text format: VMs by power state, managed and expired VMs, warm-pool VMs by state and ' +
    'whether each host answered (ceso_host_up), read from the hosts now; changes made and their durations (a histogram, 1 s to 3600 s) ' +
    'from the audit trail. No per-VM labels. --textfile writes the same atomically for node_exporter’s textfile collector instead. ' +
    'A host that does not answer is ceso_host_up 0: the metrics are still printed or written, and the exit code is its failure’s.';
  static override examples = [
    '<%= config.bin %> metrics',
    '<%= config.bin %> metrics --all-hosts',
    '<%= config.bin %> metrics --all-hosts --textfile /var/lib/prometheus/node-exporter/ceso.prom',
    '<%= config.bin %> metrics --host lab1,lab2 --json',
  ];

  static override flags = {
    ...fleetFlags,
    textfile: Flags.string({ description: 'Write the metrics to this file (atomically: a temporary file in its directory, then a rename) instead of stdout; name it *.prom' }),
  };

  async run(): Promise<MetricsResult> {
    const hosts = (await this.onEachHost(async ({ backend }) => ({ vms: await backend.listVms(), via: backend.via }), { single: true })) ?? [];
    const metrics = cesoMetrics({
      hosts: hosts.map((outcome) => (outcome.ok ? { ...outcome, value: outcome.value.vms } : outcome)),
      audit: await localAuditReader(),
      version: this.config.version,
    });
    const text = renderExposition(metrics);
    const textfile = this.flags.textfile ?? null;
    if (textfile !== null) writeTextfile(textfile, text);
    else this.print(text);
    process.exitCode = fleetExitCode(hosts);
    if (!this.jsonEnabled()) {
      for (const outcome of hosts) if (!outcome.ok) process.stderr.write(`Warning: ${outcome.host}: ${outcome.error.code}: ${outcome.error.message} (ceso_host_up 0)\n`);
    }
    return { hosts: fleetResult(hosts, ({ via, vms }) => ({ via, vms: vms.length })).hosts, metrics, textfile };
  }
}
