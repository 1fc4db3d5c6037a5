// The shared state in a real PostgreSQL (test/support/postgres.ts): two "machines" (separate
// CESO_HOMEs, separate processes) on one simulated host and one database, contending for the same
// VM lock and the same idempotency key; expiry and takeover; lock list / release; the audit trail
// in the database; migrations; and a database that is down or silent (exit 5, fast, no password
// in any output).
import { createServer, type Server, type Socket } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LockEntry } from '../../src/state/store.js';
import { waitFor } from '../support/wait.js';
import { requireBuiltCli, runCli, simulatorConfig, workspace, type CesoWorkspace, type CliResult } from '../support/cli.js';
import { startSimulator, type Simulator } from '../support/simulator.js';
import { freePort, startPostgres, type PostgresServer } from '../support/postgres.js';

interface ErrorJson {
  error: { code: string; message: string; hint?: string; details?: Record<string, unknown> };
}

describe('shared state in PostgreSQL: two machines, one host, one database', () => {
  let sim: Simulator;
  let pg: PostgresServer;
  let url: string;
  let machineA: CesoWorkspace;
  let machineB: CesoWorkspace;
  const stateSection = (extra = '') => `state:\n  backend: postgres\n  url: \${CESO_STATE_URL}\n  lockTtlSeconds: 3\n${extra}`;
  const envOf = (machine: CesoWorkspace, extra: Record<string, string> = {}) => ({ ...machine.env, SIM_PASSWORD: sim.password, CESO_STATE_URL: url, ...extra });
  const onA = (args: string[], options: { env?: Record<string, string>; onSpawn?: (child: ChildProcess) => void } = {}) =>
    runCli(args, { env: envOf(machineA, options.env), ...(options.onSpawn ? { onSpawn: options.onSpawn } : {}), timeoutMs: 90_000 });
  const onB = (args: string[], env: Record<string, string> = {}) => runCli(args, { env: envOf(machineB, env), timeoutMs: 90_000 });
  const locksIn = async (): Promise<LockEntry[]> => {
    const result = await onB(['lock', 'list', '--json']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    return result.json<{ locks: LockEntry[] }>().locks;
  };
  const secretFree = (...results: CliResult[]) => {
    for (const result of results) {
      expect(result.stdout + result.stderr).not.toContain(pg.password);
    }
  };

  beforeAll(async () => {
    requireBuiltCli();
    [sim, pg] = await Promise.all([startSimulator({ mode: 'esx', vms: 1 }), startPostgres()]);
    url = await pg.createDatabase('shared');
    machineA = workspace();
    machineB = workspace();
    for (const machine of [machineA, machineB]) machine.writeConfig(simulatorConfig(sim, `${stateSection()}pools:\n  shared: {size: 3, max: 3, lease: 1h}\n`));
  }, 120_000);

  afterAll(async () => {
    await Promise.all([sim?.stop(), pg?.stop()]);
    machineA?.cleanup();
    machineB?.cleanup();
  });

  it('a warm pool shared by two machines: concurrent acquires from both never lease one VM twice; a late release is fenced', async () => {
    const filled = await onA(['pool', 'fill', 'shared', '--json']);
    expect(filled.code, filled.stdout + filled.stderr).toBe(0);
    const racers = await Promise.all(Array.from({ length: 8 }, (_, index) => (index % 2 === 0 ? onA : (args: string[]) => onB(args))(['pool', 'acquire', 'shared', '--holder', `racer-${index}`, '--json'])));
    const leases = racers.filter((result) => result.code === 0).map((result) => result.json<{ vm: string; leaseId: string; expiresAt: string }>());
    const empty = racers.filter((result) => result.code === 4 && result.json<ErrorJson>().error.code === 'POOL_EMPTY');
    expect(leases).toHaveLength(3);
    expect(new Set(leases.map((lease) => lease.vm)).size).toBe(3);
    expect(empty).toHaveLength(5);
    const rows = await pg.query<{ vm: string; lease_id: string | null; lease_epoch: string }>('SELECT vm, lease_id, lease_epoch FROM ceso_pool_leases ORDER BY vm', [], 'shared');
    expect(rows.map((row) => row.lease_id).sort()).toEqual(leases.map((lease) => lease.leaseId).sort());
    // machine B gives back a lease machine A took; A's second try under the same lease is fenced off
    const first = leases[0]!;
    const released = await onB(['pool', 'release', 'shared', '--lease', first.leaseId, '--json']);
    expect(released.code, released.stdout + released.stderr).toBe(0);
    const late = await onA(['pool', 'release', 'shared', '--lease', first.leaseId, '--json']);
    expect(late.code).toBe(4);
    expect(late.json<ErrorJson>().error.code).toBe('LEASE_NOT_HELD');
    const again = await onA(['pool', 'acquire', 'shared', '--json']);
    expect(again.json<{ vm: string }>().vm).toBe(first.vm);
    const epoch = await pg.query<{ lease_epoch: string }>('SELECT lease_epoch FROM ceso_pool_leases WHERE vm = $1', [first.vm], 'shared');
    expect(Number(epoch[0]?.lease_epoch)).toBe(2);
    secretFree(filled, ...racers, released, late, again);
    const destroyed = await onB(['pool', 'destroy', 'shared', '--yes', '--json']);
    expect(destroyed.code, destroyed.stdout).toBe(0);
  });

  it('migrates a new database on first use; state migrate reports it up to date', async () => {
    const first = await onA(['lock', 'list', '--json', '--log-level', 'trace']);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.json()).toEqual({ backend: 'postgres', location: `postgres://ceso:***@127.0.0.1:${pg.port}/shared`, locks: [] });
    const versions = await pg.query<{ version: number; ceso_version: string }>('SELECT version, ceso_version FROM ceso_schema_migrations ORDER BY version', [], 'shared');
    expect(versions).toEqual([{ version: 1, ceso_version: '0.1.0' }, { version: 2, ceso_version: '0.1.0' }]);
    const again = await onB(['state', 'migrate', '--json']);
    expect(again.json()).toMatchObject({ backend: 'postgres', dryRun: false, fromVersion: 2, toVersion: 2, applied: [] });
    secretFree(first, again);
  });

  it('never lets two machines act on one VM at once: the second is LOCKED with the holder, or waits with --lock-timeout', async () => {
    expect((await onA(['vm', 'create', 'shared1', '--no-power-on', '--json'])).code).toBe(0);
    await sim.control('delay', { method: 'PowerOnVM_Task', ms: 3000 });
    try {
      let pidA = 0;
      const first = onA(['vm', 'power', 'shared1', 'on', '--json'], { onSpawn: (child) => (pidA = child.pid ?? 0) });
      const held = await waitFor('A to hold the lock', async () => (await locksIn()).find((lock) => lock.vm === 'shared1'));
      expect(held).toMatchObject({ host: sim.hostPort, state: 'held', holder: { pid: pidA, command: 'ceso vm power' } });
      expect(Date.parse(held.expiresAt ?? '')).toBeGreaterThan(Date.parse(held.since));

      const refused = await onB(['vm', 'power', 'shared1', 'off', '--json']);
      expect(refused.code, refused.stdout).toBe(4);
      const { error } = refused.json<ErrorJson>();
      expect(error.code).toBe('LOCKED');
      expect(error.message).toContain(`ceso pid ${pidA}`);
      expect(error.details).toMatchObject({ id: held.id, holder: { pid: pidA, command: 'ceso vm power' } });

      const patient = await onB(['vm', 'power', 'shared1', 'off', '--lock-timeout', '60', '--json']);
      const done = await first;
      expect(done.code, done.stdout).toBe(0);
      expect(patient.code, patient.stdout).toBe(0);
      expect(patient.json()).toMatchObject({ powerState: 'poweredOff', changed: true });
      expect(await locksIn()).toEqual([]);
    } finally {
      await sim.control('reset');
    }
  });

  it('a holder killed outright stops renewing: its lock expires (lockTtlSeconds) and the other machine takes it over', async () => {
    await sim.control('delay', { method: 'PowerOnVM_Task', ms: 60_000 });
    try {
      let child: ChildProcess | undefined;
      const doomed = onA(['vm', 'power', 'shared1', 'on', '--json'], { onSpawn: (spawned) => (child = spawned) });
      const held = await waitFor('A to hold the lock', async () => (await locksIn()).find((lock) => lock.vm === 'shared1'));
      // The heartbeat keeps it alive past one TTL while A lives.
      await new Promise((resolve) => setTimeout(resolve, 3500));
      const renewed = (await locksIn()).find((lock) => lock.id === held.id);
      expect(renewed?.state).toBe('held');
      expect(Date.parse(renewed?.expiresAt ?? '')).toBeGreaterThan(Date.parse(held.expiresAt ?? ''));
      child?.kill('SIGKILL');
      await doomed;
      await sim.control('reset');
      const started = Date.now();
      const taker = await onB(['vm', 'power', 'shared1', 'off', '--lock-timeout', '30', '--json']);
      expect(taker.code, taker.stdout + taker.stderr).toBe(0);
      expect(taker.stderr).toContain(`took over the lock on VM "shared1" left by ceso pid ${held.holder.pid}`);
      // Not before the dead holder's lock lapsed (3 s after its last renewal), nor long after.
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(await locksIn()).toEqual([]);
    } finally {
      await sim.control('reset');
    }
  });

  it('lock release --force removes a lock row from another machine (the holder is warned); refused in restricted mode; unknown id is NOT_FOUND', async () => {
    await sim.control('delay', { method: 'PowerOnVM_Task', ms: 4000 });
    try {
      const holder = onA(['vm', 'power', 'shared1', 'on', '--json']);
      const held = await waitFor('A to hold the lock', async () => (await locksIn()).find((lock) => lock.vm === 'shared1'));
      const restricted = await onB(['lock', 'release', held.id, '--force', '--json'], { CESO_MODE: 'restricted' });
      expect(restricted.code).toBe(7);
      expect(restricted.json<ErrorJson>().error.code).toBe('POLICY_DENIED');
      const unforced = await onB(['lock', 'release', held.id, '--json']);
      expect(unforced.code).toBe(2);
      const released = await onB(['lock', 'release', held.id, '--force', '--json']);
      expect(released.code, released.stdout).toBe(0);
      expect(released.json()).toMatchObject({ backend: 'postgres', released: { id: held.id, vm: 'shared1', state: 'held' } });
      expect(await locksIn()).toEqual([]);
      const finished = await holder;
      expect(finished.code).toBe(0);
      expect(finished.stderr).toContain('is no longer this process');
      const missing = await onB(['lock', 'release', held.id, '--force', '--json']);
      expect(missing.code).toBe(3);
      expect(missing.json<ErrorJson>().error.code).toBe('NOT_FOUND');
    } finally {
      await sim.control('reset');
    }
  });

  it('idempotency keys across machines: one VM for two racing creates with one key; a different request is IDEMPOTENCY_CONFLICT; LOCKED while the first runs', async () => {
    await sim.control('delay', { method: 'CreateVM_Task', ms: 2500 });
    try {
      const key = 'agent-run-7-create';
      const args = ['vm', 'create', 'idem1', '--no-power-on', '--idempotency-key', key, '--json'];
      const first = onA([...args, '--lock-timeout', '60']);
      await waitFor('A to hold the key', async () => (await locksIn()).find((lock) => lock.host === 'idempotency-key' && lock.vm === key));
      const impatient = await onB(args);
      expect(impatient.code, impatient.stdout).toBe(4);
      expect(impatient.json<ErrorJson>().error).toMatchObject({ code: 'LOCKED', details: { key } });
      const conflicting = await onB(['vm', 'create', 'idem-other', '--no-power-on', '--idempotency-key', key, '--lock-timeout', '60', '--json']);
      const second = await onB([...args, '--lock-timeout', '60']);
      const a = await first;
      expect(a.code, a.stdout + a.stderr).toBe(0);
      expect(second.code, second.stdout + second.stderr).toBe(0);
      const made = a.json<{ id: string; name: string; replayed: boolean }>();
      const replay = second.json<{ id: string; name: string; replayed: boolean }>();
      expect(made.replayed).toBe(false);
      expect(replay).toMatchObject({ id: made.id, name: 'idem1', replayed: true });
      // The conflicting request waited for the key's lock (or saw the record) and changed nothing.
      expect(conflicting.code, conflicting.stdout).toBe(4);
      expect(conflicting.json<ErrorJson>().error.code).toBe('IDEMPOTENCY_CONFLICT');
      const vms = (await onA(['vm', 'list', '--json'])).json<Array<{ name: string }>>();
      expect(vms.filter((vm) => vm.name === 'idem1')).toHaveLength(1);
      expect(vms.some((vm) => vm.name === 'idem-other')).toBe(false);
      // Later repeats replay at once, from either machine.
      const later = await onA(args);
      expect(later.json()).toMatchObject({ id: made.id, replayed: true });
      const rows = await pg.query<{ status: string; op: string }>('SELECT status, op FROM ceso_idempotency_keys WHERE key = $1', [key], 'shared');
      expect(rows).toEqual([{ status: 'succeeded', op: 'vm create' }]);
    } finally {
      await sim.control('reset');
    }
  });

  it('a failed first run frees its key: a retry (even another request) runs', async () => {
    const key = 'fails-first';
    const failed = await onA(['vm', 'create', 'idem2', '--template', 'no-such-template', '--idempotency-key', key, '--json']);
    expect(failed.json<ErrorJson>().error.code).toBe('TEMPLATE_NOT_FOUND');
    expect(await pg.query('SELECT key FROM ceso_idempotency_keys WHERE key = $1', [key], 'shared')).toEqual([]);
    const retried = await onB(['vm', 'create', 'idem2', '--no-power-on', '--idempotency-key', key, '--json']);
    expect(retried.code, retried.stdout).toBe(0);
    expect(retried.json()).toMatchObject({ name: 'idem2', replayed: false });
    const deleted = await onB(['vm', 'delete', 'idem2', '--yes', '--idempotency-key', 'del-idem2', '--json']);
    expect(deleted.json()).toMatchObject({ deleted: true, replayed: false });
    const deletedAgain = await onA(['vm', 'delete', 'idem2', '--yes', '--idempotency-key', 'del-idem2', '--json']);
    expect(deletedAgain.code, deletedAgain.stdout).toBe(0);
    expect(deletedAgain.json()).toMatchObject({ deleted: true, replayed: true });
    // Kept 24 h (from the database's clock): past its expiry the key is forgotten, and the repeat runs again.
    const [kept] = await pg.query<{ hours: number }>("SELECT round(extract(epoch FROM expires_at - created_at) / 3600)::int AS hours FROM ceso_idempotency_keys WHERE key = 'del-idem2'", [], 'shared');
    expect(kept?.hours).toBe(24);
    await pg.query("UPDATE ceso_idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = 'del-idem2'", [], 'shared');
    const forgotten = await onA(['vm', 'delete', 'idem2', '--yes', '--idempotency-key', 'del-idem2', '--json']);
    expect(forgotten.json<ErrorJson>().error.code).toBe('VM_NOT_FOUND');
    // A dry run never touches a key.
    const planned = await onA(['vm', 'create', 'idem3', '--dry-run', '--idempotency-key', 'dry-key', '--json']);
    expect(planned.json()).toMatchObject({ dryRun: true });
    expect(await pg.query('SELECT key FROM ceso_idempotency_keys WHERE key = $1', ['dry-key'], 'shared')).toEqual([]);
    const bad = await onA(['vm', 'create', 'idem3', '--idempotency-key', 'has space', '--json']);
    expect(bad.code).toBe(2);
  });

  it('the audit trail of both machines is in the database, append-only, and ceso audit reads it there', async () => {
    const fromA = (await onA(['audit', '--json'])).json<Array<{ command: string; vm: string | null; arguments: Record<string, unknown> }>>();
    const fromB = (await onB(['audit', '--since', '1h', '--json'])).json<unknown[]>();
    expect(fromB).toEqual(fromA);
    expect(fromA.filter((record) => record.command === 'vm create' && record.vm === 'idem1').length).toBeGreaterThanOrEqual(3);
    expect(fromA.some((record) => record.command === 'lock release')).toBe(true);
    expect(fromA.find((record) => record.arguments['idempotency-key'] === 'agent-run-7-create')).toBeDefined();
    expect(existsSync(join(machineA.home, 'audit.log'))).toBe(false);
    await expect(pg.query('UPDATE ceso_audit_events SET outcome = $1', ['success'], 'shared')).rejects.toThrow(/append-only/);
    await expect(pg.query('DELETE FROM ceso_audit_events', [], 'shared')).rejects.toThrow(/append-only/);
    await expect(pg.query('TRUNCATE ceso_audit_events', [], 'shared')).rejects.toThrow(/append-only/);
  });

  it('state migrate --dry-run on a new database lists the migrations and creates nothing; a newer schema is refused', async () => {
    const fresh = await pg.createDatabase('fresh');
    const planned = await onA(['state', 'migrate', '--dry-run', '--json'], { env: { CESO_STATE_URL: fresh } });
    expect(planned.json()).toMatchObject({ dryRun: true, fromVersion: 0, toVersion: 2, applied: [{ version: 1 }, { version: 2 }] });
    expect(await pg.query("SELECT tablename FROM pg_tables WHERE tablename LIKE 'ceso_%'", [], 'fresh')).toEqual([]);
    const applied = await onA(['state', 'migrate', '--json'], { env: { CESO_STATE_URL: fresh } });
    expect(applied.json()).toMatchObject({ dryRun: false, fromVersion: 0, toVersion: 2, applied: [{ version: 1 }, { version: 2 }] });
    await pg.query("INSERT INTO ceso_schema_migrations (version, name) VALUES (99, 'from the future')", [], 'fresh');
    for (const args of [['lock', 'list', '--json'], ['state', 'migrate', '--json'], ['vm', 'power', 'shared1', 'on', '--json']]) {
      const refused = await onA(args, { env: { CESO_STATE_URL: fresh } });
      expect(refused.code, refused.stdout).toBe(4);
      expect(refused.json<ErrorJson>().error).toMatchObject({ code: 'STATE_SCHEMA_NEWER', details: { version: 99, supported: 2 } });
    }
  });

  it('two machines migrating a new database at once: both succeed, it is migrated once', async () => {
    const fresh = await pg.createDatabase('race');
    const results = await Promise.all([onA(['lock', 'list', '--json'], { env: { CESO_STATE_URL: fresh } }), onB(['lock', 'list', '--json'], { CESO_STATE_URL: fresh })]);
    expect(results.map((result) => result.code)).toEqual([0, 0]);
    expect(await pg.query('SELECT version FROM ceso_schema_migrations ORDER BY version', [], 'race')).toEqual([{ version: 1 }, { version: 2 }]);
  });

  describe('a database that is down or silent', () => {
    let silent: Server;
    let silentPort: number;
    const sockets = new Set<Socket>();

    beforeAll(async () => {
      // Accepts connections and never says a word: the case pg's default (no timeout) hangs on.
      silent = createServer((socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      silentPort = (silent.address() as { port: number }).port;
    });
    afterAll(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent?.close(resolve));
    });

    it('refused: exit 5 STATE_UNREACHABLE at once, nothing done, the audit record kept locally, no password anywhere', async () => {
      const closed = `postgres://ceso:${pg.password}@127.0.0.1:${await freePort()}/shared`;
      const started = Date.now();
      const listed = await onA(['lock', 'list', '--json', '--log-level', 'debug'], { env: { CESO_STATE_URL: closed } });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(listed.code).toBe(5);
      const { error } = listed.json<ErrorJson>();
      expect(error.code).toBe('STATE_UNREACHABLE');
      expect(error.message).toContain('connection refused');
      expect(error.message).toContain('postgres://ceso:***@127.0.0.1:');
      expect(error.hint).toContain('state.url');
      const create = await onA(['vm', 'create', 'never-made', '--no-power-on', '--json', '--log-level', 'debug'], { env: { CESO_STATE_URL: closed } });
      expect(create.code).toBe(5);
      expect(create.stderr).toContain('the audit record went to the local audit.log');
      const vms = (await onA(['vm', 'list', '--json'])).json<Array<{ name: string }>>();
      expect(vms.some((vm) => vm.name === 'never-made')).toBe(false);
      const local = readFileSync(join(machineA.home, 'audit.log'), 'utf8');
      expect(local).toContain('"errorCode":"STATE_UNREACHABLE"');
      expect(local).not.toContain(pg.password);
      secretFree(listed, create);
    });

    it('silent: exit 5 within state.connectTimeoutSeconds, never a hang', async () => {
      const machine = workspace();
      try {
        machine.writeConfig(simulatorConfig(sim, 'state:\n  backend: postgres\n  url: ${CESO_STATE_URL}\n  connectTimeoutSeconds: 1\n'));
        const started = Date.now();
        const result = await runCli(['vm', 'power', 'shared1', 'on', '--json', '--log-level', 'debug'], {
          env: { ...machine.env, SIM_PASSWORD: sim.password, CESO_STATE_URL: `postgres://ceso:${pg.password}@127.0.0.1:${silentPort}/shared` },
          timeoutMs: 30_000,
        });
        const elapsed = Date.now() - started;
        expect(result.code, result.stdout + result.stderr).toBe(5);
        expect(result.json<ErrorJson>().error).toMatchObject({ code: 'STATE_UNREACHABLE' });
        expect(result.json<ErrorJson>().error.message).toContain('did not answer within 1 s');
        // One connect timeout for the command (the audit's fallback does not wait again), plus start-up.
        expect(elapsed).toBeLessThan(4_500);
        secretFree(result);
      } finally {
        machine.cleanup();
      }
    });

    it('the database going away mid-command: the command ends (no hang), the lock release and the audit record fall back with warnings', async () => {
      const own = await startPostgres();
      try {
        const ownUrl = await own.createDatabase('gone');
        await sim.control('delay', { method: 'PowerOnVM_Task', ms: 3000 });
        expect((await onA(['vm', 'power', 'shared1', 'off', '--json'])).code).toBe(0);
        const running = onA(['vm', 'power', 'shared1', 'on', '--json'], { env: { CESO_STATE_URL: ownUrl } });
        // (The table appears once the command has migrated the new database.)
        const lockRows = () => own.query("SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'ceso_locks'", [], 'gone').then(async ([row]) => (row?.n === 1 ? own.query('SELECT id FROM ceso_locks', [], 'gone') : []));
        await waitFor('the lock row', async () => ((await lockRows()).length > 0 ? true : undefined));
        await own.stop();
        const started = Date.now();
        const result = await running;
        expect(result.code, result.stdout + result.stderr).toBe(0);
        expect(Date.now() - started).toBeLessThan(15_000);
        expect(result.stderr).toContain('could not release the lock on VM "shared1"');
        expect(result.stderr).toContain('the audit record went to the local audit.log');
        secretFree(result);
      } finally {
        await sim.control('reset');
        await own.stop();
      }
    });

    it('a wrong password is AUTH_FAILED (exit 6) naming the state database, without the password', async () => {
      const wrong = `postgres://ceso:not-${pg.password}@127.0.0.1:${pg.port}/shared`;
      const result = await onA(['lock', 'list', '--json'], { env: { CESO_STATE_URL: wrong } });
      expect(result.code).toBe(6);
      expect(result.json<ErrorJson>().error.message).toContain('state database postgres://ceso:***@');
      expect(result.stdout + result.stderr).not.toContain(`not-${pg.password}`);
    });
  });
});
