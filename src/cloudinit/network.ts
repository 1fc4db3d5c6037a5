/**
 * Netplan v2 network config for the VM's NIC. It belongs in METADATA (`metadata.network`): the
 * VMware datasource ignores network config in user data and vendor data.
 */
import { invalidInput } from '../core/errors.js';
import type { NetplanEthernet, NetworkConfigV2, NetworkRequest } from './types.js';
import { normalizeDomain, normalizeMac, parseCidr, parseIp, validateGateway } from './validate.js';

/** The netplan id and the name the NIC is renamed to (`set-name`), matched by MAC so PCI slot naming (ens160/ens192) never matters. */
export const NIC_NAME = 'nic0';

export const DEFAULT_ROUTE_V4 = '0.0.0.0/0';
export const DEFAULT_ROUTE_V6 = '::/0';

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}

/**
 * Builds `{version: 2, ethernets: {nic0: ...}}`. Static: `addresses`, `routes: [{to: 0.0.0.0/0, via}]`
 * (`::/0` for IPv6; never the deprecated gateway4), `nameservers`. DHCP when no ipCidr;
 * --dns/search domains are then added to what DHCP provides.
 *
 * The default route is spelled as a prefix, not `to: default`: cloud-init's own network-state
 * parser (every renderer before 22.4, every renderer but netplan until 2025; Ubuntu 22.04's GA
 * images ship 22.1) rejects `default` ("Address default is not a valid ip address", LP #1978543),
 * and netplan 0.99 does not know it. Every cloud-init and every netplan accepts the prefix.
 */
export function buildNetworkConfig(request: NetworkRequest, domain?: string): NetworkConfigV2 {
  const macaddress = normalizeMac(request.mac);
  const dns = unique((request.dns ?? []).map((server) => parseIp(server, '--dns').address));
  const search = unique(
    request.searchDomains !== undefined
      ? request.searchDomains.map((d) => normalizeDomain(d, 'search domain'))
      : domain !== undefined
        ? [normalizeDomain(domain)]
        : [],
  );

  const ethernet: NetplanEthernet = { match: { macaddress }, 'set-name': NIC_NAME, dhcp4: true };

  if (request.ipCidr === undefined) {
    if (request.gateway !== undefined) {
      throw invalidInput('--gateway needs --ip: without --ip the VM uses DHCP, which provides the gateway', 'Pass --ip ADDRESS/PREFIX with --gateway, or drop --gateway');
    }
  } else {
    const cidr = parseCidr(request.ipCidr, '--ip');
    ethernet.dhcp4 = false;
    if (cidr.family === 6) ethernet.dhcp6 = false;
    ethernet.addresses = [cidr.cidr];
    if (request.gateway !== undefined) {
      ethernet.routes = [{ to: cidr.family === 6 ? DEFAULT_ROUTE_V6 : DEFAULT_ROUTE_V4, via: validateGateway(request.gateway, cidr) }];
    }
  }

  // Search domains only with servers: cloud-init's parser refuses a nameservers entry without
  // addresses ("Command missing {'address'}") and drops it; without servers they serve nothing.
  if (dns.length > 0) ethernet.nameservers = { addresses: dns, ...(search.length > 0 ? { search } : {}) };
  return { version: 2, ethernets: { [NIC_NAME]: ethernet } };
}
