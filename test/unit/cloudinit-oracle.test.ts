// What ceso's cloud-init builders write, read by cloud-init's OWN code (Debian 12's cloud-init
// 22.4.2, unpacked by scripts/setup.sh) and Debian's netplan: test/support/cloudinit_check.py.
// Fast: no simulator, one Python process (~0.5 s) per document. The negative controls prove the
// checker can fail: cloud-init rejects `to: default`, its strict schema rejects wrong types, and
// netplan rejects what cloud-init's parser lets through.
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READY_RUNCMD, buildGuestinfo, encodeGzipBase64, type GuestinfoInput } from '../../src/cloudinit/index.js';
import { checkWithCloudInit, cloudInitProblems, networkdUnit, serveOnLoopback, type CloudInitCheck, type LoopbackServer } from '../support/cloudinit.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfA2dC6WcGxPx0sN1yKq0mYkq0X8oZ5yN8dGd1cV2wL ops@example';
const MAC = '00:50:56:AA:BB:CC';
const IDENTITY = { instanceId: '421d3b5c-8e8e-9d1a-4b2e-957c2c063d1b', hostname: 'web1', domain: 'lab.example' };
const TIMEOUT = 20_000;

type Ethernet = { addresses?: string[]; routes?: Array<{ to: string; via: string }>; dhcp4?: boolean; dhcp6?: boolean; match?: { macaddress: string }; 'set-name'?: string; nameservers?: { addresses?: string[]; search?: string[] } };

function netplanNic(check: CloudInitCheck): Ethernet | undefined {
  const doc = load(check.netplanYaml ?? '') as { network?: { ethernets?: Record<string, Ethernet> } } | null;
  return doc?.network?.ethernets?.['nic0'];
}

function guestinfo(input: Partial<GuestinfoInput> & Pick<GuestinfoInput, 'network'>): Record<string, string> {
  return buildGuestinfo({ identity: IDENTITY, userData: { sshKeys: [KEY] }, ...input });
}

/** Hand-made guestinfo (not ceso's): for the negative controls. */
function rawGuestinfo(metadata: string, userdata?: string): Record<string, string> {
  return {
    'guestinfo.metadata': encodeGzipBase64(metadata),
    'guestinfo.metadata.encoding': 'gzip+base64',
    ...(userdata === undefined ? {} : { 'guestinfo.userdata': encodeGzipBase64(userdata), 'guestinfo.userdata.encoding': 'gzip+base64' }),
  };
}

const STATIC_NIC = 'network:\n  version: 2\n  ethernets:\n    nic0:\n      match: {macaddress: "00:50:56:aa:bb:cc"}\n      set-name: nic0\n      addresses: [10.0.0.5/24]\n';

function expectCesoIdentity(check: CloudInitCheck): void {
  expect(check.datasource).toMatchObject({ ok: true, dsname: 'VMware', accessMethod: 'envvar', instanceId: IDENTITY.instanceId, hostname: 'web1', fqdn: 'web1.lab.example' });
  expect(check.metadata?.['local-hostname']).toBe('web1.lab.example');
}

