// `ceso audit` run in-process through oclif (it needs no host and no build).
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import Audit from '../../src/commands/audit.js';
import { appendAudit, type AuditRecord } from '../../src/core/audit.js';
import { repoRoot } from '../support/root.js';

let home = '';
let savedHome: string | undefined;

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'ceso-audit-cmd-'));
  savedHome = process.env.CESO_HOME;
  process.env.CESO_HOME = home;
});
afterEach(() => {
  vi.restoreAllMocks();
  if (savedHome === undefined) delete process.env.CESO_HOME;
  else process.env.CESO_HOME = savedHome;
  process.exitCode = undefined;
  rmSync(home, { recursive: true, force: true });
});

function record(minutesAgo: number, overrides: Partial<AuditRecord> = {}): AuditRecord {
  return {
    time: new Date(Date.now() - minutesAgo * 60_000).toISOString(),
    user: 'alice',
    host: 'lab1 (127.0.0.1:8443)',
    command: 'vm create',
    arguments: { name: 'web1' },
    mode: 'restricted',
    via: 'api',
    dryRun: false,
    outcome: 'success',
    errorCode: null,
    vmId: '42',
    vm: 'web1',
    durationMs: 900,
    ...overrides,
  };
}

async function run(argv: string[]): Promise<{ stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += chunk.toString()), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += chunk.toString()), true));
  try {
    await Audit.run(argv, repoRoot());
  } finally {
    vi.restoreAllMocks();
  }
  return { stdout, stderr };
}

describe('ceso audit', () => {
  it('prints a table of the records', async () => {
    appendAudit(record(120, { vm: 'old1' }));
    appendAudit(record(5, { command: 'vm delete', vm: 'web9', outcome: 'error', errorCode: 'NOT_MANAGED', dryRun: true, via: 'ssh' }));
    const { stdout } = await run([]);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+USER\s+HOST\s+COMMAND\s+VM\s+VIA\s+DRY-RUN\s+OUTCOME\s+CODE\s+MS$/);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatch(/alice\s+lab1 \(127\.0\.0\.1:8443\)\s+vm delete\s+web9\s+ssh\s+yes\s+error\s+NOT_MANAGED\s+900$/);
  });

  it('prints the records since a time as JSON, and warns of unreadable lines', async () => {
    appendAudit(record(120, { vm: 'old1' }));
    appendAudit(record(5, { vm: 'new1' }));
    appendFileSync(join(home, 'audit.log'), '{"torn\n');
    const { stdout, stderr } = await run(['--since', '1h', '--json']);
    const records = JSON.parse(stdout) as AuditRecord[];
    expect(records.map((entry) => entry.vm)).toEqual(['new1']);
    expect(records[0]).toMatchObject({ mode: 'restricted', arguments: { name: 'web1' } });
    expect(stderr).toContain('skipped 1 unreadable line');
  });

  it('says so when there is nothing, and gives [] with --json', async () => {
    expect((await run([])).stdout).toContain('No audit records');
    expect(JSON.parse((await run(['--json'])).stdout)).toEqual([]);
  });

  it('refuses a bad --since with INVALID_INPUT (exit 2)', async () => {
    const { stdout } = await run(['--since', 'yesterday', '--json']);
    expect(JSON.parse(stdout)).toMatchObject({ error: { code: 'INVALID_INPUT' } });
    expect(JSON.parse(stdout).error.message).toContain('--since');
    expect(process.exitCode).toBe(2);
  });

  it('has examples in its help', () => {
    expect(Audit.examples?.length).toBeGreaterThan(0);
  });
});
