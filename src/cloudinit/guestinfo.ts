/**
 * Assembles and reads the VM extraConfig keys cloud-init's VMware datasource consumes.
 *
 * Every create, clone and re-IP writes all six keys: metadata and userdata (gzip+base64) and an
 * explicitly EMPTY guestinfo.vendordata and .encoding. A clone copies its source's extraConfig, so
 * a stale vendordata must be overwritten; cloud-init treats an empty value as absent (and vSphere
 * removes an extraConfig key set to '').
 */
import { invalidInput } from '../core/errors.js';
import {
  GUESTINFO_ENCODING,
  assertGuestinfoSize,
  decodeGuestinfoValue,
  encodeGzipBase64,
  isAbsentGuestinfoValue,
} from './encoding.js';
import { buildMetadata, renderMetadata } from './metadata.js';
import type { GuestIdentity, MetadataOptions, NetworkRequest, RawUserData, UserDataRequest } from './types.js';
import { buildUserData } from './userdata.js';
import { loadYaml } from './yaml.js';

export const GUESTINFO_KEYS = {
  metadata: 'guestinfo.metadata',
  metadataEncoding: 'guestinfo.metadata.encoding',
  userdata: 'guestinfo.userdata',
  userdataEncoding: 'guestinfo.userdata.encoding',
  vendordata: 'guestinfo.vendordata',
  vendordataEncoding: 'guestinfo.vendordata.encoding',
} as const;

export interface GuestinfoInput {
  identity: GuestIdentity;
  network: NetworkRequest;
  userData: UserDataRequest | RawUserData;
  metadataOptions?: MetadataOptions;
}

function isRaw(userData: UserDataRequest | RawUserData): userData is RawUserData {
  return 'raw' in userData;
}

function encoded(key: string, text: string): string {
  const value = encodeGzipBase64(text);
  assertGuestinfoSize(key, value);
  return value;
}

/** The extraConfig entries to set before first power-on (or before the reboot of a re-IP). */
export function buildGuestinfo(input: GuestinfoInput): Record<string, string> {
  const metadata = renderMetadata(buildMetadata(input.identity, input.network, input.metadataOptions));
  let userdata: string;
  if (isRaw(input.userData)) {
    if (isAbsentGuestinfoValue(input.userData.raw)) throw invalidInput('The user data to keep is empty', 'Pass --ssh-key or --user-data');
    userdata = input.userData.raw;
  } else {
    userdata = buildUserData(input.identity, input.userData);
  }
  return {
    [GUESTINFO_KEYS.metadata]: encoded(GUESTINFO_KEYS.metadata, metadata),
    [GUESTINFO_KEYS.metadataEncoding]: GUESTINFO_ENCODING,
    [GUESTINFO_KEYS.userdata]: encoded(GUESTINFO_KEYS.userdata, userdata),
    [GUESTINFO_KEYS.userdataEncoding]: GUESTINFO_ENCODING,
    [GUESTINFO_KEYS.vendordata]: '',
    [GUESTINFO_KEYS.vendordataEncoding]: '',
  };
}

export interface DecodedGuestinfo {
  /** The parsed metadata mapping (JSON or YAML); the decoded text if it does not parse. */
  metadata?: unknown;
  userdata?: string;
  vendordata?: string;
}

function read(extraConfig: Record<string, string>, key: string): string | undefined {
  const value = extraConfig[key];
  if (value === undefined || isAbsentGuestinfoValue(value)) return undefined;
  const text = decodeGuestinfoValue(value, extraConfig[`${key}.encoding`]);
  return isAbsentGuestinfoValue(text) ? undefined : text;
}

/** Reads guestinfo the way cloud-init does: any accepted encoding; empty or '---' values are absent. */
export function decodeGuestinfo(extraConfig: Record<string, string>): DecodedGuestinfo {
  const result: DecodedGuestinfo = {};
  const metadata = read(extraConfig, GUESTINFO_KEYS.metadata);
  if (metadata !== undefined) {
    try {
      result.metadata = loadYaml(metadata);
    } catch {
      result.metadata = metadata;
    }
  }
  const userdata = read(extraConfig, GUESTINFO_KEYS.userdata);
  if (userdata !== undefined) result.userdata = userdata;
  const vendordata = read(extraConfig, GUESTINFO_KEYS.vendordata);
  if (vendordata !== undefined) result.vendordata = vendordata;
  return result;
}
