/**
 * The postgres backend: the shared state in one PostgreSQL database (state/migrations.ts has the
 * tables), reached through node-postgres (pg), which is loaded only here.
 *
 * - Every statement is short and commits on its own; no transaction (and no row lock) is ever held
 *   across an ESXi task. No session-level advisory lock is used, so a transaction-mode PgBouncer in
 *   front of the database is fine; the one advisory lock (migrations) is transaction-scoped.
 * - A lock is a row per (host, VM): taken with one INSERT … ON CONFLICT DO UPDATE … WHERE
 *   expires_at <= now(), which either creates the row, takes over an expired one, or does nothing
 *   when a live holder has it. The holder's heartbeat moves expires_at on every lockTtl/3 while the
 *   lock is held; a holder that dies (or loses the network) stops renewing, and the lock is free
 *   lockTtl later. All times come from the database's now(), never a machine's clock.
 * - The pool has a connect timeout (pg's default is to wait forever), a query timeout, TCP
 *   keepalive and an 'error' listener (an idle client's error would otherwise crash the process).
 *   A connection failure is STATE_UNREACHABLE (exit 5) within state.connectTimeoutSeconds.
 * - The URL's password is never printed: messages name the database by redactUrl's form.
 */
import type { PoolLeaseStore } from '../core/pool/shared-ledger.js';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type * as PgModule from 'pg';
import type { Pool, PoolClient, QueryResultRow } from 'pg';
import type { AuditLog, AuditRecord } from '../core/audit.js';
import { currentUser, maskArguments } from '../core/audit.js';
import { sleep } from '../core/lock.js';
import { CesoError, connectionFailure, isCesoError } from '../core/errors.js';
import { logger } from '../core/log.js';
import type { ResolvedPostgresState } from '../config/resolve.js';
import { redactUrl } from '../config/resolve.js';
import { LATEST_VERSION, MIGRATIONS, type Migration } from './migrations.js';
import type { AcquireLockRequest, HeldLock, IdempotencyRecord, LockEntry, StateStore } from './store.js';

export interface MigrationReport {
  backend: 'postgres' | 'local';
  location: string;
  dryRun: boolean;
  /** Schema version before (null: the local backend has none). */
  fromVersion: number | null;
  /** Schema version after (on a dry run: what it would be). */
  toVersion: number | null;
  /** The migrations applied (on a dry run: those that would be). */
  applied: Array<{ version: number; name: string }>;
}

const FIRST_RETRY_MS = 25;
const MAX_RETRY_MS = 500;

export interface OpenOptions {
  /** Migrate an older schema on open (default true; `state migrate` opens without). */
  migrate?: boolean;
  /** ceso's version, recorded with each migration applied. */
  version?: string;
}

