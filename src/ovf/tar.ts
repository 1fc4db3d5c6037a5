/**
 * An OVA is a plain tar archive read in one forward pass: a member's data is handed on as a
 * stream of exactly its size (never buffered whole), so a disk can flow from a file or an HTTP
 * download straight into the upload. ustar, pax (x/g) and GNU long-name (L) headers are read.
 */
import type { Readable } from 'node:stream';
import { invalidInput } from '../core/errors.js';

const BLOCK = 512;

export interface TarEntry {
  name: string;
  size: number;
  /** '0' (or '\0') regular file, '5' directory, ... */
  type: string;
  /** Offset of the member's data in the archive. */
  offset: number;
}

/** Pulls exact byte counts out of a stream, keeping what it read ahead. */
export class ByteReader {
  private readonly chunks: AsyncIterator<Buffer>;
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  /** Bytes consumed so far. */
  position = 0;

  constructor(stream: Readable | AsyncIterable<Buffer>) {
    this.chunks = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.chunks.next();
    if (next.done === true) {
      this.ended = true;
      return false;
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    return true;
  }

  /** Exactly `count` bytes, or fewer only at the end of the stream. */
  async read(count: number): Promise<Buffer> {
    while (this.pending.length < count && (await this.fill()));
    const taken = this.pending.subarray(0, count);
    this.pending = this.pending.subarray(taken.length);
    this.position += taken.length;
    return taken;
  }

  /** The next `count` bytes as chunks, as they arrive (the stream's own pace). */
  async *chunksOf(count: number): AsyncGenerator<Buffer> {
    let left = count;
    while (left > 0) {
      if (this.pending.length === 0 && !(await this.fill())) return;
      const taken = this.pending.subarray(0, Math.min(left, this.pending.length));
      this.pending = this.pending.subarray(taken.length);
      this.position += taken.length;
      left -= taken.length;
      yield taken;
    }
  }

  async skip(count: number): Promise<number> {
    let skipped = 0;
    for await (const chunk of this.chunksOf(count)) skipped += chunk.length;
    return skipped;
  }

  /** Stops reading the source (closes a file or an HTTP download). */
  async close(): Promise<void> {
    await this.chunks.return?.();
  }
}

function field(header: Buffer, start: number, length: number): string {
  const raw = header.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? raw.length : end).toString('utf8');
}

function numberField(header: Buffer, start: number, length: number, where: string): number {
  const raw = header.subarray(start, start + length);
  if ((raw[0]! & 0x80) !== 0) {
    // base-256 (GNU) for sizes of 8 GiB and more
    let value = raw[0]! & 0x7f;
    for (let index = 1; index < raw.length; index += 1) value = value * 256 + raw[index]!;
    return value;
  }
  const text = field(header, start, length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw damaged(`the tar header at byte ${where} has a malformed number '${text}'`);
  return Number.parseInt(text, 8);
}

function checksumOk(header: Buffer): boolean {
  const stored = field(header, 148, 8).trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  let sum = 0;
  for (let index = 0; index < BLOCK; index += 1) sum += index >= 148 && index < 156 ? 32 : header[index]!;
  return sum === Number.parseInt(stored, 8);
}

function damaged(detail: string): Error {
  return invalidInput(`the OVA is damaged: ${detail}`, 'Download it again (check it against the SHA256SUMS its publisher gives), or give the .ovf with its files');
}

/** pax records: "<len> key=value\n". */
function paxPath(data: Buffer): string | undefined {
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const length = Number.parseInt(data.subarray(offset, space).toString('ascii'), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0 && record.slice(0, equals) === 'path') return record.slice(equals + 1);
    offset += length;
  }
  return undefined;
}

interface Header {
  name: string;
  size: number;
  type: string;
}

/** One 512-byte header: null for the end-of-archive block; `where` names its offset in messages. */
function parseHeader(header: Buffer, where: number): Header | null {
  if (header.length < BLOCK) throw damaged(`it ends inside a tar header (byte ${where})`);
  if (header.every((byte) => byte === 0)) return null;
  if (!checksumOk(header)) throw damaged(`the tar header at byte ${where} has a bad checksum (not a tar archive, or truncated)`);
  const type = String.fromCharCode(header[156]!);
  const prefix = header.subarray(257, 262).toString('ascii') === 'ustar' ? field(header, 345, 155) : '';
  const name = prefix === '' ? field(header, 0, 100) : `${prefix}/${field(header, 0, 100)}`;
  return { name, size: numberField(header, 124, 12, String(where)), type: type === '\0' ? '0' : type };
}

