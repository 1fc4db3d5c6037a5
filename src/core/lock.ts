/**
 * Per-VM locks between ceso processes: two processes acting on the same VM of the same host never
 * interleave. A lock is a file <cesoHome>/locks/<host>--<vm>--<hash>.lock holding one JSON object
 * (LockRecord: pid, hostname, command, since, a random token, boot id and process start time).
 *
 * Taking a lock. The holder JSON is written to a private temp file, which is then link(2)ed to the
 * lock path. link fails with EEXIST when the path exists, so exactly one of any number of racing
 * processes creates it, and since the file is complete before it gets its name, a reader never
 * sees a half-written holder.
 *
 * Staleness. A holder is dead when it ran on this machine (same os.hostname()) and its pid no
 * longer exists (kill(pid, 0) -> ESRCH), is a zombie, or is now another process (its start time in
 * /proc differs from the one recorded), or when the machine has rebooted since (the boot id
 * differs). A lock from another machine is never judged stale by pid. A lock file that does not
 * parse (links make that impossible for ceso's own files, so it was damaged from outside) is stale
 * once it is GARBLED_STALE_MS old.
 *
 * Taking over a stale lock. The danger is the check-then-unlink race: A and B both see the dead
 * holder H; A removes H and takes the lock; B, still believing the path holds H, removes A's live
 * lock and takes it too. So the path may only be unlinked by the one process holding the right to
 * remove H: the creator (again by link, so exclusive) of the guard file
 * `<lock>.takeover.<H's id>`. The guard holder re-reads the lock file, unlinks it only if it still
 * is H, then removes its guard and competes for the lock like everyone else. Why that is safe:
 *  - While H is at the path, nothing but a guard holder can remove it (H's owner is dead; `release`
 *    removes only the caller's own token), and no new lock can be linked over it.
 *  - Until H is gone, guard files for H are only ever created, never removed (they are removed by
 *    their holder after it has unlinked H or seen it gone, or by the next lock owner, who can only
 *    exist once H is gone). Each guard name is created once, by one process.
 *  - If the guard's holder died mid-takeover (a tiny window), the guard is stale like any lock:
 *    the right passes to the creator of `<lock>.takeover.<H's id>.<dead guard's id>`, and so on.
 *    A process climbs a level only when the holder of the level below is dead, so at most one LIVE
 *    process holds a right to remove H at any time.
 *  Hence the re-read "still H" and the unlink cannot be separated by another removal, and a live
 *  lock is never removed by a takeover. Guards and temp files left by killed processes are swept
 *  by the next owner of the lock (safe: once the lock is owned, every guard names a holder that is
 *  already gone).
 *
 * Releasing removes the file only if it still holds the caller's pid and token. A lock the caller
 * forgot is released when the process exits normally ('exit'); a process killed outright leaves
 * a file that the next process finds stale.
 *
 * Limits: locks are advisory between ceso processes sharing one CESO_HOME on one machine (or on a
 * shared filesystem with working link(2) and distinct hostnames, where a remote holder is waited
 * for, never taken over).
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { cesoHome } from '../config/home.js';
import { currentUser } from './audit.js';
import { CesoError } from './errors.js';

export interface LockHolder {
  pid: number;
  command: string;
  /** ISO time the lock was taken. */
  since: string;
  hostname: string;
}

export interface VmLock {
  /** The lock's token: the id `ceso lock list` shows and `ceso lock release` takes. */
  readonly id: string;
  /** Removes the lock file if it is still this lock's; idempotent; never throws. */
  release(): void;
}

/** What a lock (or takeover guard) file holds. */
interface LockRecord extends LockHolder {
  version: 1;
  token: string;
  host: string;
  vm: string;
  /** The OS user of the holder (missing in files of older ceso versions). */
  user?: string;
  /** /proc/sys/kernel/random/boot_id, where there is one. */
  bootId?: string;
  /** Field 22 of /proc/<pid>/stat (start time in clock ticks after boot), where there is one. */
  startTime?: string;
}

