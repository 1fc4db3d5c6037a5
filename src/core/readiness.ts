/**
 * Waiting until a VM is usable (`--wait ip|ready`), whichever path reads the guest.
 *
 * - `ip`: the guest reports, through VMware Tools, an address on the VM's first NIC (matched by
 *   its MAC in guest.net): the VM's static address when it has one (the --ip of the create or
 *   clone, else the address of the NIC in the guestinfo metadata's network config), else any
 *   IPv4 address that is not link-local.
 * - `ready`: that, and cloud-init has finished what the user asked for: ceso's user data ends
 *   with a runcmd entry that sets the guest-set key guestinfo.ceso.ready to the instance-id
 *   (src/cloudinit/ready.ts), which the host shows in config.extraConfig. It must equal THIS
 *   VM's instance-id (from its guestinfo.metadata), so a clone's stale marker never counts.
 *
 * The backends read the guest (the API with a property collector that waits for changes, SSH by
 * polling vim-cmd) and hand each reading to the functions here, which decide and word the
 * errors, so both paths mean the same thing. Waiting changes nothing and is never undone: a
 * wait that runs out leaves the VM as it is.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { decodeGuestinfo } from '../cloudinit/guestinfo.js';
import { READY_KEY } from '../cloudinit/ready.js';
import type { GuestWaitOptions, GuestWaitOutcome, GuestWaitUntil, HostBackend } from './backend.js';
import { CesoError, invalidInput } from './errors.js';
import { logger } from './log.js';
import { describePowerState } from './power.js';
import type { PowerState, Via, VmSelector } from './vm.js';

export const DEFAULT_WAIT_TIMEOUT_SECONDS = 600;

/** What a wait is about: fixed facts about the VM, read once before waiting. */
export interface GuestTarget {
  name: string;
  id: string;
  /** The first NIC's MAC, lower case; null when the VM has no NIC. */
  mac: string | null;
  /** The address the NIC must report (normalized); null: any IPv4 address. */
  expectedIp: string | null;
  /** The instance-id of the VM's guestinfo.metadata; null when it has no ceso metadata. */
  instanceId: string | null;
}

/** One reading of the guest, as either path got it. */
export interface GuestObservation {
  powerState: PowerState | null;
  toolsStatus: string | null;
  /** guest.ipAddress (the guest's primary address). */
  guestIp: string | null;
  /** guest.net: each NIC the guest reports, with its addresses. */
  net: Array<{ mac: string | null; ips: string[] }>;
  /** extraConfig as the host shows it, guest-set keys included; null when the host shows none. */
  extraConfig: ReadonlyMap<string, string> | null;
}

/** An address in one spelling: IPv6 lower case and compressed, IPv4 as it is. */
export function normalizeAddress(address: string): string {
  const bare = address.trim().replace(/\/\d+$/, '');
  if (isIPv6(bare)) {
    try {
      return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
    } catch {
      return bare.toLowerCase();
    }
  }
  return bare;
}

/** A guest-reported address a client can use to reach the VM when no static one is expected. */
function usableIpv4(address: string): boolean {
  return isIPv4(address) && !address.startsWith('169.254.') && !address.startsWith('127.') && address !== '0.0.0.0';
}

