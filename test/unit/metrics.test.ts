import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.js';
import { CesoError } from '../../src/core/errors.js';
import { cesoMetrics } from '../../src/core/metrics.js';
import { renderExposition } from '../../src/core/prometheus.js';
import type { VmSummary } from '../../src/core/vm.js';

const NOW = new Date('2026-06-01T12:00:00Z');

function vm(fields: Partial<VmSummary>): VmSummary {
  return { name: 'x', id: 'vm-1', uuid: null, status: null, powerState: null, cpu: null, memoryMB: null, ip: null, guestId: null, managed: false, expiresAt: null, linked: false, pool: null, poolState: null, ...fields };
}

function record(fields: Partial<AuditRecord>): AuditRecord {
  return { time: '2026-06-01T11:00:00Z', user: 'u', host: 'lab1 (10.0.0.1:443)', command: 'vm create', arguments: {}, mode: 'standard', via: 'api', dryRun: false, outcome: 'success', errorCode: null, vmId: null, vm: null, durationMs: 1000, ...fields };
}

function series(text: string): Map<string, number> {
  return new Map(
    text
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.lastIndexOf(' ')), Number(line.slice(line.lastIndexOf(' ') + 1))]),
  );
}

describe('ceso metrics', () => {
  it('counts VMs by power state (unknown too), managed, expired and pool state, with zeros for the known states', () => {
    const text = renderExposition(
      cesoMetrics({
        hosts: [
          {
            host: 'lab1',
            ok: true,
            value: [
              vm({ powerState: 'poweredOn', managed: true, expiresAt: '2026-01-01T00:00:00Z' }),
              vm({ powerState: null, managed: true, expiresAt: '2027-01-01T00:00:00Z', pool: 'web', poolState: 'ready' }),
              vm({ powerState: 'poweredOff', managed: false, expiresAt: '2020-01-01T00:00:00Z', pool: 'web', poolState: 'draining' }),
            ],
          },
          { host: 'lab2', ok: false, error: new CesoError('HOST_UNREACHABLE', 'down') },
        ],
        audit: [],
        version: '1.2.3',
        now: NOW,
      }),
    );
    const values = series(text);
    expect(values.get('ceso_host_up{host="lab1"}')).toBe(1);
    expect(values.get('ceso_host_up{host="lab2"}')).toBe(0);
    expect(values.get('ceso_vms{host="lab1",power_state="poweredOn"}')).toBe(1);
    expect(values.get('ceso_vms{host="lab1",power_state="suspended"}')).toBe(0);
    expect(values.get('ceso_vms{host="lab1",power_state="unknown"}')).toBe(1);
    expect(values.get('ceso_vms_managed{host="lab1"}')).toBe(2);
    // expired = managed and past ceso.expiresAt: the unmanaged one with a past date is not
    expect(values.get('ceso_vms_expired{host="lab1"}')).toBe(1);
    expect(values.get('ceso_pool_vms{pool="web",host="lab1",state="ready"}')).toBe(1);
    expect(values.get('ceso_pool_vms{pool="web",host="lab1",state="building"}')).toBe(0);
    expect(values.get('ceso_pool_vms{pool="web",host="lab1",state="draining"}')).toBe(1);
    expect([...values.keys()].filter((name) => name.includes('host="lab2"'))).toEqual(['ceso_host_up{host="lab2"}']);
    expect(values.get('ceso_build_info{version="1.2.3"}')).toBe(1);
  });

  it('operations from the audit trail: buckets from 1 s to 3600 s, outcomes told apart, dry runs and other hosts left out', () => {
    const audit = [
      record({ durationMs: 400 }),
      record({ durationMs: 3_000 }),
      record({ durationMs: 4_000_000 }),
      record({ outcome: 'error', errorCode: 'TIMEOUT', durationMs: 600_000 }),
      record({ outcome: 'error', errorCode: 'POLICY_DENIED', via: null }),
      record({ outcome: 'error', errorCode: 'VM_EXISTS' }),
      record({ dryRun: true }),
      record({ host: 'elsewhere (10.9.9.9:443)' }),
      record({ host: '' }),
    ];
    const text = renderExposition(cesoMetrics({ hosts: [{ host: 'lab1', ok: true, value: [] }], audit, version: '1', now: NOW }));
    const values = series(text);
    const bucket = (le: string): number | undefined => values.get(`ceso_operation_duration_seconds_bucket{op="vm create",outcome="success",host="lab1",via="api",le="${le}"}`);
    expect([bucket('1'), bucket('2.5'), bucket('5'), bucket('3600'), bucket('+Inf')]).toEqual([1, 1, 2, 2, 3]);
    expect(values.get('ceso_operation_duration_seconds_sum{op="vm create",outcome="success",host="lab1",via="api"}')).toBe(4003.4);
    expect(values.get('ceso_operation_duration_seconds_count{op="vm create",outcome="success",host="lab1",via="api"}')).toBe(3);
    expect(values.get('ceso_operations_total{op="vm create",outcome="success",host="lab1"}')).toBe(3);
    expect(values.get('ceso_operations_total{op="vm create",outcome="timeout",host="lab1"}')).toBe(1);
    expect(values.get('ceso_operations_total{op="vm create",outcome="denied",host="lab1"}')).toBe(1);
    expect(values.get('ceso_operations_total{op="vm create",outcome="error",host="lab1"}')).toBe(1);
    expect(values.get('ceso_operation_duration_seconds_count{op="vm create",outcome="denied",host="lab1",via="none"}')).toBe(1);
    expect([...values.keys()].some((name) => name.includes('elsewhere'))).toBe(false);
  });

  it('escapes label values and help texts; promtool accepts the result', () => {
    const text = renderExposition(
      cesoMetrics({ hosts: [{ host: 'lab1', ok: true, value: [vm({ pool: 'we"b\\x\ny', poolState: 'ready' })] }], audit: [record({ command: 'vm "odd"' })], version: '0.1.0-"dev"', now: NOW }),
    );
    expect(text).toContain('ceso_pool_vms{pool="we\\"b\\\\x\\ny",host="lab1",state="ready"} 1');
    expect(text).toContain('ceso_build_info{version="0.1.0-\\"dev\\""} 1');
    expect(text.endsWith('\n')).toBe(true);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ code: check.status, output: `${check.stdout}${check.stderr}` }).toEqual({ code: 0, output: '' });
  });
});