export interface AcquireVmLockOptions {
  /** Host key, e.g. "127.0.0.1:8443". */
  host: string;
  /** VM name. */
  vm: string;
  /** What the holder is doing, e.g. "vm delete"; shown to whoever has to wait. */
  command: string;
  /** How long to wait for a live holder; 0 fails at once. */
  timeoutMs: number;
  home?: string;
  signal?: AbortSignal;
}

/** A damaged (unparseable) lock file older than this is stale. */
const GARBLED_STALE_MS = 10_000;
/** When another process is taking a stale lock over, wait at least this long for it to finish. */
const TAKEOVER_GRACE_MS = 2_000;
/** Temp files older than this were left by a killed process. */
const TEMP_STALE_MS = 60_000;
const MAX_GUARD_CHAIN = 6;
const FIRST_DELAY_MS = 10;
const MAX_DELAY_MS = 200;

export function lockDirectory(home: string = cesoHome()): string {
  return join(home, 'locks');
}

/** The lock file of one VM of one host: a readable prefix and a hash that tells them apart. */
export function lockFilePath(host: string, vm: string, home?: string): string {
  const hash = createHash('sha256').update(`${host}\n${vm}`).digest('hex').slice(0, 16);
  return join(lockDirectory(home), `${slug(host, 40)}--${slug(vm, 60)}--${hash}.lock`);
}

function slug(text: string, length: number): string {
  return text.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[.]+/, '_').slice(0, length) || '_';
}

// ----------------------------------------------------------------------------------------------
// This process's locks

/** Tokens of this process's lock attempts and locks: a file with one of these is not stale. */
const ownTokens = new Set<string>();
/** Acquired and not yet released: released on exit. */
const acquired = new Map<string, () => void>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const release of [...acquired.values()]) release();
  });
}

// ----------------------------------------------------------------------------------------------
// Acquire

export async function acquireVmLock(options: AcquireVmLockOptions): Promise<VmLock> {
  const directory = lockDirectory(options.home);
  const path = lockFilePath(options.host, options.vm, options.home);
  mkdirSync(directory, { recursive: true, mode: 0o700 });

  const record = holderRecord(options);
  const content = `${JSON.stringify(record)}\n`;
  const timeoutMs = Number.isFinite(options.timeoutMs) ? Math.max(0, options.timeoutMs) : 0;
  const deadline = Date.now() + timeoutMs;
  /** Per stale lock that a live process is removing: how long we wait for that to finish. */
  const graceUntil = new Map<string, number>();
  let delay = FIRST_DELAY_MS;
  let quickRetries = 0;
  let lastSeen: Observed = { state: 'missing' };

  ownTokens.add(record.token);
  try {
    for (;;) {
      if (options.signal?.aborted === true) throw interrupted(options);
      if (createExclusive(path, content, directory)) return owned(path, record, directory);

      const seen = observe(path);
      let limit = deadline;
      if (seen.state === 'missing') {
        // Released between our link and our look: try again at once (bounded, in case of churn).
        if (quickRetries++ < 50) continue;
      } else {
        lastSeen = seen;
        if (isStale(seen)) {
          const outcome = takeOver(path, seen.identity, [], content, directory);
          if (outcome === 'done') continue;
          // Another live process is removing it; that takes microseconds, so wait for it a
          // little even past the deadline rather than report a dead holder (or, with timeout 0,
          // fail while the lock is in fact free). Only while this stale lock is still there.
          if (!graceUntil.has(seen.identity)) graceUntil.set(seen.identity, Date.now() + TAKEOVER_GRACE_MS);
          limit = Math.max(deadline, graceUntil.get(seen.identity) ?? 0);
        }
      }

      const remaining = limit - Date.now();
      if (remaining <= 0) throw lockedError(options, path, lastSeen);
      await sleep(Math.min(remaining, delay * (0.5 + Math.random())), options.signal);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  } finally {
    if (!acquired.has(record.token)) ownTokens.delete(record.token);
  }
}

function owned(path: string, record: LockRecord, directory: string): VmLock {
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    acquired.delete(record.token);
    ownTokens.delete(record.token);
    try {
      const seen = observe(path);
      if (seen.state === 'present' && seen.record?.token === record.token && seen.record.pid === process.pid) unlinkIfPresent(path);
    } catch (error) {
      warn(`could not release the lock ${path}: ${describe(error)}`);
    }
  };
  acquired.set(record.token, release);
  try {
    installExitHook();
    sweep(path, directory);
  } catch (error) {
    release();
    throw error;
  }
  return { id: record.token, release };
}