function record(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** The instance-id and the NIC's static address from a VM's guestinfo.metadata (ceso's netplan v2 form). */
export function metadataFacts(extraConfig: ReadonlyMap<string, string>, mac: string | null): { instanceId: string | null; staticIp: string | null } {
  let metadata: Record<string, unknown> | undefined;
  try {
    metadata = record(decodeGuestinfo(Object.fromEntries(extraConfig)).metadata);
  } catch {
    metadata = undefined;
  }
  if (metadata === undefined) return { instanceId: null, staticIp: null };
  const id = metadata['instance-id'];
  const instanceId = typeof id === 'string' && id.trim() !== '' ? id.trim() : null;
  const ethernets = Object.values(record(record(metadata.network)?.ethernets) ?? {}).map(record).filter((entry) => entry !== undefined);
  const byMac = ethernets.find((entry) => {
    const wanted = record(entry.match)?.macaddress;
    return typeof wanted === 'string' && mac !== null && wanted.toLowerCase() === mac;
  });
  const nic = byMac ?? (ethernets.length === 1 && record(ethernets[0]?.match)?.macaddress === undefined ? ethernets[0] : undefined);
  const first = Array.isArray(nic?.addresses) ? (nic.addresses as unknown[])[0] : undefined;
  const staticIp = typeof first === 'string' && (isIPv4(normalizeAddress(first)) || isIPv6(normalizeAddress(first))) ? normalizeAddress(first) : null;
  return { instanceId, staticIp };
}

/** The target of a wait: the MAC and the metadata facts, the caller's expected address first. */
export function guestTarget(vm: { name: string; id: string }, mac: string | null, extraConfig: ReadonlyMap<string, string>, expectedIp: string | undefined): GuestTarget {
  const macLower = mac === null ? null : mac.toLowerCase();
  const { instanceId, staticIp } = metadataFacts(extraConfig, macLower);
  return { name: vm.name, id: vm.id, mac: macLower, expectedIp: expectedIp === undefined ? staticIp : normalizeAddress(expectedIp), instanceId };
}

/** The addresses the guest reports on the target's NIC (guest.ipAddress when it reports no NIC at all). */
function nicAddresses(target: GuestTarget, seen: GuestObservation): string[] {
  const nic = target.mac === null ? undefined : seen.net.find((entry) => entry.mac?.toLowerCase() === target.mac);
  if (nic !== undefined) return nic.ips.map(normalizeAddress);
  if (seen.net.length === 0 && seen.guestIp !== null) return [normalizeAddress(seen.guestIp)];
  return [];
}

/** The address that satisfies `ip`, or null. */
export function observedIp(target: GuestTarget, seen: GuestObservation): string | null {
  if (seen.powerState !== 'poweredOn') return null;
  const addresses = nicAddresses(target, seen);
  if (target.expectedIp !== null) return addresses.includes(target.expectedIp) ? target.expectedIp : null;
  return addresses.find(usableIpv4) ?? null;
}

/** Whether the guest has reported ready for this instance; null when that cannot be known. */
export function observedReady(target: GuestTarget, seen: GuestObservation): boolean | null {
  if (target.instanceId === null || seen.extraConfig === null) return null;
  return seen.extraConfig.get(READY_KEY)?.trim() === target.instanceId;
}

export function outcomeOf(target: GuestTarget, seen: GuestObservation, waitedMs: number | null): GuestWaitOutcome {
  return {
    name: target.name,
    id: target.id,
    ip: observedIp(target, seen),
    ready: observedReady(target, seen),
    waitedMs,
    powerState: seen.powerState,
    toolsStatus: seen.toolsStatus,
  };
}

export function isSatisfied(until: GuestWaitUntil, outcome: GuestWaitOutcome): boolean {
  return outcome.ip !== null && (until === 'ip' || outcome.ready === true);
}

/**
 * What must hold before waiting: `ready` needs ceso's metadata (and, over SSH, a host that shows
 * extraConfig), any wait a NIC and a running VM. `powerCheck: false` checks the rest only (before
 * a power-on).
 */
export function checkWaitable(target: GuestTarget, seen: GuestObservation, until: GuestWaitUntil, via: Via, powerCheck = true): void {
  if (until === 'ready') {
    if (target.instanceId === null) {
      throw invalidInput(
        `cannot wait for ${target.name} to be ready: it has no ceso cloud-init metadata (guestinfo.metadata with an instance-id), so nothing in the guest reports ready`,
        `Wait for its address instead (--wait ip); VMs made by "ceso vm create" or "ceso vm clone" can be waited for with --wait ready`,
      );
    }
    if (seen.extraConfig === null) {
      throw new CesoError('NOT_SUPPORTED', `cannot wait for ${target.name} to be ready over ${via === 'ssh' ? 'SSH: this host’s vim-cmd vmsvc/get.config shows no extraConfig' : 'this path: the host shows no extraConfig'}, where the guest reports ready`, {
        hint: 'Wait over the vSphere API (--via api), which reads config.extraConfig; or wait for the address only (--wait ip)',
      });
    }
  }
  if (target.mac === null) {
    throw invalidInput(`cannot wait for ${target.name}: it has no network adapter, so its guest never reports an address`, 'Add a NIC to the VM, or do not pass --wait');
  }
  if (powerCheck) assertRunning(target, seen.powerState, false);
}

/** A VM that is not powered on never gets an address: fail at once (or as soon as it stops). */
export function assertRunning(target: { name: string }, powerState: PowerState | null, whileWaiting: boolean): void {
  if (powerState === 'poweredOn') return;
  const state = describePowerState(powerState);
  throw new CesoError('INVALID_POWER_STATE', whileWaiting ? `${target.name} stopped while ceso was waiting for its guest: it is ${state}` : `cannot wait for ${target.name}: it is ${state}, so its guest reports nothing`, {
    hint: `Power it on and wait: ceso vm power ${target.name} on --wait ip`,
    details: { powerState },
  });
}

function lastSeen(target: GuestTarget, seen: GuestObservation, until: GuestWaitUntil): string {
  const addresses = nicAddresses(target, seen);
  const parts = [describePowerState(seen.powerState), `VMware Tools ${seen.toolsStatus ?? 'status unknown'}`];
  parts.push(addresses.length === 0 ? 'no IP address' : `IP ${addresses.join(', ')}`);
  if (until === 'ready') {
    const marker = seen.extraConfig?.get(READY_KEY);
    parts.push(marker === undefined || marker === '' ? 'no ready marker' : `ready marker of another instance (${marker})`);
  }
  return parts.join(', ');
}

/** The TIMEOUT of a wait that ran out, naming what the host last showed. The VM is kept. */
export function timeoutError(target: GuestTarget, seen: GuestObservation, until: GuestWaitUntil, timeoutMs: number, via: Via): CesoError {
  const seconds = Math.round(timeoutMs / 100) / 10;
  const ip = observedIp(target, seen);
  const what =
    ip === null
      ? target.expectedIp === null
        ? 'its guest reported no IPv4 address on its NIC'
        : `its guest did not report its address ${target.expectedIp} on its NIC`
      : 'cloud-init did not report ready';
  const hints = ['The VM is kept as it is: waiting is not part of the change, so nothing was undone.'];
  if (ip === null) {
    hints.push(
      seen.toolsStatus === 'guestToolsRunning'
        ? 'VMware Tools runs but reports no such address: check the guest’s network config on its console.'
        : 'VMware Tools does not run in the guest yet: it may still be booting, or the template lacks open-vm-tools.',
    );
  }
  if (until === 'ready') {
    hints.push(
      'A template without open-vm-tools (vmware-rpctool) or whose cloud-init did not run never reports ready: in the guest, check `vmware-rpctool "info-get guestinfo.metadata"` and `cloud-init status --long`.',
    );
    if (via === 'ssh') hints.push('Over SSH ceso reads the guest-set key with vim-cmd vmsvc/get.config; if this host does not show it there, wait over the API (--via api).');
  }
  hints.push(`Wait again with: ceso vm ip ${target.name} --id ${target.id} --wait ${until}`);
  return new CesoError('TIMEOUT', `${target.name}: ${what} within ${seconds} s (the VM is kept); last seen: ${lastSeen(target, seen, until)}`, {
    hint: hints.join(' '),
    details: {
      vm: target.name,
      id: target.id,
      until,
      timeoutSeconds: seconds,
      expectedIp: target.expectedIp,
      kept: true,
      last: {
        powerState: seen.powerState,
        toolsStatus: seen.toolsStatus,
        addresses: nicAddresses(target, seen),
        ip,
        ready: observedReady(target, seen),
      },
    },
  });
}

export function interruptedError(target: { name: string }): CesoError {
  return new CesoError('INTERRUPTED', `stopped waiting for ${target.name}: interrupted (the VM is kept as it is)`, {
    hint: `Wait again with: ceso vm ip ${target.name} --wait ip`,
  });
}

/** A promise that rejects with INTERRUPTED when the signal fires (and never resolves). */
export function abortion(signal: AbortSignal | undefined, target: { name: string }): { promise: Promise<never>; dispose: () => void } {
  if (signal === undefined) return { promise: new Promise<never>(() => undefined), dispose: () => undefined };
  let onAbort = (): void => undefined;
  const promise = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(interruptedError(target));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  promise.catch(() => undefined);
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}

/** Sleeps, or rejects with INTERRUPTED as soon as the signal fires. */
export async function pause(ms: number, signal: AbortSignal | undefined, target: { name: string }): Promise<void> {
  const stop = abortion(signal, target);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))), stop.promise]);
  } finally {
    clearTimeout(timer);
    stop.dispose();
  }
}

