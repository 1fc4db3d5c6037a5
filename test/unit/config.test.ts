import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { resolveTarget, splitHostPort } from '../../src/config/resolve.js';
import { errorOf } from '../support/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'ceso-config-test-'));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const SEED = `esxi:
  host: 192.168.1.10
  user: root
  password: \${ESXI_PASSWORD}
  insecure: false
  thumbprint: "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD"
defaults: {template: ubuntu-22.04-template, datastore: datastore1, network: VM Network, cpu: 2, memory: 4, disk: 40}
security: {mode: standard}
`;

describe('configuration', () => {
  it('accepts the seed format and interpolates ${VAR}', () => {
    const target = resolveTarget(loadConfig(file('seed.yaml', SEED), { ESXI_PASSWORD: 'pw1' }), {}, {});
    expect(target.api).toMatchObject({ host: '192.168.1.10', port: 443, user: 'root', password: 'pw1', insecure: false });
    expect(target.api.thumbprint).toBe('AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD');
    expect(target.defaults).toMatchObject({ template: 'ubuntu-22.04-template', cpu: 2, memory: 4, disk: 40 });
    expect(target.ssh).toMatchObject({ host: '192.168.1.10', port: 22, user: 'root', volumesRoot: '/vmfs/volumes' });
  });

  it('ships a config.example.yaml that validates', () => {
    const loaded = loadConfig(join(import.meta.dirname, '../../config.example.yaml'), { ESXI_PASSWORD: 'x' });
    expect(resolveTarget(loaded, {}, {}).api.host).toBe('192.168.1.10');
  });

  it('names an unset variable with its key path (exit 2)', () => {
    const error = errorOf(() => resolveTarget(loadConfig(file('unset.yaml', SEED), {}), {}, {}));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain('esxi.password: environment variable ESXI_PASSWORD is not set');
  });

  it('reports every problem with file, key path and expectation, never echoing values', () => {
    const path = file('bad.yaml', `esxi:\n  host: h\n  password: 12345\n  insecure: "yes"\n  colour: red\ndefaults: {cpu: two}\n`);
    const error = errorOf(() => loadConfig(path, {}));
    expect(error.code).toBe('CONFIG_INVALID');
    const lines = error.message.split('\n');
    expect(lines).toContain(`${path}: esxi.password: expected string, got a number`);
    expect(lines).toContain(`${path}: esxi.insecure: expected boolean, got a string`);
    expect(lines.some((line) => line.startsWith(`${path}: esxi: unknown key(s) "colour"`))).toBe(true);
    expect(lines).toContain(`${path}: defaults.cpu: expected number, got a string`);
    expect(error.message).not.toContain('12345');
  });

  it('rejects invalid YAML and a missing explicit file', () => {
    expect(errorOf(() => loadConfig(file('broken.yaml', 'esxi: [\n'), {})).message).toMatch(/not valid YAML/);
    expect(errorOf(() => loadConfig(join(dir, 'missing.yaml'), {})).code).toBe('CONFIG_INVALID');
  });

  it('treats a missing default file as empty and needs CESO_HOST then', () => {
    const env = { CESO_HOME: join(dir, 'home') };
    const loaded = loadConfig(undefined, env);
    expect(loaded.exists).toBe(false);
    expect(errorOf(() => resolveTarget(loaded, {}, env)).code).toBe('CONFIG_NOT_FOUND');
    const target = resolveTarget(loaded, {}, { ...env, CESO_HOST: '10.0.0.1:8443', CESO_PASSWORD: 'p', CESO_INSECURE: 'true' });
    expect(target.api).toMatchObject({ host: '10.0.0.1', port: 8443, user: 'root', insecure: true });
  });

  it('selects named hosts with --host or defaultHost, and applies precedence flags > env > file', () => {
    const path = file(
      'multi.yaml',
      `hosts:\n  lab1: {esxi: {host: 10.0.0.1, password: a}, defaults: {datastore: ssd1}}\n  lab2:\n    esxi: {host: 10.0.0.2, user: admin, password: "\${LAB2_PW}"}\n    ssh: {port: 2222, keyPath: ~/.ssh/lab2}\ndefaultHost: lab1\ndefaults: {template: t1, datastore: ds0}\n`,
    );
    const loaded = loadConfig(path, {});
    const lab1 = resolveTarget(loaded, {}, {});
    const withPassword = loadConfig(path, { LAB2_PW: 'b' });
    expect(lab1.name).toBe('lab1');
    expect(lab1.defaults).toMatchObject({ template: 't1', datastore: 'ssd1' });
    expect(errorOf(() => resolveTarget(loaded, { host: 'lab2' }, {})).message).toContain('hosts.lab2.esxi.password');
    const lab2 = resolveTarget(withPassword, { host: 'lab2' }, { CESO_USER: 'envuser' });
    expect(lab2.api).toMatchObject({ host: '10.0.0.2', user: 'envuser', password: 'b' });
    expect(lab2.ssh.port).toBe(2222);
    expect(lab2.ssh.keyPath?.endsWith('/.ssh/lab2')).toBe(true);
    const unknown = errorOf(() => resolveTarget(loaded, { host: 'lab3' }, {}));
    expect(unknown.code).toBe('HOST_NOT_CONFIGURED');
    expect(unknown.message).toContain('lab1, lab2');
  });

  it('lets CESO_MODE turn restricted mode on but never off', () => {
    const restricted = loadConfig(file('restricted.yaml', 'esxi: {host: h, password: p}\nsecurity: {mode: restricted}\n'), {});
    expect(resolveTarget(restricted, {}, { CESO_MODE: 'standard' }).security.mode).toBe('restricted');
    const standard = loadConfig(file('standard.yaml', 'esxi: {host: h, password: p}\n'), {});
    expect(resolveTarget(standard, {}, { CESO_MODE: 'restricted' }).security.mode).toBe('restricted');
    expect(errorOf(() => resolveTarget(standard, {}, { CESO_MODE: 'lax' })).code).toBe('CONFIG_INVALID');
  });

  it('validates environment overrides', () => {
    const loaded = loadConfig(file('plain.yaml', 'esxi: {host: h, password: p}\n'), {});
    expect(errorOf(() => resolveTarget(loaded, {}, { CESO_INSECURE: 'maybe' })).message).toContain('CESO_INSECURE');
    expect(errorOf(() => resolveTarget(loaded, {}, { CESO_THUMBPRINT: 'nope' })).message).toContain('CESO_THUMBPRINT');
  });

  it('splits host:port forms', () => {
    expect(splitHostPort('esx1', 443)).toEqual({ host: 'esx1', port: 443 });
    expect(splitHostPort('esx1:8443', 443)).toEqual({ host: 'esx1', port: 8443 });
    expect(splitHostPort('[::1]:9443', 443)).toEqual({ host: '::1', port: 9443 });
    expect(splitHostPort('fe80::1', 443)).toEqual({ host: 'fe80::1', port: 443 });
  });
});

describe('commands that never log in', () => {
  it('resolve the host without its password (host trust)', () => {
    const dir2 = mkdtempSync(join(tmpdir(), 'ceso-config-nopw-'));
    const path = join(dir2, 'c.yaml');
    writeFileSync(path, 'esxi: {host: 10.0.0.9, password: "${NOT_SET_FOR_TRUST}"}\n');
    const loaded = loadConfig(path, {});
    expect(() => resolveTarget(loaded, {}, {})).toThrow(/NOT_SET_FOR_TRUST/);
    expect(resolveTarget(loaded, { requirePassword: false }, {}).api).toMatchObject({ host: '10.0.0.9', password: '' });
  });
});
