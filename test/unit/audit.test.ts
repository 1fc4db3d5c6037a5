import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  appendAudit,
  auditLogPath,
  currentUser,
  maskArguments,
  MAX_RECORD_BYTES,
  parseSince,
  readAudit,
  readAuditLog,
  serializeRecord,
  type AuditRecord,
} from '../../src/core/audit.js';
import { CesoError } from '../../src/core/errors.js';

let root = '';
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ceso-audit-'));
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

function record(overrides: Partial<AuditRecord> = {}): AuditRecord {
  return {
    time: '2024-05-01T12:00:00.000Z',
    user: 'alice',
    host: 'lab1 (192.168.1.10:443)',
    command: 'vm create',
    arguments: { name: 'web1', cpu: 2 },
    mode: 'standard',
    via: 'api',
    dryRun: false,
    outcome: 'success',
    errorCode: null,
    vmId: '42',
    vm: 'web1',
    durationMs: 1234,
    ...overrides,
  };
}

/** Collects what is written to stderr while `run` runs. */
function stderrOf(run: () => void): string {
  let text = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    text += chunk.toString();
    return true;
  });
  try {
    run();
  } finally {
    vi.restoreAllMocks();
  }
  return text;
}

const PRIVATE_KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n';
const RSA_KEY = '-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----';
const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF0 alice@laptop';

describe('maskArguments', () => {
  it('masks secret-like names, whatever their spelling', () => {
    const masked = maskArguments({
      password: 'hunter2',
      'ssh-password': 'x',
      passphrase: 'open sesame',
      Token: 'abc',
      'api-key': 'k',
      apiKey: 'k',
      client_secret: 's',
      privateKey: 'p',
      pwd: 'p',
      credentials: { user: 'u', pass: 'p' },
      'password-list': ['a', 'b'],
    });
    expect(masked).toEqual({
      password: '***',
      'ssh-password': '***',
      passphrase: '***',
      Token: '***',
      'api-key': '***',
      apiKey: '***',
      client_secret: '***',
      privateKey: '***',
      pwd: '***',
      credentials: '***',
      'password-list': ['***', '***'],
    });
  });

  it('keeps ordinary values, booleans and absent secrets', () => {
    const args = { name: 'web1', cpu: 2, memory: '4', dns: ['1.1.1.1'], yes: true, password: undefined, token: null, 'no-password': false };
    expect(maskArguments(args)).toEqual(args);
  });

  it('masks private keys wherever they are, and keeps SSH public keys', () => {
    expect(maskArguments({ 'ssh-key': [PUBLIC_KEY, PRIVATE_KEY], identity: RSA_KEY, nested: { deep: [RSA_KEY] } })).toEqual({
      'ssh-key': [PUBLIC_KEY, '***'],
      identity: '***',
      nested: { deep: ['***'] },
    });
  });

  it('masks credentials inside URLs and password= pairs', () => {
    expect(maskArguments({ source: 'https://root:VMware1!@esxi.lab/sdk', note: 'user=bob password=secret1 x' })).toEqual({
      source: 'https://root:***@esxi.lab/sdk',
      note: 'user=bob password=*** x',
    });
  });

  it('keeps the path of user data and never its content', () => {
    expect(maskArguments({ 'user-data': './cloud.yaml' })).toEqual({ 'user-data': './cloud.yaml' });
    const content = '#cloud-config\npackages: [nginx]\n';
    expect(maskArguments({ 'user-data': content, userData: { packages: ['nginx'] } })).toEqual({
      'user-data': `[content omitted: ${content.length} bytes]`,
      userData: '[content omitted]',
    });
  });

  it('is idempotent', () => {
    const once = maskArguments({ password: 'x', 'user-data': 'a\nb', key: PRIVATE_KEY });
    expect(maskArguments(once)).toEqual(once);
  });
});

describe('parseSince', () => {
  const now = new Date('2024-05-10T12:00:00.000Z');
  it.each([
    ['30m', '2024-05-10T11:30:00.000Z'],
    ['1h', '2024-05-10T11:00:00.000Z'],
    ['2d', '2024-05-08T12:00:00.000Z'],
    ['1w', '2024-05-03T12:00:00.000Z'],
    ['45s', '2024-05-10T11:59:15.000Z'],
    [' 3H ', '2024-05-10T09:00:00.000Z'],
    ['2024-05-01T08:00:00Z', '2024-05-01T08:00:00.000Z'],
    ['2024-05-01T08:00:00.250+02:00', '2024-05-01T06:00:00.250Z'],
    ['2024-05-01', '2024-05-01T00:00:00.000Z'],
  ])('%s', (input, expected) => {
    expect(parseSince(input, now).toISOString()).toBe(expected);
  });

  it.each(['', 'yesterday', '1y', '-1h', '1.5h', '2024-13-45', 'h1', '12'])('refuses %j naming --since', (input) => {
    let caught: unknown;
    try {
      parseSince(input, now);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CesoError);
    expect((caught as CesoError).code).toBe('INVALID_INPUT');
    expect((caught as CesoError).message).toContain('--since');
    expect((caught as CesoError).exitCode).toBe(2);
  });
});

