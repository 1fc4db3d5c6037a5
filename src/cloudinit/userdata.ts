/**
 * The guestinfo.userdata document: a #cloud-config for hostname, the login user and its SSH keys,
 * merged with a #cloud-config --user-data, or followed by the user's parts in a MIME multipart
 * for any other kind. Either way it ends with ceso's ready report (./ready.ts), after everything
 * the user asked for.
 */
import { invalidInput } from '../core/errors.js';
import { normalizeIdentity } from './metadata.js';
import { isMimeMessage, parseMultipart, renderMultipart, type UserDataPart } from './mime.js';
import { CLOUD_CONFIG_TYPE, SHELL_SCRIPT_TYPE, userDataParts } from './parts.js';
import { READY_PER_BOOT_PATH, READY_RUNCMD, readyPerBootFile } from './ready.js';
import type { GuestIdentity, UserDataRequest } from './types.js';
import { validateSshPublicKey } from './validate.js';
import { dumpYaml, isMapping, loadYaml, yamlErrorSummary, type YamlMapping } from './yaml.js';

export const CLOUD_CONFIG_HEADER = '#cloud-config';
export const DEFAULT_USER = 'ubuntu';
const PASSWORDLESS_SUDO = 'ALL=(ALL) NOPASSWD:ALL';

/** Sets a key without ever touching a prototype (a YAML key may be `__proto__`). */
function setKey(target: YamlMapping, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function isCloudConfig(text: string): boolean {
  return /^#cloud-config[ \t]*(\r?\n|$)/.test(text);
}

/** Parses a --user-data file: it must start with `#cloud-config` and be a YAML mapping (an empty document is `{}`). */
export function parseCloudConfig(text: string, source = '--user-data'): YamlMapping {
  if (!isCloudConfig(text)) {
    throw invalidInput(`${source} must start with a '#cloud-config' line (found '${(text.split('\n')[0] ?? '').slice(0, 40)}')`);
  }
  let document: unknown;
  try {
    document = loadYaml(text);
  } catch (error) {
    throw invalidInput(`${source} is not valid YAML: ${yamlErrorSummary(error)}`, 'Check the file with a YAML linter (cloud-init reads YAML 1.1)');
  }
  if (document === null) return {};
  if (!isMapping(document)) {
    throw invalidInput(`${source} must be a YAML mapping of cloud-config modules (e.g. 'packages: [nginx]'), not a ${Array.isArray(document) ? 'list' : typeof document}`);
  }
  return document;
}

/**
 * write_files permissions read as YAML 1.1 octal (`0644`) load as integers (420); they are written
 * back as the octal string '0644', which cloud-init parses as octal too, so plans stay readable.
 */
export function withOctalPermissions(document: YamlMapping): YamlMapping {
  const files = document['write_files'];
  if (!Array.isArray(files)) return document;
  const result: YamlMapping = {};
  for (const [key, value] of Object.entries(document)) setKey(result, key, value);
  setKey(
    result,
    'write_files',
    files.map((file: unknown) => {
      if (!isMapping(file) || typeof file['permissions'] !== 'number' || !Number.isInteger(file['permissions'])) return file;
      const copy: YamlMapping = {};
      for (const [key, value] of Object.entries(file)) setKey(copy, key, value);
      setKey(copy, 'permissions', `0${file['permissions'].toString(8)}`);
      return copy;
    }),
  );
  return result;
}

export function renderCloudConfig(document: YamlMapping): string {
  return `${CLOUD_CONFIG_HEADER}\n${dumpYaml(withOctalPermissions(document))}`;
}

function validateUserName(user: string): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) {
    throw invalidInput(`Invalid --user '${user}': expected a Linux user name (lowercase letters, digits, '_' and '-', at most 32 characters)`);
  }
  return user;
}

function dedupeScalars(items: unknown[]): unknown[] {
  const seen = new Set<unknown>();
  return items.filter((item) => {
    if (item !== null && typeof item === 'object') return true;
    if (seen.has(item)) return false;
    seen.add(item);
    return true;
  });
}

function groupList(groups: unknown): unknown[] {
  if (typeof groups === 'string') return groups.split(',').map((g) => g.trim()).filter((g) => g !== '');
  return Array.isArray(groups) ? groups : [groups];
}

/** cloud-init accepts `users` as a list, a comma-separated string or a mapping of name -> config. */
function userEntries(users: unknown): unknown[] {
  if (typeof users === 'string') return users.split(',').map((u) => u.trim()).filter((u) => u !== '');
  if (Array.isArray(users)) return users;
  if (isMapping(users)) {
    return Object.entries(users).map(([name, config]) => (isMapping(config) ? { name, ...config } : name));
  }
  return [users];
}

