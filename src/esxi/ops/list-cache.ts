/**
 * `vm list` as real vSphere clients keep an inventory: incrementally. The first list of a session
 * makes a PropertyCollector with one filter (the list's object set and paths), reads the full set
 * with WaitForUpdatesEx(version "") and stores the collector, the filter, the data version and
 * every VM's properties in a cache file next to the session cache. Collectors belong to the
 * session, which ceso keeps across invocations (the seeding list pays one plain read more), so the next list (another process) asks the same
 * collector WaitForUpdatesEx(the stored version, maxWaitSeconds 0) and gets only what changed
 * since: VMs that entered or left, changed properties.
 *
 * One WaitForUpdatesEx at a time per collector (two with different versions would break each
 * other), so the cache is used under a lock; a busy lock means a plain read. Anything unexpected
 * (another session, a collector the host no longer knows, InvalidCollectorVersion,
 * RequestCanceled, a host that leaves keyed paths out, a damaged file) discards the cache: the
 * caller's plain read answers and the cache is seeded again. CESO_NO_LIST_CACHE=1: plain reads only.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EXIT, isCesoError } from '../../core/errors.js';
import { acquireVmLock, type VmLock } from '../../core/lock.js';
import { logger } from '../../core/log.js';
import { MoRef, asArray, asMoRef, asObject, asString, type Decoded } from '../soap/xml.js';
import type { VimClient } from '../vim/client.js';
import { inventoryTraversal, type ObjectProperties } from '../vim/property-collector.js';
import { applyChanges, type Properties } from '../vim/wait.js';

const FORMAT = 1;
/** How long a list waits for another process's incremental read before it reads plainly. */
const LOCK_TIMEOUT_MS = 2000;
/** Truncated update sets followed at most this often in one read. */
const MAX_TRUNCATED_FOLLOWS = 1000;

interface CachedList {
  format: typeof FORMAT;
  /** A hash of the session cookie: a collector belongs to one session. */
  session: string;
  paths: string[];
  collector: string;
  filter: string;
  version: string;
  vms: Record<string, Properties>;
}

class DiscardCache extends Error {}

/**
 * The VMs with `paths`, from the session's collector where the cache allows, else from `plainRead`
 * (which tells, through `keyedPathsSupported` afterwards, whether the host answers keyed paths).
 */
export async function readVmsIncrementally(
  client: VimClient,
  paths: string[],
  plainRead: () => Promise<ObjectProperties[]>,
  keyedPathsSupported: () => boolean,
): Promise<ObjectProperties[]> {
  const store = client.sessionStore;
  if (store === undefined || process.env.CESO_NO_LIST_CACHE === '1') return plainRead();
  const home = dirname(store.directory);
  const file = join(home, 'list-cache', `${store.key}.json`);
  const { host, port } = client.address;
  let lock: VmLock;
  try {
    lock = await acquireVmLock({ host: `${host}:${port}`, vm: 'list-cache', command: 'vm list', timeoutMs: LOCK_TIMEOUT_MS, home });
  } catch (error) {
    logger().debug({ error: String(error) }, 'list cache busy; reading plainly');
    return plainRead();
  }
  try {
    const cached = load(file, paths);
    await client.connect();
    const session = sessionOf(client);
    if (cached !== undefined && cached.session === session) {
      try {
        const next = await advance(client, cached);
        if (next.version !== cached.version) save(file, next);
        return objectsOf(next);
      } catch (error) {
        // A host that cannot be reached (or refuses the login) is not asked again for a plain read.
        if (isCesoError(error) && (error.exitCode === EXIT.UNREACHABLE || error.exitCode === EXIT.AUTH)) throw error;
        logger().debug({ error: String(error) }, 'list cache discarded');
        await destroy(client, cached.collector);
      }
    }
    rmSync(file, { force: true });
    // The plain read first: it finds out whether the host answers keyed paths (an old vcsim
    // drops them from a filter without a word), and only then is the cache seeded.
    const objects = await plainRead();
    if (keyedPathsSupported()) {
      try {
        save(file, await seed(client, paths));
      } catch (error) {
        logger().debug({ error: String(error) }, 'list cache not seeded');
      }
    }
    return objects;
  } finally {
    lock.release();
  }
}

function sessionOf(client: VimClient): string {
  return createHash('sha256').update(client.sessionCookie ?? '').digest('hex').slice(0, 32);
}

