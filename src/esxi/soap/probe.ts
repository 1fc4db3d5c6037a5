/**
 * A bare TLS handshake with the API endpoint, to show an operator the certificate before it is
 * trusted: no HTTP request, no byte of application data, no credential. The certificate is
 * accepted for reading only (this is what `ceso host trust` prints and pins); nothing else
 * connects without TrustingAgent's checks.
 */
import { isIP } from 'node:net';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { CesoError, connectionFailure } from '../../core/errors.js';
import { thumbprintsOf } from './tls.js';

export interface CertificateProbe {
  thumbprintSha256: string;
  thumbprintSha1: string;
  subject: string;
  issuer: string;
  /** ISO 8601. */
  validFrom: string;
  validTo: string;
  /** Whether the system's CA store vouches for it (ESXi's self-signed certificate: false). */
  chainTrusted: boolean;
  /** Why not, as Node reports it (e.g. DEPTH_ZERO_SELF_SIGNED_CERT); null when trusted. */
  chainError: string | null;
}

export function probeCertificate(host: string, port: number, timeoutMs: number): Promise<CertificateProbe> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      // Read the certificate whatever it is; trust is decided by the operator, not here.
      rejectUnauthorized: false,
      ...(isIP(host) === 0 ? { servername: host } : {}),
    });
    let settled = false;
    const finish = (error: Error | null, value?: CertificateProbe): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value as CertificateProbe);
    };
    const timer = setTimeout(() => {
      finish(
        new CesoError('HOST_UNREACHABLE', `${host}:${port}: no TLS handshake within ${timeoutMs / 1000} s`, {
          hint: 'Check that the host is up and that hostd answers on this port (services.sh restart on the host)',
          details: { reason: 'connect-timeout' },
        }),
      );
    }, timeoutMs);
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const reason = connectionFailure(error.code) ?? `TLS handshake failed (${error.message})`;
      finish(
        new CesoError('HOST_UNREACHABLE', `${host}:${port}: ${reason}`, {
          hint: 'Check the address and port in esxi.host, and that the host is up and reachable from here',
          details: { reason: error.code ?? 'network' },
        }),
      );
    });
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      if (peer === null || peer.raw === undefined || Object.keys(peer).length === 0) {
        finish(new CesoError('HOST_UNREACHABLE', `${host}:${port}: the TLS endpoint presented no certificate`, { details: { reason: 'no-certificate' } }));
        return;
      }
      const { sha1, sha256 } = thumbprintsOf(peer);
      const x509 = new X509Certificate(peer.raw);
      finish(null, {
        thumbprintSha256: sha256,
        thumbprintSha1: sha1,
        subject: distinguishedName(x509.subject),
        issuer: distinguishedName(x509.issuer),
        validFrom: isoDate(x509.validFrom),
        validTo: isoDate(x509.validTo),
        chainTrusted: socket.authorized,
        chainError: socket.authorized ? null : String(socket.authorizationError ?? 'unknown'),
      });
    });
  });
}

/** Node prints one attribute per line ("C=US\nCN=host"): one line, comma-separated. */
function distinguishedName(text: string): string {
  return text
    .split('\n')
    .filter((part) => part !== '')
    .join(', ');
}

function isoDate(text: string): string {
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? text : date.toISOString();
}
