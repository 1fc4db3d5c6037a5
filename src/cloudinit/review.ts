/**
 * Review of guestinfo for --dry-run plans and `vm info`: the decoded documents with secrets masked.
 * SSH public keys stay visible; a masked value keeps its key so a reviewer sees it is set.
 */
import { decodeGuestinfoValue, isGzip } from './encoding.js';
import { decodeGuestinfo } from './guestinfo.js';
import { isMimeMessage, parseMultipart } from './mime.js';
import { withOctalPermissions } from './userdata.js';
import { dumpYaml, isMapping, loadYaml, type YamlMapping } from './yaml.js';
import { gunzipSync } from 'node:zlib';

export const MASK = '********';

/** Keys (any depth, '-' read as '_') whose values are secrets. */
const SECRET_KEYS = new Set([
  'password',
  'passwd',
  'hashed_passwd',
  'plain_text_passwd',
  'token', // ubuntu_pro / ubuntu_advantage
  'registration_key', // landscape
]);

const PRIVATE_KEY_BLOCK = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g;
const SECRET_PATH =
  /(^|\/)(id_(rsa|dsa|ecdsa|ed25519)(_sk)?|ssh_host_[a-z0-9]+_key|[^/]*\.(key|p12|pfx|keytab|jks)|[^/]*(secret|passw|token|credential|private)[^/]*|\.env|\.netrc|\.pgpass|shadow|gshadow)$/i;

function containsPrivateKey(text: string): boolean {
  return /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text);
}

/** Replaces PEM private key blocks inside free text (a shell script, unparseable YAML). */
export function maskPrivateKeyBlocks(text: string): string {
  return text.replace(PRIVATE_KEY_BLOCK, MASK);
}

function maskValue(value: unknown): unknown {
  return value === null || value === undefined || value === '' ? value : MASK;
}

/** `user:password` lines of chpasswd.list keep the user name. */
function maskChpasswdList(list: unknown): unknown {
  const maskLine = (line: string): string => {
    const colon = line.indexOf(':');
    return colon < 0 ? MASK : `${line.slice(0, colon)}:${MASK}`;
  };
  if (typeof list === 'string') return list.split('\n').map((line) => (line.trim() === '' ? line : maskLine(line))).join('\n');
  if (Array.isArray(list)) return list.map((line) => (typeof line === 'string' ? maskLine(line) : maskValue(line)));
  return maskValue(list);
}

/** write_files content as text, decoding cloud-init's write_files encodings when possible. */
function writeFileText(content: unknown, encoding: unknown): string {
  if (typeof content !== 'string') return '';
  const enc = typeof encoding === 'string' ? encoding.toLowerCase() : '';
  try {
    if (['b64', 'base64'].includes(enc)) return decodeGuestinfoValue(content, 'base64');
    if (['gz+b64', 'gz+base64', 'gzip+b64', 'gzip+base64'].includes(enc)) return decodeGuestinfoValue(content, 'gzip+base64');
    if (['gz', 'gzip'].includes(enc)) {
      const bytes = Buffer.from(content, 'latin1');
      return isGzip(bytes) ? gunzipSync(bytes).toString('utf8') : content;
    }
  } catch {
    return content;
  }
  return content;
}

function maskWriteFiles(files: unknown): unknown {
  if (!Array.isArray(files)) return maskTree(files, ['write_files']);
  return files.map((file) => {
    if (!isMapping(file)) return maskTree(file, ['write_files']);
    const masked = maskTree(file, ['write_files', '*']) as YamlMapping;
    const path = typeof file['path'] === 'string' ? file['path'] : '';
    if (Object.hasOwn(file, 'content') && (SECRET_PATH.test(path) || containsPrivateKey(writeFileText(file['content'], file['encoding'])))) {
      masked['content'] = maskValue(file['content']);
    }
    return masked;
  });
}