export async function openPostgresStore(state: ResolvedPostgresState, options: OpenOptions = {}): Promise<PostgresStateStore> {
  const store = await PostgresStateStore.connect(state, options.version ?? 'unknown');
  try {
    await store.ensureSchema(options.migrate ?? true);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

export class PostgresStateStore implements StateStore, PoolLeaseStore {
  readonly backend = 'postgres' as const;
  readonly location: string;
  private closed = false;

  private constructor(
    private readonly pool: Pool,
    private readonly state: ResolvedPostgresState,
    private readonly version: string,
  ) {
    this.location = redactUrl(state.url);
  }

  static async connect(state: ResolvedPostgresState, version: string): Promise<PostgresStateStore> {
    const pg = await loadPg();
    const pool = new pg.Pool({
      connectionString: state.url,
      max: 4,
      connectionTimeoutMillis: state.connectTimeoutMs,
      query_timeout: Math.max(10_000, state.connectTimeoutMs * 2),
      idle_in_transaction_session_timeout: 30_000,
      idleTimeoutMillis: 5_000,
      allowExitOnIdle: true,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'ceso',
    });
    const store = new PostgresStateStore(pool, state, version);
    pool.on('error', (error) => logger().warn({ error: describe(error) }, `state database ${store.location}: an idle connection failed`));
    return store;
  }

  // --------------------------------------------------------------------------------------------
  // Schema

  async schemaVersion(): Promise<number> {
    try {
      const { rows } = await this.pool.query<{ version: number | null }>('SELECT max(version) AS version FROM ceso_schema_migrations');
      return rows[0]?.version ?? 0;
    } catch (error) {
      if ((error as { code?: string }).code === '42P01') return 0; // no table yet: a new database
      throw this.translate(error);
    }
  }

  /** Refuses a newer schema; brings an older one up to date (or reports that it is not, when migrate is false). */
  async ensureSchema(migrate: boolean): Promise<void> {
    const version = await this.schemaVersion();
    if (version > LATEST_VERSION) throw this.newerSchema(version);
    if (version < LATEST_VERSION && migrate) {
      const report = await this.migrate({ dryRun: false });
      if (report.applied.length > 0) logger().info({ from: report.fromVersion, to: report.toVersion }, `state database ${this.location}: migrated`);
    }
  }

  async migrate(options: { dryRun: boolean }): Promise<MigrationReport> {
    const before = await this.schemaVersion();
    if (before > LATEST_VERSION) throw this.newerSchema(before);
    const pending = (from: number): Migration[] => MIGRATIONS.filter((migration) => migration.version > from);
    const summary = (list: Migration[]) => list.map(({ version, name }) => ({ version, name }));
    if (options.dryRun || pending(before).length === 0) {
      return { backend: 'postgres', location: this.location, dryRun: options.dryRun, fromVersion: before, toVersion: LATEST_VERSION, applied: summary(pending(before)) };
    }
    const applied = await this.transaction(async (client) => {
      // Two processes migrating a new database at once: the second waits here, then finds it done.
      await client.query("SELECT pg_advisory_xact_lock(hashtext('ceso'), hashtext('ceso_schema_migrations'))");
      await client.query(
        'CREATE TABLE IF NOT EXISTS ceso_schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), ceso_version text)',
      );
      const current = Number((await client.query<{ version: number | null }>('SELECT max(version) AS version FROM ceso_schema_migrations')).rows[0]?.version ?? 0);
      if (current > LATEST_VERSION) throw this.newerSchema(current);
      const todo = pending(current);
      for (const migration of todo) {
        await client.query(migration.sql);
        await client.query('INSERT INTO ceso_schema_migrations (version, name, ceso_version) VALUES ($1, $2, $3)', [migration.version, migration.name, this.version]);
      }
      return todo;
    });
    return { backend: 'postgres', location: this.location, dryRun: false, fromVersion: before, toVersion: LATEST_VERSION, applied: summary(applied) };
  }

  private newerSchema(version: number): CesoError {
    return new CesoError('STATE_SCHEMA_NEWER', `the state database ${this.location} has schema version ${version}; this ceso knows versions up to ${LATEST_VERSION}`, {
      hint: 'A newer ceso has migrated it: upgrade ceso on this machine (every machine sharing the database needs the same or a newer version)',
      details: { version, supported: LATEST_VERSION },
    });
  }

  // --------------------------------------------------------------------------------------------
  // Locks

  async acquireLock(request: AcquireLockRequest): Promise<HeldLock> {
    const id = randomBytes(8).toString('hex');
    const ttlSeconds = this.state.lockTtlMs / 1000;
    const deadline = Date.now() + Math.max(0, request.timeoutMs);
    let delay = FIRST_RETRY_MS;
    for (;;) {
      if (request.signal?.aborted === true) {
        throw new CesoError('INTERRUPTED', `interrupted while waiting for the lock on VM "${request.vm}" on ${request.host}`);
      }
      // `previous` is the row as this statement's snapshot saw it: only for the takeover warning.
      const taken = await this.query<{ id: string; previous: { holder_machine: string; holder_pid: number; command: string; expires_at: string } | null }>(
        `WITH previous AS (SELECT holder_machine, holder_pid, command, expires_at FROM ceso_locks WHERE host = $2 AND vm = $3 AND expires_at <= now())
         INSERT INTO ceso_locks AS l (id, host, vm, holder_user, holder_machine, holder_pid, command, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
         ON CONFLICT (host, vm) DO UPDATE SET
           id = EXCLUDED.id, holder_user = EXCLUDED.holder_user, holder_machine = EXCLUDED.holder_machine,
           holder_pid = EXCLUDED.holder_pid, command = EXCLUDED.command, since = now(), renewed_at = now(), expires_at = EXCLUDED.expires_at
         WHERE l.expires_at <= now()
         RETURNING id, (SELECT row_to_json(previous) FROM previous) AS previous`,
        [id, request.host, request.vm, currentUser(), hostname(), process.pid, request.command, ttlSeconds],
      );
      if (taken.length === 1) {
        const previous = taken[0]?.previous;
        if (previous !== null && previous !== undefined) {
          warn(`took over the lock on VM "${request.vm}" left by ceso pid ${previous.holder_pid} on ${previous.holder_machine} (${previous.command}): it lapsed at ${new Date(previous.expires_at).toISOString()} without a renewal`);
        }
        return this.held(id, request, ttlSeconds);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw await this.lockedError(request);
      await sleep(Math.min(remaining, delay * (0.5 + Math.random())), request.signal);
      delay = Math.min(delay * 2, MAX_RETRY_MS);
    }
  }

  private held(id: string, request: AcquireLockRequest, ttlSeconds: number): HeldLock {
    let lost = false;
    let failing = false;
    const renew = async (): Promise<void> => {
      try {
        const rows = await this.query('UPDATE ceso_locks SET expires_at = now() + make_interval(secs => $2), renewed_at = now() WHERE id = $1 RETURNING id', [id, ttlSeconds]);
        failing = false;
        if (rows.length === 0 && !lost) {
          lost = true;
          warn(`the lock on VM "${request.vm}" on ${request.host} is no longer this process's (released with ceso lock release --force, or expired while the database was out of reach)`);
        }
      } catch (error) {
        // Once per outage, not on every beat.
        if (!failing) warn(`could not renew the lock on VM "${request.vm}" (${describe(error)}); it lapses ${ttlSeconds} s after the last renewal`);
        failing = true;
      }
    };
    const heartbeat = setInterval(() => void renew(), Math.max(250, (ttlSeconds * 1000) / 3));
    heartbeat.unref();
    let released = false;
    return {
      id,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(heartbeat);
        try {
          await this.query('DELETE FROM ceso_locks WHERE id = $1', [id]);
        } catch (error) {
          warn(`could not release the lock on VM "${request.vm}" (${describe(error)}); it lapses by itself within ${ttlSeconds} s`);
        }
      },
    };
  }

  private async lockedError(request: AcquireLockRequest): Promise<CesoError> {
    const rows = await this.query<LockRow>(`SELECT *, expires_at <= now() AS expired FROM ceso_locks WHERE host = $1 AND vm = $2`, [request.host, request.vm]);
    const row = rows[0];
    const target = `VM "${request.vm}" on ${request.host}`;
    const waited = request.timeoutMs > 0 ? ` (waited ${request.timeoutMs / 1000} s)` : '';
    const hint = request.timeoutMs > 0 ? 'Try again once it has finished, or give a longer --lock-timeout' : 'Wait for it to finish, or pass --lock-timeout to wait for it';
    if (row === undefined) {
      return new CesoError('LOCKED', `${target} is locked by another ceso process${waited}`, { hint, details: { host: request.host, vm: request.vm, holder: null } });
    }
    const entry = toEntry(row);
    const { pid, command, machine, user } = entry.holder;
    return new CesoError('LOCKED', `${target} is locked by ceso pid ${pid} on ${machine} (${user}: ${command}) since ${entry.since}, until ${entry.expiresAt} unless renewed${waited}`, {
      hint,
      details: { host: request.host, vm: request.vm, id: entry.id, holder: { pid, command, since: entry.since, hostname: machine, user }, expiresAt: entry.expiresAt },
    });
  }

  async listLocks(): Promise<LockEntry[]> {
    return (await this.query<LockRow>('SELECT *, expires_at <= now() AS expired FROM ceso_locks ORDER BY since, id')).map(toEntry);
  }

  async forceReleaseLock(id: string): Promise<LockEntry> {
    const rows = await this.query<LockRow>('DELETE FROM ceso_locks WHERE id = $1 RETURNING *, expires_at <= now() AS expired', [id]);
    const row = rows[0];
    if (row === undefined) throw new CesoError('NOT_FOUND', `no lock has the id ${id} in ${this.location}`, { hint: 'See the ids with ceso lock list' });
    return toEntry(row);
  }

  // --------------------------------------------------------------------------------------------
  // Warm pool leases (core/pool/shared-ledger.ts)

  get poolLeases(): PoolLeaseStore {
    return this;
  }

  async claimPoolVm(request: Parameters<PoolLeaseStore['claimPoolVm']>[0]): Promise<{ vmId: string; epoch: number; leasedAt: string; expiresAt: string } | null> {
    const ids = request.candidates.map((candidate) => candidate.id);
    // Rows for VMs the table has not seen yet; DO NOTHING takes no row lock, so claimers do not queue here.
    await this.query(
      `INSERT INTO ceso_pool_leases (host, vm_id, pool, vm) SELECT $1, id, $2, name FROM unnest($3::text[], $4::text[]) AS c(id, name) ON CONFLICT (host, vm_id) DO NOTHING`,
      [request.host, request.pool, ids, request.candidates.map((candidate) => candidate.name)],
    );
    // One statement: the row is claimed or skipped, never waited for; a lapsed claim (a claimer that died before writing the VM's markers) is free again.
    const rows = await this.query<{ vm_id: string; lease_epoch: string; leased_at: Date; expires_at: Date }>(
      `WITH candidate AS (
         SELECT vm_id FROM ceso_pool_leases
         WHERE host = $1 AND vm_id = ANY($2::text[]) AND (lease_id IS NULL OR expires_at <= now())
         ORDER BY vm FOR UPDATE SKIP LOCKED LIMIT 1)
       UPDATE ceso_pool_leases l SET lease_id = $3, lease_epoch = l.lease_epoch + 1, holder = $4, leased_at = now(), expires_at = now() + make_interval(secs => $5)
       FROM candidate WHERE l.host = $1 AND l.vm_id = candidate.vm_id
       RETURNING l.vm_id, l.lease_epoch, l.leased_at, l.expires_at`,
      [request.host, ids, request.leaseId, request.holder, request.durationMs / 1000],
    );
    const row = rows[0];
    return row === undefined ? null : { vmId: row.vm_id, epoch: Number(row.lease_epoch), leasedAt: new Date(row.leased_at).toISOString(), expiresAt: new Date(row.expires_at).toISOString() };
  }

  async endPoolLease(request: Parameters<PoolLeaseStore['endPoolLease']>[0]): Promise<boolean> {
    const ended = await this.query(
      `UPDATE ceso_pool_leases SET lease_id = NULL, holder = NULL, leased_at = NULL, expires_at = NULL
       WHERE host = $1 AND vm_id = $2 AND lease_id = $3 AND ($4::boolean IS NOT TRUE OR expires_at <= now()) RETURNING vm_id`,
      [request.host, request.vmId, request.leaseId, request.onlyIfExpired === true],
    );
    if (ended.length > 0) return true;
    // A lease the table never saw (made before the pool's state moved here) is the markers' alone.
    const known = await this.query('SELECT 1 FROM ceso_pool_leases WHERE host = $1 AND vm_id = $2', [request.host, request.vmId]);
    return known.length === 0;
  }

  // --------------------------------------------------------------------------------------------
  // Audit

  async appendAudit(record: AuditRecord): Promise<void> {
    const args = maskArguments(record.arguments);
    const key = typeof args['idempotency-key'] === 'string' ? args['idempotency-key'] : null;
    await this.query(
      `INSERT INTO ceso_audit_events (started_at, actor, actor_machine, target_host, command, mode, via, dry_run, outcome, error_code, vm_id, vm, duration_ms, idempotency_key, arguments)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb)`,
      [record.time, record.user, hostname(), record.host, record.command, record.mode, record.via, record.dryRun, record.outcome, record.errorCode, record.vmId, record.vm, Math.round(record.durationMs), key, JSON.stringify(args)],
    );
  }

  async readAudit(options: { since?: Date }): Promise<AuditLog> {
    const rows = await this.query<AuditRow>(
      'SELECT * FROM ceso_audit_events WHERE $1::timestamptz IS NULL OR started_at >= $1::timestamptz ORDER BY id',
      [options.since?.toISOString() ?? null],
    );
    const records = rows.map(
      (row): AuditRecord => ({
        time: new Date(row.started_at).toISOString(),
        user: row.actor,
        host: row.target_host,
        command: row.command,
        arguments: row.arguments,
        mode: row.mode === 'restricted' ? 'restricted' : 'standard',
        via: row.via === 'api' || row.via === 'ssh' ? row.via : null,
        dryRun: row.dry_run,
        outcome: row.outcome === 'error' ? 'error' : 'success',
        errorCode: row.error_code,
        vmId: row.vm_id,
        vm: row.vm,
        durationMs: row.duration_ms,
      }),
    );
    return { records, skipped: 0, path: this.location };
  }

  // --------------------------------------------------------------------------------------------
  // Idempotency keys

  async getIdempotency(key: string): Promise<IdempotencyRecord | undefined> {
    const rows = await this.query<KeyRow>('SELECT * FROM ceso_idempotency_keys WHERE key = $1 AND expires_at > now()', [key]);
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      key: row.key,
      op: row.op,
      fingerprint: row.request_hash,
      status: row.status === 'succeeded' ? 'succeeded' : 'running',
      result: row.result,
      createdAt: new Date(row.created_at).toISOString(),
      expiresAt: new Date(row.expires_at).toISOString(),
    };
  }

  async putIdempotency(record: Omit<IdempotencyRecord, 'createdAt' | 'expiresAt'>): Promise<void> {
    if (record.status === 'running') await this.query("DELETE FROM ceso_idempotency_keys WHERE expires_at < now() - interval '1 hour'");
    await this.query(
      `INSERT INTO ceso_idempotency_keys AS k (key, op, request_hash, status, result, expires_at)
       VALUES ($1, $2, $3, $4, $5::jsonb, now() + interval '24 hours')
       ON CONFLICT (key) DO UPDATE SET
         op = EXCLUDED.op, request_hash = EXCLUDED.request_hash, status = EXCLUDED.status, result = EXCLUDED.result, updated_at = now(),
         created_at = CASE WHEN k.expires_at <= now() THEN now() ELSE k.created_at END,
         expires_at = CASE WHEN k.expires_at <= now() THEN EXCLUDED.expires_at ELSE k.expires_at END`,
      [record.key, record.op, record.fingerprint, record.status, JSON.stringify(record.result ?? null)],
    );
  }

  async deleteIdempotency(key: string): Promise<void> {
    await this.query('DELETE FROM ceso_idempotency_keys WHERE key = $1', [key]);
  }

  // --------------------------------------------------------------------------------------------

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }

  private async query<T extends QueryResultRow = QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    try {
      return (await this.pool.query<T>(sql, params)).rows;
    } catch (error) {
      throw this.translate(error);
    }
  }

  private async transaction<R>(work: (client: PoolClient) => Promise<R>): Promise<R> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.translate(error);
    }
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw this.translate(error);
    } finally {
      client.release();
    }
  }

  /** pg's errors as ceso's: unreachable (exit 5), login refused (exit 6); SQL errors pass through. */
  private translate(error: unknown): unknown {
    if (isCesoError(error)) return error;
    const { code, message } = error as { code?: string; message?: string };
    const text = message ?? String(error);
    const seconds = this.state.connectTimeoutMs / 1000;
    const hint = `Check that PostgreSQL runs and state.url (or CESO_STATE_URL) points at it; state.connectTimeoutSeconds (${seconds} s) bounds the wait. Or set state.backend: local to work on this machine alone`;
    if (code === '28P01' || code === '28000') {
      return new CesoError('AUTH_FAILED', `the state database ${this.location} refused the login: ${text}`, { hint: 'Check the user and password in state.url (or CESO_STATE_URL)' });
    }
    if (code === '3D000') {
      return new CesoError('STATE_UNREACHABLE', `the state database ${this.location} does not exist: ${text}`, { hint: 'Create it (createdb), or fix the database name at the end of state.url' });
    }
    const words = connectionFailure(code);
    const timedOut = /timeout|timed out/i.test(text);
    const lost = /Connection terminated|connection (is )?closed|Client has encountered a connection error|terminating connection/i.test(text) || code === '57P01' || code === '57P02' || code === '57P03';
    if (words !== undefined || timedOut || lost) {
      const why = timedOut ? `did not answer within ${seconds} s` : words !== undefined ? `could not be reached (${words})` : `closed the connection (${text})`;
      return new CesoError('STATE_UNREACHABLE', `the state database ${this.location} ${why}`, { hint, details: { location: this.location, ...(code === undefined ? {} : { code }) } });
    }
    return new CesoError('INTERNAL', `the state database ${this.location} failed: ${text}`, {
      hint: 'This is a bug in ceso or a damaged state database: run again with --log-level debug and report the output',
    });
  }
}