function holderRecord(options: AcquireVmLockOptions): LockRecord {
  const boot = bootId();
  const start = procStat(process.pid)?.startTime;
  return {
    version: 1,
    pid: process.pid,
    hostname: osHostname(),
    command: options.command,
    since: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
    host: options.host,
    vm: options.vm,
    user: currentUser(),
    ...(boot === undefined ? {} : { bootId: boot }),
    ...(start === undefined ? {} : { startTime: start }),
  };
}

/**
 * Creates `path` holding `content` if nothing is there: written to a temp file first, then linked
 * into place (atomic, exclusive, and never seen half-written). false when the path exists.
 */
function createExclusive(path: string, content: string, directory: string): boolean {
  for (let attempt = 0; ; attempt++) {
    const temp = join(directory, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    writeFileSync(temp, content, { flag: 'wx', mode: 0o600 });
    try {
      linkSync(temp, path);
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      // Our temp file was swept while this process was stopped: write it again.
      if (code === 'ENOENT' && attempt < 3) continue;
      throw new CesoError('INTERNAL', `cannot create the lock file ${path}: ${describe(error)}`, {
        hint: 'The directory must be on a local filesystem that supports hard links; CESO_HOME chooses it',
      });
    } finally {
      unlinkIfPresent(temp);
    }
  }
}

/**
 * Removes the stale lock (or stale guard) instance `identity` from `path`, if this process wins
 * the right to: see the module comment. 'done' when it is gone (by us or already), 'busy' when a
 * live process holds the right.
 */
function takeOver(path: string, identity: string, chain: string[], content: string, directory: string): 'done' | 'busy' {
  if (chain.length >= MAX_GUARD_CHAIN) return 'busy';
  const guardName = (links: string[]): string => `${path}.takeover.${[identity, ...links].join('.')}`;
  const guard = guardName(chain);
  if (!createExclusive(guard, content, directory)) {
    const holder = observe(guard);
    if (holder.state === 'missing') return 'done'; // finished (or swept): look at the lock again
    if (!isStale(holder)) return 'busy';
    return takeOver(path, identity, [...chain, holder.identity], content, directory);
  }
  try {
    const current = observe(path);
    if (current.state === 'present' && current.identity === identity) unlinkIfPresent(path);
    // Only now that the stale lock is gone, tidy the guards of the dead processes below ours.
    for (let level = 0; level < chain.length; level++) unlinkIfPresent(guardName(chain.slice(0, level)));
  } finally {
    unlinkIfPresent(guard);
  }
  return 'done';
}

/** Leftovers of killed processes: every guard of this lock (it is ours now) and old temp files. */
function sweep(path: string, directory: string): void {
  const lockName = path.slice(directory.length + 1);
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return;
  }
  const now = Date.now();
  for (const name of names) {
    if (name.startsWith(`${lockName}.takeover.`)) {
      unlinkIfPresent(join(directory, name));
    } else if (name.startsWith('.tmp-')) {
      try {
        if (now - statSync(join(directory, name)).mtimeMs > TEMP_STALE_MS) unlinkIfPresent(join(directory, name));
      } catch {
        // Gone already.
      }
    }
  }
}

// ----------------------------------------------------------------------------------------------
// Listing and forced release (ceso lock list / lock release --force)

