import { YAML11_SCHEMA, load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { buildCloudConfig, buildUserData, mergeCloudConfig, retargetUserData } from '../../src/cloudinit/index.js';
import { expectInvalid } from '../support/errors.js';



function parse(userdata: string): Record<string, unknown> {
  expect(userdata.startsWith('#cloud-config\n')).toBe(true);
  return load(userdata, { schema: YAML11_SCHEMA }) as Record<string, unknown>;
}

const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKQWVoZokj3eSDx9Y6Dll/AQuLkqOc22woNenzxmEfLe alice@laptop';
const ECDSA =
  'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFP+JSNtWXCQrQArZMxZTJ/rJix/b97DFnROlUP/DyxDml2bx3djyxJvmfbg27XdUbVzd2pWiYU9+z6hHpHYN68= bob@ci';
const IDENTITY = { instanceId: 'id-1', hostname: 'web-01', domain: 'example.com' };

describe('buildUserData', () => {
  it('writes #cloud-config with hostname, fqdn, manage_etc_hosts and the ubuntu user merged into the default user', () => {
    expect(parse(buildUserData(IDENTITY, { sshKeys: [ED25519, ` ${ECDSA} `] }))).toEqual({
      hostname: 'web-01',
      fqdn: 'web-01.example.com',
      manage_etc_hosts: true,
      users: [
        'default',
        { name: 'ubuntu', sudo: 'ALL=(ALL) NOPASSWD:ALL', shell: '/bin/bash', ssh_authorized_keys: [ED25519, ECDSA] },
      ],
    });
  });

  it('creates only the named user for --user, and no fqdn without a domain', () => {
    expect(parse(buildUserData({ instanceId: 'i', hostname: 'DB' }, { sshKeys: [ED25519], user: 'ops' }))).toEqual({
      hostname: 'db',
      manage_etc_hosts: true,
      users: [{ name: 'ops', sudo: 'ALL=(ALL) NOPASSWD:ALL', shell: '/bin/bash', ssh_authorized_keys: [ED25519] }],
    });
    expectInvalid(() => buildUserData(IDENTITY, { sshKeys: [], user: 'Root!' }), '--user');
  });

  it('drops repeated keys', () => {
    const users = parse(buildUserData(IDENTITY, { sshKeys: [ED25519, ED25519] }))['users'] as Array<Record<string, unknown>>;
    expect(users[1]?.['ssh_authorized_keys']).toEqual([ED25519]);
  });
});

describe('--user-data merge', () => {
  const extra = [
    '#cloud-config',
    'manage_etc_hosts: false',
    'packages: [nginx, jq]',
    'runcmd:',
    '  - systemctl enable --now nginx',
    'users:',
    '  - name: ubuntu',
    '    groups: [docker]',
    '    shell: /bin/zsh',
    `    ssh_authorized_keys: ["${ECDSA}", "${ED25519}"]`,
    '  - name: deploy',
    '    ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKQWVoZokj3eSDx9Y6Dll/AQuLkqOc22woNenzxmEfLe deploy"]',
    'write_files:',
    '  - path: /etc/motd',
    '    content: hello',
    '    permissions: 0644',
    '',
  ].join('\n');

  it('appends lists, merges users by name with keys unioned, and lets user scalars win', () => {
    const doc = parse(buildUserData(IDENTITY, { sshKeys: [ED25519], extraUserData: extra }));
    expect(doc['manage_etc_hosts']).toBe(false);
    expect(doc['packages']).toEqual(['nginx', 'jq']);
    expect(doc['runcmd']).toEqual(['systemctl enable --now nginx']);
    expect(doc['users']).toEqual([
      'default',
      {
        name: 'ubuntu',
        sudo: 'ALL=(ALL) NOPASSWD:ALL',
        shell: '/bin/zsh',
        ssh_authorized_keys: [ED25519, ECDSA],
        groups: ['docker'],
      },
      { name: 'deploy', ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKQWVoZokj3eSDx9Y6Dll/AQuLkqOc22woNenzxmEfLe deploy'] },
    ]);
    expect(doc['hostname']).toBe('web-01');
  });

  it('keeps YAML 1.1 octal permissions as octal', () => {
    const text = buildUserData(IDENTITY, { sshKeys: [], extraUserData: extra });
    expect(text).toContain("permissions: '0644'");
    expect((parse(text)['write_files'] as Array<Record<string, unknown>>)[0]?.['permissions']).toBe('0644');
  });

  it('accepts the comma-string and mapping forms of users, and an empty #cloud-config', () => {
    const fromString = buildCloudConfig(IDENTITY, { sshKeys: [], extraUserData: '#cloud-config\nusers: default, ops\n' });
    expect(fromString['users']).toEqual(['default', { name: 'ubuntu', sudo: 'ALL=(ALL) NOPASSWD:ALL', shell: '/bin/bash' }, 'ops']);
    expect(buildCloudConfig(IDENTITY, { sshKeys: [], extraUserData: '#cloud-config\n' })).toEqual(buildCloudConfig(IDENTITY, { sshKeys: [] }));
  });

  it('merges mappings deeply and appends nested lists', () => {
    expect(
      mergeCloudConfig(
        { apt: { preserve_sources_list: true, sources: { a: { source: 'x' } } }, bootcmd: ['one'], ssh_authorized_keys: ['k1'] },
        { apt: { sources: { b: { source: 'y' } } }, bootcmd: ['two', 'one'], ssh_authorized_keys: ['k2', 'k1'] },
      ),
    ).toEqual({
      apt: { preserve_sources_list: true, sources: { a: { source: 'x' }, b: { source: 'y' } } },
      bootcmd: ['one', 'two'],
      ssh_authorized_keys: ['k1', 'k2'],
    });
  });

  it('never lets a __proto__ key reach a prototype', () => {
    const doc = buildCloudConfig(IDENTITY, { sshKeys: [], extraUserData: '#cloud-config\n__proto__: {polluted: true}\n' });
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.getPrototypeOf(doc)).toBe(Object.prototype);
  });

  it('refuses user data without the #cloud-config header, naming --user-data', () => {
    const error = expectInvalid(
      () => buildUserData(IDENTITY, { sshKeys: [], extraUserData: '#!/bin/sh\necho hi\n' }),
      "--user-data must start with a '#cloud-config' line",
    );
    expect(error.hint).toMatch(/runcmd/);
    expectInvalid(() => buildUserData(IDENTITY, { sshKeys: [], extraUserData: 'packages: [nginx]\n' }), '--user-data');
    expectInvalid(() => buildUserData(IDENTITY, { sshKeys: [], extraUserData: '#cloud-configx\na: 1\n' }), '--user-data');
  });

  it('refuses user data that is not a YAML mapping', () => {
    expectInvalid(() => buildUserData(IDENTITY, { sshKeys: [], extraUserData: '#cloud-config\npackages: [nginx\n' }), /--user-data is not valid YAML/);
    expectInvalid(() => buildUserData(IDENTITY, { sshKeys: [], extraUserData: '#cloud-config\n- a\n- b\n' }), /--user-data must be a YAML mapping.*list/);
    expectInvalid(() => buildUserData(IDENTITY, { sshKeys: [], extraUserData: '#cloud-config\na: 1\na: 2\n' }), /--user-data is not valid YAML/);
  });
});

describe('--ssh-key validation', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /--ssh-key .*empty/],
    ['-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----', /--ssh-key .*private key/],
    ['ssh-foo AAAAC3NzaC1lZDI1NTE5AAAAIKQWVoZokj3eSDx9Y6Dll/AQuLkqOc22woNenzxmEfLe', /--ssh-key .*no known key type/],
    ['ssh-ed25519 not*base64', /--ssh-key .*not base64/],
    ['ssh-ed25519', /--ssh-key .*not base64/],
    // an ed25519 body under an ssh-rsa label
    ['ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIKQWVoZokj3eSDx9Y6Dll/AQuLkqOc22woNenzxmEfLe x', /--ssh-key .*does not contain a ssh-rsa key/],
    [`${ED25519}\n${ECDSA}`, /--ssh-key .*several lines/],
  ];
  for (const [key, message] of bad) {
    it(`refuses ${JSON.stringify(key.slice(0, 30))}`, () => {
      expectInvalid(() => buildUserData(IDENTITY, { sshKeys: [key] }), message);
    });
  }

  it('accepts authorized_keys options before the key', () => {
    const line = `from="10.0.0.0/8",no-pty ${ED25519}`;
    const users = parse(buildUserData(IDENTITY, { sshKeys: [line] }))['users'] as Array<Record<string, unknown>>;
    expect(users[1]?.['ssh_authorized_keys']).toEqual([line]);
  });
});