describe("ceso's guestinfo read by cloud-init's own code and netplan", () => {
  it('reports the cloud-init and netplan versions it ran with', async () => {
    const check = await checkWithCloudInit(guestinfo({ network: { mac: MAC, dns: ['10.0.0.53'] } }));
    console.error(`[cloudinit-oracle] cloud-init ${check.cloudInitVersion} (Debian ${check.cloudInitPackage ?? '?'}), netplan ${check.netplanVersion ?? '?'}, python ${check.python}`);
    expect(check.cloudInitVersion).toMatch(/^\d+\.\d+/);
    expect(check.cloudInitPath).toContain('test/.cache/cloud-init/');
    expect(check.envVars).toMatchObject({ VMX_GUESTINFO_METADATA: 'guestinfo.metadata', VMX_GUESTINFO_METADATA_ENCODING: 'guestinfo.metadata.encoding', VMX_GUESTINFO_USERDATA: 'guestinfo.userdata' });
  }, TIMEOUT);

  it('static IPv4 with gateway, DNS and search domain: accepted, rendered and generated', async () => {
    const check = await checkWithCloudInit(guestinfo({ network: { mac: MAC, ipCidr: '192.168.1.100/24', gateway: '192.168.1.1', dns: ['1.1.1.1', '9.9.9.9'], searchDomains: ['lab.example', 'corp.example'] } }));
    expect(cloudInitProblems(check)).toEqual([]);
    expectCesoIdentity(check);
    expect(check.networkSource).toBe('metadata');
    expect(netplanNic(check)).toMatchObject({
      match: { macaddress: '00:50:56:aa:bb:cc' },
      'set-name': 'nic0',
      dhcp4: false,
      addresses: ['192.168.1.100/24'],
      routes: [{ to: '0.0.0.0/0', via: '192.168.1.1' }],
      nameservers: { addresses: ['1.1.1.1', '9.9.9.9'], search: ['lab.example', 'corp.example'] },
    });
    const unit = networkdUnit(check) ?? '';
    expect(unit).toContain('PermanentMACAddress=00:50:56:aa:bb:cc');
    expect(unit).toContain('Address=192.168.1.100/24');
    expect(unit).toMatch(/\[Route\]\nDestination=0\.0\.0\.0\/0\nGateway=192\.168\.1\.1/);
    expect(unit).toContain('DNS=1.1.1.1');
    expect(unit).toContain('Domains=lab.example corp.example');
    expect(check.netplanGenerate?.files['run/systemd/network/10-netplan-nic0.link']).toContain('Name=nic0');
    // cloud-init's own strict parse of the same config (what non-netplan renderers read)
    expect(JSON.stringify(check.networkParse?.state)).toContain('"gateway":"192.168.1.1"');
    expect(check.runcmd?.at(-1)).toBe(READY_RUNCMD);
    expect(check.runcmdScript?.trimEnd().split('\n').at(-1)).toBe(READY_RUNCMD);
  }, TIMEOUT);

  it('DHCP: dhcp4 on the NIC matched by MAC, no static address or route', async () => {
    const check = await checkWithCloudInit(guestinfo({ identity: { ...IDENTITY, domain: 'lab.example' }, network: { mac: MAC, dns: ['10.0.0.53'] } }));
    expect(cloudInitProblems(check)).toEqual([]);
    expectCesoIdentity(check);
    const nic = netplanNic(check);
    expect(nic).toMatchObject({ match: { macaddress: '00:50:56:aa:bb:cc' }, 'set-name': 'nic0', dhcp4: true, nameservers: { addresses: ['10.0.0.53'], search: ['lab.example'] } });
    expect(nic?.addresses).toBeUndefined();
    expect(nic?.routes).toBeUndefined();
    expect(networkdUnit(check)).toMatch(/DHCP=ipv4/);
    expect(check.runcmd?.at(-1)).toBe(READY_RUNCMD);
  }, TIMEOUT);

  it('DHCP without a domain: no nameservers at all', async () => {
    const { domain: _domain, ...noDomain } = IDENTITY;
    const check = await checkWithCloudInit(guestinfo({ identity: noDomain, network: { mac: MAC } }));
    expect(cloudInitProblems(check)).toEqual([]);
    expect(check.datasource).toMatchObject({ ok: true, instanceId: IDENTITY.instanceId, hostname: 'web1', localHostname: 'web1' });
    expect(netplanNic(check)).toEqual({ match: { macaddress: '00:50:56:aa:bb:cc' }, 'set-name': 'nic0', dhcp4: true });
    expect(networkdUnit(check)).toMatch(/DHCP=ipv4/);
  }, TIMEOUT);

  it('a --domain without --dns (search domain only) passes cloud-init strict v2 parse', async () => {
    // ceso writes `nameservers: {search: [lab.example]}` with no `addresses`. cloud-init 22.4's
    // network-state parser (every renderer but netplan; every renderer before 22.4) turns it into
    // a nameserver command that requires an address: strict parse fails, the default parse logs
    // "Skipping invalid command" and drops the DNS settings. netplan itself accepts it.
    const check = await checkWithCloudInit(guestinfo({ network: { mac: MAC } }));
    expect(check.netplanGenerate?.ok).toBe(true);
    expect(cloudInitProblems(check)).toEqual([]);
  }, TIMEOUT);

  it('static IPv6 with an IPv6 gateway: route ::/0', async () => {
    const check = await checkWithCloudInit(guestinfo({ network: { mac: MAC, ipCidr: '2001:db8:10::10/64', gateway: '2001:db8:10::1', dns: ['2001:4860:4860::8888'] } }));
    expect(cloudInitProblems(check)).toEqual([]);
    expectCesoIdentity(check);
    expect(netplanNic(check)).toMatchObject({ addresses: ['2001:db8:10::10/64'], routes: [{ to: '::/0', via: '2001:db8:10::1' }], nameservers: { addresses: ['2001:4860:4860::8888'] } });
    const unit = networkdUnit(check) ?? '';
    expect(unit).toContain('Address=2001:db8:10::10/64');
    expect(unit).toMatch(/\[Route\]\nDestination=::\/0\nGateway=2001:db8:10::1/);
    expect(check.runcmd?.at(-1)).toBe(READY_RUNCMD);
  }, TIMEOUT);

  describe('--user-data of every kind: parts as cloud-init splits them, ready report last', () => {
    let server: LoopbackServer;
    beforeAll(async () => {
      server = await serveOnLoopback({ '/included.yaml': '#cloud-config\npackages: [htop]\nruncmd: [echo included]\n' });
    });
    afterAll(async () => {
      await server.close();
    });

    const kinds: Array<[string, () => string, (check: CloudInitCheck) => void]> = [
      [
        '#cloud-config',
        () => '#cloud-config\npackages: [nginx]\nwrite_files: [{path: /etc/motd, content: "hi\\n"}]\nruncmd: [[systemctl, enable, --now, nginx]]\n',
        (check) => {
          expect(check.mergedCloudConfig?.['packages']).toEqual(['nginx']);
          expect(check.runcmd?.slice(0, -1)).toEqual([['systemctl', 'enable', '--now', 'nginx']]);
        },
      ],
      [
        '#!/bin/bash',
        () => '#!/bin/bash\necho from-script > /tmp/x\n',
        (check) => {
          const scripts = Object.entries(check.scripts).filter(([name]) => name !== 'runcmd');
          expect(scripts.map(([, content]) => content)).toEqual(['#!/bin/bash\necho from-script > /tmp/x\n']);
          // scripts-user runs scripts/ in name order: the user's script before runcmd (ready)
          expect(scripts.every(([name]) => name < 'runcmd')).toBe(true);
        },
      ],
      [
        '#include',
        () => `#include\n${server.url}/included.yaml\n`,
        (check) => {
          expect(check.includes).toEqual([expect.objectContaining({ url: `${server.url}/included.yaml`, fetched: true })]);
          expect(check.mergedCloudConfig?.['packages']).toEqual(['htop']);
          expect(check.runcmd).toContain('echo included');
        },
      ],
      [
        '#cloud-boothook',
        () => '#cloud-boothook\n#!/bin/sh\necho boothook > /tmp/ceso-boothook\n',
        (check) => {
          expect(Object.values(check.boothooks)).toEqual(['#!/bin/sh\necho boothook > /tmp/ceso-boothook\n']);
        },
      ],
      [
        'MIME multipart (shell + cloud-config)',
        () =>
          [
            'Content-Type: multipart/mixed; boundary="==BOUNDARY=="',
            'MIME-Version: 1.0',
            '',
            '--==BOUNDARY==',
            'Content-Type: text/x-shellscript; charset="us-ascii"',
            'Content-Disposition: attachment; filename="setup.sh"',
            '',
            '#!/bin/sh',
            'echo multipart-script',
            '',
            '--==BOUNDARY==',
            'Content-Type: text/cloud-config; charset="us-ascii"',
            'Content-Disposition: attachment; filename="extra.cfg"',
            '',
            '#cloud-config',
            'packages: [jq]',
            'runcmd: [echo multipart-runcmd]',
            '',
            '--==BOUNDARY==--',
            '',
          ].join('\n'),
        (check) => {
          expect(check.parts.map((part) => part.contentType)).toContain('text/x-shellscript');
          expect(check.mergedCloudConfig?.['packages']).toEqual(['jq']);
          expect(check.runcmd).toContain('echo multipart-runcmd');
          expect(Object.values(check.scripts)).toContain('#!/bin/sh\necho multipart-script\n');
        },
      ],
    ];

    for (const [kind, file, specific] of kinds) {
      it(kind, async () => {
        const check = await checkWithCloudInit(guestinfo({ network: { mac: MAC, ipCidr: '10.0.0.5/24', gateway: '10.0.0.1', dns: ['10.0.0.53'] }, userData: { sshKeys: [KEY], extraUserData: file() } }));
        expect(cloudInitProblems(check)).toEqual([]);
        expectCesoIdentity(check);
        expect(check.parts[0]?.contentType).toBe('text/cloud-config');
        expect(JSON.stringify(check.mergedCloudConfig?.['users'])).toContain(KEY);
        specific(check);
        expect(check.runcmd?.at(-1)).toBe(READY_RUNCMD);
        expect(check.runcmdScript?.trimEnd().split('\n').at(-1)).toBe(READY_RUNCMD);
      }, TIMEOUT);
    }
  });
});