interface LockRow {
  id: string;
  host: string;
  vm: string;
  holder_user: string;
  holder_machine: string;
  holder_pid: number;
  command: string;
  since: Date;
  expires_at: Date;
  expired: boolean;
}

interface AuditRow {
  started_at: Date;
  actor: string;
  target_host: string;
  command: string;
  mode: string;
  via: string | null;
  dry_run: boolean;
  outcome: string;
  error_code: string | null;
  vm_id: string | null;
  vm: string | null;
  duration_ms: number;
  arguments: Record<string, unknown>;
}

interface KeyRow {
  key: string;
  op: string;
  request_hash: string;
  status: string;
  result: unknown;
  created_at: Date;
  expires_at: Date;
}

function toEntry(row: LockRow): LockEntry {
  return {
    id: row.id,
    host: row.host,
    vm: row.vm,
    holder: { user: row.holder_user, machine: row.holder_machine, pid: row.holder_pid, command: row.command },
    since: new Date(row.since).toISOString(),
    expiresAt: new Date(row.expires_at).toISOString(),
    state: row.expired ? 'expired' : 'held',
  };
}

/** pg is bundled but loaded only here; its optional native binding (pg-native) is never used. */
async function loadPg(): Promise<typeof PgModule> {
  const module = (await import('pg')) as typeof PgModule & { default?: typeof PgModule };
  return module.default ?? module;
}

function describe(error: unknown): string {
  return isCesoError(error) ? error.message : error instanceof Error ? error.message : String(error);
}

function warn(message: string): void {
  try {
    process.stderr.write(`Warning: ${message}\n`);
  } catch {
    // stderr is gone: nothing more to say.
  }
}
