/**
 * Reads a host's SSH host key the way `ssh-keyscan` does: the key exchange only, then the
 * connection is dropped from the host-key check, before any authentication. No user name is
 * offered for login and no credential is read or sent.
 *
 * The key type is negotiated with the same preference as SshConnection (ed25519 first), so the
 * fingerprint shown is the one a pinned `ssh.hostKey` is later compared with.
 */
import { CesoError, connectionFailure } from '../core/errors.js';
import { fingerprintOf, keyTypeOf } from './host-keys.js';
import { DEFAULT_HOST_KEY_ALGORITHMS, loadNodeSsh } from './connection.js';


export interface SshHostKey {
  /** `SHA256:…` as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  /** `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, … */
  type: string;
}

export async function probeSshHostKey(host: string, port: number, timeoutMs: number): Promise<SshHostKey> {
  const { NodeSSH } = await loadNodeSsh();
  const ssh = new NodeSSH();
  let seen: SshHostKey | undefined;
  try {
    await ssh.connect({
      host,
      port,
      username: 'ceso-host-key-probe',
      readyTimeout: timeoutMs,
      algorithms: { serverHostKey: DEFAULT_HOST_KEY_ALGORITHMS as never },
      // Refusing the key ends the handshake before the user-auth phase begins.
      hostVerifier: (key: Buffer) => {
        seen = { fingerprint: fingerprintOf(key), type: keyTypeOf(key) };
        return false;
      },
      authHandler: [],
    } as Parameters<InstanceType<typeof NodeSSH>['connect']>[0]);
  } catch (error) {
    if (seen !== undefined) return seen;
    const failure = error as (Error & { code?: string; level?: string }) | undefined;
    const reason =
      connectionFailure(failure?.code) ??
      (failure?.level === 'client-timeout' ? `no SSH handshake within ${timeoutMs / 1000} s` : (failure?.message ?? String(error)));
    throw new CesoError('HOST_UNREACHABLE', `${host}:${port}: SSH ${reason}`, {
      hint: 'Check ssh.host and ssh.port, and that SSH is enabled on the host (Host > Actions > Services > Enable Secure Shell)',
      details: { reason: failure?.code ?? failure?.level ?? 'network', via: 'ssh' },
    });
  } finally {
    ssh.dispose();
  }
  // The host key was accepted by nothing, so a completed connection cannot happen; be explicit.
  if (seen !== undefined) return seen;
  throw new CesoError('INTERNAL', `${host}:${port}: the SSH handshake ended without a host key`);
}
