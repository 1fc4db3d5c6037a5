import { YAML11_SCHEMA, load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import {
  GUESTINFO_KEYS,
  MASK,
  buildGuestinfo,
  decodeGuestinfo,
  decodeGuestinfoValue,
  encodeGzipBase64,
  renderGuestinfoReview,
  retargetUserData,
  reviewGuestinfo,
} from '../../src/cloudinit/index.js';
import { errorOf } from '../support/errors.js';


const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKQWVoZokj3eSDx9Y6Dll/AQuLkqOc22woNenzxmEfLe alice@laptop';
const PEM = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtopsecretbody\n-----END RSA PRIVATE KEY-----\n';
const INPUT = {
  identity: { instanceId: 'uuid-1', hostname: 'web-01', domain: 'example.com' },
  network: { mac: '00:50:56:AA:BB:CC', ipCidr: '10.1.2.3/24', gateway: '10.1.2.1', dns: ['10.1.2.53'] },
  userData: { sshKeys: [ED25519] },
};

/** Incompressible text from a fixed-seed generator, so the size test is reproducible. */
function noise(length: number): string {
  let state = 12345;
  let out = '';
  while (out.length < length) {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    out += (state >>> 8).toString(36);
  }
  return out.slice(0, length);
}

describe('buildGuestinfo', () => {
  it('writes exactly the six keys: metadata and userdata gzip+base64, vendordata blanked', () => {
    const keys = buildGuestinfo(INPUT);
    expect(Object.keys(keys).sort()).toEqual([
      'guestinfo.metadata',
      'guestinfo.metadata.encoding',
      'guestinfo.userdata',
      'guestinfo.userdata.encoding',
      'guestinfo.vendordata',
      'guestinfo.vendordata.encoding',
    ]);
    expect(keys[GUESTINFO_KEYS.metadataEncoding]).toBe('gzip+base64');
    expect(keys[GUESTINFO_KEYS.userdataEncoding]).toBe('gzip+base64');
    expect(keys[GUESTINFO_KEYS.vendordata]).toBe('');
    expect(keys[GUESTINFO_KEYS.vendordataEncoding]).toBe('');
    expect(keys[GUESTINFO_KEYS.metadata]).toMatch(/^H4sI/);
  });

  it('round-trips through decodeGuestinfo', () => {
    const decoded = decodeGuestinfo(buildGuestinfo(INPUT));
    expect(decoded.vendordata).toBeUndefined();
    expect(decoded.metadata).toEqual({
      'instance-id': 'uuid-1',
      'local-hostname': 'web-01.example.com',
      network: {
        version: 2,
        ethernets: {
          nic0: {
            match: { macaddress: '00:50:56:aa:bb:cc' },
            'set-name': 'nic0',
            dhcp4: false,
            addresses: ['10.1.2.3/24'],
            routes: [{ to: '0.0.0.0/0', via: '10.1.2.1' }],
            nameservers: { addresses: ['10.1.2.53'], search: ['example.com'] },
          },
        },
      },
    });
    expect(decoded.userdata?.startsWith('#cloud-config\n')).toBe(true);
    const userdata = load(decoded.userdata ?? '', { schema: YAML11_SCHEMA }) as Record<string, unknown>;
    expect(userdata['hostname']).toBe('web-01');
    expect(userdata['fqdn']).toBe('web-01.example.com');
    expect((userdata['users'] as unknown[])[1]).toMatchObject({ name: 'ubuntu', ssh_authorized_keys: [ED25519] });
    expect(decodeGuestinfoValue(buildGuestinfo(INPUT)[GUESTINFO_KEYS.metadata] ?? '', 'gzip+base64')).not.toContain('gateway4');
  });

  it('is deterministic for the same input', () => {
    expect(buildGuestinfo(INPUT)).toEqual(buildGuestinfo(INPUT));
  });

  it('passes raw user data through verbatim', () => {
    const raw = '#!/bin/bash\necho hello\n';
    expect(decodeGuestinfo(buildGuestinfo({ ...INPUT, userData: { raw } })).userdata).toBe(raw);
    expect(errorOf(() => buildGuestinfo({ ...INPUT, userData: { raw: '' } })).code).toBe('INVALID_INPUT');
  });

  it('refuses user data over 64 KiB after encoding with GUESTINFO_TOO_LARGE naming guestinfo.userdata', () => {
    const extraUserData = `#cloud-config\nwrite_files:\n  - path: /opt/blob\n    content: ${noise(100_000)}\n`;
    const error = errorOf(() => buildGuestinfo({ ...INPUT, userData: { sshKeys: [ED25519], extraUserData } }));
    expect(error.code).toBe('GUESTINFO_TOO_LARGE');
    expect(error.message).toMatch(/^guestinfo\.userdata is \d+ bytes after gzip\+base64 encoding; it must be under 65536 bytes \(64 KiB\)$/);
    expect(error.details?.['key']).toBe('guestinfo.userdata');
    expect(error.details?.['size']).toBeGreaterThan(65536);
    expect(error.hint).toBeDefined();
    // Compressible data of the same length fits: the limit applies to the encoded value.
    const compressible = `#cloud-config\nwrite_files:\n  - path: /opt/blob\n    content: ${'a'.repeat(100_000)}\n`;
    expect(() => buildGuestinfo({ ...INPUT, userData: { sshKeys: [ED25519], extraUserData: compressible } })).not.toThrow();
  });

  it('gives a clone new metadata and keeps the source user data with the new name', () => {
    const source = buildGuestinfo({ ...INPUT, userData: { sshKeys: [ED25519], extraUserData: '#cloud-config\npackages: [nginx]\n' } });
    const identity = { instanceId: 'uuid-2', hostname: 'web-02', domain: 'example.com' };
    const clone = buildGuestinfo({
      identity,
      network: { mac: '00:50:56:aa:bb:dd', ipCidr: '10.1.2.4/24', gateway: '10.1.2.1' },
      userData: { raw: retargetUserData(decodeGuestinfo(source).userdata ?? '', identity) },
    });
    const decoded = decodeGuestinfo(clone);
    expect(decoded.metadata).toMatchObject({ 'instance-id': 'uuid-2', 'local-hostname': 'web-02.example.com' });
    const userdata = load(decoded.userdata ?? '', { schema: YAML11_SCHEMA }) as Record<string, unknown>;
    expect(userdata['hostname']).toBe('web-02');
    expect(userdata['packages']).toEqual(['nginx']);
    expect(clone[GUESTINFO_KEYS.vendordata]).toBe('');
  });
});

describe('decodeGuestinfo', () => {
  it('reads every encoding cloud-init accepts and treats empty and --- as absent', () => {
    const decoded = decodeGuestinfo({
      'guestinfo.metadata': Buffer.from('{"instance-id": "i-json", "local-hostname": "h"}').toString('base64'),
      'guestinfo.metadata.encoding': 'b64',
      'guestinfo.userdata': '#cloud-config\npackages: [jq]\n',
      'guestinfo.vendordata': '---',
      'guestinfo.vendordata.encoding': 'gzip+base64',
    });
    expect(decoded).toEqual({ metadata: { 'instance-id': 'i-json', 'local-hostname': 'h' }, userdata: '#cloud-config\npackages: [jq]\n' });
    expect(decodeGuestinfo({ 'guestinfo.userdata': encodeGzipBase64('x: 1\n'), 'guestinfo.userdata.encoding': 'gz+b64', 'guestinfo.metadata': '' })).toEqual({
      userdata: 'x: 1\n',
    });
    expect(decodeGuestinfo({})).toEqual({});
  });
});

describe('reviewGuestinfo', () => {
  const secretUserData = [
    '#cloud-config',
    'password: plainpw',
    'ssh_pwauth: true',
    'chpasswd:',
    '  expire: false',
    '  list: |',
    '    ubuntu:hunter2',
    '    root:toor',
    '  users:',
    '    - name: ops',
    '      password: s3cret',
    '      type: text',
    'users:',
    '  - name: alice',
    '    passwd: $6$salt$hash',
    '    hashed_passwd: $6$salt$hash2',
    '    plain_text_passwd: letmein',
    `    ssh_authorized_keys: ["${ED25519}"]`,
    'ssh_keys:',
    '  rsa_private: |',
    '    -----BEGIN RSA PRIVATE KEY-----',
    '    MIIEowIBAAKCAQEAtopsecretbody',
    '    -----END RSA PRIVATE KEY-----',
    '  rsa_public: ssh-rsa AAAAB3NzaC1yc2E host',
    'ca_certs:',
    '  trusted:',
    '    - |',
    '      -----BEGIN CERTIFICATE-----',
    '      MIIBpublic',
    '      -----END CERTIFICATE-----',
    '    - |',
    '      -----BEGIN PRIVATE KEY-----',
    '      MIIEvQIBADANBgkqhkiG9w0BAQEFAASC',
    '      -----END PRIVATE KEY-----',
    'write_files:',
    '  - path: /etc/ssl/private/site.key',
    '    content: not-a-pem-but-a-secret-path',
    '  - path: /root/deploy',
    `    content: ${Buffer.from(PEM).toString('base64')}`,
    '    encoding: b64',
    '  - path: /etc/motd',
    '    content: welcome',
    '    permissions: 0644',
    'runcmd: [echo done]',
    '',
  ].join('\n');

  const keys = buildGuestinfo({ ...INPUT, userData: { raw: secretUserData } });

  it('masks secrets, keeps their keys and keeps public keys visible', () => {
    const review = reviewGuestinfo(keys);
    expect(review.metadata).toMatchObject({ 'instance-id': 'uuid-1' });
    expect(review.userdata).toEqual({
      password: MASK,
      ssh_pwauth: true,
      chpasswd: {
        expire: false,
        list: `ubuntu:${MASK}\nroot:${MASK}\n`,
        users: [{ name: 'ops', password: MASK, type: 'text' }],
      },
      users: [{ name: 'alice', passwd: MASK, hashed_passwd: MASK, plain_text_passwd: MASK, ssh_authorized_keys: [ED25519] }],
      ssh_keys: { rsa_private: MASK, rsa_public: 'ssh-rsa AAAAB3NzaC1yc2E host' },
      ca_certs: { trusted: ['-----BEGIN CERTIFICATE-----\nMIIBpublic\n-----END CERTIFICATE-----\n', MASK] },
      write_files: [
        { path: '/etc/ssl/private/site.key', content: MASK },
        { path: '/root/deploy', content: MASK, encoding: 'b64' },
        { path: '/etc/motd', content: 'welcome', permissions: '0644' },
      ],
      runcmd: ['echo done'],
    });
    const text = renderGuestinfoReview(keys);
    for (const secret of ['plainpw', 'hunter2', 'toor', 's3cret', '$6$salt', 'letmein', 'topsecretbody', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', 'not-a-pem']) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain(ED25519);
    expect(text).toContain('guestinfo.metadata:');
    expect(text).toContain('guestinfo.userdata:');
    expect(text).toContain('macaddress: "00:50:56:aa:bb:cc"');
  });

  it('masks chpasswd.list given as a list, and PEM blocks inside a script', () => {
    const listKeys = buildGuestinfo({ ...INPUT, userData: { raw: '#cloud-config\nchpasswd:\n  list: ["ubuntu:pw1", "root:pw2"]\n' } });
    expect(reviewGuestinfo(listKeys).userdata).toEqual({ chpasswd: { list: [`ubuntu:${MASK}`, `root:${MASK}`] } });
    const script = `#!/bin/sh\ncat > /root/key <<EOF\n${PEM}EOF\necho ok\n`;
    const scriptReview = reviewGuestinfo(buildGuestinfo({ ...INPUT, userData: { raw: script } })).userdata;
    expect(scriptReview).toBe(`#!/bin/sh\ncat > /root/key <<EOF\n${MASK}\nEOF\necho ok\n`);
  });

  it('returns null for absent documents and reviews stale vendordata', () => {
    expect(reviewGuestinfo({})).toEqual({ metadata: null, userdata: null });
    const review = reviewGuestinfo({ 'guestinfo.vendordata': '#cloud-config\npassword: x\n' });
    expect(review.vendordata).toEqual({ password: MASK });
  });

  it('decodes a string network config per network.encoding', () => {
    const network = Buffer.from('version: 2\nethernets: {nic0: {dhcp4: true}}\n').toString('base64');
    const metadata = `instance-id: i\nnetwork: ${network}\nnetwork.encoding: base64\n`;
    expect(reviewGuestinfo({ 'guestinfo.metadata': metadata }).metadata).toEqual({
      'instance-id': 'i',
      network: { version: 2, ethernets: { nic0: { dhcp4: true } } },
    });
  });
});
