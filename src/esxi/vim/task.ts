import { CesoError } from '../../core/errors.js';
import { faultToError, SoapFault } from '../soap/faults.js';
import { asNumber, asObject, asString, type Decoded, type MoRef } from '../soap/xml.js';
import type { VimClient } from './client.js';
import { retrieveProperties, type ObjectProperties, type PropertyQuery } from './property-collector.js';

export interface TaskWaitOptions {
  /** What the task does, for messages ("copy disk of web1"). */
  description: string;
  timeoutMs?: number;
  onProgress?: (percent: number) => void;
  signal?: AbortSignal;
}

const POLL_START_MS = 50;
const POLL_MAX_MS = 1000;

/**
 * Waits for a task by polling `info` (state, progress, error, result). The poll interval grows
 * from 50 ms to 1 s so short tasks finish fast and long disk copies do not flood the host.
 */
export async function waitForTask(client: VimClient, task: MoRef, options: TaskWaitOptions): Promise<Decoded | undefined> {
  return (await waitForTaskReading(client, task, options, { starts: [], requests: [] })).result;
}

/** What else to read in each poll's RetrievePropertiesEx (see waitForTaskReading). */
export type AlongWithTask = PropertyQuery;

/**
 * As waitForTask, reading `also` in the same RetrievePropertiesEx as each poll of the task, so
 * the poll that sees the task end also brings what the caller reads next (the changed VM): one
 * round trip instead of two. The objects are read in the same call as the task's end, not
 * necessarily after it: a caller that needs them to show the change checks that they do.
 */
export async function waitForTaskReading(client: VimClient, task: MoRef, options: TaskWaitOptions, also: AlongWithTask): Promise<{ result: Decoded | undefined; objects: ObjectProperties[] }> {
  const deadline = Date.now() + (options.timeoutMs ?? 30 * 60_000);
  let interval = POLL_START_MS;
  let lastProgress = -1;
  for (;;) {
    if (options.signal?.aborted) {
      await client.invoke('CancelTask', task).catch(() => undefined);
      throw new CesoError('INTERRUPTED', `${options.description}: interrupted`);
    }
    const objects = await retrieveProperties(client, [{ obj: task }, ...also.starts], [{ type: 'Task', paths: ['info'] }, ...also.requests]);
    const object = objects.find((candidate) => candidate.ref.type === task.type && candidate.ref.value === task.value);
    const info = asObject(object?.props.info);
    const state = asString(info.state);
    if (state === 'success') return { result: info.result, objects: objects.filter((candidate) => candidate !== object) };
    if (state === 'error') {
      const error = asObject(info.error);
      const fault = asObject(error.fault);
      const faultType = fault._type ?? 'SystemError';
      const message = asString(error.localizedMessage) ?? faultType;
      throw faultToError(new SoapFault(faultType, message, fault, asString(info.descriptionId) ?? 'task'), options.description);
    }
    const progress = asNumber(info.progress);
    if (progress !== undefined && progress !== lastProgress) {
      lastProgress = progress;
      options.onProgress?.(progress);
    }
    if (Date.now() > deadline) {
      throw new CesoError('TIMEOUT', `${options.description}: the task did not finish in time`, {
        hint: 'The host may still be working on it: check the VM before retrying',
      });
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
    interval = Math.min(interval * 2, POLL_MAX_MS);
  }
}
