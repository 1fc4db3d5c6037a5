import type { StepAction } from '../../core/plan.js';
import { MoRef, RawXml, Typed, type XmlObject, type XmlValue } from '../soap/xml.js';
import { faultTypeOf, type VimClient } from '../vim/client.js';
import type { ObjectProperties, PropertyQuery } from '../vim/property-collector.js';
import { waitForTask, waitForTaskReading } from '../vim/task.js';

/** A value shown in a plan but never sent: e.g. a MAC the host assigns while the plan runs. */
export class Later {
  constructor(readonly description: string) {}
}

/** Plan display of an API call: references as "Type:id", guestinfo payloads summarised, not shown. */
export function apiAction(method: string, object: MoRef, args: XmlObject): StepAction {
  return { kind: 'api', method, object: object.toString(), arguments: plain(args) as Record<string, unknown> };
}

function plain(value: XmlValue | Later): unknown {
  if (value instanceof Later) return `<${value.description}>`;
  if (value instanceof MoRef) return value.toString();
  if (value instanceof RawXml) return `<${value.xsiType} as the host built it (${value.inner.length} bytes of XML)>`;
  if (value instanceof Typed) {
    const inner = plain(value.value);
    return inner !== null && typeof inner === 'object' && !Array.isArray(inner) ? { _type: value.xsiType, ...inner } : inner;
  }
  if (Array.isArray(value)) return value.map((item) => plain(item));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    const optionKey = value.key;
    if (typeof optionKey === 'string' && optionKey.startsWith('guestinfo.') && !optionKey.endsWith('.encoding') && 'value' in value) {
      const payload = value.value instanceof Typed ? String(value.value.value) : '';
      return { key: optionKey, value: payload === '' ? '' : `<gzip+base64, ${payload.length} bytes: decoded under review>` };
    }
    return Object.fromEntries(entries.filter(([, item]) => item !== undefined).map(([field, item]) => [field, plain(item)]));
  }
  return value;
}

export function option(key: string, value: string): XmlObject {
  return { key, value: new Typed('xsd:string', value) };
}

/** Starts a *_Task method and waits for it, reporting progress. */
export async function runTask(
  client: VimClient,
  method: string,
  object: MoRef,
  args: XmlObject,
  description: string,
  progress?: (percent: number) => void,
  signal?: AbortSignal,
): Promise<unknown> {
  const task = await client.invoke(method, object, args);
  if (!(task instanceof MoRef)) return undefined;
  return waitForTask(client, task, { description, ...(progress === undefined ? {} : { onProgress: progress }), ...(signal === undefined ? {} : { signal }) });
}

/**
 * As runTask, reading `also` in each poll of the task (waitForTaskReading): the objects come from
 * the call that saw the task end, not necessarily after it, so the caller checks they show it.
 */
export async function runTaskReading(client: VimClient, method: string, object: MoRef, args: XmlObject, description: string, also: PropertyQuery): Promise<ObjectProperties[]> {
  const task = await client.invoke(method, object, args);
  if (!(task instanceof MoRef)) return [];
  return (await waitForTaskReading(client, task, { description }, also)).objects;
}

/** Waits for a cleanup call, treating "already gone" (the file, or the VM) as done. */
export async function ignoreGone(promise: Promise<unknown>): Promise<void> {
  try {
    await promise;
  } catch (error) {
    const fault = faultTypeOf(error);
    if (fault === 'FileNotFound' || fault === 'NotFound' || fault === 'ManagedObjectNotFound') return;
    throw error;
  }
}
