/**
 * MIME multipart user data, read and written the way cloud-init's UserDataProcessor reads it:
 * a message is MIME when a `MIME-Version:` header appears in its first 4096 bytes; parts carry
 * their type in Content-Type, a file name in Content-Disposition (scripts run by that name), and
 * may be base64. Nested multiparts are flattened in order, as cloud-init walks them.
 */
import { createHash } from 'node:crypto';
import { invalidInput } from '../core/errors.js';

export interface UserDataPart {
  /** e.g. text/cloud-config, text/x-shellscript. */
  type: string;
  /** The part's file name (scripts are written under it), when it has one. */
  filename?: string;
  content: string;
}

const MIME_PROBE_BYTES = 4096;

export function isMimeMessage(text: string): boolean {
  return /(^|\n)mime-version:/i.test(text.slice(0, MIME_PROBE_BYTES));
}

interface Headers {
  [name: string]: string;
}

function splitHead(text: string): { headers: Headers; body: string } {
  const normalized = text.replace(/\r\n/g, '\n');
  if (normalized.startsWith('\n')) return { headers: {}, body: normalized.slice(1) };
  const end = normalized.indexOf('\n\n');
  const head = end < 0 ? normalized : normalized.slice(0, end);
  const body = end < 0 ? '' : normalized.slice(end + 2);
  const headers: Headers = {};
  let last: string | undefined;
  for (const line of head.split('\n')) {
    if (/^[ \t]/.test(line) && last !== undefined) {
      headers[last] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    headers[last] = line.slice(colon + 1).trim();
  }
  return { headers, body };
}

/** A header parameter (`boundary`, `filename`), quoted or not. */
function parameter(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const match = new RegExp(`;\\s*${name}\\*?=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]+))`, 'i').exec(header);
  if (match === null) return undefined;
  return match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : match[2];
}

function mediaType(header: string | undefined): string {
  return (header ?? 'text/plain').split(';')[0]!.trim().toLowerCase();
}

function decodeBody(body: string, encoding: string | undefined): string {
  const name = (encoding ?? '').trim().toLowerCase();
  if (name === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (name === 'quoted-printable') {
    return Buffer.from(body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8');
  }
  return body;
}

/** The parts of a MIME multipart message, nested multiparts flattened; throws INVALID_INPUT when it is not one. */
export function parseMultipart(text: string, source = '--user-data'): UserDataPart[] {
  const { headers, body } = splitHead(text);
  const type = mediaType(headers['content-type']);
  if (!type.startsWith('multipart/')) {
    const content = decodeBody(body, headers['content-transfer-encoding']);
    const filename = parameter(headers['content-disposition'], 'filename');
    return [{ type, content, ...(filename === undefined ? {} : { filename }) }];
  }
  const boundary = parameter(headers['content-type'], 'boundary');
  if (boundary === undefined || boundary === '') {
    throw invalidInput(`${source} is a MIME ${type} message without a boundary parameter`, 'Write Content-Type: multipart/mixed; boundary="SOMETHING" (e.g. with cloud-init devel make-mime)');
  }
  const delimiter = `\n--${boundary}`;
  const framed = `\n${body}`;
  const sections: string[] = [];
  let position = framed.indexOf(delimiter);
  if (position < 0) throw invalidInput(`${source}: no part starts with --${boundary}`, 'Check the MIME boundary lines of the file');
  let closed = false;
  while (position >= 0) {
    const afterDelimiter = position + delimiter.length;
    if (framed.startsWith('--', afterDelimiter)) {
      closed = true;
      break;
    }
    const lineEnd = framed.indexOf('\n', afterDelimiter);
    if (lineEnd < 0) break;
    const next = framed.indexOf(delimiter, lineEnd);
    sections.push(framed.slice(lineEnd + 1, next < 0 ? undefined : next));
    position = next;
  }
  if (!closed) throw invalidInput(`${source}: the MIME message does not end with --${boundary}--`, 'The file looks truncated: check its last line');
  return sections.flatMap((section) => parseMultipart(section, source));
}

function isAscii(text: string): boolean {
  for (let index = 0; index < text.length; index += 1) if (text.charCodeAt(index) > 0x7f) return false;
  return true;
}

/** ASCII parts travel as they are (readable in the .vmx and in plans); others as base64. */
function renderPart(part: UserDataPart, boundary: string): string[] {
  const plain = isAscii(part.content);
  const body = plain ? part.content : (Buffer.from(part.content, 'utf8').toString('base64').match(/.{1,76}/g) ?? []).join('\n');
  return [
    `--${boundary}`,
    `Content-Type: ${part.type}; charset="utf-8"`,
    'MIME-Version: 1.0',
    `Content-Transfer-Encoding: ${plain ? '7bit' : 'base64'}`,
    ...(part.filename === undefined ? [] : [`Content-Disposition: attachment; filename="${part.filename}"`]),
    '',
    body,
  ];
}

/** A multipart/mixed message of the parts, with a boundary derived from (and absent from) the content. */
export function renderMultipart(parts: readonly UserDataPart[]): string {
  const digest = createHash('sha256');
  for (const part of parts) digest.update(part.type).update('\0').update(part.content).update('\0');
  let boundary = `==ceso-${digest.digest('hex').slice(0, 24)}==`;
  while (parts.some((part) => part.content.includes(boundary))) boundary = `=${boundary}=`;
  const lines = [`Content-Type: multipart/mixed; boundary="${boundary}"`, 'MIME-Version: 1.0', ''];
  for (const part of parts) lines.push(...renderPart(part, boundary));
  lines.push(`--${boundary}--`, '');
  return lines.join('\n');
}
