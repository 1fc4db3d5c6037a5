// The local state backend (the default: files in CESO_HOME) through the CLI: lock list and
// lock release --force on lock files (only a dead holder's lock is removed), idempotency keys
// between processes of one machine, and state migrate's answer for local.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LockEntry } from '../../src/state/store.js';
import { waitFor } from '../support/wait.js';
import { openSimulatorWorkspace, requireBuiltCli, runCli, type SimulatorWorkspace } from '../support/cli.js';

describe('the local state backend: lock list / release, idempotency keys', () => {
  let bed: SimulatorWorkspace;
  const ceso = (args: string[], onSpawn?: (child: ChildProcess) => void) => runCli(args, { env: bed.env, timeoutMs: 90_000, ...(onSpawn ? { onSpawn } : {}) });
  const locks = async (): Promise<LockEntry[]> => (await ceso(['lock', 'list', '--json'])).json<{ locks: LockEntry[] }>().locks;

  beforeAll(async () => {
    requireBuiltCli();
    bed = await openSimulatorWorkspace({ mode: 'esx', vms: 1 });
  }, 120_000);
  afterAll(async () => {
    await bed?.close();
  });

  it('lists a live holder’s lock file; refuses to release it; releases it once the holder is dead', async () => {
    expect((await ceso(['vm', 'create', 'loc1', '--no-power-on', '--json'])).code).toBe(0);
    expect(await ceso(['lock', 'list', '--json']).then((result) => result.json())).toEqual({ backend: 'local', location: bed.ws.home, locks: [] });
    await bed.sim.control('delay', { method: 'PowerOnVM_Task', ms: 60_000 });
    try {
      let child: ChildProcess | undefined;
      const holder = ceso(['vm', 'power', 'loc1', 'on', '--json'], (spawned) => (child = spawned));
      const held = await waitFor('the lock file', async () => (await locks()).find((lock) => lock.vm === 'loc1'));
      expect(held).toMatchObject({ host: bed.sim.hostPort, state: 'held', expiresAt: null, holder: { pid: child?.pid, command: 'ceso vm power' } });

      const refused = await ceso(['lock', 'release', held.id, '--force', '--json']);
      expect(refused.code, refused.stdout).toBe(4);
      expect(refused.json<{ error: { code: string; message: string } }>().error.message).toContain('still running');

      child?.kill('SIGKILL');
      await holder;
      expect((await locks()).find((lock) => lock.id === held.id)?.state).toBe('stale');
      const released = await ceso(['lock', 'release', held.id, '--force', '--json']);
      expect(released.code, released.stdout).toBe(0);
      expect(released.json()).toMatchObject({ backend: 'local', released: { id: held.id, state: 'stale' } });
      expect(await locks()).toEqual([]);
      expect((await ceso(['lock', 'release', held.id, '--force', '--json'])).code).toBe(3);
    } finally {
      await bed.sim.control('reset');
    }
  });

  it('idempotency keys between processes: one VM, the repeat replays; another request conflicts', async () => {
    await bed.sim.control('delay', { method: 'CreateVM_Task', ms: 1500 });
    try {
      const args = ['vm', 'create', 'loc2', '--no-power-on', '--idempotency-key', 'local-key', '--lock-timeout', '60', '--json'];
      const results = await Promise.all([ceso(args), ceso(args), ceso(args)]);
      expect(results.map((result) => result.code)).toEqual([0, 0, 0]);
      const outputs = results.map((result) => result.json<{ id: string; replayed: boolean }>());
      expect(outputs.filter((output) => !output.replayed)).toHaveLength(1);
      expect(new Set(outputs.map((output) => output.id)).size).toBe(1);
    } finally {
      await bed.sim.control('reset');
    }
    const conflict = await ceso(['vm', 'create', 'loc3', '--idempotency-key', 'local-key', '--json']);
    expect(conflict.code).toBe(4);
    expect(conflict.json<{ error: { code: string } }>().error.code).toBe('IDEMPOTENCY_CONFLICT');
    const vms = (await ceso(['vm', 'list', '--json'])).json<Array<{ name: string }>>();
    expect(vms.filter((vm) => vm.name === 'loc2')).toHaveLength(1);
    expect(vms.some((vm) => vm.name === 'loc3')).toBe(false);
  });

  it('the request is the command line as given: --ttl 2h is the same request later; how to run it (--lock-timeout, --via) may change', async () => {
    const first = await ceso(['vm', 'create', 'loc4', '--no-power-on', '--ttl', '2h', '--idempotency-key', 'ttl-key', '--json']);
    expect(first.code, first.stdout).toBe(0);
    const again = await ceso(['vm', 'create', 'loc4', '--no-power-on', '--ttl', '2h', '--idempotency-key', 'ttl-key', '--lock-timeout', '5', '--via', 'api', '--json']);
    expect(again.code, again.stdout).toBe(0);
    expect(again.json()).toMatchObject({ id: first.json<{ id: string }>().id, replayed: true, expiresAt: first.json<{ expiresAt: string }>().expiresAt });
    const longer = await ceso(['vm', 'create', 'loc4', '--no-power-on', '--ttl', '3h', '--idempotency-key', 'ttl-key', '--json']);
    expect(longer.json<{ error: { code: string } }>().error.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('state migrate: the local backend has nothing to migrate', async () => {
    const result = await ceso(['state', 'migrate', '--json']);
    expect(result.code).toBe(0);
    expect(result.json()).toEqual({ backend: 'local', location: bed.ws.home, dryRun: false, fromVersion: null, toVersion: null, applied: [] });
  });
});