function padded(size: number): number {
  return size + ((BLOCK - (size % BLOCK)) % BLOCK);
}

/** Applies a long-name record (GNU L, pax x) to the header that follows it. */
function extendedName(header: Header, data: Buffer): string | undefined {
  if (header.type === 'L') return field(data, 0, data.length);
  if (header.type === 'x') return paxPath(data);
  return undefined;
}

/**
 * Reads the archive's members in order. After `next()` returns an entry, its data must be taken
 * with `data()` or passed over with `skip()` before the next call.
 */
export class TarReader {
  private pendingData = 0;
  private pendingPadding = 0;

  constructor(readonly bytes: ByteReader) {}

  async next(): Promise<TarEntry | null> {
    if (this.pendingData > 0) await this.skip();
    if (this.pendingPadding > 0) {
      await this.bytes.read(this.pendingPadding);
      this.pendingPadding = 0;
    }
    let longName: string | undefined;
    for (;;) {
      const where = this.bytes.position;
      const block = await this.bytes.read(BLOCK);
      if (block.length === 0) {
        if (longName !== undefined) throw damaged('the archive ends after a long-name header');
        return null;
      }
      const header = parseHeader(block, where);
      if (header === null) return null;
      if (header.type === 'x' || header.type === 'g' || header.type === 'L') {
        const data = await this.bytes.read(header.size);
        if (data.length < header.size) throw damaged('it ends inside a tar extended header');
        await this.bytes.read(padded(header.size) - header.size);
        longName = extendedName(header, data) ?? longName;
        continue;
      }
      this.pendingData = header.size;
      this.pendingPadding = padded(header.size) - header.size;
      return { name: longName ?? header.name, size: header.size, type: header.type, offset: this.bytes.position };
    }
  }

  /** The current member's data, exactly its size; the archive ending early is an error. */
  async *data(): AsyncGenerator<Buffer> {
    const expected = this.pendingData;
    let seen = 0;
    for await (const chunk of this.bytes.chunksOf(expected)) {
      seen += chunk.length;
      this.pendingData -= chunk.length;
      yield chunk;
    }
    if (seen < expected) throw damaged(`a member ends after ${seen} of its ${expected} bytes (the archive is truncated)`);
  }

  async skip(): Promise<void> {
    const expected = this.pendingData;
    const skipped = await this.bytes.skip(expected);
    this.pendingData = 0;
    if (skipped < expected) throw damaged(`a member ends after ${skipped} of its ${expected} bytes (the archive is truncated)`);
  }
}

/** Reads `length` bytes at `position` of a file (fewer at its end). */
export type ReadAt = (position: number, length: number) => Promise<Buffer>;

/**
 * The members of a tar file on disk, from their headers alone (one read per member, whatever its
 * size), so a damaged or truncated archive is refused before anything is read in full.
 */
export async function indexTar(readAt: ReadAt, fileSize: number): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  let position = 0;
  let longName: string | undefined;
  while (position < fileSize) {
    const header = parseHeader(await readAt(position, BLOCK), position);
    if (header === null) return entries;
    const dataStart = position + BLOCK;
    if (dataStart + header.size > fileSize) throw damaged(`${longName ?? header.name} ends past the end of the file (the archive is truncated)`);
    if (header.type === 'x' || header.type === 'g' || header.type === 'L') {
      longName = extendedName(header, await readAt(dataStart, header.size)) ?? longName;
    } else {
      entries.push({ name: longName ?? header.name, size: header.size, type: header.type, offset: dataStart });
      longName = undefined;
    }
    position = dataStart + padded(header.size);
  }
  if (longName !== undefined) throw damaged('the archive ends after a long-name header');
  return entries;
}

/** The base name of a member path ("./x/disk.vmdk" -> "disk.vmdk"). */
export function baseName(path: string): string {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  return parts[parts.length - 1] ?? '';
}