describe('retargetUserData (vm clone keeping the source user data)', () => {
  const source = buildUserData(IDENTITY, {
    sshKeys: [ED25519],
    extraUserData: '#cloud-config\npackages: [nginx]\nwrite_files:\n  - path: /etc/x\n    content: x\n    permissions: 0600\n',
  });

  it('replaces hostname and fqdn and keeps everything else', () => {
    const clone = parse(retargetUserData(source, { instanceId: 'id-2', hostname: 'Web-02', domain: 'lab.example.com' }));
    const original = parse(source);
    expect(clone['hostname']).toBe('web-02');
    expect(clone['fqdn']).toBe('web-02.lab.example.com');
    expect(clone['users']).toEqual(original['users']);
    expect(clone['packages']).toEqual(['nginx']);
    expect(clone['write_files']).toEqual([{ path: '/etc/x', content: 'x', permissions: '0600' }]);
    expect(Object.keys(clone)).toEqual(Object.keys(original));
  });

  it('drops fqdn when the clone has no domain', () => {
    const clone = parse(retargetUserData(source, { instanceId: 'id-2', hostname: 'web-02' }));
    expect(clone['hostname']).toBe('web-02');
    expect(clone).not.toHaveProperty('fqdn');
  });

  it('returns other part types unchanged and refuses broken cloud-config', () => {
    const script = '#!/bin/sh\nhostname old\n';
    expect(retargetUserData(script, { instanceId: 'i', hostname: 'new' })).toBe(script);
    const error = expectInvalid(() => retargetUserData('#cloud-config\na: [\n', { instanceId: 'i', hostname: 'new' }), "source VM's user data");
    expect(error.hint).toMatch(/--ssh-key or --user-data/);
  });
});
