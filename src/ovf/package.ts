/**
 * An OVF package as `template import` reads it: an .ova file, an .ovf with its files beside it,
 * or an http(s):// URL of an .ova streamed in one pass (never copied to the local disk). Opening
 * reads only the descriptor (and, for local files, every member's header), so validation and
 * `--dry-run` cost no upload; `files()` then hands each referenced file's bytes on in package
 * order, each exactly once.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { CesoError, invalidInput } from '../core/errors.js';
import { connectionFailure } from '../core/errors.js';
import { STREAM_OPTIMIZED, diskFile, parseDescriptor, type OvfDescriptor } from './descriptor.js';
import { ByteReader, TarReader, baseName, indexTar, type TarEntry } from './tar.js';

/** A descriptor larger than this is not an OVF descriptor (Ubuntu's is ~14 KB). */
const MAX_DESCRIPTOR_BYTES = 16 * 1024 * 1024;

export interface PackageFile {
  href: string;
  size: number;
  data: AsyncIterable<Buffer>;
  /** After `data` is consumed: throws when the manifest's digest differs. */
  verify(): void;
}

export interface OvfPackage {
  /** What ceso.importedFrom records: the file's name, or the URL without credentials or query. */
  label: string;
  descriptor: OvfDescriptor;
  /** Sizes of the referenced files when known before reading them (local packages). */
  sizes: Map<string, number>;
  files(): AsyncGenerator<PackageFile>;
  close(): Promise<void>;
}

interface Digest {
  algorithm: 'sha1' | 'sha256' | 'sha512';
  hex: string;
}

/** `SHA256(name)= hex` lines of an OVF manifest. */
function parseManifest(text: string): Map<string, Digest> {
  const digests = new Map<string, Digest>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^(SHA1|SHA256|SHA512)\((.+)\)\s*=\s*([0-9a-fA-F]+)\s*$/.exec(line.trim());
    if (match !== null) digests.set(baseName(match[2]!), { algorithm: match[1]!.toLowerCase() as Digest['algorithm'], hex: match[3]!.toLowerCase() });
  }
  return digests;
}

function hashing(href: string, size: number, source: AsyncIterable<Buffer>, digest: Digest | undefined): PackageFile {
  const hash: Hash | undefined = digest === undefined ? undefined : createHash(digest.algorithm);
  let seen = 0;
  async function* data(): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      hash?.update(chunk);
      seen += chunk.length;
      yield chunk;
    }
  }
  return {
    href,
    size,
    data: data(),
    verify() {
      if (seen !== size) throw invalidInput(`${href} ended after ${seen} of its ${size} bytes`, 'The package is truncated: download it again');
      if (hash === undefined || digest === undefined) return;
      const actual = hash.digest('hex');
      if (actual !== digest.hex) {
        throw invalidInput(`${href} does not match the package's manifest (${digest.algorithm.toUpperCase()} ${actual}, the manifest says ${digest.hex})`, 'The package is damaged: download it again');
      }
    },
  };
}

const VMDK_MAGIC = 0x564d444b; // "KDMV"
const FLAG_COMPRESSED = 1 << 16;
const FLAG_MARKERS = 1 << 17;

/** A streamOptimized VMDK starts with a sparse header whose flags say compressed grains with markers. */
export function checkStreamOptimizedHeader(header: Buffer, href: string): void {
  if (header.length < 512 || header.readUInt32LE(0) !== VMDK_MAGIC) {
    throw invalidInput(`${href} is not a VMDK disk (no sparse extent header)`, 'The package is damaged, or the file named in the .ovf is not its disk');
  }
  const flags = header.readUInt32LE(8);
  if (header.readUInt32LE(4) !== 3 || (flags & FLAG_COMPRESSED) === 0 || (flags & FLAG_MARKERS) === 0) {
    throw invalidInput(`${href} is a VMDK but not streamOptimized; the host imports only streamOptimized disks`, `Convert it: qemu-img convert -O vmdk -o subformat=${STREAM_OPTIMIZED} in.vmdk out.vmdk`);
  }
}

/** Files the descriptor references, with the disks' files among them. */
function referencedHrefs(descriptor: OvfDescriptor): Set<string> {
  return new Set(descriptor.disks.map((disk) => diskFile(descriptor, disk).href));
}

function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

export async function openPackage(source: string): Promise<OvfPackage> {
  if (isUrl(source)) return openUrl(source);
  let info;
  try {
    info = await stat(source);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CesoError('NOT_FOUND', `${source}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(error)}`, {
      hint: 'Give the path of an .ova, or of an .ovf with its files beside it, or an http(s):// URL of an .ova',
    });
  }
  if (!info.isFile()) throw invalidInput(`${source} is not a file`, 'Give the path of an .ova or an .ovf file');
  const head = Buffer.alloc(512);
  const handle = await open(source, 'r');
  try {
    await handle.read(head, 0, 512, 0);
  } finally {
    await handle.close();
  }
  const text = head.toString('utf8').trimStart();
  if (text.startsWith('<?xml') || text.startsWith('<Envelope') || text.startsWith('<ovf:Envelope')) return openOvf(source);
  return openOva(source);
}

