import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CesoWorkspace, openSimulatorWorkspace, type SimulatorWorkspace } from '../support/cli.js';
import type { Simulator } from '../support/simulator.js';

interface Record_ {
  command: string;
  vm: string | null;
  vmId: string | null;
  dryRun: boolean;
  outcome: string;
  errorCode: string | null;
  via: string | null;
  mode: string;
  user: string;
  host: string;
  arguments: Record<string, unknown>;
}

describe('the audit trail and per-VM locks, through the CLI', () => {
  let sim: Simulator;
  let ws: CesoWorkspace;
  let bed: SimulatorWorkspace | undefined;
  let env: Record<string, string>;
  const ceso = (...args: string[]) => runCli(args, { env });

  beforeAll(async () => {
    bed = await openSimulatorWorkspace({ mode: 'esx', vms: 2 });
    ({ sim, ws, env } = bed);
  });
  afterAll(async () => {
    await bed?.close();
  });

  it('appends one masked line per mutating command, dry runs and failures included', async () => {
    expect((await ceso('vm', 'list', '--json')).code).toBe(0);
    expect((await ceso('vm', 'create', 'aud1', '--dry-run', '--json')).code).toBe(0);
    expect((await ceso('vm', 'create', 'aud1', '--no-power-on', '--json')).code).toBe(0);
    expect((await ceso('vm', 'create', 'aud1', '--json')).code).toBe(4);
    expect((await ceso('vm', 'delete', 'aud1', '--yes', '--json')).code).toBe(0);

    const result = await ceso('audit', '--json');
    expect(result.code, result.stdout).toBe(0);
    const records = result.json<Record_[]>();
    expect(records.map((record) => [record.command, record.dryRun, record.outcome, record.errorCode])).toEqual([
      ['vm create', true, 'success', null],
      ['vm create', false, 'success', null],
      ['vm create', false, 'error', 'VM_EXISTS'],
      ['vm delete', false, 'success', null],
    ]);
    const created = records[1] as Record_;
    expect(created).toMatchObject({ vm: 'aud1', via: 'api', mode: 'standard', host: `default (127.0.0.1:${sim.port})` });
    expect(created.vmId).toMatch(/\S/);
    expect(created.user).toMatch(/\S/);
    const raw = JSON.stringify(records);
    expect(raw).not.toContain(sim.password);
    expect(statSync(join(ws.home, 'audit.log')).mode & 0o777).toBe(0o600);

    const table = await ceso('audit', '--since', '1h');
    expect(table.stdout).toContain('vm delete');
    expect((await ceso('audit', '--since', 'yesterday-ish', '--json')).code).toBe(2);
  });

  it('never lets two processes act on one VM at once: the second fails fast with LOCKED, or waits with --lock-timeout', async () => {
    expect((await ceso('vm', 'create', 'lock1', '--no-power-on', '--json')).code).toBe(0);
    // A slow power-on keeps the first process inside the lock while the others arrive.
    await sim.control('delay', { method: 'PowerOnVM_Task', ms: 2500 });
    try {
      const racers = await Promise.all(Array.from({ length: 5 }, () => ceso('vm', 'power', 'lock1', 'on', '--json')));
      const codes = racers.map((result) => result.code).sort();
      expect(codes.filter((code) => code === 0).length).toBeGreaterThanOrEqual(1);
      const locked = racers.filter((result) => result.code === 4);
      expect(locked.length).toBeGreaterThanOrEqual(1);
      for (const result of locked) {
        const { error } = result.json<{ error: { code: string; message: string; details: { holder: { pid: number; command: string } } } }>();
        expect(error.code).toBe('LOCKED');
        expect(error.details.holder.command).toContain('vm power');
        expect(error.message).toContain(String(error.details.holder.pid));
      }

      expect((await ceso('vm', 'power', 'lock1', 'off', '--json')).code).toBe(0);
      const patient = await Promise.all(Array.from({ length: 4 }, (_, index) => ceso('vm', 'power', 'lock1', index % 2 === 0 ? 'on' : 'off', '--lock-timeout', '60', '--json')));
      expect(patient.map((result) => result.code)).toEqual([0, 0, 0, 0]);
    } finally {
      await sim.control('reset');
    }
  });

  it('does not block processes working on different VMs', async () => {
    await sim.control('delay', { method: 'CreateVM_Task', ms: 1500 });
    try {
      const results = await Promise.all(['par1', 'par2', 'par3'].map((name) => ceso('vm', 'create', name, '--no-power-on', '--json')));
      expect(results.map((result) => result.code)).toEqual([0, 0, 0]);
    } finally {
      await sim.control('reset');
    }
    const removed = await Promise.all(['par1', 'par2', 'par3', 'lock1'].map((name) => ceso('vm', 'delete', name, '--force', '--yes', '--json')));
    expect(removed.map((result) => result.code)).toEqual([0, 0, 0, 0]);
  });
});
