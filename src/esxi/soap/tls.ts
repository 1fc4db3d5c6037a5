import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { CesoError } from '../../core/errors.js';

export interface TlsTrust {
  insecure: boolean;
  /** SHA-1 or SHA-256 thumbprint as hex pairs joined by ':' (ESXi's form); any case. */
  thumbprint?: string;
}

export interface CertificateThumbprints {
  sha1: string;
  sha256: string;
}

/**
 * An https.Agent that decides trust itself before handing a socket to the HTTP client, so no
 * request byte (password, cookie) leaves before the certificate is accepted: chain-verified, or
 * pinned by thumbprint, or `insecure` asked for by name. The handshake is bounded by a timeout.
 */
export class TrustingAgent extends https.Agent {
  constructor(
    private readonly trust: TlsTrust,
    private readonly connectTimeoutMs: number,
  ) {
    super({ keepAlive: true, maxSockets: 8 });
  }

  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | undefined {
    const done = (error: Error | null, stream?: Duplex): void => callback?.(error, stream as Duplex);
    const host = options.hostname ?? options.host ?? 'localhost';
    const socket = tls.connect({ ...(options as tls.ConnectionOptions), rejectUnauthorized: false });
    let settled = false;
    const settle = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('error', onError);
      if (error) {
        socket.destroy();
        done(error);
      } else {
        done(null, socket);
      }
    };
    const timer = setTimeout(() => {
      settle(
        new CesoError('HOST_UNREACHABLE', `${host}:${options.port}: no TLS handshake within ${this.connectTimeoutMs / 1000} s`, {
          hint: 'Check that the host is up and that hostd answers on this port (services.sh restart on the host)',
          details: { reason: 'connect-timeout' },
        }),
      );
    }, this.connectTimeoutMs);
    const onError = (error: Error): void => settle(error);
    socket.once('error', onError);
    socket.once('secureConnect', () => settle(this.verify(socket, host, Number(options.port))));
    return undefined;
  }

  private verify(socket: tls.TLSSocket, host: string, port: number): CesoError | null {
    if (this.trust.insecure) return null;
    const certificate = socket.getPeerCertificate();
    const seen = thumbprintsOf(certificate);
    if (this.trust.thumbprint !== undefined) {
      const pinned = this.trust.thumbprint.toUpperCase();
      if (pinned === seen.sha1 || pinned === seen.sha256) return null;
      return untrusted(host, port, seen, `its certificate does not match the pinned thumbprint ${pinned}`);
    }
    if (socket.authorized) return null;
    return untrusted(host, port, seen, `its certificate is not trusted (${socket.authorizationError ?? 'unknown reason'})`);
  }
}

export function thumbprintsOf(certificate: tls.PeerCertificate): CertificateThumbprints {
  return { sha1: certificate.fingerprint?.toUpperCase() ?? '', sha256: certificate.fingerprint256?.toUpperCase() ?? '' };
}

function untrusted(host: string, port: number, seen: CertificateThumbprints, reason: string): CesoError {
  return new CesoError('TLS_UNTRUSTED', `${host}:${port}: ${reason}. SHA-256 ${seen.sha256}, SHA-1 ${seen.sha1}`, {
    hint:
      `Compare the thumbprint with the one the host's console shows, then pin it: esxi.thumbprint: "${seen.sha256}" ` +
      `in the config or CESO_THUMBPRINT=${seen.sha256}`,
    details: { host, port, thumbprintSha256: seen.sha256, thumbprintSha1: seen.sha1 },
  });
}