function userName(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry;
  if (isMapping(entry)) return typeof entry['name'] === 'string' ? entry['name'] : 'default';
  return undefined;
}

function mergeUser(base: unknown, overlay: unknown): unknown {
  if (!isMapping(overlay)) return base; // a bare name adds nothing to an existing entry
  if (!isMapping(base)) return overlay;
  const merged = mergeCloudConfig(base, overlay) as YamlMapping;
  if (base['groups'] !== undefined && overlay['groups'] !== undefined) {
    setKey(merged, 'groups', dedupeScalars([...groupList(base['groups']), ...groupList(overlay['groups'])]));
  }
  return merged;
}

function mergeUsers(base: unknown, overlay: unknown): unknown[] {
  const result = userEntries(base).slice();
  for (const entry of userEntries(overlay)) {
    const name = userName(entry);
    const index = name === undefined ? -1 : result.findIndex((existing) => userName(existing) === name);
    if (index < 0) result.push(entry);
    else result[index] = mergeUser(result[index], entry);
  }
  return result;
}

/**
 * Merge rule (--user-data over the generated document): mappings merge deeply; lists are appended (generated items first, the user's after, repeated scalars dropped), and `users` entries with the same name merge into one with their keys and groups unioned; any other conflict: the user's value wins.
 */
export function mergeCloudConfig(base: unknown, overlay: unknown, path: readonly string[] = []): unknown {
  if (isMapping(base) && isMapping(overlay)) {
    const result: YamlMapping = {};
    for (const [key, value] of Object.entries(base)) setKey(result, key, value);
    for (const [key, value] of Object.entries(overlay)) {
      if (!Object.hasOwn(result, key)) setKey(result, key, value);
      else if (path.length === 0 && key === 'users') setKey(result, key, mergeUsers(result[key], value));
      else setKey(result, key, mergeCloudConfig(result[key], value, [...path, key]));
    }
    return result;
  }
  if (Array.isArray(base) && Array.isArray(overlay)) return dedupeScalars([...base, ...overlay]);
  return overlay;
}

/** The generated cloud-config (hostname, fqdn, the login user with its keys) before any user data. */
function generatedCloudConfig(identity: GuestIdentity, request: UserDataRequest): YamlMapping {
  const id = normalizeIdentity(identity);
  const user = validateUserName(request.user ?? DEFAULT_USER);
  const keys = dedupeScalars(request.sshKeys.map(validateSshPublicKey));
  const entry: YamlMapping = { name: user, sudo: PASSWORDLESS_SUDO, shell: '/bin/bash' };
  if (keys.length > 0) entry['ssh_authorized_keys'] = keys;
  return {
    hostname: id.hostname,
    ...(id.domain === undefined ? {} : { fqdn: id.fqdn }),
    manage_etc_hosts: true,
    // 'default' makes cloud-init merge our entry into the image's default user (ubuntu: its groups
    // adm, sudo, lxd...). For another --user it is left out so no unused 'ubuntu' account appears.
    users: user === DEFAULT_USER ? ['default', entry] : [entry],
  };
}

/** A document's runcmd and write_files with ceso's ready report last (once). */
function withReadyReport(document: YamlMapping): YamlMapping {
  const result: YamlMapping = {};
  for (const [key, value] of Object.entries(document)) setKey(result, key, value);
  const runcmd = Array.isArray(document['runcmd']) ? document['runcmd'] : document['runcmd'] === undefined || document['runcmd'] === null ? [] : [document['runcmd']];
  setKey(result, 'runcmd', [...runcmd.filter((entry) => entry !== READY_RUNCMD), READY_RUNCMD]);
  const files = Array.isArray(document['write_files']) ? document['write_files'] : [];
  setKey(result, 'write_files', [...files.filter((file) => !(isMapping(file) && file['path'] === READY_PER_BOOT_PATH)), readyPerBootFile()]);
  return result;
}

/**
 * The last part of a multipart: appends ceso's ready report to whatever runcmd and write_files
 * the earlier parts left (cloud-init otherwise lets a later part's list replace an earlier one).
 */
export function readyPartContent(): string {
  return renderCloudConfig({
    merge_how: [
      { name: 'list', settings: ['append'] },
      { name: 'dict', settings: ['no_replace', 'recurse_list'] },
    ],
    runcmd: [READY_RUNCMD],
    write_files: [readyPerBootFile()],
  });
}

