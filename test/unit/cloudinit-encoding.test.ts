import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  GUESTINFO_VALUE_LIMIT,
  assertGuestinfoSize,
  decodeGuestinfoValue,
  encodeGzipBase64,
  isAbsentGuestinfoValue,
} from '../../src/cloudinit/index.js';
import { errorOf } from '../support/errors.js';


const TEXT = '#cloud-config\nhostname: web-01\n# ünïcødé ✓\n';

describe('gzip+base64 encoding', () => {
  it('round-trips and produces gzip inside base64', () => {
    const encoded = encodeGzipBase64(TEXT);
    expect(encoded).toMatch(/^H4sI[A-Za-z0-9+/]+=*$/); // base64 of the gzip magic 1f 8b 08
    expect(decodeGuestinfoValue(encoded, 'gzip+base64')).toBe(TEXT);
    expect(decodeGuestinfoValue(encoded, 'gz+b64')).toBe(TEXT);
  });

  it('is deterministic, so an unchanged plan encodes to the same value', () => {
    expect(encodeGzipBase64(TEXT)).toBe(encodeGzipBase64(TEXT));
  });

  it('decodes data produced by other tools (gzip -c | base64)', () => {
    const foreign = gzipSync(Buffer.from(TEXT), { level: 1 }).toString('base64');
    expect(decodeGuestinfoValue(foreign, 'gzip+base64')).toBe(TEXT);
  });

  it('accepts every encoding cloud-init accepts and reads any other name as plain text', () => {
    const b64 = Buffer.from(TEXT).toString('base64');
    expect(decodeGuestinfoValue(b64, 'base64')).toBe(TEXT);
    expect(decodeGuestinfoValue(b64, 'b64')).toBe(TEXT);
    expect(decodeGuestinfoValue(TEXT)).toBe(TEXT);
    expect(decodeGuestinfoValue(TEXT, '')).toBe(TEXT);
    // cloud-init matches names exactly: 'gzip' and upper case are plain text
    expect(decodeGuestinfoValue(b64, 'gzip')).toBe(b64);
    expect(decodeGuestinfoValue(b64, 'BASE64')).toBe(b64);
  });

  it('like cloud-init, uses base64 data that is not gzip as is under gzip+base64', () => {
    const b64 = Buffer.from(TEXT).toString('base64');
    expect(decodeGuestinfoValue(b64, 'gzip+base64')).toBe(TEXT);
  });

  it('treats empty values and --- as absent', () => {
    expect(isAbsentGuestinfoValue(undefined)).toBe(true);
    expect(isAbsentGuestinfoValue('')).toBe(true);
    expect(isAbsentGuestinfoValue('---')).toBe(true);
    expect(isAbsentGuestinfoValue('--- \n')).toBe(true);
    expect(isAbsentGuestinfoValue('a: 1')).toBe(false);
  });
});

describe('64 KiB guestinfo limit', () => {
  it('is 65536 bytes', () => {
    expect(GUESTINFO_VALUE_LIMIT).toBe(65536);
  });

  it('accepts a value just under the limit', () => {
    expect(() => assertGuestinfoSize('guestinfo.userdata', 'a'.repeat(65535))).not.toThrow();
  });

  it('refuses a value at or over the limit with GUESTINFO_TOO_LARGE naming key, size and limit', () => {
    const error = errorOf(() => assertGuestinfoSize('guestinfo.userdata', 'a'.repeat(70000)));
    expect(error.code).toBe('GUESTINFO_TOO_LARGE');
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain('guestinfo.userdata');
    expect(error.message).toContain('70000 bytes');
    expect(error.message).toContain('65536');
    expect(error.hint).toMatch(/--user-data/);
    expect(error.details).toEqual({ key: 'guestinfo.userdata', size: 70000, limit: 65536 });
    expect(errorOf(() => assertGuestinfoSize('guestinfo.metadata', 'a'.repeat(65536))).code).toBe('GUESTINFO_TOO_LARGE');
  });
});
