import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cloneRequestFrom, createRequestFrom, hostnameFor, parseDuration, validateVmName } from '../../src/core/requests.js';
import { errorOf } from '../support/errors.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfA2dC6WcGxPx0sN1yKq0mYkq0X8oZ5yN8dGd1cV2wL ops@example';
const defaults = { template: 'ubuntu-22.04-template', cpu: 2, memory: 4, disk: 40 };


function codeOf(run: () => unknown): [string, string] {
  const error = errorOf(run);
  return [error.code, error.message];
}

describe('request validation', () => {
  it('accepts valid names and rejects bad ones before any host call', () => {
    expect(validateVmName('web-01.prod_a')).toBe('web-01.prod_a');
    for (const bad of ['', '-web', 'web 1', "x'; touch /tmp/pwned; '", '$(id)', '`id`', 'a'.repeat(81)]) {
      expect(codeOf(() => validateVmName(bad))[0]).toBe('INVALID_INPUT');
    }
  });

  it('derives a DNS-label hostname or refuses the name', () => {
    expect(hostnameFor('Web-01')).toBe('web-01');
    expect(codeOf(() => hostnameFor('web.01'))[1]).toContain('does not make a valid hostname');
    expect(codeOf(() => hostnameFor('web_01'))[0]).toBe('INVALID_INPUT');
  });

  it('builds a create request from flags and defaults', () => {
    const { request, diskFromDefaults } = createRequestFrom(
      'web1',
      { ip: '192.168.1.100/24', gateway: '192.168.1.1', dns: ['1.1.1.1'], domain: 'example.com', 'ssh-key': [KEY], memory: '8', ttl: '2h' },
      defaults,
      new Date('2026-01-01T00:00:00Z'),
    );
    expect(request).toMatchObject({
      name: 'web1',
      template: 'ubuntu-22.04-template',
      cpu: 2,
      memoryMB: 8192,
      diskGB: 40,
      powerOn: true,
      expiresAt: '2026-01-01T02:00:00.000Z',
      guest: { hostname: 'web1', domain: 'example.com', ipCidr: '192.168.1.100/24', gateway: '192.168.1.1', dns: ['1.1.1.1'], sshKeys: [KEY] },
    });
    expect(diskFromDefaults).toBe(true);
  });

  it('names the flag that is wrong', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ip: '192.168.1.300/24' }, '--ip'],
      [{ ip: '192.168.1.10/24', gateway: '10.0.0.1' }, '--gateway'],
      [{ gateway: '10.0.0.1' }, '--gateway'],
      [{ dns: ['not-an-ip'] }, '--dns'],
      [{ 'ssh-key': ['ssh-rsa nope'] }, '--ssh-key'],
      [{ 'ssh-key': ['@/nonexistent/key.pub'] }, '--ssh-key'],
      [{ 'user-data': '/nonexistent/user-data.yaml' }, '--user-data'],
      [{ cpu: 0 }, '--cpu'],
      [{ memory: 'lots' }, '--memory'],
      [{ memory: '0.001' }, '--memory'],
      [{ disk: '-5' }, '--disk'],
      [{ ttl: '2 hours' }, '--ttl'],
    ];
    for (const [flags, flag] of cases) {
      const [code, message] = codeOf(() => createRequestFrom('web1', flags, defaults));
      expect(code, JSON.stringify(flags)).toBe('INVALID_INPUT');
      expect(message, JSON.stringify(flags)).toContain(flag);
    }
    expect(codeOf(() => createRequestFrom('web1', {}, { cpu: 2 }))[1]).toContain('--template');
  });

  it('reads keys from @files, skipping comments and blank lines', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ceso-req-')), 'keys.pub');
    writeFileSync(path, `# ops keys\n${KEY}\n\n`);
    expect(createRequestFrom('web1', { 'ssh-key': [`@${path}`] }, defaults).request.guest.sshKeys).toEqual([KEY]);
  });

  it('keeps a clone’s sizes unset (the source decides) and notes replaced user data', () => {
    const clone = cloneRequestFrom({ name: 'web1' }, 'web2', { ip: '10.0.0.5/24' }, defaults);
    expect(clone.cpu).toBeUndefined();
    expect(clone.memoryMB).toBeUndefined();
    expect(clone.replaceUserData).toBe(false);
    expect(cloneRequestFrom({ name: 'web1' }, 'web2', { 'ssh-key': [KEY] }, defaults).replaceUserData).toBe(true);
  });

  it('parses durations', () => {
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    expect(codeOf(() => parseDuration('0h'))[0]).toBe('INVALID_INPUT');
  });
});