export interface LockFileEntry {
  id: string;
  path: string;
  host: string;
  vm: string;
  user: string;
  hostname: string;
  pid: number;
  command: string;
  since: string;
  /** The holder process is gone (judged on this machine only, as for a takeover). */
  stale: boolean;
}

/** Every lock file in the directory, oldest first; takeover guards and unreadable files are left out. */
export function listVmLocks(home?: string): LockFileEntry[] {
  const directory = lockDirectory(home);
  let names: string[];
  try {
    names = readdirSync(directory);
  } catch {
    return [];
  }
  const entries: LockFileEntry[] = [];
  for (const name of names.filter((candidate) => candidate.endsWith('.lock'))) {
    const path = join(directory, name);
    const seen = observe(path);
    if (seen.state !== 'present' || seen.record === undefined) continue;
    entries.push(fileEntry(path, seen));
  }
  return entries.sort((a, b) => a.since.localeCompare(b.since));
}

function fileEntry(path: string, seen: Observed & { state: 'present' }): LockFileEntry {
  const record = seen.record as LockRecord;
  return {
    id: record.token,
    path,
    host: record.host,
    vm: record.vm,
    user: record.user ?? 'unknown',
    hostname: record.hostname,
    pid: record.pid,
    command: record.command,
    since: record.since,
    stale: isStale(seen),
  };
}

/**
 * Removes the lock file with this id, only when its holder is dead (the takeover protocol above,
 * so a live lock is never removed). A live holder, or one on another machine, is LOCKED with why.
 */
export function forceReleaseVmLock(id: string, home?: string): LockFileEntry {
  const entry = listVmLocks(home).find((candidate) => candidate.id === id);
  if (entry === undefined) {
    throw new CesoError('NOT_FOUND', `no local lock has the id ${id}`, { hint: 'See the ids with ceso lock list' });
  }
  if (!entry.stale) {
    const other = entry.hostname !== osHostname();
    throw new CesoError(
      'LOCKED',
      other
        ? `the lock ${id} on VM "${entry.vm}" is held by pid ${entry.pid} on ${entry.hostname}, another machine: ceso cannot tell from here whether it is still running`
        : `the lock ${id} on VM "${entry.vm}" is held by pid ${entry.pid} (${entry.command}), which is still running`,
      {
        hint: other
          ? `Stop that process on ${entry.hostname} (the lock goes with it), or remove ${entry.path} by hand once you know it is gone`
          : `A local lock lasts as long as its process: wait for it, or stop pid ${entry.pid}; its lock is then free`,
        details: { id, host: entry.host, vm: entry.vm, holder: { pid: entry.pid, command: entry.command, since: entry.since, hostname: entry.hostname } },
      },
    );
  }
  const directory = lockDirectory(home);
  const content = `${JSON.stringify({ ...holderRecord({ host: entry.host, vm: entry.vm, command: 'ceso lock release', timeoutMs: 0 }) })}\n`;
  const outcome = takeOver(entry.path, id, [], content, directory);
  if (outcome !== 'done') {
    throw new CesoError('LOCKED', `another ceso process is taking the stale lock ${id} over right now`, { hint: 'Run ceso lock list again in a moment' });
  }
  return entry;
}

// ----------------------------------------------------------------------------------------------
// Reading and judging a lock file

type Observed =
  | { state: 'missing' }
  | { state: 'present'; identity: string; record: LockRecord | undefined; mtimeMs: number };

