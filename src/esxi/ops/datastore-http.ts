/**
 * Small files on a datastore over the host's `/folder` HTTP interface (what govc's
 * datastore.download / datastore.upload use): `GET|PUT https://HOST/folder/<path>?dcPath=<dc>&dsName=<ds>`
 * with the SOAP session's cookie and the SOAP connection's TLS trust. For manifests, .vmx files
 * and disk descriptors: a few KiB, read or written whole.
 */
import https from 'node:https';
import { CesoError, connectionFailure } from '../../core/errors.js';
import { parseDatastorePath } from '../../core/vm.js';
import { TrustingAgent } from '../soap/tls.js';
import type { VimClient } from '../vim/client.js';

/** At most this much is read back (a manifest or a descriptor is far smaller). */
const MAX_BYTES = 4 * 1024 * 1024;

export function folderUrl(client: VimClient, datacenter: string, path: string): URL {
  const parsed = parseDatastorePath(path);
  if (parsed === null || parsed.datastore === '') throw new CesoError('INTERNAL', `not a datastore path: ${path}`);
  const { host, port } = client.address;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const url = new URL(`https://${hostPart}:${port}/folder/${parsed.path.split('/').map(encodeURIComponent).join('/')}`);
  url.searchParams.set('dcPath', datacenter);
  url.searchParams.set('dsName', parsed.datastore);
  return url;
}

/** The URL as a plan shows it. */
export function folderUrlText(client: VimClient, datacenter: string, path: string): string {
  return folderUrl(client, datacenter, path).toString();
}

async function request(client: VimClient, method: 'GET' | 'PUT', url: URL, body?: Buffer): Promise<{ status: number; data: Buffer }> {
  await client.connect();
  const tls = client.tlsOptions;
  const agent = new TrustingAgent({ insecure: tls.insecure, ...(tls.thumbprint === undefined ? {} : { thumbprint: tls.thumbprint }) }, tls.connectTimeoutMs);
  const cookie = client.sessionCookie;
  try {
    return await new Promise((resolve, reject) => {
      const call = https.request(url, {
        method,
        agent,
        timeout: tls.timeoutMs,
        headers: {
          ...(cookie === undefined ? {} : { Cookie: `vmware_soap_session="${cookie}"` }),
          ...(body === undefined ? {} : { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length) }),
        },
      });
      call.once('response', (answer) => {
        const chunks: Buffer[] = [];
        let size = 0;
        answer.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_BYTES) chunks.push(chunk);
        });
        answer.once('end', () => resolve({ status: answer.statusCode ?? 0, data: Buffer.concat(chunks) }));
        answer.once('error', reject);
      });
      call.once('timeout', () => call.destroy(new CesoError('TIMEOUT', `${method} ${url.pathname}: no answer within ${tls.timeoutMs / 1000} s`)));
      call.once('error', reject);
      call.end(body);
    });
  } catch (error) {
    if (error instanceof CesoError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const reason = connectionFailure(code);
    throw new CesoError(reason === undefined ? 'HOST_FAULT' : 'HOST_UNREACHABLE', `${method} ${decodeURIComponent(url.pathname)}: ${reason ?? (error instanceof Error ? error.message : String(error))}`, {
      ...(reason === undefined ? {} : { details: { reason: code } }),
    });
  } finally {
    agent.destroy();
  }
}

function failure(method: string, path: string, status: number, data: Buffer): CesoError {
  if (status === 401 || status === 403) return new CesoError('NO_PERMISSION', `${method} ${path}: the host refused access (HTTP ${status})`);
  return new CesoError('HOST_FAULT', `${method} ${path}: HTTP ${status}${data.length > 0 ? `: ${data.toString('utf8').slice(0, 200)}` : ''}`);
}

/** A file's text, or null when it does not exist. */
export async function readDatastoreFile(client: VimClient, datacenter: string, path: string): Promise<string | null> {
  const { status, data } = await request(client, 'GET', folderUrl(client, datacenter, path));
  if (status === 404) return null;
  if (status !== 200) throw failure('GET', path, status, data);
  return data.toString('utf8');
}

/** Writes a file whole (replacing it). */
export async function writeDatastoreFile(client: VimClient, datacenter: string, path: string, content: string): Promise<void> {
  const { status, data } = await request(client, 'PUT', folderUrl(client, datacenter, path), Buffer.from(content, 'utf8'));
  if (status < 200 || status >= 300) throw failure('PUT', path, status, data);
}
