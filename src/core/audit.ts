/**
 * The audit trail: one JSON line per mutating command (dry-runs included) in <cesoHome>/audit.log.
 *
 * Why concurrent writers never interleave lines: each record is serialized first and written with
 * ONE write(2) on a descriptor opened with O_APPEND. POSIX requires that for O_APPEND "the file
 * offset shall be set to the end of the file prior to each write and no intervening file
 * modification operation shall occur between changing the file offset and the write operation";
 * Linux goes further and holds the inode's write lock (i_rwsem) for the whole of a regular-file
 * write, so two writes to the same file never mix their bytes and never overwrite each other. A
 * single write to a regular file on a local filesystem is only ever short on ENOSPC / EFBIG, so one
 * record is one write (Node's writeSync with one Buffer is one write(2) unless the kernel returns
 * short). A record is capped at MAX_RECORD_BYTES by shortening long argument values first, so a
 * line stays small. NFS emulates O_APPEND on the client and gives no such guarantee: keep
 * CESO_HOME on a local disk. A reader can still meet a line that is being written (reads do not
 * take the inode lock), so readAudit skips and counts a torn or garbled line instead of failing.
 */
import { Buffer } from 'node:buffer';
import { closeSync, constants, fchmodSync, fstatSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { cesoHome } from '../config/home.js';
import { CesoError } from './errors.js';

export interface AuditRecord {
  /** ISO time the command started. */
  time: string;
  /** OS user running ceso. */
  user: string;
  /** The ceso host entry name and address, e.g. "lab1 (192.168.1.10:443)". */
  host: string;
  /** e.g. "vm create". */
  command: string;
  /** Parsed arguments and flags, secrets masked (see maskArguments). */
  arguments: Record<string, unknown>;
  mode: 'standard' | 'restricted';
  via: 'api' | 'ssh' | null;
  dryRun: boolean;
  outcome: 'success' | 'error';
  errorCode: string | null;
  vmId: string | null;
  /** The VM name acted on. */
  vm: string | null;
  durationMs: number;
}

/** One line (JSON plus newline) never exceeds this many bytes. */
export const MAX_RECORD_BYTES = 64 * 1024;

export const MASKED = '***';

export function auditLogPath(home: string = cesoHome()): string {
  return join(home, 'audit.log');
}

/** The OS user for AuditRecord.user: the account name, else $USER / $USERNAME. */
export function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.USERNAME ?? 'unknown';
  }
}

/**
 * Appends one record as one line. Creates <home> (0700) and the log (0600), and tightens the log's
 * mode when it is looser. Never throws: a failure to audit is a warning on stderr, not a failed
 * command.
 */
export function appendAudit(record: AuditRecord, home: string = cesoHome()): void {
  const path = auditLogPath(home);
  let fd: number | undefined;
  try {
    const line = Buffer.from(`${serializeRecord(record)}\n`, 'utf8');
    mkdirSync(home, { recursive: true, mode: 0o700 });
    fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new Error('not a regular file');
    if ((stat.mode & 0o077) !== 0) fchmodSync(fd, 0o600);
    const written = writeSync(fd, line);
    if (written !== line.length) throw new Error(`short write (${written} of ${line.length} bytes)`);
  } catch (error) {
    warn(`could not append to the audit log ${path}: ${describe(error)}`);
  } finally {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // Nothing left to do: the record was written or a warning was given.
      }
    }
  }
}

/** The JSON line for a record (no newline), shortened to fit MAX_RECORD_BYTES. */
export function serializeRecord(record: AuditRecord): string {
  // Masked here as well, whatever the caller did: a secret must never reach the file.
  const base = { ...record, arguments: maskArguments((toJsonSafe(record.arguments, 0) ?? {}) as Record<string, unknown>) };
  const fits = (text: string): boolean => Buffer.byteLength(text, 'utf8') + 1 <= MAX_RECORD_BYTES;
  let text = JSON.stringify(base);
  if (fits(text)) return text;
  for (const limit of [4096, 512, 64]) {
    text = JSON.stringify({ ...base, arguments: truncateStrings(base.arguments, limit) });
    if (fits(text)) return text;
  }
  const short = (value: string): string => truncateString(value, 256);
  return JSON.stringify({
    ...base,
    time: short(base.time),
    user: short(base.user),
    host: short(base.host),
    command: short(base.command),
    errorCode: base.errorCode === null ? null : short(base.errorCode),
    vmId: base.vmId === null ? null : short(base.vmId),
    vm: base.vm === null ? null : short(base.vm),
    arguments: { truncated: true },
  });
}

// ----------------------------------------------------------------------------------------------
// Masking

/** Names (case, '-', '_' and '.' ignored) whose values are secrets. */
const SECRET_NAME = /password|passwd|passphrase|secret|token|credential|privatekey|apikey|accesskey|authorization|cookie|sessionid/;
const SECRET_EXACT = new Set(['pass', 'pwd', 'auth', 'pin']);
/** Names whose values may be a document (cloud-init user data and the like): only a path may stay. */
const CONTENT_NAME = /^(userdata|vendordata|metadata|cloudconfig|cloudinit|networkconfig)$/;
const PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY/;
const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]*@/gi;
const INLINE_SECRET = /\b(password|passwd|pwd|passphrase|token|secret|api[-_]?key)=[^\s&;,]+/gi;

function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.\s]/g, '');
}

function isSecretName(name: string): boolean {
  const normalized = normalizeName(name);
  return SECRET_EXACT.has(normalized) || SECRET_NAME.test(normalized);
}

/**
 * A copy of the arguments safe to keep: values of secret-like names are replaced by "***" (false,
 * null and undefined are left, they reveal nothing), strings holding a private key are masked
 * wherever they are, credentials inside URLs and `password=...` pairs are masked, and user-data-like
 * values keep a path only, never a document's content. SSH public keys stay.
 */