// --- a local .ova ------------------------------------------------------------------------------

async function openOva(file: string): Promise<OvfPackage> {
  const handle = await open(file, 'r');
  const readAt = async (position: number, length: number): Promise<Buffer> => {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  };
  let entries: TarEntry[];
  try {
    entries = await indexTar(readAt, (await handle.stat()).size);
  } catch (error) {
    await handle.close();
    throw error;
  }
  try {
    const files = entries.filter((entry) => entry.type === '0');
    const descriptorEntry = files.find((entry) => entry.name.toLowerCase().endsWith('.ovf'));
    if (descriptorEntry === undefined) {
      throw invalidInput(`${path.basename(file)} holds no .ovf descriptor (members: ${files.map((entry) => entry.name).join(', ') || 'none'})`, 'An OVA is a tar archive whose first member is the .ovf descriptor');
    }
    if (descriptorEntry.size > MAX_DESCRIPTOR_BYTES) throw invalidInput(`${descriptorEntry.name} is ${descriptorEntry.size} bytes: too large for an OVF descriptor`);
    const descriptor = parseDescriptor((await readAt(descriptorEntry.offset, descriptorEntry.size)).toString('utf8'));
    const byName = new Map(files.map((entry) => [baseName(entry.name), entry]));
    const manifestEntry = files.find((entry) => entry.name.toLowerCase().endsWith('.mf'));
    const manifest = manifestEntry === undefined ? new Map<string, Digest>() : parseManifest((await readAt(manifestEntry.offset, manifestEntry.size)).toString('utf8'));
    const sizes = new Map<string, number>();
    for (const href of referencedHrefs(descriptor)) {
      const entry = byName.get(baseName(href));
      if (entry === undefined) throw invalidInput(`the OVF names ${href}, which ${path.basename(file)} does not hold`, 'The package is incomplete: download it again');
      sizes.set(href, entry.size);
      checkStreamOptimizedHeader(await readAt(entry.offset, Math.min(512, entry.size)), href);
    }
    const wanted = [...sizes.keys()].map((href) => ({ href, entry: byName.get(baseName(href))! })).sort((a, b) => a.entry.offset - b.entry.offset);
    await handle.close();
    return {
      label: path.basename(file),
      descriptor,
      sizes,
      async *files() {
        for (const { href, entry } of wanted) {
          yield hashing(href, entry.size, readRange(file, entry.offset, entry.size), manifest.get(baseName(href)));
        }
      },
      async close() {},
    };
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}

const READ_CHUNK = 1 << 20;

/**
 * `length` bytes of a file from `offset`, read into ONE buffer that is reused for every chunk:
 * the consumer must be done with a chunk before it asks for the next (the upload awaits each
 * write). A whole disk then streams through a megabyte of memory instead of leaving a trail of
 * buffers for the garbage collector (which lets tens of megabytes pile up before it runs).
 */
async function* readRange(file: string, offset: number, length: number): AsyncGenerator<Buffer> {
  const handle = await open(file, 'r');
  const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(length, 1)));
  try {
    for (let done = 0; done < length; ) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - done), offset + done);
      if (bytesRead === 0) return;
      done += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

// --- a local .ovf with its files beside it -----------------------------------------------------

async function openOvf(file: string): Promise<OvfPackage> {
  const descriptor = parseDescriptor(await readFile(file, 'utf8'));
  const directory = path.dirname(file);
  const manifestPath = path.join(directory, `${path.basename(file, path.extname(file))}.mf`);
  const manifest = await readFile(manifestPath, 'utf8').then(parseManifest, () => new Map<string, Digest>());
  const sizes = new Map<string, number>();
  for (const href of referencedHrefs(descriptor)) {
    const local = path.join(directory, href);
    let size: number;
    try {
      size = (await stat(local)).size;
    } catch {
      throw invalidInput(`the OVF names ${href}, which is not beside it (${local} is missing)`, 'Put the files the .ovf references in its folder, or import the .ova');
    }
    sizes.set(href, size);
    const handle = await open(local, 'r');
    const header = Buffer.alloc(512);
    try {
      await handle.read(header, 0, 512, 0);
    } finally {
      await handle.close();
    }
    checkStreamOptimizedHeader(header, href);
  }
  return {
    label: path.basename(file),
    descriptor,
    sizes,
    async *files() {
      for (const [href, size] of sizes) {
        yield hashing(href, size, readRange(path.join(directory, href), 0, size), manifest.get(baseName(href)));
      }
    },
    async close() {},
  };
}

// --- an .ova at an http(s) URL, read once -----------------------------------------------------

