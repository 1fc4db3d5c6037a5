import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireVmLock, lockDirectory, lockFilePath } from '../../src/core/lock.js';
import { rejectionOf } from '../support/errors.js';

const HOST = '127.0.0.1:8443';
/** Above any pid_max: kill(pid, 0) answers ESRCH. */
const DEAD_PID = 2 ** 30;
let home = '';

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'ceso-lock-'));
});
afterEach(() => {
  rmSync(home, { recursive: true, force: true });
});


function lock(vm = 'web1', timeoutMs = 0, extra: { signal?: AbortSignal; host?: string } = {}) {
  return acquireVmLock({ host: extra.host ?? HOST, vm, command: 'vm test', timeoutMs, home, ...(extra.signal === undefined ? {} : { signal: extra.signal }) });
}

function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** A lock file as another process would have left it. */
function plantLock(vm: string, holder: Record<string, unknown>, path = lockFilePath(HOST, vm, home)): string {
  writeFileSync(path, JSON.stringify({ version: 1, command: 'vm delete', since: '2024-01-01T00:00:00.000Z', host: HOST, vm, hostname: hostname(), ...holder }), { mode: 0o600 });
  return path;
}

async function prepareDirectory(): Promise<void> {
  (await lock('setup')).release();
}

describe('lock file names', () => {
  it('keeps a readable prefix and tells hosts and names apart', () => {
    const path = lockFilePath(HOST, 'web 1/../x', home);
    expect(path.startsWith(join(home, 'locks') + '/')).toBe(true);
    expect(path.slice(lockDirectory(home).length + 1)).toMatch(/^127\.0\.0\.1_8443--web_1_.._x--[0-9a-f]{16}\.lock$/);
    expect(lockFilePath(HOST, 'Web1', home)).not.toBe(lockFilePath(HOST, 'web1', home));
    expect(lockFilePath('10.0.0.1:443', 'web1', home)).not.toBe(lockFilePath(HOST, 'web1', home));
    expect(lockFilePath(HOST, '..', home)).not.toContain('/../');
  });
});

describe('acquireVmLock in one process', () => {
  it('creates the directory 0700 and the file 0600 with the holder, and release removes it', async () => {
    const held = await lock();
    const path = lockFilePath(HOST, 'web1', home);
    expect(statSync(lockDirectory(home)).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const holder = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    expect(holder).toMatchObject({ pid: process.pid, command: 'vm test', hostname: hostname(), host: HOST, vm: 'web1' });
    expect(Date.parse(String(holder.since))).not.toBeNaN();
    held.release();
    held.release();
    expect(readdirSync(lockDirectory(home))).toEqual([]);
  });

  it('fails fast with LOCKED naming the holder while it is held', async () => {
    const held = await lock();
    const error = await rejectionOf(lock());
    expect(error.code).toBe('LOCKED');
    expect(error.exitCode).toBe(4);
    expect(error.message).toContain(`pid ${process.pid}`);
    expect(error.message).toContain('vm test');
    expect(error.details).toMatchObject({ vm: 'web1', host: HOST, holder: { pid: process.pid, command: 'vm test', hostname: hostname() } });
    expect(error.hint).toContain('--lock-timeout');
    held.release();
    (await lock()).release();
  });

  it('does not block other VMs or the same name on another host', async () => {
    const first = await lock('web1');
    const second = await lock('web2');
    const third = await lock('web1', 0, { host: '10.0.0.9:443' });
    for (const held of [first, second, third]) held.release();
  });

  it('waits up to the timeout, then fails naming the holder', async () => {
    const held = await lock();
    const started = Date.now();
    const error = await rejectionOf(lock('web1', 400));
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    expect(error.code).toBe('LOCKED');
    expect(error.message).toContain('waited 0.4 s');
    held.release();
  });

  it('gets the lock once the holder releases it within the timeout', async () => {
    const held = await lock();
    setTimeout(() => held.release(), 200);
    const next = await lock('web1', 5_000);
    next.release();
  });

  it('stops waiting when aborted', async () => {
    const held = await lock();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const error = await rejectionOf(lock('web1', 10_000, { signal: controller.signal }));
    expect(error.code).toBe('INTERRUPTED');
    held.release();
  });

  it('release leaves a file that is no longer ours', async () => {
    const held = await lock();
    const path = plantLock('web1', { pid: process.pid, token: 'feedfacefeedface' });
    held.release();
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ token: 'feedfacefeedface' });
  });
});

