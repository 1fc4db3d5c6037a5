/**
 * Input validation for the cloud-init builders. Every failure is `invalidInput` (INVALID_INPUT)
 * whose message names the flag the value came from.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { invalidInput } from '../core/errors.js';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function shown(value: string, max = 60): string {
  const oneLine = value.replace(/\s+/g, ' ');
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}

/** A hostname is one DNS label: 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'. Returned lowercased. */
export function normalizeHostname(hostname: string): string {
  const lower = hostname.trim().toLowerCase();
  if (!DNS_LABEL.test(lower)) {
    throw invalidInput(
      `Invalid hostname '${shown(hostname)}' (from the VM name or --hostname): a hostname is 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'`,
      "Choose a VM name such as 'web-01', or pass --hostname with a valid DNS label",
    );
  }
  return lower;
}

/** A DNS name: dot-separated DNS labels, at most 253 characters; a trailing dot is dropped. Returned lowercased. */
export function normalizeDomain(domain: string, flag = '--domain'): string {
  const lower = domain.trim().toLowerCase().replace(/\.$/, '');
  const labels = lower.split('.');
  if (lower.length === 0 || lower.length > 253 || !labels.every((label) => DNS_LABEL.test(label))) {
    throw invalidInput(
      `Invalid ${flag} '${shown(domain)}': expected a DNS name such as 'example.com' (labels of a-z, 0-9 and '-', at most 253 characters)`,
    );
  }
  return lower;
}

export function normalizeFqdn(hostname: string, domain: string): string {
  const fqdn = `${hostname}.${domain}`;
  if (fqdn.length > 253) {
    throw invalidInput(`The fully qualified name '${shown(fqdn)}' is longer than 253 characters`, 'Use a shorter --domain or VM name');
  }
  return fqdn;
}

/** A MAC address with ':' or '-' separators, returned lowercase with ':'. */
export function normalizeMac(mac: string): string {
  const trimmed = mac.trim();
  if (!/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$/.test(trimmed)) {
    throw invalidInput(`Invalid NIC MAC address '${shown(mac)}': expected six hex pairs such as 00:50:56:aa:bb:cc`);
  }
  return trimmed.toLowerCase().replace(/-/g, ':');
}

export type IpFamily = 4 | 6;

export interface ParsedCidr {
  family: IpFamily;
  /** The address as given (IPv6 lowercased), without the prefix. */
  address: string;
  prefix: number;
  /** `address/prefix`, normalised. */
  cidr: string;
}

function ipFamily(address: string): IpFamily | undefined {
  if (isIPv4(address)) return 4;
  if (isIPv6(address) && !address.includes('%')) return 6;
  return undefined;
}

/** The address as a bigint (32 bits for IPv4, 128 for IPv6). The address must already be valid. */
export function ipToBigInt(address: string, family: IpFamily): bigint {
  if (family === 4) {
    return address.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
  }
  let text = address.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1] !== undefined) {
    const n = ipToBigInt(v4[1], 4);
    text = `${text.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(missing).fill('0'), ...tailGroups];
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}

function bits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

function networkOf(value: bigint, prefix: number, family: IpFamily): bigint {
  const width = BigInt(bits(family));
  const hostBits = width - BigInt(prefix);
  const all = (1n << width) - 1n;
  return value & (all ^ ((1n << hostBits) - 1n));
}

/** Parses the --ip value: an address with a prefix length (`192.168.1.100/24`, `2001:db8::10/64`). */
export function parseCidr(value: string, flag = '--ip'): ParsedCidr {
  const trimmed = value.trim();
  const slash = trimmed.indexOf('/');
  const address = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const prefixText = slash < 0 ? '' : trimmed.slice(slash + 1);
  const family = ipFamily(address);
  if (family === undefined) {
    throw invalidInput(
      `Invalid ${flag} '${shown(value)}': '${shown(address)}' is not an IPv4 or IPv6 address`,
      `Give the address with its prefix length, e.g. ${flag} 192.168.1.100/24`,
    );
  }
  if (!/^\d{1,3}$/.test(prefixText)) {
    throw invalidInput(
      `Invalid ${flag} '${shown(value)}': the prefix length is missing; expected CIDR form such as 192.168.1.100/24`,
      `Add the subnet's prefix length, e.g. ${flag} ${address}/24`,
    );
  }
  const prefix = Number(prefixText);
  if (prefix < 1 || prefix > bits(family)) {
    throw invalidInput(`Invalid ${flag} '${shown(value)}': the prefix length must be 1-${bits(family)}`);
  }
  const normalizedAddress = family === 6 ? address.toLowerCase() : address;
  if (family === 4 && prefix <= 30) {
    const n = ipToBigInt(address, 4);
    const network = networkOf(n, prefix, 4);
    const broadcast = network | ((1n << BigInt(32 - prefix)) - 1n);
    if (n === network || n === broadcast) {
      throw invalidInput(
        `Invalid ${flag} '${shown(value)}': ${address} is the ${n === network ? 'network' : 'broadcast'} address of its /${prefix} subnet, not a host address`,
      );
    }
  }
  return { family, address: normalizedAddress, prefix, cidr: `${normalizedAddress}/${prefix}` };
}