/** The URL as it may be shown: no user, password, query or fragment. */
export function safeUrl(source: string): string {
  try {
    const url = new URL(source);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return source.replace(/\/\/[^/@]*@/, '//').replace(/[?#].*$/, '');
  }
}

function get(source: string): Promise<Readable> {
  const shown = safeUrl(source);
  return new Promise((resolve, reject) => {
    const url = new URL(source);
    const client = url.protocol === 'https:' ? https : http;
    const request = client.get(url, { timeout: 30_000, headers: { 'User-Agent': 'ceso' } }, (response) => {
      const status = response.statusCode ?? 0;
      if (status >= 200 && status < 300) {
        resolve(response);
        return;
      }
      response.resume();
      if (status >= 300 && status < 400) {
        reject(invalidInput(`${shown} answered HTTP ${status} (a redirect to ${response.headers.location ?? '?'})`, 'Give the final URL of the .ova'));
      } else if (status === 404 || status === 410) {
        reject(new CesoError('NOT_FOUND', `${shown}: HTTP ${status}, no such file`, { hint: 'Check the URL of the .ova' }));
      } else if (status === 401 || status === 403) {
        reject(new CesoError('NO_PERMISSION', `${shown}: HTTP ${status}, access refused`, { hint: 'Check the URL, or download the .ova and import the file' }));
      } else {
        reject(new CesoError('SOURCE_UNREACHABLE', `${shown}: HTTP ${status}`, { hint: 'The web server failed: try again later, or download the .ova and import the file' }));
      }
    });
    request.on('timeout', () => request.destroy(new CesoError('SOURCE_UNREACHABLE', `${shown}: no data for 30 s`, { hint: 'Check the URL and that the web server is reachable from here' })));
    request.on('error', (error) => {
      if (error instanceof CesoError) return reject(error);
      const code = (error as NodeJS.ErrnoException).code;
      reject(new CesoError('SOURCE_UNREACHABLE', `${shown}: ${connectionFailure(code) ?? error.message}`, { hint: 'Check the URL and that the web server is reachable from here' }));
    });
  });
}

async function openUrl(source: string): Promise<OvfPackage> {
  const label = safeUrl(source);
  if (!/\.ova$/i.test(new URL(source).pathname)) {
    throw invalidInput(`${label}: a URL must name an .ova (one file streamed in one pass)`, 'Give the URL of the .ova, or download the .ovf with its files and import the .ovf');
  }
  const response = await get(source);
  const bytes = new ByteReader(response);
  const tar = new TarReader(bytes);
  const fail = async (error: unknown): Promise<never> => {
    response.destroy();
    await bytes.close().catch(() => undefined);
    throw error;
  };
  let descriptor: OvfDescriptor;
  try {
    // The OVF spec puts the descriptor first in an OVA; a stream cannot come back for it.
    const first = await tar.next();
    if (first === null || !first.name.toLowerCase().endsWith('.ovf')) {
      throw invalidInput(`${label}: the first member is ${first === null ? 'missing (empty archive)' : first.name}, not the .ovf descriptor`, 'An OVA must start with its .ovf (the OVF specification); download it and import the file, which ceso can read in any order');
    }
    if (first.size > MAX_DESCRIPTOR_BYTES) throw invalidInput(`${first.name} is ${first.size} bytes: too large for an OVF descriptor`);
    const chunks: Buffer[] = [];
    for await (const chunk of tar.data()) chunks.push(chunk);
    descriptor = parseDescriptor(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    return fail(error);
  }
  const wanted = referencedHrefs(descriptor);
  const byBase = new Map([...wanted].map((href) => [baseName(href), href]));
  return {
    label,
    descriptor,
    sizes: new Map(),
    async *files() {
      const manifest = new Map<string, Digest>();
      const seen = new Set<string>();
      try {
        for (;;) {
          const entry = await tar.next();
          if (entry === null) break;
          const name = baseName(entry.name);
          if (name.toLowerCase().endsWith('.mf')) {
            const chunks: Buffer[] = [];
            for await (const chunk of tar.data()) chunks.push(chunk);
            for (const [key, value] of parseManifest(Buffer.concat(chunks).toString('utf8'))) manifest.set(key, value);
            continue;
          }
          const href = byBase.get(name);
          if (href === undefined || entry.type !== '0' || seen.has(href)) continue;
          seen.add(href);
          const data = tar.data();
          const head: Buffer[] = [];
          let headBytes = 0;
          while (headBytes < Math.min(512, entry.size)) {
            const next = await data.next();
            if (next.done === true) break;
            head.push(next.value);
            headBytes += next.value.length;
          }
          checkStreamOptimizedHeader(Buffer.concat(head), href);
          yield hashing(href, entry.size, prepend(head, data), manifest.get(name));
        }
        const missing = [...wanted].filter((href) => !seen.has(href));
        if (missing.length > 0) throw invalidInput(`the OVF names ${missing.join(', ')}, which the OVA at ${label} does not hold`, 'The package is incomplete: check the URL or download it again');
      } finally {
        // destroy first: closing the reader waits for a read a stalled download never finishes
        response.destroy();
        await bytes.close().catch(() => undefined);
      }
    },
    async close() {
      response.destroy();
      await bytes.close().catch(() => undefined);
    },
  };
}

async function* prepend(head: readonly Buffer[], rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield* head;
  yield* rest;
}
