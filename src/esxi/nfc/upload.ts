/**
 * One NFC upload: the file's bytes as the body of a POST (disks: application/x-vnd.vmware-
 * streamVmdk) or PUT (other files, `Overwrite: t`) with an exact Content-Length, streamed with
 * back-pressure so memory stays flat whatever the disk's size. Trust is the SOAP connection's:
 * its pinned thumbprint or verified chain, or the lease's own SHA-1 thumbprint when it gives one.
 */
import https from 'node:https';
import { CesoError, connectionFailure, isCesoError } from '../../core/errors.js';
import { TrustingAgent, type TlsTrust } from '../soap/tls.js';

export interface UploadTarget {
  /** The device URL with `*` already replaced by the host ceso connected to. */
  url: string;
  disk: boolean;
  trust: TlsTrust;
  connectTimeoutMs: number;
  cookie?: string;
}

/** A device URL's `*` host means "the host you connected to" (the API docs of HttpNfcLeaseDeviceUrl). */
export function resolveDeviceUrl(url: string, connected: { host: string; port: number }): string {
  const parsed = new URL(url.replace('://*', '://star.invalid'));
  if (parsed.hostname === 'star.invalid') {
    parsed.hostname = connected.host.includes(':') ? `[${connected.host}]` : connected.host;
    if (parsed.port === '' && connected.port !== 443) parsed.port = String(connected.port);
  }
  return parsed.toString();
}

/** Streams `size` bytes of `data` to the device URL; resolves the bytes sent. */
export async function upload(target: UploadTarget, size: number, data: AsyncIterable<Buffer>, options: { signal?: AbortSignal; onBytes?: (count: number) => void } = {}): Promise<number> {
  const agent = new TrustingAgent(target.trust, target.connectTimeoutMs);
  const url = new URL(target.url);
  let sent = 0;
  try {
    const request = https.request(url, {
      method: target.disk ? 'POST' : 'PUT',
      agent,
      headers: {
        'Content-Type': target.disk ? 'application/x-vnd.vmware-streamVmdk' : 'application/octet-stream',
        'Content-Length': String(size),
        ...(target.disk ? {} : { Overwrite: 't' }),
        ...(target.cookie === undefined ? {} : { Cookie: `vmware_soap_session="${target.cookie}"` }),
      },
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      request.once('response', (answer) => {
        let body = '';
        answer.setEncoding('utf8');
        answer.on('data', (chunk: string) => {
          if (body.length < 4096) body += chunk;
        });
        answer.on('end', () => resolve({ status: answer.statusCode ?? 0, body }));
        answer.on('error', reject);
      });
      request.once('error', reject);
    });
    // An early answer (a refusal) must not leave the body pipe hanging.
    response.catch(() => undefined);
    // Each chunk is written and its write completed before the next is asked for: a source may
    // reuse its buffer (see ovf/package.ts), and memory stays at one chunk in flight.
    // A host that refuses the stream answers (and may stop reading) before the body is sent: a
    // pending write must then end too, or nothing would ever settle it.
    const refusedEarly = response.then((answer) => {
      if (answer.status !== 200 && answer.status !== 201) throw refused(target, answer.status, answer.body);
      return new Promise<never>(() => undefined);
    });
    refusedEarly.catch(() => undefined);
    const write = (chunk: Buffer): Promise<void> =>
      new Promise((resolve, reject) => {
        const onClose = (): void => reject(new Error('the host closed the connection'));
        request.once('close', onClose);
        request.write(chunk, (error) => {
          request.off('close', onClose);
          if (error) reject(error);
          else resolve();
        });
      });
    const send = async (): Promise<void> => {
      for await (const chunk of data) {
        if (request.destroyed) throw new Error('the host closed the connection');
        sent += chunk.length;
        options.onBytes?.(chunk.length);
        await Promise.race([write(chunk), refusedEarly]);
      }
      await Promise.race([new Promise<void>((resolve) => request.end(resolve)), refusedEarly]);
    };
    // A source that stalls holds the body generator in an await no abort can reach: the abort
    // ends the wait here, and the package's close() later frees the stalled read.
    const aborted = new Promise<never>((_resolve, reject) => {
      if (options.signal === undefined) return;
      const onAbort = (): void => reject(new DOMException('aborted', 'AbortError'));
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    const transfer = Promise.all([send(), response]);
    await Promise.race([transfer, aborted]).catch(async (error: unknown) => {
      request.destroy();
      const answer = await Promise.race([response, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 100))]).catch(() => undefined);
      if (answer !== undefined && answer.status !== 200 && answer.status !== 201) throw refused(target, answer.status, answer.body);
      throw error;
    });
    transfer.catch(() => undefined);
    const { status, body } = await response;
    if (status !== 200 && status !== 201) throw refused(target, status, body);
    return sent;
  } catch (error) {
    if (isCesoError(error)) throw error;
    if (options.signal?.aborted === true) throw new CesoError('INTERRUPTED', `the upload to ${url.host} was interrupted after ${sent} of ${size} bytes`);
    const code = (error as NodeJS.ErrnoException).code;
    throw new CesoError('HOST_UNREACHABLE', `the upload to ${url.host} failed after ${sent} of ${size} bytes: ${connectionFailure(code) ?? (error instanceof Error ? error.message : String(error))}`, {
      hint: 'The host closed the transfer (a lease that expired, hostd restarting, the network): run the import again',
      details: { reason: code ?? 'upload', sentBytes: sent },
    });
  } finally {
    agent.destroy();
  }
}

function refused(target: UploadTarget, status: number, body: string): CesoError {
  const text = body.replace(/\s+/g, ' ').trim().slice(0, 300);
  return new CesoError('HOST_FAULT', `the host refused the upload (HTTP ${status}${text === '' ? '' : `: ${text}`})`, {
    hint: target.disk ? 'The disk must be a streamOptimized VMDK whose capacity matches the .ovf; a damaged package fails here' : 'Check the package’s files',
    details: { status },
  });
}
