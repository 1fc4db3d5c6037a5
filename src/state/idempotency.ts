/**
 * Idempotency keys (`--idempotency-key KEY`), the same on both backends. A key names one request
 * for 24 h:
 *  - the first run with the key takes the key's lock (a lock like a VM's, in its own namespace),
 *    records the request's fingerprint as `running`, runs, and on success records the result;
 *  - a repeat with the same request returns that result (`replayed: true`) and changes nothing;
 *    while the first still runs, the repeat waits for it on the key's lock (up to --lock-timeout,
 *    then LOCKED), so an agent that retries after a timeout never starts a second VM;
 *  - the same key with another request is IDEMPOTENCY_CONFLICT, at once;
 *  - a first run that FAILS releases the key (its record is removed): only a success is
 *    remembered, so a retry after a failure runs again. A first run killed outright leaves a
 *    `running` record whose lock holder is gone; the next run with the key takes the lock over and
 *    runs again (create and clone then meet the VM the first made, VM_EXISTS, never a second VM).
 * Dry runs never touch a key.
 */
import { createHash } from 'node:crypto';
import { CesoError, isCesoError } from '../core/errors.js';
import type { IdempotencyRecord, StateStore } from './store.js';

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** The lock namespace of keys (LockEntry.host); the key is the lock's `vm`. */
export const IDEMPOTENCY_LOCK_HOST = 'idempotency-key';

const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

export interface IdempotentRequest {
  key: string;
  /** e.g. "vm create" */
  op: string;
  /** The host the request acts on ("address:port"): the same request on another host is another request. */
  scope: string;
  /** What the run does, as parsed from the flags: the fingerprint is taken over it. */
  request: unknown;
  /** --lock-timeout, for a repeat while the first run still goes. */
  timeoutMs: number;
  /** What the holder does, for the key's lock (e.g. "ceso vm create"). */
  command: string;
}

export interface IdempotentOutcome<R> {
  result: R;
  replayed: boolean;
  /** When the first run with the key began (ISO). */
  firstRunAt: string | null;
}

export function checkIdempotencyKey(key: string): void {
  if (!KEY_PATTERN.test(key)) {
    throw new CesoError('INVALID_INPUT', `--idempotency-key must be 1 to 200 printable characters without spaces`, {
      hint: 'Use a UUID or another unique name per request, e.g. --idempotency-key run-42-create-web1',
    });
  }
}

/** sha256 over the operation, its scope and the request, with object keys in sorted order. */
export function requestFingerprint(op: string, scope: string, request: unknown): string {
  return createHash('sha256').update(stableJson({ op, scope, request })).digest('hex');
}

export async function runIdempotent<R>(store: StateStore, options: IdempotentRequest, run: () => Promise<R>): Promise<IdempotentOutcome<R>> {
  checkIdempotencyKey(options.key);
  const fingerprint = requestFingerprint(options.op, options.scope, options.request);

  const settled = (record: IdempotencyRecord | undefined): IdempotentOutcome<R> | undefined => {
    if (record === undefined) return undefined;
    if (record.fingerprint !== fingerprint || record.op !== options.op) throw conflict(options, record);
    return record.status === 'succeeded' ? { result: record.result as R, replayed: true, firstRunAt: record.createdAt } : undefined;
  };

  // A finished key, or a different request, answers without waiting for any lock.
  const early = settled(await store.getIdempotency(options.key));
  if (early !== undefined) return early;

  let lock;
  try {
    lock = await store.acquireLock({ host: IDEMPOTENCY_LOCK_HOST, vm: options.key, command: options.command, timeoutMs: options.timeoutMs });
  } catch (error) {
    throw isCesoError(error) && error.code === 'LOCKED' ? keyBusy(options, error) : error;
  }
  try {
    // Under the key's lock: the first run has finished (or died) by now.
    const current = await store.getIdempotency(options.key);
    const replay = settled(current);
    if (replay !== undefined) return replay;
    await store.putIdempotency({ key: options.key, op: options.op, fingerprint, status: 'running', result: null });
    let result: R;
    try {
      result = await run();
    } catch (error) {
      await store.deleteIdempotency(options.key).catch(() => undefined);
      throw error;
    }
    await store.putIdempotency({ key: options.key, op: options.op, fingerprint, status: 'succeeded', result });
    return { result, replayed: false, firstRunAt: null };
  } finally {
    await lock.release();
  }
}

function conflict(options: IdempotentRequest, record: IdempotencyRecord): CesoError {
  return new CesoError(
    'IDEMPOTENCY_CONFLICT',
    `idempotency key "${options.key}" was used at ${record.createdAt} for a different request (${record.op}); this ${options.op} changes nothing`,
    {
      hint: 'A key names one request for 24 h: use a new key for a new request, or repeat the first request exactly',
      details: { key: options.key, op: record.op, firstRunAt: record.createdAt, expiresAt: record.expiresAt, status: record.status },
    },
  );
}

function keyBusy(options: IdempotentRequest, locked: CesoError): CesoError {
  const holder = (locked.details?.holder ?? null) as { pid?: number; command?: string; hostname?: string } | null;
  const who = holder?.pid === undefined ? 'another ceso process' : `ceso pid ${holder.pid}${holder.hostname === undefined ? '' : ` on ${holder.hostname}`} (${holder.command ?? 'unknown'})`;
  const waited = options.timeoutMs > 0 ? ` (waited ${options.timeoutMs / 1000} s)` : '';
  return new CesoError('LOCKED', `idempotency key "${options.key}" is in use: its first run, ${who}, is still going${waited}`, {
    hint: options.timeoutMs > 0 ? 'Repeat with a longer --lock-timeout to get its result' : 'Repeat with --lock-timeout SECONDS to wait for its result',
    details: { key: options.key, holder },
  });
}

function stableJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
        .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}