// --- what commands call ----------------------------------------------------------------------

/** The fields every result of a command that can wait carries (null: not asked). */
export interface WaitFields {
  ip: string | null;
  ready: boolean | null;
  waitedMs: number | null;
}

export interface WaitRequest {
  until: GuestWaitUntil;
  timeoutMs: number;
  expectedIp?: string;
}

export interface WaitFlags {
  wait?: GuestWaitUntil | undefined;
  'wait-timeout'?: number | undefined;
}

/**
 * The wait a command's flags ask for, or undefined. `powersOn: false` (create/clone with
 * --no-power-on, power actions other than on) refuses --wait: such a guest never reports.
 */
export function waitRequestFrom(flags: WaitFlags, context: { powersOn: boolean; why?: string; ipCidr?: string | undefined }): WaitRequest | undefined {
  if (flags.wait === undefined) return undefined;
  if (!context.powersOn) throw invalidInput(`--wait ${flags.wait} needs a running VM: ${context.why ?? 'this command leaves it off'}`, context.why === undefined ? undefined : 'Drop --wait, or the flag that leaves the VM off');
  const seconds = flags['wait-timeout'] ?? DEFAULT_WAIT_TIMEOUT_SECONDS;
  return {
    until: flags.wait,
    timeoutMs: seconds * 1000,
    ...(context.ipCidr === undefined ? {} : { expectedIp: normalizeAddress(context.ipCidr) }),
  };
}

