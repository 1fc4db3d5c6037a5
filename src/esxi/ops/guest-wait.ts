/**
 * `--wait ip|ready` over the API: one read of the VM (its NIC's MAC, its metadata and the guest
 * now), then, unless that already answers, a property-collector wait (vim/wait.ts) on the power
 * state, the tools status, guest.ipAddress, guest.net and config.extraConfig — the whole array:
 * vcsim does not support keyed paths such as config.extraConfig["guestinfo.ceso.ready"].
 */
import type { GuestWaitOptions, GuestWaitOutcome } from '../../core/backend.js';
import { CesoError } from '../../core/errors.js';
import {
  assertRunning,
  checkWaitable,
  guestTarget,
  interruptedError,
  isSatisfied,
  outcomeOf,
  timeoutError,
  type GuestObservation,
} from '../../core/readiness.js';
import { toPowerState, type VmSelector } from '../../core/vm.js';
import { asArray, asObject, asString, type Decoded } from '../soap/xml.js';
import type { VimClient } from '../vim/client.js';
import { retrieveProperties } from '../vim/property-collector.js';
import { waitForProperties, type Properties } from '../vim/wait.js';
import { extraConfigOf, findVm } from './inventory.js';

export const WATCHED_PATHS = ['runtime.powerState', 'guest.toolsRunningStatus', 'guest.ipAddress', 'guest.net', 'config.extraConfig'];
const FIRST_READ_PATHS = ['config.hardware.device', ...WATCHED_PATHS];

/** Whether guest-set extraConfig keys fire updates on real hosts is unconfirmed: re-read at least this often for `ready`. */
const READY_RECHECK_SECONDS = 10;

export interface ApiWaitSettings {
  /** The HTTP call timeout: each WaitForUpdatesEx must end well before it. */
  callTimeoutMs: number;
}

export async function waitForGuest(client: VimClient, selector: VmSelector, options: GuestWaitOptions, settings: ApiWaitSettings): Promise<GuestWaitOutcome> {
  const started = Date.now();
  const { ref, name } = await findVm(client, selector);
  const [object] = await retrieveProperties(client, [{ obj: ref }], [{ type: 'VirtualMachine', paths: FIRST_READ_PATHS }]);
  if (object === undefined) throw gone(name);
  const target = guestTarget({ name, id: ref.value }, firstNicMac(object.props['config.hardware.device']), extraConfigOf(object.props['config.extraConfig']), options.expectedIp);
  let seen = observe(object.props);

  if (options.until === 'now') {
    if (options.validate !== undefined) checkWaitable(target, seen, options.validate, 'api', false);
    return outcomeOf(target, seen, null);
  }
  const until = options.until;
  checkWaitable(target, seen, until, 'api');
  const now = outcomeOf(target, seen, null);
  if (isSatisfied(until, now)) return { ...now, waitedMs: Date.now() - started };
  if (options.signal?.aborted) throw interruptedError(target);

  const result = await waitForProperties(client, ref, {
    type: 'VirtualMachine',
    paths: WATCHED_PATHS,
    deadline: started + options.timeoutMs,
    maxWaitSeconds: Math.min(maxWaitFor(settings.callTimeoutMs), until === 'ready' ? READY_RECHECK_SECONDS : Number.MAX_SAFE_INTEGER),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    interrupted: () => interruptedError(target),
    check: (props) => {
      seen = observe(props);
      assertRunning(target, seen.powerState, true);
      const outcome = outcomeOf(target, seen, null);
      return isSatisfied(until, outcome) ? outcome : undefined;
    },
  });
  if (result.state === 'gone') throw gone(name);
  if (result.state === 'timeout') throw timeoutError(target, seen, until, options.timeoutMs, 'api');
  return { ...result.value, waitedMs: Date.now() - started };
}

/** Below the HTTP timeout by a margin: 25 s with the default 30 s. */
export function maxWaitFor(callTimeoutMs: number): number {
  const seconds = Math.floor(callTimeoutMs / 1000);
  return seconds >= 10 ? seconds - 5 : Math.max(1, Math.floor(seconds / 2));
}

function gone(name: string): CesoError {
  return new CesoError('VM_NOT_FOUND', `${name} no longer exists on the host: it was removed while ceso waited for it`, { hint: 'Run "ceso vm list"' });
}

/** The MAC of the VM's first NIC (device order), lower case. */
export function firstNicMac(devices: Decoded | undefined): string | null {
  for (const item of asArray(devices)) {
    const device = asObject(item);
    if (!('macAddress' in device) && !/^Virtual(E1000e?|Vmxnet\d?|PCNet32|Pcnet32|Sriov)/.test(device._type ?? '')) continue;
    const mac = asString(device.macAddress);
    return mac === undefined || mac === '' ? null : mac.toLowerCase();
  }
  return null;
}

/** The guest as the VM's properties show it. */
export function observe(props: Readonly<Properties>): GuestObservation {
  const text = (value: Decoded | undefined): string | null => {
    const string = asString(value);
    return string === undefined || string === '' ? null : string;
  };
  return {
    powerState: toPowerState(asString(props['runtime.powerState'])),
    toolsStatus: text(props['guest.toolsRunningStatus']),
    guestIp: text(props['guest.ipAddress']),
    net: asArray(props['guest.net']).map((item) => {
      const nic = asObject(item);
      const configured = asArray(asObject(nic.ipConfig).ipAddress).map((address) => asString(asObject(address).ipAddress));
      const ips = [...asArray(nic.ipAddress).map(asString), ...configured].filter((ip): ip is string => ip !== undefined && ip !== '');
      return { mac: text(nic.macAddress)?.toLowerCase() ?? null, ips: [...new Set(ips)] };
    }),
    extraConfig: extraConfigOf(props['config.extraConfig']),
  };
}
