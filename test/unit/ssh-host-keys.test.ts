// Host key trust: fingerprints as ssh-keygen prints them, known_hosts entries as OpenSSH writes
// them (plain, hashed with ssh-keygen -H, [host]:port, wildcards, negation, @revoked).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostKeyVerifier, fingerprintOf, hostMatches, keyTypeOf, knownHostsName, parseKnownHosts } from '../../src/ssh/host-keys.js';

const work = mkdtempSync(join(tmpdir(), 'ceso-hostkeys-'));
let blob: Buffer;
let other: Buffer;
let publicLine: string;
let fingerprint: string;

function keygen(name: string): { line: string; blob: Buffer; fingerprint: string } {
  const path = join(work, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path]);
  const line = readFileSync(`${path}.pub`, 'utf8').trim();
  const fp = execFileSync('ssh-keygen', ['-lf', `${path}.pub`], { encoding: 'utf8' }).split(/\s+/)[1] as string;
  return { line, blob: Buffer.from(line.split(' ')[1] as string, 'base64'), fingerprint: fp };
}

beforeAll(() => {
  const key = keygen('host');
  blob = key.blob;
  publicLine = key.line.split(' ').slice(0, 2).join(' ');
  fingerprint = key.fingerprint;
  other = keygen('other').blob;
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function verifier(knownHosts: string, port = 2222, hostKey?: string): HostKeyVerifier {
  const path = join(work, `known_hosts_${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, knownHosts);
  return new HostKeyVerifier({ host: '127.0.0.1', port, knownHostsPath: path, ...(hostKey === undefined ? {} : { hostKey }) });
}

describe('host keys', () => {
  it('fingerprints a key as ssh-keygen -lf does and names its type', () => {
    expect(fingerprintOf(blob)).toBe(fingerprint);
    expect(keyTypeOf(blob)).toBe('ssh-ed25519');
  });

  it('matches plain, [host]:port, wildcard and negated patterns', () => {
    expect(knownHostsName('10.0.0.1', 22)).toBe('10.0.0.1');
    expect(knownHostsName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
    expect(hostMatches('esxi1,10.0.0.1', '10.0.0.1', 22)).toBe(true);
    expect(hostMatches('10.0.0.1', '10.0.0.1', 2222)).toBe(false);
    expect(hostMatches('[10.0.0.1]:2222', '10.0.0.1', 2222)).toBe(true);
    expect(hostMatches('10.0.0.*,!10.0.0.9', '10.0.0.1', 22)).toBe(true);
    expect(hostMatches('10.0.0.*,!10.0.0.9', '10.0.0.9', 22)).toBe(false);
    expect(hostMatches('ESXI1.lab', 'esxi1.LAB', 22)).toBe(true);
  });

  it('trusts a plain [host]:port entry and a hashed one written by ssh-keygen -H', () => {
    expect(verifier(`[127.0.0.1]:2222 ${publicLine}\n`).verify(blob)).toEqual({ trusted: true });
    const hashedPath = join(work, 'hashed');
    writeFileSync(hashedPath, `# a comment\n[127.0.0.1]:2222 ${publicLine}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', hashedPath], { stdio: 'ignore' });
    const hashed = readFileSync(hashedPath, 'utf8');
    expect(hashed).toMatch(/^\|1\|/m);
    expect(parseKnownHosts(hashed)).toHaveLength(1);
    expect(verifier(hashed).verify(blob)).toEqual({ trusted: true });
    expect(verifier(hashed, 2223).verify(blob)).toMatchObject({ trusted: false, reason: 'unknown' });
  });

  it('refuses an unknown key, a changed key and a revoked key, and tells the fingerprint to pin', () => {
    const unknown = verifier('');
    const verdict = unknown.verify(blob);
    expect(verdict).toEqual({ trusted: false, reason: 'unknown', fingerprint });
    if (verdict.trusted) throw new Error('unreachable');
    const error = unknown.refusal(verdict, 'ssh-ed25519');
    expect(error.code).toBe('SSH_HOST_KEY_UNTRUSTED');
    expect(error.exitCode).toBe(5);
    expect(error.message).toContain(fingerprint);
    expect(error.hint).toContain(`ssh.hostKey: "${fingerprint}"`);
    const otherLine = `ssh-ed25519 ${other.toString('base64')}`;
    expect(verifier(`[127.0.0.1]:2222 ${otherLine}\n`).verify(blob)).toMatchObject({ trusted: false, reason: 'changed' });
    expect(verifier(`[127.0.0.1]:2222 ${publicLine}\n@revoked * ${publicLine}\n`).verify(blob)).toMatchObject({ trusted: false, reason: 'revoked' });
    expect(new HostKeyVerifier({ host: '127.0.0.1', port: 22, knownHostsPath: join(work, 'missing') }).verify(blob)).toMatchObject({ reason: 'unknown' });
  });

  it('with a pinned SHA256 fingerprint trusts that key only', () => {
    expect(verifier('', 2222, fingerprint).verify(blob)).toEqual({ trusted: true });
    expect(verifier(`[127.0.0.1]:2222 ${publicLine}\n`, 2222, fingerprint).verify(other)).toMatchObject({ trusted: false, reason: 'mismatch' });
  });

  it('prefers the key types known for the host', () => {
    expect(verifier(`[127.0.0.1]:2222 ${publicLine}\nother ssh-rsa AAAA\n`).knownKeyTypes()).toEqual(['ssh-ed25519']);
  });
});