async function seed(client: VimClient, paths: string[]): Promise<CachedList> {
  const { propertyCollector, rootFolder } = await client.connect();
  const collector = asMoRef(await client.invoke('CreatePropertyCollector', propertyCollector));
  if (collector === undefined) throw new DiscardCache('CreatePropertyCollector returned no collector');
  try {
    const filter = asMoRef(
      await client.invoke('CreateFilter', collector, {
        spec: {
          propSet: [{ type: 'VirtualMachine', all: false, pathSet: paths }],
          objectSet: [{ obj: rootFolder, skip: false, selectSet: inventoryTraversal() }],
        },
        partialUpdates: false,
      }),
    );
    if (filter === undefined) throw new DiscardCache('CreateFilter returned no filter');
    const empty: CachedList = {
      format: FORMAT,
      session: '',
      paths,
      collector: collector.value,
      filter: filter.value,
      version: '',
      vms: {},
    };
    const full = await advance(client, empty);
    return { ...full, session: sessionOf(client) };
  } catch (error) {
    await destroy(client, collector.value);
    throw error;
  }
}

/** The cached list brought up to date: WaitForUpdatesEx from its version, each update applied. */
async function advance(client: VimClient, cached: CachedList): Promise<CachedList> {
  const collector = new MoRef('PropertyCollector', cached.collector);
  const vms = { ...cached.vms };
  let version = cached.version;
  for (let follows = 0; follows < MAX_TRUNCATED_FOLLOWS; follows += 1) {
    const set = await client.invoke('WaitForUpdatesEx', collector, { version, options: { maxWaitSeconds: 0 } });
    if (set === undefined || set === '') {
      if (version === '') throw new DiscardCache('the initial WaitForUpdatesEx answered nothing');
      return { ...cached, version, vms };
    }
    const update = asObject(set);
    const next = asString(update.version);
    if (next === undefined || next === '') throw new DiscardCache('an update set without a version');
    version = next;
    for (const filterUpdate of asArray(update.filterSet)) {
      const entry = asObject(filterUpdate);
      if (asMoRef(entry.filter)?.value !== cached.filter) throw new DiscardCache('an update of another filter');
      if (asArray(entry.missingSet).length > 0) throw new DiscardCache('the filter misses objects');
      for (const objectUpdate of asArray(entry.objectSet)) applyObjectUpdate(vms, asObject(objectUpdate));
    }
    if (asString(update.truncated) !== 'true') return { ...cached, version, vms };
  }
  throw new DiscardCache('the update set stayed truncated');
}

function applyObjectUpdate(vms: Record<string, Properties>, update: Record<string, Decoded | undefined>): void {
  const obj = asMoRef(update.obj);
  if (obj === undefined || obj.type !== 'VirtualMachine') throw new DiscardCache('an update of an unexpected object');
  if (asArray(update.missingSet).length > 0) throw new DiscardCache(`the host left properties of ${obj.value} out (keyed paths?)`);
  const kind = asString(update.kind);
  if (kind === 'leave') {
    delete vms[obj.value];
  } else if (kind === 'enter') {
    vms[obj.value] = applyChanges({}, update.changeSet);
  } else if (kind === 'modify') {
    const before = vms[obj.value];
    if (before === undefined) throw new DiscardCache(`a change of ${obj.value}, which the cache does not hold`);
    vms[obj.value] = applyChanges(before, update.changeSet);
  } else {
    throw new DiscardCache(`an object update of kind ${kind ?? 'none'}`);
  }
}

function objectsOf(list: CachedList): ObjectProperties[] {
  return Object.entries(list.vms).map(([id, props]) => ({ ref: new MoRef('VirtualMachine', id), props: { ...props } }));
}

async function destroy(client: VimClient, collector: string): Promise<void> {
  await client.invoke('DestroyPropertyCollector', new MoRef('PropertyCollector', collector)).catch(() => undefined);
}

function load(file: string, paths: string[]): CachedList | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<CachedList>;
    const valid =
      parsed.format === FORMAT &&
      typeof parsed.session === 'string' &&
      typeof parsed.collector === 'string' &&
      typeof parsed.filter === 'string' &&
      typeof parsed.version === 'string' &&
      parsed.version !== '' &&
      Array.isArray(parsed.paths) &&
      parsed.paths.length === paths.length &&
      parsed.paths.every((path, index) => path === paths[index]) &&
      typeof parsed.vms === 'object' &&
      parsed.vms !== null &&
      Object.values(parsed.vms).every((props) => typeof props === 'object' && props !== null && !Array.isArray(props));
    return valid ? (parsed as CachedList) : undefined;
  } catch {
    return undefined;
  }
}

function save(file: string, list: CachedList): void {
  try {
    const directory = dirname(file);
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    if ((statSync(directory).mode & 0o077) !== 0) chmodSync(directory, 0o700);
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(list), { mode: 0o600 });
    renameSync(temporary, file);
  } catch (error) {
    // A cache that cannot be written costs a full read next time, nothing more.
    logger().debug({ error: String(error) }, 'list cache not written');
  }
}