/** The file at `path` now: its holder, and an identity that names this instance of the file. */
function observe(path: string): Observed {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw error;
  }
  try {
    const stat = fstatSync(fd);
    const record = parseRecord(readFileSync(fd, 'utf8'));
    const identity = record?.token ?? createHash('sha256').update(`${stat.ino}:${stat.mtimeMs}:${stat.size}`).digest('hex').slice(0, 16);
    return { state: 'present', identity, record, mtimeMs: stat.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

function parseRecord(text: string): LockRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const record = value as Partial<LockRecord>;
  // pid 0 or negative would make kill(pid, 0) probe a process group: never trust such a file.
  if (typeof record.pid !== 'number' || !Number.isInteger(record.pid) || record.pid <= 0) return undefined;
  if (typeof record.token !== 'string' || !/^[0-9a-f]{8,64}$/.test(record.token)) return undefined;
  if (typeof record.hostname !== 'string') return undefined;
  return {
    version: 1,
    pid: record.pid,
    token: record.token,
    hostname: record.hostname,
    command: typeof record.command === 'string' ? record.command : 'unknown',
    since: typeof record.since === 'string' ? record.since : 'unknown',
    host: typeof record.host === 'string' ? record.host : '',
    vm: typeof record.vm === 'string' ? record.vm : '',
    ...(typeof record.user === 'string' ? { user: record.user } : {}),
    ...(typeof record.bootId === 'string' ? { bootId: record.bootId } : {}),
    ...(typeof record.startTime === 'string' ? { startTime: record.startTime } : {}),
  };
}

function isStale(seen: Observed & { state: 'present' }): boolean {
  if (seen.record === undefined) return Date.now() - seen.mtimeMs > GARBLED_STALE_MS;
  return holderIsDead(seen.record);
}

function holderIsDead(holder: LockRecord): boolean {
  if (holder.hostname !== osHostname()) return false;
  const boot = bootId();
  if (holder.bootId !== undefined && boot !== undefined && holder.bootId !== boot) return true;
  // Our own pid: ours if we hold (or are taking) that token, else left by an earlier process that had our pid.
  if (holder.pid === process.pid) return !ownTokens.has(holder.token);
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return true;
    // EPERM: the process exists and belongs to someone else.
  }
  const stat = procStat(holder.pid);
  if (stat === undefined) return false;
  if (stat.state === 'Z' || stat.state === 'X') return true;
  return holder.startTime !== undefined && stat.startTime !== holder.startTime;
}

let cachedBootId: string | null | undefined;

function bootId(): string | undefined {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId ?? undefined;
}

/** State and start time of a process from /proc (Linux); undefined elsewhere or when it is gone. */
function procStat(pid: number): { state: string; startTime: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTime = fields[19]; // field 22 of the whole line
  return state === undefined || startTime === undefined ? undefined : { state, startTime };
}

// ----------------------------------------------------------------------------------------------
// Errors and helpers

function lockedError(options: AcquireVmLockOptions, path: string, seen: Observed): CesoError {
  const target = `VM "${options.vm}" on ${options.host}`;
  const waited = options.timeoutMs > 0 ? ` (waited ${options.timeoutMs / 1000} s)` : '';
  const hint =
    options.timeoutMs > 0
      ? 'Try again once it has finished, or give a longer --lock-timeout'
      : 'Wait for it to finish, or pass --lock-timeout to wait for it';
  if (seen.state === 'missing' || seen.record === undefined) {
    return new CesoError('LOCKED', `${target} is locked by another ceso process${waited}`, {
      hint,
      details: { host: options.host, vm: options.vm, holder: null, lockFile: path },
    });
  }
  const { pid, command, since, hostname } = seen.record;
  const where = hostname === osHostname() ? '' : ` on ${hostname}`;
  return new CesoError('LOCKED', `${target} is locked by ceso pid ${pid}${where} (${command}) since ${since}${waited}`, {
    hint,
    details: { host: options.host, vm: options.vm, holder: { pid, command, since, hostname }, lockFile: path },
  });
}

function interrupted(options: AcquireVmLockOptions): CesoError {
  return new CesoError('INTERRUPTED', `interrupted while waiting for the lock on VM "${options.vm}" on ${options.host}`);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}

function unlinkIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function warn(message: string): void {
  try {
    process.stderr.write(`Warning: ${message}\n`);
  } catch {
    // Nothing more to do.
  }
}