describe('appendAudit', () => {
  it('creates the directory 0700 and the log 0600, one JSON line per record', () => {
    const home = join(root, 'home');
    appendAudit(record(), home);
    appendAudit(record({ outcome: 'error', errorCode: 'VM_EXISTS', dryRun: true }), home);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    expect(statSync(auditLogPath(home)).mode & 0o777).toBe(0o600);
    const lines = readFileSync(auditLogPath(home), 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    expect(JSON.parse(lines[0]!)).toEqual(record());
    expect(JSON.parse(lines[1]!)).toMatchObject({ outcome: 'error', errorCode: 'VM_EXISTS', dryRun: true });
  });

  it('tightens a log that is readable by others', () => {
    writeFileSync(auditLogPath(root), '', { mode: 0o644 });
    chmodSync(auditLogPath(root), 0o644);
    appendAudit(record(), root);
    expect(statSync(auditLogPath(root)).mode & 0o777).toBe(0o600);
  });

  it('masks secrets even when the caller did not', () => {
    appendAudit(record({ arguments: { name: 'web1', password: 'hunter2', 'ssh-key': [PRIVATE_KEY] } }), root);
    const text = readFileSync(auditLogPath(root), 'utf8');
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('PRIVATE KEY');
  });

  it('never throws: an unusable home is a warning on stderr', () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    const warning = stderrOf(() => expect(() => appendAudit(record(), join(file, 'home'))).not.toThrow());
    expect(warning).toMatch(/^Warning: could not append to the audit log .*a-file\/home\/audit\.log/);

    mkdirSync(auditLogPath(join(root, 'dir-home')), { recursive: true });
    const second = stderrOf(() => expect(() => appendAudit(record(), join(root, 'dir-home'))).not.toThrow());
    expect(second).toContain('Warning: could not append to the audit log');
  });

  it('never throws on values JSON cannot hold', () => {
    const cyclic: Record<string, unknown> = { name: 'web1' };
    cyclic.self = cyclic;
    const warning = stderrOf(() => appendAudit(record({ arguments: { cyclic, big: 10n, fn: () => 1, buffer: Buffer.from('abc') } }), root));
    expect(warning).toBe('');
    const [parsed] = readAudit({ home: root });
    expect(parsed?.arguments).toEqual({ cyclic: { name: 'web1', self: '[circular]' }, big: '10', buffer: '[3 bytes]' });
  });

  it('caps a record at 64 KiB by shortening long values, keeping it one valid line', () => {
    const line = serializeRecord(record({ arguments: { name: 'web1', note: 'x'.repeat(200_000), dns: ['1.1.1.1'] } }));
    expect(Buffer.byteLength(line) + 1).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    const parsed = JSON.parse(line) as AuditRecord;
    expect(parsed.arguments.name).toBe('web1');
    expect(String(parsed.arguments.note)).toMatch(/^x+…\[\d+ more chars\]$/);

    const many = serializeRecord(record({ arguments: { list: Array.from({ length: 50_000 }, (_, index) => `item-${index}`) } }));
    expect(Buffer.byteLength(many) + 1).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    expect((JSON.parse(many) as AuditRecord).arguments).toEqual({ truncated: true });
  });
});

describe('readAudit', () => {
  it('returns nothing when there is no log', () => {
    expect(readAudit({ home: root })).toEqual([]);
    expect(readAuditLog({ home: root })).toMatchObject({ records: [], skipped: 0 });
  });

  it('skips and counts torn or garbled lines', () => {
    appendAudit(record({ vm: 'one' }), root);
    writeFileSync(auditLogPath(root), '{"time":"2024-05-01T12:00:00.000Z","user":"al\n', { flag: 'a' });
    writeFileSync(auditLogPath(root), 'not json at all\n[1,2]\n{"time":"never","command":"x","outcome":"success"}\n\n', { flag: 'a' });
    appendAudit(record({ vm: 'two' }), root);
    writeFileSync(auditLogPath(root), '{"time":"2024-05-01T12:00:00.000Z","comm', { flag: 'a' });
    const log = readAuditLog({ home: root });
    expect(log.records.map((entry) => entry.vm)).toEqual(['one', 'two']);
    expect(log.skipped).toBe(5);
    expect(readAudit({ home: root })).toHaveLength(2);
  });

  it('keeps records from --since on', () => {
    appendAudit(record({ time: '2024-05-01T10:00:00.000Z', vm: 'old' }), root);
    appendAudit(record({ time: '2024-05-01T12:00:00.000Z', vm: 'edge' }), root);
    appendAudit(record({ time: '2024-05-01T13:00:00.000Z', vm: 'new' }), root);
    expect(readAudit({ home: root, since: new Date('2024-05-01T12:00:00.000Z') }).map((entry) => entry.vm)).toEqual(['edge', 'new']);
  });

  it('uses CESO_HOME by default', () => {
    const saved = process.env.CESO_HOME;
    process.env.CESO_HOME = root;
    try {
      expect(auditLogPath()).toBe(join(root, 'audit.log'));
      appendAudit(record());
      expect(readAudit()).toHaveLength(1);
    } finally {
      if (saved === undefined) delete process.env.CESO_HOME;
      else process.env.CESO_HOME = saved;
    }
  });
});

describe('currentUser', () => {
  it('names the OS user', () => {
    expect(currentUser()).toMatch(/\S/);
  });
});
