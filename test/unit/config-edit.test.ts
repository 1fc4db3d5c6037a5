import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load as parseYaml } from 'js-yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { applyYamlEdits, readYamlValue, writePrivateFile } from '../../src/config/edit.js';
import { configPermissionProblem, warnIfConfigShared } from '../../src/config/permissions.js';
import { starterConfig } from '../../src/config/starter.js';
import { CesoError } from '../../src/core/errors.js';
import { repoRoot } from '../support/root.js';

const EXAMPLE = readFileSync(join(repoRoot(), 'config.example.yaml'), 'utf8');
const THUMB = 'AB:'.repeat(31) + 'CD';
const KEY = `SHA256:${'k'.repeat(43)}`;

/** The lines of `after` that are not in `before`, checking that every old line survived in order. */
function added(before: string, after: string): string[] {
  const old = before.split('\n');
  const extra: string[] = [];
  let index = 0;
  for (const line of after.split('\n')) {
    if (index < old.length && line === old[index]) index += 1;
    else extra.push(line);
  }
  expect(index, `lost or changed: ${JSON.stringify(old[index])}`).toBe(old.length);
  return extra;
}

describe('applyYamlEdits keeps the file as written', () => {
  it('adds the pins to config.example.yaml: two new lines, every comment and alignment kept', () => {
    const after = applyYamlEdits(EXAMPLE, [
      { path: ['esxi', 'thumbprint'], value: THUMB },
      { path: ['ssh', 'hostKey'], value: KEY },
    ]);
    expect(added(EXAMPLE, after)).toEqual([`  thumbprint: "${THUMB}"`, `  hostKey: "${KEY}"`]);
    expect(after.indexOf(`thumbprint: "${THUMB}"`)).toBeLessThan(after.indexOf('\nssh:'));
    const data = parseYaml(after) as { esxi: Record<string, unknown>; ssh: Record<string, unknown> };
    expect(data.esxi.thumbprint).toBe(THUMB);
    expect(data.ssh.hostKey).toBe(KEY);
  });

  it('replaces an existing value in place, keeping its trailing comment and the spacing before it', () => {
    const text = 'esxi:\n  host: h        # the host\n  thumbprint: \'OLD\'     # pinned in May\n  user: root\n';
    expect(applyYamlEdits(text, [{ path: ['esxi', 'thumbprint'], value: THUMB }])).toBe(
      `esxi:\n  host: h        # the host\n  thumbprint: "${THUMB}"     # pinned in May\n  user: root\n`,
    );
  });

  it('adds to a flow mapping inside the mapping, keeping a comment after it', () => {
    const text = 'hosts:\n  lab1:\n    esxi: {host: 10.0.0.1, password: "${PW}"}   # lab one\n  lab2:\n    esxi: {}\n';
    const after = applyYamlEdits(text, [
      { path: ['hosts', 'lab1', 'esxi', 'thumbprint'], value: THUMB },
      { path: ['hosts', 'lab2', 'esxi', 'host'], value: 'x' },
      { path: ['hosts', 'lab1', 'ssh', 'hostKey'], value: KEY },
    ]);
    expect(after).toBe(
      `hosts:\n  lab1:\n    esxi: {host: 10.0.0.1, password: "\${PW}", thumbprint: "${THUMB}"}   # lab one\n    ssh:\n      hostKey: "${KEY}"\n  lab2:\n    esxi: {host: "x"}\n`,
    );
  });

  it('fills a key written with no value, or with ~, and keeps the commented lines under it', () => {
    const text = 'esxi:\n  host: h\n  thumbprint:   # to do\nssh:\n  # port: 22\n  # hostKey: "SHA256:..."\ndefaults: ~\n';
    const after = applyYamlEdits(text, [
      { path: ['esxi', 'thumbprint'], value: THUMB },
      { path: ['ssh', 'hostKey'], value: KEY },
      { path: ['defaults', 'cpu'], value: 4 },
    ]);
    expect(after).toBe(`esxi:\n  host: h\n  thumbprint: "${THUMB}"   # to do\nssh:\n  hostKey: "${KEY}"\n  # port: 22\n  # hostKey: "SHA256:..."\ndefaults: {cpu: 4}\n`);
  });

  it('creates missing sections with the file’s own indentation, after the comments that belong to the last one', () => {
    const text = 'esxi:\n    host: h\n    password: p\nsecurity:\n    mode: standard\n    # namePrefix: agent-\n\n# the end\n';
    const after = applyYamlEdits(text, [{ path: ['hosts', 'lab1', 'esxi'], value: { host: 'x', password: '${LAB1}', insecure: false } }]);
    expect(added(text, after)).toEqual(['hosts:', '    lab1:', '        esxi:', '            host: "x"', '            password: "${LAB1}"', '            insecure: false']);
    expect(after).toContain('    # namePrefix: agent-\nhosts:\n');
    expect(parseYaml(after)).toMatchObject({ hosts: { lab1: { esxi: { host: 'x', password: '${LAB1}', insecure: false } } } });
  });

  it('writes into a file of comments only, or an empty one', () => {
    expect(applyYamlEdits('# nothing yet', [{ path: ['esxi'], value: { host: 'h', thumbprint: THUMB } }])).toBe(`# nothing yet\nesxi:\n  host: "h"\n  thumbprint: "${THUMB}"\n`);
    expect(applyYamlEdits('', [{ path: ['ssh', 'hostKey'], value: KEY }])).toBe(`ssh:\n  hostKey: "${KEY}"\n`);
  });

  it('keeps CRLF line ends and a file without a final newline', () => {
    const text = 'esxi:\r\n  host: h # x\r\n  user: root';
    const after = applyYamlEdits(text, [{ path: ['esxi', 'thumbprint'], value: THUMB }]);
    expect(after).toBe(`esxi:\r\n  host: h # x\r\n  user: root\r\n  thumbprint: "${THUMB}"`);
  });

  it('quotes what needs quoting, in keys and values', () => {
    const after = applyYamlEdits('a: 1\n', [{ path: ['odd key: yes', 'v'], value: 'x: #y "z"' }]);
    expect(parseYaml(after)).toEqual({ a: 1, 'odd key: yes': { v: 'x: #y "z"' } });
  });

  it('refuses a path through a value that is not a mapping, and invalid YAML, changing nothing', () => {
    expect(() => applyYamlEdits('esxi: 5\n', [{ path: ['esxi', 'thumbprint'], value: THUMB }])).toThrow(/esxi is not a mapping/);
    expect(() => applyYamlEdits('esxi: [a]\n', [{ path: ['esxi', 'thumbprint'], value: THUMB }])).toThrow(CesoError);
    expect(() => applyYamlEdits('esxi:\n  host: h\n', [{ path: ['esxi'], value: 'x' }])).toThrow(/is a mapping/);
    expect(() => applyYamlEdits('esxi: {host: h\n', [{ path: ['esxi', 'thumbprint'], value: THUMB }])).toThrow(/not valid YAML/);
  });

  it('reads raw values, without ${VAR} expansion', () => {
    expect(readYamlValue('ssh: {keyPath: "${KEY}", port: 22}\n', ['ssh'])).toEqual({ keyPath: '${KEY}', port: 22 });
    expect(readYamlValue('ssh: {port: 22}\n', ['ssh', 'hostKey'])).toBeUndefined();
    expect(readYamlValue('ssh: 5\n', ['ssh', 'port'])).toBeUndefined();
  });
});

