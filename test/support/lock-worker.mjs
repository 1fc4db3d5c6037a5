// A worker process for test/integration/audit-lock.test.ts: runs the audit and lock modules as
// a separate ceso process would. The modules are bundled from src/ by the test (esbuild) into
// the directory given as the first argument.
//
//   node lock-worker.mjs BUNDLE_DIR MODE 'JSON options'
//   MODE append  {home, count, id, big}           append `count` audit records
//   MODE lock    {home, host, vm, timeoutMs, holdMs, log, barrier}
//                acquire, append "enter PID" to `log`, hold, append "exit PID", release
//   MODE hold    {home, host, vm}                  acquire, then wait to be killed
//   MODE forget  {home, host, vm}                  acquire, then exit without releasing
// With `barrier`, the worker prints "ready" and waits for a line on stdin before starting, so the
// test can start many at once. The result is one JSON line on stdout: {ok, pid} or {ok: false,
// code, message, details}; exit 0, or the error's exit code.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const [bundleDir, mode, json] = process.argv.slice(2);
const options = JSON.parse(json ?? '{}');
const { acquireVmLock } = await import(pathToFileURL(join(bundleDir, 'lock.mjs')).href);
const { appendAudit } = await import(pathToFileURL(join(bundleDir, 'audit.mjs')).href);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const reply = (value) => process.stdout.write(`${JSON.stringify({ pid: process.pid, ...value })}\n`);

async function barrier() {
  if (!options.barrier) return;
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise((resolve) => lines.once('line', resolve));
  lines.close();
}

function lockOptions(command) {
  return { home: options.home, host: options.host, vm: options.vm, command, timeoutMs: options.timeoutMs ?? 0 };
}

try {
  await barrier();
  if (mode === 'append') {
    for (let index = 0; index < options.count; index++) {
      appendAudit(
        {
          time: new Date().toISOString(),
          user: 'tester',
          host: 'lab1 (127.0.0.1:8443)',
          command: 'vm create',
          arguments: { name: `vm-${options.id}-${index}`, writer: options.id, index, note: options.big ? 'x'.repeat(options.big) : 'small', password: 'hunter2' },
          mode: 'standard',
          via: 'api',
          dryRun: false,
          outcome: 'success',
          errorCode: null,
          vmId: String(index),
          vm: `vm-${options.id}-${index}`,
          durationMs: index,
        },
        options.home,
      );
    }
    reply({ ok: true });
  } else if (mode === 'lock') {
    const lock = await acquireVmLock(lockOptions('vm test'));
    try {
      appendFileSync(options.log, `enter ${process.pid}\n`);
      await sleep(options.holdMs ?? 0);
      appendFileSync(options.log, `exit ${process.pid}\n`);
    } finally {
      lock.release();
    }
    reply({ ok: true });
  } else if (mode === 'hold') {
    await acquireVmLock(lockOptions('vm hold'));
    reply({ ok: true, held: true });
    setInterval(() => {}, 60_000);
  } else if (mode === 'forget') {
    await acquireVmLock(lockOptions('vm forget'));
    reply({ ok: true });
    process.exit(0);
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} catch (error) {
  reply({ ok: false, code: error?.code ?? 'UNKNOWN', message: String(error?.message ?? error), details: error?.details ?? null });
  process.exitCode = typeof error?.exitCode === 'number' ? error.exitCode : 1;
}
