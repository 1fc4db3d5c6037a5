import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { redactUrl, resolveState, resolveTarget } from '../../src/config/resolve.js';
import { requestFingerprint } from '../../src/state/idempotency.js';
import { errorOf } from '../support/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'ceso-state-config-'));
function loaded(name: string, text: string, env: NodeJS.ProcessEnv = {}) {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return loadConfig(path, env);
}
const HOST = 'esxi: {host: 10.0.0.1, password: pw}\n';

describe('state: configuration', () => {
  it('is local (CESO_HOME) when absent; postgres takes state.url, ${CESO_STATE_URL}, or the variable alone', () => {
    expect(resolveState(loaded('none.yaml', HOST), { CESO_HOME: '/tmp/h' })).toEqual({ backend: 'local', home: '/tmp/h' });
    const url = 'postgres://ceso:s3cret@db.example:5432/ceso';
    const viaVar = loaded('var.yaml', `${HOST}state:\n  backend: postgres\n  url: \${CESO_STATE_URL}\n  connectTimeoutSeconds: 2\n`, { CESO_STATE_URL: url });
    expect(resolveState(viaVar, {})).toEqual({ backend: 'postgres', url, connectTimeoutMs: 2000, lockTtlMs: 60_000 });
    expect(resolveState(loaded('env.yaml', `${HOST}state: {backend: postgres}\n`), { CESO_STATE_URL: url })).toMatchObject({ url, connectTimeoutMs: 5000 });
  });

  it('an unset ${CESO_STATE_URL} concerns only the postgres backend, never the host commands of a local one', () => {
    const unsetLocal = loaded('unset-local.yaml', `${HOST}state:\n  backend: local\n  url: \${CESO_STATE_URL}\n`);
    expect(resolveTarget(unsetLocal, {}, {}).api.host).toBe('10.0.0.1');
    expect(resolveState(unsetLocal, {}).backend).toBe('local');
    const unsetPg = loaded('unset-pg.yaml', `${HOST}state:\n  backend: postgres\n  url: \${CESO_STATE_URL}\n`);
    const error = errorOf(() => resolveState(unsetPg, {}));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('environment variable CESO_STATE_URL is not set');
  });

  it('refuses a URL that is not postgres:// without echoing its password', () => {
    const error = errorOf(() => resolveState(loaded('mysql.yaml', `${HOST}state: {backend: postgres, url: "mysql://u:topsecret@h/db"}\n`), {}));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).not.toContain('topsecret');
    expect(errorOf(() => resolveState(loaded('bad.yaml', `${HOST}state: {backend: postgres, url: "not a url"}\n`), {})).code).toBe('CONFIG_INVALID');
    expect(errorOf(() => loaded('key.yaml', `${HOST}state: {backend: redis}\n`)).code).toBe('CONFIG_INVALID');
  });

  it('redactUrl drops the password and the query string', () => {
    expect(redactUrl('postgres://ceso:p%40ss@db:5432/ceso?sslpassword=x&password=y')).toBe('postgres://ceso:***@db:5432/ceso');
    expect(redactUrl('postgresql://db/ceso')).toBe('postgresql://db/ceso');
    expect(redactUrl('::')).toBe('(a URL that does not parse)');
  });

  it('fingerprints a request whatever the order of its keys; another value, op or host is another request', () => {
    const a = requestFingerprint('vm create', 'h:443', { name: 'web1', cpu: 2, guest: { ip: null, dns: ['1.1.1.1'] } });
    expect(requestFingerprint('vm create', 'h:443', { guest: { dns: ['1.1.1.1'], ip: null }, cpu: 2, name: 'web1' })).toBe(a);
    expect(requestFingerprint('vm create', 'h:443', { name: 'web1', cpu: 3, guest: { ip: null, dns: ['1.1.1.1'] } })).not.toBe(a);
    expect(requestFingerprint('vm clone', 'h:443', { name: 'web1', cpu: 2, guest: { ip: null, dns: ['1.1.1.1'] } })).not.toBe(a);
    expect(requestFingerprint('vm create', 'other:443', { name: 'web1', cpu: 2, guest: { ip: null, dns: ['1.1.1.1'] } })).not.toBe(a);
  });
});