const NOT_WAITED: WaitFields = { ip: null, ready: null, waitedMs: null };

/** Waits (Ctrl-C stops it) when asked; the fields for the command's result. */
export async function waitAfterChange(backend: HostBackend, vm: VmSelector, request: WaitRequest | undefined): Promise<WaitFields> {
  if (request === undefined) return NOT_WAITED;
  const outcome = await untilInterrupted((signal) => backend.waitForGuest(vm, { ...request, signal }));
  return { ip: outcome.ip, ready: outcome.ready, waitedMs: outcome.waitedMs };
}

/** Before a power-on with --wait ready: refuse a VM that could never report ready, before changing it. */
export async function checkReadyBeforeChange(backend: HostBackend, vm: VmSelector, request: WaitRequest | undefined): Promise<void> {
  if (request?.until !== 'ready') return;
  await backend.waitForGuest(vm, { until: 'now', timeoutMs: 0, validate: 'ready' });
}

/** `vm ip`: what the host reports now, or (with --wait) once the guest is there. */
export function guestAddress(backend: HostBackend, vm: VmSelector, request: WaitRequest | undefined): Promise<GuestWaitOutcome> {
  if (request === undefined) return backend.waitForGuest(vm, { until: 'now', timeoutMs: 0 });
  return untilInterrupted((signal) => backend.waitForGuest(vm, { ...request, signal } satisfies GuestWaitOptions));
}

/**
 * Runs a wait that Ctrl-C (or SIGTERM) stops: the wait fails with INTERRUPTED and the VM is left
 * as it is. A second Ctrl-C exits at once.
 */
export async function untilInterrupted<R>(run: (signal: AbortSignal) => Promise<R>): Promise<R> {
  const controller = new AbortController();
  const interrupt = (): void => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write('\nInterrupted: no longer waiting (the VM is kept as it is)...\n');
    controller.abort();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  try {
    return await run(controller.signal);
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
  }
}

/** Says on a terminal (and in the log) that ceso now waits, and for how long at most. */
export function announceWait(name: string, request: WaitRequest, json: boolean): void {
  const what = request.until === 'ready' ? 'to report ready (cloud-init done)' : 'to report its IP address';
  const text = `waiting up to ${request.timeoutMs / 1000} s for the guest of ${name} ${what}`;
  logger().info({ vm: name, until: request.until, timeoutMs: request.timeoutMs }, text);
  if (process.stderr.isTTY === true && !json) process.stderr.write(`${text[0]?.toUpperCase() ?? ''}${text.slice(1)}... (Ctrl-C stops waiting; the VM stays)\n`);
}