/** Masks secrets in a decoded cloud-config or metadata document. Returns a copy. */
export function maskSecrets(value: unknown, path: readonly string[] = []): unknown {
  return maskTree(value, path);
}

function maskTree(value: unknown, path: readonly string[]): unknown {
  if (typeof value === 'string') return containsPrivateKey(value) ? MASK : value;
  if (Array.isArray(value)) return value.map((item) => maskTree(item, [...path, '*']));
  if (!isMapping(value)) return value;
  const result: YamlMapping = {};
  for (const [key, child] of Object.entries(value)) {
    const name = key.toLowerCase().replace(/-/g, '_');
    let masked: unknown;
    if (SECRET_KEYS.has(name)) masked = maskValue(child);
    else if (path.length === 1 && path[0] === 'chpasswd' && name === 'list') masked = maskChpasswdList(child);
    else if (path.length === 1 && path[0] === 'ssh_keys' && name.endsWith('_private')) masked = maskValue(child);
    else if (path.length === 0 && name === 'write_files') masked = maskWriteFiles(child);
    else masked = maskTree(child, [...path, name]);
    Object.defineProperty(result, key, { value: masked, enumerable: true, writable: true, configurable: true });
  }
  return result;
}

/** A multipart shows every part: its type, file name and content, reviewed like a single document. */
function reviewUserdata(text: string): unknown {
  if (isMimeMessage(text)) {
    try {
      return {
        multipart: parseMultipart(text).map((part) => ({
          type: part.type,
          ...(part.filename === undefined ? {} : { filename: part.filename }),
          content: reviewDocument(part.content),
        })),
      };
    } catch {
      return maskPrivateKeyBlocks(text);
    }
  }
  return reviewDocument(text);
}

function reviewDocument(text: string): unknown {
  if (/^#cloud-config[ \t]*(\r?\n|$)/.test(text)) {
    try {
      const document = loadYaml(text);
      const mapping = isMapping(document) ? withOctalPermissions(document) : (document ?? {});
      return maskSecrets(mapping);
    } catch {
      // fall through: show the text
    }
  }
  return maskPrivateKeyBlocks(text);
}

function reviewMetadata(metadata: unknown): unknown {
  if (typeof metadata === 'string') return maskPrivateKeyBlocks(metadata);
  if (!isMapping(metadata)) return metadata;
  const copy: YamlMapping = { ...metadata };
  const network = copy['network'];
  const encoding = copy['network.encoding'];
  if (typeof network === 'string' && typeof encoding === 'string') {
    // cloud-init decodes a string network config per metadata['network.encoding'].
    try {
      copy['network'] = loadYaml(decodeGuestinfoValue(network, encoding));
      delete copy['network.encoding'];
    } catch {
      // keep it as stored
    }
  }
  return maskSecrets(copy);
}

export interface GuestinfoReview {
  metadata: unknown;
  userdata: unknown;
  vendordata?: unknown;
}

/** Decoded metadata and user data (a parsed mapping for #cloud-config, text otherwise) with secrets masked; null when absent. */
export function reviewGuestinfo(keys: Record<string, string>): GuestinfoReview {
  const decoded = decodeGuestinfo(keys);
  const review: GuestinfoReview = {
    metadata: decoded.metadata === undefined ? null : reviewMetadata(decoded.metadata),
    userdata: decoded.userdata === undefined ? null : reviewUserdata(decoded.userdata),
  };
  if (decoded.vendordata !== undefined) review.vendordata = reviewUserdata(decoded.vendordata);
  return review;
}

/** The review as YAML for a plan, one section per guestinfo document. */
export function renderGuestinfoReview(keys: Record<string, string>): string {
  const review = reviewGuestinfo(keys);
  const sections: YamlMapping = { 'guestinfo.metadata': review.metadata, 'guestinfo.userdata': review.userdata };
  if (review.vendordata !== undefined) sections['guestinfo.vendordata'] = review.vendordata;
  return dumpYaml(sections);
}
