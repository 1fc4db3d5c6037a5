/**
 * The local backend: today's files in CESO_HOME, good for one machine. Locks are core/lock.ts's
 * lock files (they last as long as their process; no expiry), the audit trail is audit.log
 * (core/audit.ts), and an idempotency key is one JSON file under idempotency/, written to a temp
 * file and renamed into place, so a reader sees the old record or the new one, never half.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appendAudit, readAuditLog, type AuditLog, type AuditRecord } from '../core/audit.js';
import { acquireVmLock, forceReleaseVmLock, listVmLocks, type LockFileEntry } from '../core/lock.js';
import { IDEMPOTENCY_TTL_MS } from './idempotency.js';
import type { AcquireLockRequest, HeldLock, IdempotencyRecord, LockEntry, StateStore } from './store.js';

export class LocalStateStore implements StateStore {
  readonly backend = 'local' as const;
  readonly poolLeases = null;

  constructor(private readonly home: string) {}

  get location(): string {
    return this.home;
  }

  async acquireLock(request: AcquireLockRequest): Promise<HeldLock> {
    const lock = await acquireVmLock({ ...request, home: this.home });
    return {
      id: lock.id,
      release: async () => lock.release(),
    };
  }

  async listLocks(): Promise<LockEntry[]> {
    return listVmLocks(this.home).map(toEntry);
  }

  async forceReleaseLock(id: string): Promise<LockEntry> {
    return toEntry(forceReleaseVmLock(id, this.home));
  }

  async appendAudit(record: AuditRecord): Promise<void> {
    appendAudit(record, this.home);
  }

  async readAudit(options: { since?: Date }): Promise<AuditLog> {
    return readAuditLog({ ...options, home: this.home });
  }

  async getIdempotency(key: string): Promise<IdempotencyRecord | undefined> {
    const path = this.keyPath(key);
    let record: IdempotencyRecord;
    try {
      record = JSON.parse(readFileSync(path, 'utf8')) as IdempotencyRecord;
    } catch {
      return undefined; // missing, or damaged from outside: as if never used
    }
    if (record.key !== key || Date.parse(record.expiresAt) <= Date.now()) {
      removeIfPresent(path);
      return undefined;
    }
    return record;
  }

  async putIdempotency(record: Omit<IdempotencyRecord, 'createdAt' | 'expiresAt'>): Promise<void> {
    const existing = await this.getIdempotency(record.key);
    const now = Date.now();
    const full: IdempotencyRecord = {
      ...record,
      createdAt: existing?.createdAt ?? new Date(now).toISOString(),
      expiresAt: existing?.expiresAt ?? new Date(now + IDEMPOTENCY_TTL_MS).toISOString(),
    };
    const path = this.keyPath(record.key);
    mkdirSync(join(this.home, 'idempotency'), { recursive: true, mode: 0o700 });
    const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(temp, `${JSON.stringify(full)}\n`, { mode: 0o600 });
    renameSync(temp, path);
  }

  async deleteIdempotency(key: string): Promise<void> {
    removeIfPresent(this.keyPath(key));
  }

  async close(): Promise<void> {}

  private keyPath(key: string): string {
    return join(this.home, 'idempotency', `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`);
  }
}

function toEntry(file: LockFileEntry): LockEntry {
  return {
    id: file.id,
    host: file.host,
    vm: file.vm,
    holder: { user: file.user, machine: file.hostname, pid: file.pid, command: file.command },
    since: file.since,
    expiresAt: null,
    state: file.stale ? 'stale' : 'held',
  };
}

function removeIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
