// Audit log and per-VM locks under real concurrency: many node processes (test/support/
// lock-worker.mjs) run the modules, bundled from src/ with esbuild, against one CESO_HOME.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/root.js';

const ROOT = repoRoot();
const WORKER = join(ROOT, 'test/support/lock-worker.mjs');
let bundleDir = '';
let home = '';

interface WorkerResult {
  exit: number | null;
  signal: NodeJS.Signals | null;
  reply: { pid: number; ok: boolean; code?: string; message?: string; details?: { holder?: { pid: number; command: string; since: string } | null } } | undefined;
  stderr: string;
}

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  /** The first JSON line (for `hold`: once the lock is held). */
  replied: Promise<WorkerResult['reply']>;
  done: Promise<WorkerResult>;
}

const children = new Set<ChildProcess>();

function startWorker(mode: string, options: Record<string, unknown>, timeoutMs = 60_000): Worker {
  const child = spawn(process.execPath, [WORKER, bundleDir, mode, JSON.stringify({ home, ...options })], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  let markReady: () => void = () => {};
  let markReplied: (value: WorkerResult['reply']) => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const replied = new Promise<WorkerResult['reply']>((resolve) => (markReplied = resolve));
  let reply: WorkerResult['reply'];
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    let newline: number;
    while ((newline = stdout.indexOf('\n')) >= 0) {
      const line = stdout.slice(0, newline);
      stdout = stdout.slice(newline + 1);
      if (line === 'ready') markReady();
      else if (line.startsWith('{')) {
        reply ??= JSON.parse(line) as WorkerResult['reply'];
        markReplied(reply);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<WorkerResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`worker ${mode} did not finish within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (exit, signal) => {
      clearTimeout(timer);
      children.delete(child);
      markReplied(reply);
      resolve({ exit, signal, reply, stderr });
    });
  });
  return { child, ready, replied, done };
}

/** Starts workers that wait at a barrier, then releases them all at once. */
async function startTogether(count: number, mode: string, options: (index: number) => Record<string, unknown>): Promise<WorkerResult[]> {
  const workers = Array.from({ length: count }, (_, index) => startWorker(mode, { ...options(index), barrier: true }));
  await withTimeout(Promise.all(workers.map((worker) => worker.ready)), 30_000, 'workers ready');
  for (const worker of workers) worker.child.stdin!.write('go\n');
  return Promise.all(workers.map((worker) => worker.done));
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Holds a lock in a separate process, then SIGKILLs it: the lock file stays, its pid dead. */
async function leaveStaleLock(vm: string): Promise<number> {
  const holder = startWorker('hold', { host: '127.0.0.1:8443', vm });
  const reply = await withTimeout(holder.replied, 30_000, 'holder');
  expect(reply?.ok).toBe(true);
  holder.child.kill('SIGKILL');
  const result = await holder.done;
  expect(result.signal).toBe('SIGKILL');
  return reply!.pid;
}

function lockFiles(): string[] {
  return readdirSync(join(home, 'locks')).filter((name) => name.endsWith('.lock'));
}

beforeAll(async () => {
  bundleDir = mkdtempSync(join(tmpdir(), 'ceso-lock-bundle-'));
  await build({
    absWorkingDir: ROOT,
    entryPoints: { lock: join(ROOT, 'src/core/lock.ts'), audit: join(ROOT, 'src/core/audit.ts') },
    outdir: bundleDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  });
});

afterAll(() => {
  rmSync(bundleDir, { recursive: true, force: true });
});

afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  if (home !== '') rmSync(home, { recursive: true, force: true });
  home = '';
});

function freshHome(): void {
  home = mkdtempSync(join(tmpdir(), 'ceso-home-'));
}

describe('audit log under concurrent writers', () => {
  it('keeps every line whole when 24 processes append at once', async () => {
    freshHome();
    const writers = 24;
    const perWriter = 40;
    // Every third writer writes 20 kB records: far above PIPE_BUF, still one write each.
    const results = await startTogether(writers, 'append', (index) => ({ id: index, count: perWriter, big: index % 3 === 0 ? 20_000 : 0 }));
    for (const result of results) expect(result.reply, result.stderr).toMatchObject({ ok: true });

    const text = readFileSync(join(home, 'audit.log'), 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    expect(lines).toHaveLength(writers * perWriter);
    const seen = new Map<number, number[]>();
    for (const line of lines) {
      const record = JSON.parse(line) as { arguments: { writer: number; index: number; password: string; note: string } };
      expect(record.arguments.password).toBe('***');
      seen.set(record.arguments.writer, [...(seen.get(record.arguments.writer) ?? []), record.arguments.index]);
    }
    for (let writer = 0; writer < writers; writer++) {
      // Each writer's own records appear in its order.
      expect(seen.get(writer)).toEqual(Array.from({ length: perWriter }, (_, index) => index));
    }
    expect(statSync(join(home, 'audit.log')).mode & 0o777).toBe(0o600);
    expect(statSync(home).mode & 0o777).toBe(0o700);
  });
});

describe('per-VM locks between processes', () => {
  it('lets exactly one of 12 processes in at once with timeout 0; the others fail LOCKED naming it', async () => {
    freshHome();
    const log = join(home, 'order.log');
    const results = await startTogether(12, 'lock', () => ({ host: '127.0.0.1:8443', vm: 'web1', timeoutMs: 0, holdMs: 2500, log }));
    const winners = results.filter((result) => result.reply?.ok === true);
    const losers = results.filter((result) => result.reply?.ok === false);
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(11);
    const winner = winners[0]!.reply!.pid;
    for (const loser of losers) {
      expect(loser.exit).toBe(4);
      expect(loser.reply?.code).toBe('LOCKED');
      expect(loser.reply?.details?.holder?.pid).toBe(winner);
      expect(loser.reply?.details?.holder?.command).toBe('vm test');
      expect(loser.reply?.message).toContain(`pid ${winner}`);
    }
    expect(lockFiles()).toEqual([]);
  });

  it('serializes 10 waiting processes: all succeed, one after another, never overlapping', async () => {
    freshHome();
    const log = join(home, 'order.log');
    const results = await startTogether(10, 'lock', () => ({ host: '127.0.0.1:8443', vm: 'web1', timeoutMs: 45_000, holdMs: 150, log }));
    for (const result of results) expect(result.reply, result.stderr).toMatchObject({ ok: true });
    const events = readFileSync(log, 'utf8').trim().split('\n');
    expect(events).toHaveLength(20);
    // Strictly alternating enter/exit of the same process: no one entered while another was in.
    for (let index = 0; index < events.length; index += 2) {
      const [enter, pid] = events[index]!.split(' ');
      expect(enter).toBe('enter');
      expect(events[index + 1]).toBe(`exit ${pid}`);
    }
    expect(new Set(events.map((event) => event.split(' ')[1])).size).toBe(10);
    expect(lockFiles()).toEqual([]);
  });

  it('never blocks processes working on different VMs (or the same name on another host)', async () => {
    freshHome();
    const log = join(home, 'order.log');
    const results = await startTogether(10, 'lock', (index) => ({
      host: index === 9 ? '10.0.0.2:443' : '127.0.0.1:8443',
      vm: index === 9 ? 'web0' : `web${index}`,
      timeoutMs: 0,
      holdMs: 2500,
      log,
    }));
    for (const result of results) expect(result.reply, result.stderr).toMatchObject({ ok: true });
    // They held their locks at the same time: every enter comes before the first exit.
    const events = readFileSync(log, 'utf8').trim().split('\n');
    const firstExit = events.findIndex((event) => event.startsWith('exit'));
    expect(firstExit).toBe(10);
  });

  it('takes over the lock of a SIGKILLed holder, and names a live holder until then', async () => {
    freshHome();
    const log = join(home, 'order.log');
    const holder = startWorker('hold', { host: '127.0.0.1:8443', vm: 'web1' });
    const held = await withTimeout(holder.replied, 30_000, 'holder');
    expect(held?.ok).toBe(true);

    const blocked = await startWorker('lock', { host: '127.0.0.1:8443', vm: 'web1', timeoutMs: 300, log }).done;
    expect(blocked.exit).toBe(4);
    expect(blocked.reply?.details?.holder?.pid).toBe(held!.pid);
    expect(blocked.reply?.details?.holder?.command).toBe('vm hold');
    expect(blocked.reply?.message).toContain('waited 0.3 s');

    holder.child.kill('SIGKILL');
    await holder.done;
    expect(lockFiles()).toHaveLength(1);
    const taker = await startWorker('lock', { host: '127.0.0.1:8443', vm: 'web1', timeoutMs: 0, log }).done;
    expect(taker.reply, taker.stderr).toMatchObject({ ok: true });
    expect(lockFiles()).toEqual([]);
  });

  it('hands the lock to a waiting process when the holder is killed while it waits', async () => {
    freshHome();
    const log = join(home, 'order.log');
    const holder = startWorker('hold', { host: '127.0.0.1:8443', vm: 'web1' });
    await withTimeout(holder.replied, 30_000, 'holder');
    const waiter = startWorker('lock', { host: '127.0.0.1:8443', vm: 'web1', timeoutMs: 20_000, log });
    await new Promise((resolve) => setTimeout(resolve, 500));
    holder.child.kill('SIGKILL');
    const result = await waiter.done;
    expect(result.reply, result.stderr).toMatchObject({ ok: true });
  });

  it('lets exactly one of 10 processes racing over the same stale lock win (3 rounds)', async () => {
    freshHome();
    const log = join(home, 'order.log');
    for (let round = 0; round < 3; round++) {
      const dead = await leaveStaleLock('web1');
      const results = await startTogether(10, 'lock', () => ({ host: '127.0.0.1:8443', vm: 'web1', timeoutMs: 0, holdMs: 2500, log }));
      const winners = results.filter((result) => result.reply?.ok === true);
      expect(winners, results.map((result) => JSON.stringify(result.reply)).join('\n')).toHaveLength(1);
      const winner = winners[0]!.reply!.pid;
      for (const loser of results.filter((result) => result.reply?.ok !== true)) {
        expect(loser.reply?.code).toBe('LOCKED');
        // The loser names the new live holder, not the dead one.
        expect(loser.reply?.details?.holder?.pid).toBe(winner);
        expect(loser.reply?.details?.holder?.pid).not.toBe(dead);
      }
      expect(lockFiles()).toEqual([]);
      // No takeover guard or temp file is left behind.
      expect(readdirSync(join(home, 'locks'))).toEqual([]);
    }
  });

  it('releases a lock the process forgot when it exits', async () => {
    freshHome();
    const result = await startWorker('forget', { host: '127.0.0.1:8443', vm: 'web1' }).done;
    expect(result.reply).toMatchObject({ ok: true });
    expect(result.exit).toBe(0);
    expect(lockFiles()).toEqual([]);
  });

  it('writes the lock directory 0700 and lock files 0600 with the holder in them', async () => {
    freshHome();
    const holder = startWorker('hold', { host: '127.0.0.1:8443', vm: 'web1' });
    const held = await withTimeout(holder.replied, 30_000, 'holder');
    const [name] = lockFiles();
    expect(name).toMatch(/^127\.0\.0\.1_8443--web1--[0-9a-f]{16}\.lock$/);
    const path = join(home, 'locks', name!);
    expect(statSync(join(home, 'locks')).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ pid: held!.pid, command: 'vm hold', vm: 'web1', host: '127.0.0.1:8443' });
    holder.child.kill('SIGKILL');
    await holder.done;
    expect(existsSync(path)).toBe(true);
  });
});
