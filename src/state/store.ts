/**
 * Where ceso keeps what several processes must agree on: per-VM locks, the audit trail and
 * idempotency keys (and, next, the warm pool's leases). One interface, two backends:
 *  - local (the default): files in CESO_HOME, for one machine (core/lock.ts, core/audit.ts,
 *    state/local.ts);
 *  - postgres: tables in a PostgreSQL database shared by every machine (state/postgres.ts), with
 *    every timestamp taken from the database's now() and no transaction held across an ESXi task.
 * A command opens the store only when it locks, audits or uses a key, so reading commands never
 * pay for it; the postgres client (pg) is loaded only for the postgres backend.
 */
import type { AuditLog, AuditRecord } from '../core/audit.js';
import type { ResolvedState } from '../config/resolve.js';
import type { PoolLeaseStore } from '../core/pool/shared-ledger.js';

export type StateBackend = 'local' | 'postgres';

/** Who holds a lock: shown to whoever has to wait, and by `ceso lock list`. */
export interface LockHolder {
  user: string;
  /** os.hostname() of the holder's machine. */
  machine: string;
  pid: number;
  /** What the holder is doing, e.g. "ceso vm delete". */
  command: string;
}

export interface LockEntry {
  /** The id `ceso lock release` takes. */
  id: string;
  /** Host key, "address:port". */
  host: string;
  /** The VM name (or, for an idempotency key's lock, the key). */
  vm: string;
  holder: LockHolder;
  /** ISO time the lock was taken. */
  since: string;
  /** ISO time the lock lapses unless renewed (postgres: renewed by the holder's heartbeat); null for local locks, which last as long as their process. */
  expiresAt: string | null;
  /** held: a live holder; expired: past expiresAt, the next process takes it over; stale: the holder process is gone (local). */
  state: 'held' | 'expired' | 'stale';
}

export interface AcquireLockRequest {
  host: string;
  vm: string;
  command: string;
  /** How long to wait for a live holder; 0 fails at once with LOCKED. */
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface HeldLock {
  readonly id: string;
  /** Gives the lock up if it is still this one's; never throws (a failure is a warning). */
  release(): Promise<void>;
}

/** A remembered run of an idempotency key (state/idempotency.ts). */
export interface IdempotencyRecord {
  key: string;
  /** e.g. "vm create" */
  op: string;
  /** sha256 of the operation, the host and the request: a repeat must match it. */
  fingerprint: string;
  /** running: the first run has the key (or died holding it); succeeded: `result` is its output. */
  status: 'running' | 'succeeded';
  result: unknown;
  /** ISO times; a record is forgotten at expiresAt (24 h after the first run began). */
  createdAt: string;
  expiresAt: string;
}

export interface StateStore {
  readonly backend: StateBackend;
  /** Where the state lives, safe to print: a directory, or the database URL without its password. */
  readonly location: string;

  acquireLock(request: AcquireLockRequest): Promise<HeldLock>;
  listLocks(): Promise<LockEntry[]>;
  /** Removes a lock by id (`ceso lock release --force`); the entry that was removed. */
  forceReleaseLock(id: string): Promise<LockEntry>;

  appendAudit(record: AuditRecord): Promise<void>;
  readAudit(options: { since?: Date }): Promise<AuditLog>;

  /** The key's record unless it has expired. */
  getIdempotency(key: string): Promise<IdempotencyRecord | undefined>;
  /** Writes the key's record (the caller holds the key's lock); the expiry is set when the key is first written and kept after. */
  putIdempotency(record: Omit<IdempotencyRecord, 'createdAt' | 'expiresAt'>): Promise<void>;
  deleteIdempotency(key: string): Promise<void>;

  /**
   * The warm pool's shared lease table (core/pool/shared-ledger.ts), or null: the local backend
   * hands out under the pool's lock file on one machine (core/pool/ledger.ts).
   */
  readonly poolLeases: PoolLeaseStore | null;

  close(): Promise<void>;
}

/** The store the configuration names; the postgres one connects (and migrates) on open. */
export async function openStateStore(state: ResolvedState, options: { version?: string } = {}): Promise<StateStore> {
  if (state.backend === 'local') {
    const { LocalStateStore } = await import('./local.js');
    return new LocalStateStore(state.home);
  }
  const { openPostgresStore } = await import('./postgres.js');
  return openPostgresStore(state, options);
}