describe('stale locks', () => {
  it('takes over a lock whose pid is gone on this machine', async () => {
    await prepareDirectory();
    plantLock('web1', { pid: DEAD_PID, token: '0123456789abcdef' });
    const held = await lock();
    expect(JSON.parse(readFileSync(lockFilePath(HOST, 'web1', home), 'utf8'))).toMatchObject({ pid: process.pid });
    held.release();
  });

  it('takes over a lock with our own pid that this process never took (pid reuse)', async () => {
    await prepareDirectory();
    plantLock('web1', { pid: process.pid, token: '0123456789abcdef' });
    (await lock()).release();
  });

  it('never judges a lock from another machine stale by pid', async () => {
    await prepareDirectory();
    plantLock('web1', { pid: DEAD_PID, token: '0123456789abcdef', hostname: 'elsewhere.example' });
    const error = await rejectionOf(lock());
    expect(error.code).toBe('LOCKED');
    expect(error.message).toContain('on elsewhere.example');
    expect(error.details).toMatchObject({ holder: { pid: DEAD_PID, hostname: 'elsewhere.example', command: 'vm delete' } });
  });

  it('treats a live pid as a holder, unless the machine rebooted or the pid is another process now', async () => {
    await prepareDirectory();
    const boot = bootId();
    plantLock('web1', { pid: 1, token: '0123456789abcdef', ...(boot === undefined ? {} : { bootId: boot }) });
    expect((await rejectionOf(lock())).code).toBe('LOCKED');
    if (boot === undefined) return;
    plantLock('web1', { pid: 1, token: '0123456789abcdef', bootId: '00000000-0000-0000-0000-000000000000' });
    (await lock()).release();
    plantLock('web1', { pid: 1, token: '0123456789abcdef', bootId: boot, startTime: '999999999999' });
    (await lock()).release();
  });

  it('waits for a damaged lock file while it is fresh and takes it over once old', async () => {
    await prepareDirectory();
    const path = lockFilePath(HOST, 'web1', home);
    writeFileSync(path, '{"pid": 12', { mode: 0o600 });
    const error = await rejectionOf(lock());
    expect(error.code).toBe('LOCKED');
    expect(error.details).toMatchObject({ holder: null });
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    (await lock()).release();
  });

  it('takes over through the guard of a taker that died mid-takeover, and sweeps the guards', async () => {
    await prepareDirectory();
    const path = plantLock('web1', { pid: DEAD_PID, token: '0123456789abcdef' });
    plantLock('web1', { pid: DEAD_PID - 1, token: 'aaaaaaaaaaaaaaaa' }, `${path}.takeover.0123456789abcdef`);
    plantLock('web1', { pid: DEAD_PID - 2, token: 'bbbbbbbbbbbbbbbb' }, `${path}.takeover.0123456789abcdef.aaaaaaaaaaaaaaaa`);
    const held = await lock();
    expect(readdirSync(lockDirectory(home))).toEqual([path.slice(lockDirectory(home).length + 1)]);
    held.release();
  });

  it('leaves a stale lock to a live process taking it over, and then names the lock holder', async () => {
    await prepareDirectory();
    const path = plantLock('web1', { pid: DEAD_PID, token: '0123456789abcdef' });
    // pid 1 is alive: it "holds the right" to remove the stale lock, so we must not.
    plantLock('web1', { pid: 1, token: 'cccccccccccccccc' }, `${path}.takeover.0123456789abcdef`);
    const started = Date.now();
    const error = await rejectionOf(lock());
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
    expect(error.code).toBe('LOCKED');
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ token: '0123456789abcdef' });
  });

  it('never trusts a pid of 0 or below (kill would probe a process group)', async () => {
    await prepareDirectory();
    const path = plantLock('web1', { pid: 0, token: '0123456789abcdef' });
    const error = await rejectionOf(lock());
    expect(error.details).toMatchObject({ holder: null });
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    (await lock()).release();
  });
});
