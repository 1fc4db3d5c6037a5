/**
 * guestinfo value encodings, exactly as cloud-init's VMware datasource decodes them:
 * `gzip+base64` / `gz+b64` -> base64 then gunzip (data that is not gzip is used as is, like
 * cloud-init's quiet decomp_gzip); `base64` / `b64` -> base64; any other encoding name (including
 * `gzip` and absent) -> plain text. Encoding names match exactly (case-sensitive).
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { CesoError } from '../core/errors.js';

export const GUESTINFO_ENCODING = 'gzip+base64';

/** open-vm-tools' incoming RPC message limit; every guestinfo value must stay under it. */
export const GUESTINFO_VALUE_LIMIT = 64 * 1024;

export function encodeGzipBase64(text: string): string {
  // gzipSync writes mtime 0, so the same text always encodes to the same value (idempotent plans).
  return gzipSync(Buffer.from(text, 'utf8'), { level: 9 }).toString('base64');
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Decodes one guestinfo value given the value of its `<key>.encoding` key (absent = plain). */
export function decodeGuestinfoValue(value: string, encoding?: string): string {
  if (encoding === 'gzip+base64' || encoding === 'gz+b64') {
    const bytes = Buffer.from(value, 'base64');
    if (!isGzip(bytes)) return bytes.toString('utf8');
    try {
      return gunzipSync(bytes).toString('utf8');
    } catch {
      return bytes.toString('utf8');
    }
  }
  if (encoding === 'base64' || encoding === 'b64') return Buffer.from(value, 'base64').toString('utf8');
  return value;
}

/** cloud-init treats an empty value and the YAML empty document `---` as absent. */
export function isAbsentGuestinfoValue(value: string | undefined): boolean {
  if (value === undefined) return true;
  const trimmed = value.trim();
  return trimmed === '' || trimmed === '---';
}

/** Refuses (never truncates) a guestinfo value of 64 KiB or more. */
export function assertGuestinfoSize(key: string, encodedValue: string): void {
  const size = Buffer.byteLength(encodedValue, 'utf8');
  if (size >= GUESTINFO_VALUE_LIMIT) {
    throw new CesoError(
      'GUESTINFO_TOO_LARGE',
      `${key} is ${size} bytes after ${GUESTINFO_ENCODING} encoding; it must be under ${GUESTINFO_VALUE_LIMIT} bytes (64 KiB)`,
      {
        hint:
          'Shrink the --user-data file: fetch large files from a URL (write_files source, runcmd) ' +
          'or install them with packages instead of inlining them',
        details: { key, size, limit: GUESTINFO_VALUE_LIMIT },
      },
    );
  }
}
