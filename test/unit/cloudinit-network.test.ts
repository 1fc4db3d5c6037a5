import { YAML11_SCHEMA, load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { buildMetadata, buildNetworkConfig, renderMetadata } from '../../src/cloudinit/index.js';
import { expectInvalid } from '../support/errors.js';



const IDENTITY = { instanceId: '564d1a2b-0000-4000-8000-000000000001', hostname: 'Web-01', domain: 'Example.com' };
const MAC = '00:50:56:AB:CD:EF';

describe('buildMetadata', () => {
  it('builds instance-id, local-hostname and a static netplan v2 config matched by MAC', () => {
    const metadata = buildMetadata(IDENTITY, {
      mac: MAC,
      ipCidr: '192.168.1.100/24',
      gateway: '192.168.1.1',
      dns: ['192.168.1.53', '1.1.1.1'],
    });
    expect(metadata).toEqual({
      'instance-id': '564d1a2b-0000-4000-8000-000000000001',
      'local-hostname': 'web-01.example.com',
      network: {
        version: 2,
        ethernets: {
          nic0: {
            match: { macaddress: '00:50:56:ab:cd:ef' },
            'set-name': 'nic0',
            dhcp4: false,
            addresses: ['192.168.1.100/24'],
            routes: [{ to: '0.0.0.0/0', via: '192.168.1.1' }],
            nameservers: { addresses: ['192.168.1.53', '1.1.1.1'], search: ['example.com'] },
          },
        },
      },
    });
  });

  it('uses DHCP without --ip, and the hostname alone without a domain', () => {
    const metadata = buildMetadata({ instanceId: 'id-2', hostname: 'db' }, { mac: '00-50-56-01-02-03' });
    expect(metadata).toEqual({
      'instance-id': 'id-2',
      'local-hostname': 'db',
      network: { version: 2, ethernets: { nic0: { match: { macaddress: '00:50:56:01:02:03' }, 'set-name': 'nic0', dhcp4: true } } },
    });
  });

  it('adds --dns and search domains to DHCP', () => {
    const config = buildNetworkConfig({ mac: MAC, dns: ['9.9.9.9'], searchDomains: ['corp.example', 'Lab.Example'] }, 'example.com');
    expect(config.ethernets['nic0']?.dhcp4).toBe(true);
    expect(config.ethernets['nic0']?.nameservers).toEqual({ addresses: ['9.9.9.9'], search: ['corp.example', 'lab.example'] });
  });

  it('supports a static IPv6 address with an IPv6 gateway', () => {
    const config = buildNetworkConfig({ mac: MAC, ipCidr: '2001:DB8::10/64', gateway: '2001:db8::1', dns: ['2001:4860:4860::8888'] });
    expect(config.ethernets['nic0']).toEqual({
      match: { macaddress: '00:50:56:ab:cd:ef' },
      'set-name': 'nic0',
      dhcp4: false,
      dhcp6: false,
      addresses: ['2001:db8::10/64'],
      routes: [{ to: '::/0', via: '2001:db8::1' }],
      nameservers: { addresses: ['2001:4860:4860::8888'] },
    });
  });

  it('accepts a static address without a gateway (no routes)', () => {
    const config = buildNetworkConfig({ mac: MAC, ipCidr: '10.0.0.5/8' });
    expect(config.ethernets['nic0']?.addresses).toEqual(['10.0.0.5/8']);
    expect(config.ethernets['nic0']?.routes).toBeUndefined();
  });

  it('optionally asks the guest to redact userdata and vendordata', () => {
    expect(buildMetadata(IDENTITY, { mac: MAC }, { redact: true }).redact).toEqual(['userdata', 'vendordata']);
    expect(buildMetadata(IDENTITY, { mac: MAC })).not.toHaveProperty('redact');
  });
});

describe('renderMetadata', () => {
  it('writes YAML with the MAC double-quoted, routes and no gateway4', () => {
    const text = renderMetadata(
      buildMetadata(IDENTITY, { mac: '00:50:56:12:34:56', ipCidr: '192.168.1.100/24', gateway: '192.168.1.1' }),
    );
    expect(text).toContain('macaddress: "00:50:56:12:34:56"');
    expect(text).toContain('to: 0.0.0.0/0');
    expect(text).not.toContain('default');
    expect(text).not.toContain('gateway4');
    expect(text.startsWith('instance-id: 564d1a2b-0000-4000-8000-000000000001\n')).toBe(true);
    // As PyYAML (YAML 1.1) reads it: an unquoted all-digit MAC would be a sexagesimal integer.
    const parsed = load(text, { schema: YAML11_SCHEMA }) as { network: { ethernets: { nic0: { match: { macaddress: unknown } } } } };
    expect(parsed.network.ethernets.nic0.match.macaddress).toBe('00:50:56:12:34:56');
  });
});

describe('validation', () => {
  it('rejects invalid hostnames, naming the VM name / --hostname', () => {
    for (const bad of ['web_01', '-web', 'web-', '', 'a'.repeat(64), 'web.01', 'wéb']) {
      expectInvalid(() => buildMetadata({ instanceId: 'i', hostname: bad }, { mac: MAC }), /hostname/);
    }
    expect(buildMetadata({ instanceId: 'i', hostname: 'a'.repeat(63) }, { mac: MAC })['local-hostname']).toBe('a'.repeat(63));
  });

  it('rejects an invalid --domain', () => {
    expectInvalid(() => buildMetadata({ instanceId: 'i', hostname: 'web', domain: 'bad_domain.com' }, { mac: MAC }), '--domain');
    expectInvalid(() => buildMetadata({ instanceId: 'i', hostname: 'web', domain: 'a..b' }, { mac: MAC }), '--domain');
  });

  it('rejects an empty instance-id and an invalid MAC', () => {
    expectInvalid(() => buildMetadata({ instanceId: ' ', hostname: 'web' }, { mac: MAC }), 'instance-id');
    expectInvalid(() => buildMetadata({ instanceId: 'i', hostname: 'web' }, { mac: '00:50:56:zz:00:01' }), 'MAC');
  });

  it('rejects --ip values that are not CIDR host addresses', () => {
    expectInvalid(() => buildNetworkConfig({ mac: MAC, ipCidr: '192.168.1.100' }), /--ip .*prefix length is missing/);
    expectInvalid(() => buildNetworkConfig({ mac: MAC, ipCidr: '192.168.1.300/24' }), '--ip');
    expectInvalid(() => buildNetworkConfig({ mac: MAC, ipCidr: '192.168.1.10/33' }), '--ip');
    expectInvalid(() => buildNetworkConfig({ mac: MAC, ipCidr: '192.168.1.10/0' }), '--ip');
    expectInvalid(() => buildNetworkConfig({ mac: MAC, ipCidr: '192.168.1.0/24' }), /--ip .*network address/);
    expectInvalid(() => buildNetworkConfig({ mac: MAC, ipCidr: '192.168.1.255/24' }), /--ip .*broadcast address/);
  });

  it('rejects a --gateway outside the --ip subnet', () => {
    const error = expectInvalid(
      () => buildNetworkConfig({ mac: MAC, ipCidr: '192.168.1.100/24', gateway: '192.168.2.1' }),
      "Invalid --gateway '192.168.2.1': it is outside the subnet of --ip 192.168.1.100/24",
    );
    expect(error.exitCode).toBe(2);
    // /23 includes 192.168.0.0-192.168.1.255
    expect(buildNetworkConfig({ mac: MAC, ipCidr: '192.168.1.100/23', gateway: '192.168.0.1' }).ethernets['nic0']?.routes).toEqual([
      { to: '0.0.0.0/0', via: '192.168.0.1' },
    ]);
    expectInvalid(() => buildNetworkConfig({ mac: MAC, ipCidr: '2001:db8::10/64', gateway: '2001:db9::1' }), '--gateway');
  });

  it('rejects other --gateway mistakes', () => {
    expectInvalid(() => buildNetworkConfig({ mac: MAC, gateway: '192.168.1.1' }), '--gateway needs --ip');
    expectInvalid(() => buildNetworkConfig({ mac: MAC, ipCidr: '192.168.1.100/24', gateway: 'router' }), '--gateway');
    expectInvalid(() => buildNetworkConfig({ mac: MAC, ipCidr: '192.168.1.100/24', gateway: '192.168.1.100' }), /--gateway .*own address/);
    expectInvalid(() => buildNetworkConfig({ mac: MAC, ipCidr: '192.168.1.100/24', gateway: '2001:db8::1' }), /--gateway .*IPv6/);
  });

  it('rejects --dns entries that are not IP addresses', () => {
    expectInvalid(() => buildNetworkConfig({ mac: MAC, dns: ['1.1.1.1', 'dns.google'] }), "Invalid --dns 'dns.google'");
  });
});