export function parseIp(value: string, flag: string): { family: IpFamily; address: string } {
  const trimmed = value.trim();
  const family = ipFamily(trimmed);
  if (family === undefined) {
    throw invalidInput(`Invalid ${flag} '${shown(value)}': not an IPv4 or IPv6 address`);
  }
  return { family, address: family === 6 ? trimmed.toLowerCase() : trimmed };
}

/** The gateway must be a host address inside the --ip subnet and differ from the VM's own address. */
export function validateGateway(gatewayText: string, cidr: ParsedCidr): string {
  const gateway = parseIp(gatewayText, '--gateway');
  if (gateway.family !== cidr.family) {
    throw invalidInput(
      `Invalid --gateway '${gateway.address}': it is IPv${gateway.family} but --ip ${cidr.cidr} is IPv${cidr.family}`,
    );
  }
  const gw = ipToBigInt(gateway.address, gateway.family);
  const ip = ipToBigInt(cidr.address, cidr.family);
  if (networkOf(gw, cidr.prefix, cidr.family) !== networkOf(ip, cidr.prefix, cidr.family)) {
    throw invalidInput(
      `Invalid --gateway '${gateway.address}': it is outside the subnet of --ip ${cidr.cidr}`,
      'The gateway must be reachable on the VM’s own subnet; check the prefix length of --ip and the --gateway address',
    );
  }
  if (gw === ip) {
    throw invalidInput(`Invalid --gateway '${gateway.address}': it is the VM's own address (--ip ${cidr.cidr})`);
  }
  return gateway.address;
}

/** SSH public key algorithms accepted in authorized_keys (plus their -cert-v01@openssh.com variants). */
const SSH_KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ssh-dss',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

function isSshKeyType(token: string): boolean {
  return SSH_KEY_TYPES.has(token) || SSH_KEY_TYPES.has(token.replace(/-cert-v01@openssh\.com$/, ''));
}

/**
 * Validates one authorized_keys line: optional options, a key type (ssh-ed25519, ssh-rsa,
 * ecdsa-sha2-*, sk-*), a base64 body whose embedded type matches, an optional comment.
 * Returns the trimmed line.
 */
export function validateSshPublicKey(line: string): string {
  const trimmed = line.trim();
  const fail = (why: string, hint?: string): never => {
    throw invalidInput(
      `Invalid --ssh-key '${shown(trimmed, 40)}': ${why}`,
      hint ?? 'Pass the public key line (the .pub file), e.g. ssh-ed25519 AAAAC3Nza... user@host',
    );
  };
  if (trimmed === '') fail('the key is empty');
  if (/PRIVATE KEY/.test(trimmed)) {
    fail('this is a private key', 'Never pass a private key; pass the matching public key (the .pub file)');
  }
  if (/[\r\n]/.test(trimmed)) fail('one key per --ssh-key: the value spans several lines');
  const tokens = trimmed.split(/\s+/);
  const typeIndex = tokens.findIndex(isSshKeyType);
  if (typeIndex < 0) {
    fail('no known key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com)');
  }
  const type = tokens[typeIndex] ?? '';
  const body = tokens[typeIndex + 1] ?? '';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) fail(`the key body after '${type}' is not base64`);
  // The blob starts with the key type as an SSH string (uint32 length + bytes); it must match.
  const blob = Buffer.from(body, 'base64');
  const length = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  const embedded = length > 0 && length <= 64 && blob.length >= 4 + length ? blob.subarray(4, 4 + length).toString('latin1') : undefined;
  if (embedded !== type) fail(`the key body does not contain a ${type} key`);
  return trimmed;
}