describe('writing the configuration privately', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('replaces a 0644 file atomically as 0600, follows a symbolic link, creates a 0700 directory', () => {
    dir = mkdtempSync(join(tmpdir(), 'ceso-edit-'));
    const path = join(dir, 'config.yaml');
    writeFileSync(path, 'old\n');
    chmodSync(path, 0o644);
    writePrivateFile(path, 'new\n');
    expect(readFileSync(path, 'utf8')).toBe('new\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);

    const link = join(dir, 'link.yaml');
    symlinkSync(path, link);
    writePrivateFile(link, 'through the link\n');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe('through the link\n');

    const nested = join(dir, 'a', 'b', 'config.yaml');
    writePrivateFile(nested, 'x\n');
    expect(statSync(join(dir, 'a', 'b')).mode & 0o777).toBe(0o700);
    expect(statSync(nested).mode & 0o777).toBe(0o600);
  });

  it('warns about a file group or others can access, once per path', () => {
    dir = mkdtempSync(join(tmpdir(), 'ceso-perm-'));
    const path = join(dir, 'config.yaml');
    writeFileSync(path, 'x: 1\n');
    chmodSync(path, 0o600);
    expect(configPermissionProblem(path)).toBeNull();
    chmodSync(path, 0o604);
    expect(configPermissionProblem(path)).toBe(`Warning: ${path} is accessible by others (mode 0604); it may hold secrets. Make it private: chmod 600 ${path}`);
    chmodSync(path, 0o640);
    const written: string[] = [];
    warnIfConfigShared(path, (text) => written.push(text));
    warnIfConfigShared(path, (text) => written.push(text));
    expect(written).toEqual([`Warning: ${path} is accessible by group (mode 0640); it may hold secrets. Make it private: chmod 600 ${path}\n`]);
    expect(configPermissionProblem(join(dir, 'missing.yaml'))).toBeNull();
  });
});

describe('the starter configuration', () => {
  it('is config.example.yaml with a header saying what to do next', () => {
    const starter = starterConfig(EXAMPLE);
    expect(starter.split('\n')[0]).toContain('written by `ceso config init`');
    expect(starter).not.toContain('copy to ~/.ceso/config.yaml');
    expect(starter.endsWith(EXAMPLE.slice(EXAMPLE.indexOf('\n#\n') + 1))).toBe(true);
    expect(parseYaml(starter)).toEqual(parseYaml(EXAMPLE));
  });
});
