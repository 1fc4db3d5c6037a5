/**
 * An HttpNfcLease, as govc's nfc package drives one: wait for `ready`, read the device URLs,
 * keep the lease alive with HttpNfcLeaseProgress while bytes move, then complete or abort.
 *
 * Progress is sent every few seconds (well inside the host's leaseTimeout) only while data is
 * moving: an upload that stalls lets the lease expire on the host, which then ends the transfer,
 * and ceso reports TIMEOUT instead of holding a dead lease open forever.
 */
import { CesoError } from '../../core/errors.js';
import { MoRef, asArray, asNumber, asObject, asString, type Decoded } from '../soap/xml.js';
import type { VimClient } from '../vim/client.js';
import { retrieveProperties } from '../vim/property-collector.js';

export interface DeviceUrl {
  /** Matches OvfFileItem.deviceId. */
  importKey: string;
  url: string;
  sslThumbprint: string | null;
  disk: boolean;
  targetId: string | null;
}

export interface LeaseInfo {
  entity: MoRef | undefined;
  deviceUrls: DeviceUrl[];
  leaseTimeoutSeconds: number;
}

// The host makes the VM before the lease is ready: usually a fraction of a second.
const POLL_START_MS = 20;
const POLL_MAX_MS = 500;
const DEFAULT_LEASE_TIMEOUT_S = 300;
const MAX_PROGRESS_INTERVAL_MS = 5000;

function leaseFault(error: Decoded | undefined, fallback: string): CesoError {
  const fault = asObject(asObject(error).fault);
  const message = asString(asObject(error).localizedMessage) ?? fallback;
  const type = fault._type ?? 'unknown';
  // vim.fault.Timedout is what a lease that saw no progress ends with
  if (type === 'Timedout' || type === 'Timeout') {
    return new CesoError('TIMEOUT', `the host's NFC lease timed out: ${message}`, {
      hint: 'No data reached the host for the lease timeout (a stalled download or upload): check the source and the network, then run the import again',
      details: { fault: type },
    });
  }
  return new CesoError('HOST_FAULT', `the host's NFC lease failed: ${message}`, { details: { fault: type } });
}

export class NfcLease {
  private completed = false;
  private aborted = false;
  private keepAlive: NodeJS.Timeout | undefined;
  private failure: CesoError | undefined;
  private readonly failureListeners = new Set<(error: CesoError) => void>();

  constructor(
    private readonly client: VimClient,
    readonly ref: MoRef,
  ) {}

  /** Waits while the host prepares the VM (`initializing`); fails on `error`. */
  async waitReady(timeoutMs: number, signal?: AbortSignal): Promise<LeaseInfo> {
    const deadline = Date.now() + timeoutMs;
    let interval = POLL_START_MS;
    for (;;) {
      if (signal?.aborted) throw new CesoError('INTERRUPTED', 'interrupted while the host prepared the import');
      const [object] = await retrieveProperties(this.client, [{ obj: this.ref }], [{ type: 'HttpNfcLease', paths: ['state', 'info', 'error'] }]);
      const state = asString(object?.props.state);
      if (state === 'ready') return readInfo(object?.props.info);
      if (state === 'error') throw leaseFault(object?.props.error, 'the lease ended in error');
      if (state === 'done') throw new CesoError('HOST_FAULT', 'the NFC lease was already completed');
      if (Date.now() > deadline) throw new CesoError('TIMEOUT', `the host did not prepare the import within ${Math.round(timeoutMs / 1000)} s (lease still ${state ?? 'unknown'})`);
      await new Promise((resolve) => setTimeout(resolve, interval));
      interval = Math.min(Math.round(interval * 1.5), POLL_MAX_MS);
    }
  }

  /** The lease's state and error now (after an upload failed: did the lease expire?). */
  async currentFailure(): Promise<CesoError | undefined> {
    if (this.failure !== undefined) return this.failure;
    try {
      const [object] = await retrieveProperties(this.client, [{ obj: this.ref }], [{ type: 'HttpNfcLease', paths: ['state', 'error'] }]);
      if (asString(object?.props.state) === 'error') return leaseFault(object?.props.error, 'the lease ended in error');
    } catch (error) {
      if (error instanceof CesoError && error.details?.fault === 'ManagedObjectNotFound') {
        return new CesoError('TIMEOUT', 'the host dropped the NFC lease (it expired or was aborted)', { hint: 'Run the import again' });
      }
    }
    return undefined;
  }

  /**
   * Reports `percent()` every interval while `moved()` says bytes moved since the last report;
   * while nothing moves it only reads the lease's state, so a lease the host let expire is seen
   * at once. A failure is told to the `onFailure` listeners.
   */
  startKeepAlive(info: LeaseInfo, percent: () => number, moved: () => boolean): void {
    const interval = Math.max(250, Math.min(MAX_PROGRESS_INTERVAL_MS, (info.leaseTimeoutSeconds * 1000) / 4));
    let busy = false;
    const tick = async (): Promise<void> => {
      if (busy || this.completed || this.aborted || this.failure !== undefined) return;
      busy = true;
      try {
        if (moved()) await this.client.invoke('HttpNfcLeaseProgress', this.ref, { percent: Math.max(0, Math.min(100, Math.floor(percent()))) });
        else {
          const failure = await this.currentFailure();
          if (failure !== undefined) this.fail(failure);
        }
      } catch (error) {
        this.fail((await this.currentFailure()) ?? (error instanceof CesoError ? error : new CesoError('HOST_FAULT', String(error))));
      } finally {
        busy = false;
      }
    };
    this.keepAlive = setInterval(() => void tick(), interval);
    this.keepAlive.unref();
  }

  onFailure(listener: (error: CesoError) => void): () => void {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }

  private fail(error: CesoError): void {
    this.failure ??= error;
    for (const listener of this.failureListeners) listener(this.failure);
  }

  private stopKeepAlive(): void {
    if (this.keepAlive !== undefined) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }

  async complete(): Promise<void> {
    this.stopKeepAlive();
    await this.client.invoke('HttpNfcLeaseProgress', this.ref, { percent: 100 }).catch(() => undefined);
    await this.client.invoke('HttpNfcLeaseComplete', this.ref);
    this.completed = true;
  }

  /** Ends the lease after a failure; a lease already gone (expired, completed) is not an error. */
  async abort(): Promise<void> {
    this.stopKeepAlive();
    if (this.completed || this.aborted) return;
    this.aborted = true;
    await this.client.invoke('HttpNfcLeaseAbort', this.ref).catch(() => undefined);
  }

  get isCompleted(): boolean {
    return this.completed;
  }
}

function readInfo(value: Decoded | undefined): LeaseInfo {
  const info = asObject(value);
  const entity = info.entity;
  return {
    entity: entity instanceof MoRef ? entity : undefined,
    leaseTimeoutSeconds: asNumber(info.leaseTimeout) ?? DEFAULT_LEASE_TIMEOUT_S,
    deviceUrls: asArray(info.deviceUrl).map((item) => {
      const url = asObject(item);
      return {
        importKey: asString(url.importKey) ?? '',
        url: asString(url.url) ?? '',
        sslThumbprint: asString(url.sslThumbprint) || null,
        disk: asString(url.disk) === 'true',
        targetId: asString(url.targetId) ?? null,
      };
    }),
  };
}