export function maskArguments(args: Record<string, unknown>): Record<string, unknown> {
  return maskObject(args, 0);
}

function maskObject(object: Record<string, unknown>, depth: number): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(object)) result[name] = maskNamed(name, value, depth + 1);
  return result;
}

function maskNamed(name: string, value: unknown, depth: number): unknown {
  if (value === undefined || value === null || value === false) return value;
  if (isSecretName(name)) return Array.isArray(value) ? value.map(() => MASKED) : MASKED;
  if (CONTENT_NAME.test(normalizeName(name))) return Array.isArray(value) ? value.map(pathOnly) : pathOnly(value);
  return maskValue(name, value, depth);
}

function maskValue(name: string, value: unknown, depth: number): unknown {
  if (typeof value === 'string') return maskString(value);
  if (depth > 8) return '[nested too deep]';
  if (Array.isArray(value)) return value.map((item) => maskNamed(name, item, depth + 1));
  if (typeof value === 'object' && value !== null && !Buffer.isBuffer(value) && !(value instanceof Date)) {
    return maskObject(value as Record<string, unknown>, depth);
  }
  return value;
}

function maskString(value: string): string {
  if (PRIVATE_KEY.test(value)) return MASKED;
  return value.replace(URL_CREDENTIALS, `$1${MASKED}@`).replace(INLINE_SECRET, `$1=${MASKED}`);
}

/** A path (one line, not a document) stays; content is replaced by a note of its size. */
function pathOnly(value: unknown): unknown {
  if (typeof value === 'string') {
    const looksLikeContent = value.includes('\n') || value.startsWith('#cloud-config') || value.length > 1024;
    return looksLikeContent ? `[content omitted: ${Buffer.byteLength(value, 'utf8')} bytes]` : maskString(value);
  }
  if (typeof value === 'boolean' || typeof value === 'number') return value;
  return '[content omitted]';
}

// ----------------------------------------------------------------------------------------------
// Serialization helpers

/** Makes any value JSON.stringify-safe: no bigint, functions, symbols or cycles; Buffers as sizes. */
function toJsonSafe(value: unknown, depth: number, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  if (seen.has(value) || depth > 16) return '[circular]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => toJsonSafe(item, depth + 1, seen) ?? null);
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const safe = toJsonSafe(item, depth + 1, seen);
      if (safe !== undefined) result[key] = safe;
    }
    return result;
  } finally {
    seen.delete(value);
  }
}

function truncateString(value: string, limit: number): string {
  return value.length <= limit ? value : `${value.slice(0, limit)}…[${value.length - limit} more chars]`;
}

function truncateStrings(value: unknown, limit: number): unknown {
  if (typeof value === 'string') return truncateString(value, limit);
  if (Array.isArray(value)) return value.map((item) => truncateStrings(item, limit));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [truncateString(key, limit), truncateStrings(item, limit)]));
  }
  return value;
}

// ----------------------------------------------------------------------------------------------
// Reading

export interface AuditLog {
  records: AuditRecord[];
  /** Lines that were not a whole record (torn by a concurrent write, or damaged), skipped. */
  skipped: number;
  path: string;
}

/** Records in file order (the order commands finished), from `since` on; a missing log is empty. */
export function readAuditLog(options: { since?: Date; home?: string } = {}): AuditLog {
  const path = auditLogPath(options.home);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], skipped: 0, path };
    throw new CesoError('INVALID_INPUT', `${path}: cannot read the audit log (${describe(error)})`, {
      hint: 'Check the permissions of the file; CESO_HOME chooses its directory',
    });
  }
  const since = options.since?.getTime();
  const records: AuditRecord[] = [];
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const record = parseRecord(line);
    if (record === undefined) {
      skipped += 1;
      continue;
    }
    if (since === undefined || Date.parse(record.time) >= since) records.push(record);
  }
  return { records, skipped, path };
}

/** readAuditLog's records alone (skipped lines are counted there). */
export function readAudit(options: { since?: Date; home?: string } = {}): AuditRecord[] {
  return readAuditLog(options).records;
}

function parseRecord(line: string): AuditRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const record = value as Partial<AuditRecord>;
  if (typeof record.time !== 'string' || Number.isNaN(Date.parse(record.time))) return undefined;
  if (typeof record.command !== 'string' || (record.outcome !== 'success' && record.outcome !== 'error')) return undefined;
  return record as AuditRecord;
}

// ----------------------------------------------------------------------------------------------
// --since

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "30m", "1h", "2d", "1w" (also "45s") before `now`, or an ISO timestamp. */
export function parseSince(value: string, now: Date = new Date()): Date {
  const text = value.trim();
  const relative = /^(\d{1,9})\s*([smhdw])$/i.exec(text);
  if (relative !== null) {
    const unit = UNIT_MS[(relative[2] ?? '').toLowerCase()];
    if (unit !== undefined) return new Date(now.getTime() - Number(relative[1]) * unit);
  }
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.test(text)) {
    const time = Date.parse(text.replace(' ', 'T'));
    if (!Number.isNaN(time)) return new Date(time);
  }
  throw new CesoError('INVALID_INPUT', `--since "${value}" is not a duration or a timestamp`, {
    hint: 'Use a duration back from now such as 30m, 1h, 2d or 1w, or an ISO timestamp such as 2024-05-01T12:00:00Z',
  });
}

function describe(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
}

function warn(message: string): void {
  try {
    process.stderr.write(`Warning: ${message}\n`);
  } catch {
    // stderr itself is gone; the audit failure cannot be reported.
  }
}