function readyPart(): UserDataPart {
  return { type: CLOUD_CONFIG_TYPE, content: readyPartContent() };
}

/**
 * Scripts run in the scripts-user stage in name order, and runcmd runs as scripts/runcmd: a
 * `part-NNN-` prefix keeps every user script before runcmd, whose last entry is the ready report.
 */
function placed(part: UserDataPart, index: number): UserDataPart {
  if (part.type !== SHELL_SCRIPT_TYPE) return part;
  const original = (part.filename ?? '').replace(/[^A-Za-z0-9._-]/g, '_').replace(/^part-\d{3}-?/, '');
  const number = String(index).padStart(3, '0');
  return { ...part, filename: original === '' ? `part-${number}` : `part-${number}-${original}` };
}

/** The user data of a new VM: one #cloud-config, or a MIME multipart when --user-data is another kind. */
export function buildUserData(identity: GuestIdentity, request: UserDataRequest): string {
  const generated = generatedCloudConfig(identity, request);
  const extra = request.extraUserData;
  if (extra === undefined) return renderCloudConfig(withReadyReport(generated));
  const parts = userDataParts(extra);
  if (!isMimeMessage(extra) && parts.length === 1 && parts[0]!.type === CLOUD_CONFIG_TYPE) {
    return renderCloudConfig(withReadyReport(mergeCloudConfig(generated, parseCloudConfig(extra)) as YamlMapping));
  }
  return renderMultipart([{ type: CLOUD_CONFIG_TYPE, content: renderCloudConfig(generated) }, ...parts.map((part, index) => placed(part, index + 2)), readyPart()]);
}

/** The generated cloud-config as a mapping (before rendering), merged with a #cloud-config --user-data. */
export function buildCloudConfig(identity: GuestIdentity, request: UserDataRequest): YamlMapping {
  const generated = generatedCloudConfig(identity, request);
  const document = request.extraUserData === undefined ? generated : (mergeCloudConfig(generated, parseCloudConfig(request.extraUserData)) as YamlMapping);
  return withReadyReport(document);
}

function retargetDocument(document: YamlMapping, id: ReturnType<typeof normalizeIdentity>): YamlMapping {
  const result: YamlMapping = {};
  for (const [key, value] of Object.entries(document)) setKey(result, key, value);
  if (Object.hasOwn(document, 'hostname')) setKey(result, 'hostname', id.hostname);
  if (id.domain === undefined) delete result['fqdn'];
  else if (Object.hasOwn(document, 'hostname') || Object.hasOwn(document, 'fqdn')) setKey(result, 'fqdn', id.fqdn);
  return result;
}

function parseSourceCloudConfig(text: string): YamlMapping {
  try {
    return parseCloudConfig(text, "The source VM's user data");
  } catch (error) {
    if (error instanceof Error) {
      throw invalidInput(error.message, 'Pass --ssh-key or --user-data to give the clone new user data instead of the source VM’s');
    }
    throw error;
  }
}

/**
 * For `vm clone` without new --ssh-key/--user-data: keeps the SOURCE VM's decoded user data with
 * the clone's hostname and fqdn (fqdn removed when the clone has no domain) in every cloud-config
 * part that names one, and ceso's ready report last (added when the source's lacks it). Other
 * parts are kept as they are; YAML comments of the source are not.
 */
export function retargetUserData(sourceUserData: string, identity: GuestIdentity): string {
  const id = normalizeIdentity(identity);
  if (isCloudConfig(sourceUserData) && !isMimeMessage(sourceUserData)) {
    const document = retargetDocument(parseSourceCloudConfig(sourceUserData), id);
    if (!Object.hasOwn(document, 'hostname')) setKey(document, 'hostname', id.hostname);
    return renderCloudConfig(withReadyReport(document));
  }
  const parts = isMimeMessage(sourceUserData) ? parseMultipart(sourceUserData, "The source VM's user data") : userDataParts(sourceUserData, "The source VM's user data");
  const ready = readyPartContent();
  const kept = parts
    .filter((part) => !(part.type === CLOUD_CONFIG_TYPE && part.content.trimEnd() === ready.trimEnd()))
    .map((part) => (part.type === CLOUD_CONFIG_TYPE && isCloudConfig(part.content) ? { ...part, content: renderCloudConfig(retargetDocument(parseSourceCloudConfig(part.content), id)) } : part));
  return renderMultipart([...kept, readyPart()]);
}