describe('negative controls: the checker fails when cloud-init or netplan would', () => {
  it('`routes: [{to: default}]` in metadata is rejected by cloud-init 22.4 network-state parser', async () => {
    const check = await checkWithCloudInit(rawGuestinfo(`instance-id: i-neg-1\nlocal-hostname: neg1\n${STATIC_NIC}      routes: [{to: default, via: 10.0.0.1}]\n`));
    expect(check.datasource.ok).toBe(true);
    const major = Number(check.cloudInitVersion.split('.')[0]);
    if (major < 25) {
      // LP #1978543: fixed for non-netplan renderers only in 2025
      expect(check.networkParse).toMatchObject({ ok: false, error: expect.stringMatching(/Address default is not a valid ip (address|network)/) });
      expect(check.errors.join('\n')).toMatch(/network\.parse: ValueError: Address default is not a valid ip/);
      expect(cloudInitProblems(check)).not.toEqual([]);
    }
    // netplan 0.106 itself reads `default`: the strict parse is the stricter check
    expect(check.netplanGenerate?.ok).toBe(true);
  }, TIMEOUT);

  it('a cloud-config with wrong types fails the strict schema, per part and merged; unknown keys are listed', async () => {
    const check = await checkWithCloudInit(rawGuestinfo('instance-id: i-neg-2\nlocal-hostname: neg2\n', '#cloud-config\nruncmd: "reboot"\npackages: 5\nwrite_files: {path: /x}\nno_such_module_key: true\n'));
    expect(check.datasource.ok).toBe(true);
    const paths = (source: string) => check.schemaErrors.filter((p) => p.source === source).map((p) => p.path).sort();
    expect(paths('part-001')).toEqual(['packages', 'runcmd', 'write_files']);
    expect(paths('merged')).toEqual(['packages', 'runcmd', 'write_files']);
    expect(check.schemaErrors.find((p) => p.path === 'packages')?.message).toMatch(/not of type 'array'/);
    // 22.4's schema has no additionalProperties: false at the top; the checker lists them itself
    expect(check.unknownKeys).toEqual([
      { source: 'part-001', key: 'no_such_module_key' },
      { source: 'merged', key: 'no_such_module_key' },
    ]);
    expect(cloudInitProblems(check).length).toBeGreaterThan(0);
  }, TIMEOUT);

  it('netplan generate rejects what cloud-init parses (set-name without match)', async () => {
    const check = await checkWithCloudInit(rawGuestinfo('instance-id: i-neg-3\nlocal-hostname: neg3\nnetwork:\n  version: 2\n  ethernets:\n    nic0:\n      set-name: nic0\n      addresses: [10.0.0.5/24]\n'));
    expect(check.networkParse?.ok).toBe(true);
    expect(check.netplanGenerate).toMatchObject({ ok: false, exitCode: 1, stderr: expect.stringContaining("'set-name:' requires 'match:'") });
    expect(check.errors.join('\n')).toContain('netplan.generate');
  }, TIMEOUT);

  it('netplan generate rejects a malformed address (cloud-init too)', async () => {
    const check = await checkWithCloudInit(rawGuestinfo(`instance-id: i-neg-4\nlocal-hostname: neg4\n${STATIC_NIC.replace('10.0.0.5/24', '10.0.0.500/24')}`));
    expect(check.networkParse?.ok).toBe(false);
    expect(check.netplanGenerate).toMatchObject({ ok: false, stderr: expect.stringContaining("malformed address '10.0.0.500/24'") });
  }, TIMEOUT);

  it('the datasource decodes by its own rules: encoding `gzip` (not gzip+base64) is plain text, and breaks', async () => {
    const keys = rawGuestinfo('instance-id: i-neg-5\nlocal-hostname: neg5\n');
    const check = await checkWithCloudInit({ ...keys, 'guestinfo.metadata.encoding': 'gzip' });
    expect(check.datasource.ok).toBe(false);
    expect(check.metadata).toBeNull();
    expect(check.errors.join('\n')).toMatch(/^datasource\.get_data: /m);
  }, TIMEOUT);

  it('#include of a URL that is not loopback is never fetched, and cloud-init 22.4 fails the user data', async () => {
    const check = await checkWithCloudInit(rawGuestinfo('instance-id: i-neg-6\nlocal-hostname: neg6\n', '#include\nhttp://192.0.2.1/user-data\n'));
    expect(check.includes).toEqual([expect.objectContaining({ url: 'http://192.0.2.1/user-data', fetched: false, error: expect.stringContaining('not fetched') })]);
    expect(check.errors.join('\n')).toMatch(/^userdata: /m);
  }, TIMEOUT);
});
