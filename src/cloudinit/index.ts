/** cloud-init through guestinfo: pure builders, decoders and review for ceso's VMware guests. */
export type {
  GuestIdentity,
  MetadataDocument,
  MetadataOptions,
  NetplanEthernet,
  NetworkConfigV2,
  NetworkRequest,
  RawUserData,
  UserDataRequest,
} from './types.js';
export {
  GUESTINFO_ENCODING,
  GUESTINFO_VALUE_LIMIT,
  assertGuestinfoSize,
  decodeGuestinfoValue,
  encodeGzipBase64,
  isAbsentGuestinfoValue,
} from './encoding.js';
export { DEFAULT_ROUTE_V4, DEFAULT_ROUTE_V6, NIC_NAME, buildNetworkConfig } from './network.js';
export { isMimeMessage, parseMultipart, renderMultipart, type UserDataPart } from './mime.js';
export { CLOUD_CONFIG_TYPE, SHELL_SCRIPT_TYPE, partTypeOf, userDataParts } from './parts.js';
export { READY_KEY, READY_PER_BOOT_PATH, READY_PER_BOOT_SCRIPT, READY_RUNCMD } from './ready.js';
export { buildMetadata, normalizeIdentity, renderMetadata, type NormalizedIdentity } from './metadata.js';
export {
  CLOUD_CONFIG_HEADER,
  DEFAULT_USER,
  buildCloudConfig,
  buildUserData,
  mergeCloudConfig,
  parseCloudConfig,
  readyPartContent,
  renderCloudConfig,
  retargetUserData,
} from './userdata.js';
export { GUESTINFO_KEYS, buildGuestinfo, decodeGuestinfo, type DecodedGuestinfo, type GuestinfoInput } from './guestinfo.js';
export { MASK, maskPrivateKeyBlocks, maskSecrets, renderGuestinfoReview, reviewGuestinfo, type GuestinfoReview } from './review.js';
export {
  normalizeDomain,
  normalizeHostname,
  normalizeMac,
  parseCidr,
  validateGateway,
  validateSshPublicKey,
  type ParsedCidr,
} from './validate.js';
