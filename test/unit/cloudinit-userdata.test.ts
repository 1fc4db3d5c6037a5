import { YAML11_SCHEMA, load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import {
  READY_PER_BOOT_PATH,
  READY_PER_BOOT_SCRIPT,
  READY_RUNCMD,
  buildCloudConfig,
  buildUserData,
  isMimeMessage,
  mergeCloudConfig,
  parseMultipart,
  readyPartContent,
  retargetUserData,
} from '../../src/cloudinit/index.js';
import { expectInvalid } from '../support/errors.js';

/** What ends every document ceso writes: the ready report (src/cloudinit/ready.ts). */
const PER_BOOT = { path: READY_PER_BOOT_PATH, permissions: '0755', owner: 'root:root', content: READY_PER_BOOT_SCRIPT };
const READY = { runcmd: [READY_RUNCMD], write_files: [PER_BOOT] };


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
      ...READY,
    });
  });

  it('creates only the named user for --user, and no fqdn without a domain', () => {
    expect(parse(buildUserData({ instanceId: 'i', hostname: 'DB' }, { sshKeys: [ED25519], user: 'ops' }))).toEqual({
      hostname: 'db',
      manage_etc_hosts: true,
      users: [{ name: 'ops', sudo: 'ALL=(ALL) NOPASSWD:ALL', shell: '/bin/bash', ssh_authorized_keys: [ED25519] }],
      ...READY,
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
    expect(doc['runcmd']).toEqual(['systemctl enable --now nginx', READY_RUNCMD]);
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
    expect((parse(text)['write_files'] as Array<Record<string, unknown>>).map((file) => file['path'])).toEqual(['/etc/motd', READY_PER_BOOT_PATH]);
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

  it('keeps the ready report last, once, even when the user data runs it itself', () => {
    const doc = parse(buildUserData(IDENTITY, { sshKeys: [], extraUserData: `#cloud-config\nruncmd:\n  - '${READY_RUNCMD}'\n  - [echo, last]\n` }));
    expect(doc['runcmd']).toEqual([['echo', 'last'], READY_RUNCMD]);
    expect(parse(buildUserData(IDENTITY, { sshKeys: [], extraUserData: '#cloud-config\nruncmd: echo single\n' }))['runcmd']).toEqual(['echo single', READY_RUNCMD]);
  });

  it('refuses user data cloud-init would ignore, naming --user-data and what it accepts', () => {
    const error = expectInvalid(() => buildUserData(IDENTITY, { sshKeys: [], extraUserData: 'packages: [nginx]\n' }), "--user-data starts with 'packages: [nginx]'");
    expect(error.hint).toMatch(/#cloud-config.*#!.*#include.*MIME/);
    expectInvalid(() => buildUserData(IDENTITY, { sshKeys: [], extraUserData: '#cloud-configx\na: 1\n' }), '--user-data');
    expectInvalid(() => buildUserData(IDENTITY, { sshKeys: [], extraUserData: '  \n' }), '--user-data is empty');
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
    expect(clone['write_files']).toEqual([{ path: '/etc/x', content: 'x', permissions: '0600' }, PER_BOOT]);
    expect(Object.keys(clone)).toEqual(Object.keys(original));
  });

  it('drops fqdn when the clone has no domain', () => {
    const clone = parse(retargetUserData(source, { instanceId: 'id-2', hostname: 'web-02' }));
    expect(clone['hostname']).toBe('web-02');
    expect(clone).not.toHaveProperty('fqdn');
  });

  it('keeps other part types, adds the ready report, and refuses broken cloud-config', () => {
    const script = '#!/bin/sh\nhostname old\n';
    const parts = parseMultipart(retargetUserData(script, { instanceId: 'i', hostname: 'new' }));
    expect(parts.map((part) => [part.type, part.content])).toEqual([
      ['text/x-shellscript', '#!/bin/sh\nhostname old\n'],
      ['text/cloud-config', readyPartContent()],
    ]);
    const error = expectInvalid(() => retargetUserData('#cloud-config\na: [\n', { instanceId: 'i', hostname: 'new' }), "source VM's user data");
    expect(error.hint).toMatch(/--ssh-key or --user-data/);
  });
});

describe("user data of other kinds: a MIME multipart after ceso's cloud-config", () => {
  const build = (extraUserData: string): ReturnType<typeof parseMultipart> => {
    const text = buildUserData(IDENTITY, { sshKeys: [ED25519], extraUserData });
    expect(isMimeMessage(text)).toBe(true);
    return parseMultipart(text);
  };

  it("sends a shell script as text/x-shellscript between ceso's cloud-config and the ready report", () => {
    const parts = build('#!/bin/bash\necho hello > /tmp/hello\n');
    expect(parts.map((part) => part.type)).toEqual(['text/cloud-config', 'text/x-shellscript', 'text/cloud-config']);
    expect(load(parts[0]!.content, { schema: YAML11_SCHEMA })).toMatchObject({ hostname: 'web-01', users: ['default', { name: 'ubuntu' }] });
    expect(parts[0]!.content).not.toContain(READY_RUNCMD);
    expect(parts[1]).toEqual({ type: 'text/x-shellscript', filename: 'part-002', content: '#!/bin/bash\necho hello > /tmp/hello\n' });
    const ready = load(parts[2]!.content, { schema: YAML11_SCHEMA }) as Record<string, unknown>;
    expect(ready['runcmd']).toEqual([READY_RUNCMD]);
    expect(ready['merge_how']).toEqual([
      { name: 'list', settings: ['append'] },
      { name: 'dict', settings: ['no_replace', 'recurse_list'] },
    ]);
  });

  it('types #include, #cloud-boothook and jinja parts as cloud-init does', () => {
    expect(build('#include\nhttp://127.0.0.1/a.yaml\n')[1]?.type).toBe('text/x-include-url');
    expect(build('#include-once\nhttp://127.0.0.1/a.yaml\n')[1]?.type).toBe('text/x-include-once-url');
    expect(build('#cloud-boothook\n#!/bin/sh\necho early\n')[1]?.type).toBe('text/cloud-boothook');
    expect(build('## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n')[1]?.type).toBe('text/jinja2');
  });

  it("flattens the user's own MIME multipart, keeps its cloud-config parts as they are, and names scripts to run before runcmd", () => {
    const mime = [
      'Content-Type: multipart/mixed; boundary="XYZ"',
      'MIME-Version: 1.0',
      '',
      '--XYZ',
      'Content-Type: text/x-shellscript; charset="us-ascii"',
      'Content-Disposition: attachment; filename="setup.sh"',
      '',
      '#!/bin/sh',
      'echo setup',
      '--XYZ',
      'Content-Type: text/cloud-config',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('#cloud-config\npackages: [jq]\n').toString('base64'),
      '--XYZ--',
      '',
    ].join('\r\n');
    const parts = build(mime);
    expect(parts.map((part) => [part.type, part.filename])).toEqual([
      ['text/cloud-config', undefined],
      ['text/x-shellscript', 'part-002-setup.sh'],
      ['text/cloud-config', undefined],
      ['text/cloud-config', undefined],
    ]);
    expect(parts[2]!.content).toBe('#cloud-config\npackages: [jq]\n');
  });

  it('refuses a broken MIME message, naming what is wrong', () => {
    expectInvalid(() => buildUserData(IDENTITY, { sshKeys: [], extraUserData: 'MIME-Version: 1.0\nContent-Type: multipart/mixed\n\nx\n' }), /without a boundary/);
    expectInvalid(
      () => buildUserData(IDENTITY, { sshKeys: [], extraUserData: 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/x-shellscript\n\n#!/bin/sh\n' }),
      /does not end with --B--/,
    );
    expectInvalid(
      () => buildUserData(IDENTITY, { sshKeys: [], extraUserData: 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\n\nplain words\n--B--\n' }),
      /part 1 of --user-data starts with 'plain words'/,
    );
  });

  it('round-trips non-ASCII content through base64 parts', () => {
    const parts = build('#!/bin/sh\necho "grüße"\n');
    expect(parts[1]?.content).toBe('#!/bin/sh\necho "grüße"\n');
  });

  it('re-targets a clone: hostname in the cloud-config parts, ready report once and last', () => {
    const source = buildUserData(IDENTITY, { sshKeys: [ED25519], extraUserData: '#!/bin/sh\necho hi\n' });
    const parts = parseMultipart(retargetUserData(source, { instanceId: 'id-2', hostname: 'web-02' }));
    expect(parts).toHaveLength(3);
    const first = load(parts[0]!.content, { schema: YAML11_SCHEMA }) as Record<string, unknown>;
    expect(first['hostname']).toBe('web-02');
    expect(first).not.toHaveProperty('fqdn');
    expect(parts[1]?.content).toBe('#!/bin/sh\necho hi\n');
    expect(parts[2]?.content.trimEnd()).toBe(readyPartContent().trimEnd());
  });
});
