/**
 * Waits for properties of one managed object to satisfy a test, the way govmomi's property.Wait
 * does: a fresh PropertyCollector (filters can only be added to a collector, never taken away, so
 * each wait has its own), one filter on the object, then WaitForUpdatesEx in a loop — the host
 * answers when something changed, so there is one request per change, not a polling loop.
 *
 * - The first call (version "") returns the whole current state; later calls pass back the
 *   version the host gave (vcsim always says "-"). A truncated answer is followed at once.
 * - `maxWaitSeconds` bounds each call below the HTTP timeout. An empty answer (no returnval:
 *   `<WaitForUpdatesExResponse xmlns="urn:vim25"></WaitForUpdatesExResponse>`) means nothing
 *   changed in that time; the properties are then read once more (RetrievePropertiesEx), because
 *   not every change is known to fire an update (keys a guest sets in extraConfig).
 * - On abort (Ctrl-C), CancelWaitForUpdates is sent and the wait ends at once; the collector is
 *   destroyed at the end in every case (success, timeout, error, abort).
 */
import { asArray, asMoRef, asObject, asString, type Decoded, type MoRef } from '../soap/xml.js';
import type { VimClient } from './client.js';
import { retrieveProperties } from './property-collector.js';
import { CesoError } from '../../core/errors.js';

export type Properties = Record<string, Decoded | undefined>;

/** The least time between two "nothing changed" answers (a host that ignores maxWaitSeconds). */
const EMPTY_ANSWER_MIN_MS = 1000;
/** How long an interrupted wait gives CancelWaitForUpdates to be answered. */
const CANCEL_WAIT_MS = 2000;

export interface PropertyWaitOptions<R> {
  /** The object's type, e.g. "VirtualMachine". */
  type: string;
  paths: string[];
  /** Looks at the properties after each change; a value other than undefined ends the wait. It may throw. */
  check: (props: Readonly<Properties>) => R | undefined;
  /** When to give up (a Date.now() value). */
  deadline: number;
  /** The longest single WaitForUpdatesEx, in seconds (keep it below the HTTP call timeout). */
  maxWaitSeconds: number;
  signal?: AbortSignal;
  /** The error an abort ends the wait with. */
  interrupted: () => Error;
}

export type PropertyWaitResult<R> =
  | { state: 'met'; value: R; props: Properties }
  | { state: 'timeout'; props: Properties }
  /** The object left the inventory while the wait ran. */
  | { state: 'gone'; props: Properties };

export async function waitForProperties<R>(client: VimClient, obj: MoRef, options: PropertyWaitOptions<R>): Promise<PropertyWaitResult<R>> {
  const { propertyCollector } = await client.connect();
  if (options.signal?.aborted) throw options.interrupted();
  const collector = asMoRef(await client.invoke('CreatePropertyCollector', propertyCollector));
  if (collector === undefined) throw new CesoError('HOST_FAULT', 'CreatePropertyCollector returned no collector');

  let rejectAbort: (error: Error) => void = () => undefined;
  const aborted = new Promise<never>((_resolve, reject) => (rejectAbort = reject));
  aborted.catch(() => undefined);
  let cancelling: Promise<unknown> | undefined;
  const onAbort = (): void => {
    cancelling = client.invoke('CancelWaitForUpdates', collector).catch(() => undefined);
    rejectAbort(options.interrupted());
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  /** A call that gives way to an abort at once (the call itself is cancelled on the host). */
  const call = <T>(pending: Promise<T>): Promise<T> => Promise.race([pending, aborted]);

  try {
    await call(
      client.invoke('CreateFilter', collector, {
        spec: { propSet: [{ type: options.type, all: false, pathSet: options.paths }], objectSet: [{ obj, skip: false }] },
        partialUpdates: false,
      }),
    );
    let props: Properties = {};
    let version = '';
    for (let first = true; ; first = false) {
      const remainingMs = options.deadline - Date.now();
      if (remainingMs <= 0 && !first) return { state: 'timeout', props };
      const maxWaitSeconds = Math.max(1, Math.min(options.maxWaitSeconds, Math.ceil(remainingMs / 1000)));
      const asked = Date.now();
      const set = await call(client.invoke('WaitForUpdatesEx', collector, { version, options: { maxWaitSeconds } }));
      if (set === undefined || set === '') {
        // A host that answers "nothing changed" long before maxWaitSeconds must not make this a busy loop.
        const early = EMPTY_ANSWER_MIN_MS - (Date.now() - asked);
        if (early > 0) await call(new Promise((resolve) => setTimeout(resolve, Math.min(early, Math.max(0, options.deadline - Date.now())))));
        // Nothing changed within maxWaitSeconds: read once, for changes that fire no update.
        const [object] = await call(retrieveProperties(client, [{ obj }], [{ type: options.type, paths: options.paths }]));
        if (object === undefined) return { state: 'gone', props };
        props = { ...object.props };
      } else {
        const update = asObject(set);
        version = asString(update.version) ?? version;
        for (const filter of asArray(update.filterSet)) {
          for (const objectUpdate of asArray(asObject(filter).objectSet)) {
            const entry = asObject(objectUpdate);
            if (asMoRef(entry.obj)?.value !== obj.value) continue;
            if (asString(entry.kind) === 'leave') return { state: 'gone', props };
            props = applyChanges(props, entry.changeSet);
          }
        }
      }
      const value = options.check(props);
      if (value !== undefined) return { state: 'met', value, props };
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    // The cancel goes out before the collector is destroyed and the connection closed (which
    // would cut it off): bounded, a host that does not answer it must not hold the exit.
    if (cancelling !== undefined) await Promise.race([cancelling, new Promise((resolve) => setTimeout(resolve, CANCEL_WAIT_MS))]);
    await client.invoke('DestroyPropertyCollector', collector).catch(() => undefined);
  }
}

/** Applies a changeSet (partialUpdates false: each change is a whole property). */
export function applyChanges(props: Properties, changeSet: Decoded | undefined): Properties {
  const next = { ...props };
  for (const item of asArray(changeSet)) {
    const change = asObject(item);
    const name = asString(change.name);
    if (name === undefined) continue;
    const op = asString(change.op) ?? 'assign';
    if (op === 'remove' || op === 'indirectRemove' || change.val === undefined) delete next[name];
    else next[name] = change.val;
  }
  return next;
}
