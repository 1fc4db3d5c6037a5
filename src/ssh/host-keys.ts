/**
 * Host key trust for the SSH path: a pinned `SHA256:` fingerprint, or OpenSSH known_hosts
 * entries (plain, wildcard, negated and hashed `|1|salt|hash` host patterns, `[host]:port` for
 * ports other than 22, `@revoked` markers). An unknown or changed key is never accepted.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CesoError } from '../core/errors.js';

/** `SHA256:` and the unpadded base64 of the SHA-256 of the key blob, as `ssh-keygen -lf` prints it. */
export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The algorithm named inside an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, ...). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const length = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + length).toString('latin1');
}

export interface KnownHostEntry {
  marker: '@revoked' | '@cert-authority' | null;
  patterns: string;
  keyType: string;
  key: Buffer;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'] = null;
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift();
      if (name !== '@revoked' && name !== '@cert-authority') continue;
      marker = name;
    }
    const [patterns, keyType, key] = fields;
    if (patterns === undefined || keyType === undefined || key === undefined || !/^[A-Za-z0-9+/]+=*$/.test(key)) continue;
    entries.push({ marker, patterns, keyType, key: Buffer.from(key, 'base64') });
  }
  return entries;
}

/** The name known_hosts files store for a host: `host`, or `[host]:port` when the port is not 22. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function wildcardMatch(pattern: string, name: string): boolean {
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return regex.test(name);
}

function hashedMatch(pattern: string, name: string): boolean {
  const parts = pattern.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2] as string, 'base64');
  const expected = Buffer.from(parts[3] as string, 'base64');
  const actual = createHmac('sha1', salt).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** Whether a known_hosts host field names this host: any positive pattern matches and no negated one. */
export function hostMatches(patterns: string, host: string, port: number): boolean {
  const name = knownHostsName(host, port);
  if (patterns.startsWith('|')) return hashedMatch(patterns, name);
  let matched = false;
  for (const pattern of patterns.split(',')) {
    if (pattern.startsWith('!')) {
      if (wildcardMatch(pattern.slice(1), name)) return false;
    } else if (wildcardMatch(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

export interface HostKeyPolicy {
  host: string;
  port: number;
  /** A pinned `SHA256:...` fingerprint; when set, known_hosts is not consulted. */
  hostKey?: string;
  /** known_hosts file to check; read once. */
  knownHostsPath: string;
}

export type HostKeyVerdict = { trusted: true } | { trusted: false; reason: 'unknown' | 'changed' | 'revoked' | 'mismatch'; fingerprint: string };

export class HostKeyVerifier {
  private entries: KnownHostEntry[] | undefined;
  private readError: string | undefined;

  constructor(readonly policy: HostKeyPolicy) {}

  private known(): KnownHostEntry[] {
    if (this.entries === undefined) {
      try {
        this.entries = parseKnownHosts(readFileSync(this.policy.knownHostsPath, 'utf8'));
      } catch (error) {
        this.readError = (error as NodeJS.ErrnoException).code ?? String(error);
        this.entries = [];
      }
    }
    return this.entries;
  }

  /** The entries for this host (no markers), to prefer their key types in the handshake. */
  knownKeyTypes(): string[] {
    if (this.policy.hostKey !== undefined) return [];
    return this.known()
      .filter((entry) => entry.marker === null && hostMatches(entry.patterns, this.policy.host, this.policy.port))
      .map((entry) => entry.keyType);
  }

  verify(keyBlob: Buffer): HostKeyVerdict {
    const fingerprint = fingerprintOf(keyBlob);
    if (this.policy.hostKey !== undefined) {
      return fingerprint === this.policy.hostKey.replace(/=+$/, '') ? { trusted: true } : { trusted: false, reason: 'mismatch', fingerprint };
    }
    const mine = this.known().filter((entry) => entry.marker !== '@cert-authority' && hostMatches(entry.patterns, this.policy.host, this.policy.port));
    if (mine.some((entry) => entry.marker === '@revoked' && entry.key.equals(keyBlob))) return { trusted: false, reason: 'revoked', fingerprint };
    const plain = mine.filter((entry) => entry.marker === null);
    if (plain.some((entry) => entry.key.equals(keyBlob))) return { trusted: true };
    return { trusted: false, reason: plain.length > 0 ? 'changed' : 'unknown', fingerprint };
  }

  /** The error for a refused key: what was seen, and how to pin it after checking it on the host. */
  refusal(verdict: Exclude<HostKeyVerdict, { trusted: true }>, keyType: string): CesoError {
    const { host, port } = this.policy;
    const where = `${host}:${port}`;
    const what = {
      unknown: `the SSH host key of ${where} is unknown (not in ${this.policy.knownHostsPath}${this.readError === undefined ? '' : `: ${this.readError}`})`,
      changed: `the SSH host key of ${where} has CHANGED from the one in ${this.policy.knownHostsPath}: possibly a man-in-the-middle, or the host was reinstalled`,
      revoked: `the SSH host key of ${where} is marked @revoked in ${this.policy.knownHostsPath}`,
      mismatch: `the SSH host key of ${where} does not match the pinned ssh.hostKey ${this.policy.hostKey ?? ''}`,
    }[verdict.reason];
    return new CesoError('SSH_HOST_KEY_UNTRUSTED', `${what}; it offered ${keyType} ${verdict.fingerprint}`, {
      hint:
        `Compare ${verdict.fingerprint} with the host's own (on the ESXi console: for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$f"; done), ` +
        `then pin it: ssh.hostKey: "${verdict.fingerprint}" in the config, or add the key to ${this.policy.knownHostsPath}`,
      details: { host, port, fingerprint: verdict.fingerprint, keyType, reason: verdict.reason },
    });
  }
}
