/**
 * `--wait ip|ready` over SSH: vim-cmd has no way to wait for a change, so ceso polls, in ONE
 * remote command per look: `vmsvc/power.getstate`, `vmsvc/get.guest` (VMware Tools' status,
 * guest.ipAddress and guest.net) and `vmsvc/get.config` (the NIC's MAC, and extraConfig: the
 * metadata and the guest-set ready key, as hostd shows it). The interval grows from 1 s to 5 s
 * and never runs past the deadline.
 */
import type { GuestWaitOptions, GuestWaitOutcome } from '../../core/backend.js';
import { CesoError } from '../../core/errors.js';
import {
  abortion,
  assertRunning,
  checkWaitable,
  guestTarget,
  interruptedError,
  isSatisfied,
  outcomeOf,
  pause,
  timeoutError,
  type GuestObservation,
  type GuestTarget,
} from '../../core/readiness.js';
import type { VmSelector } from '../../core/vm.js';
import { newNonce, sectionsScript, splitSections, vimCmd, vmid } from '../commands.js';
import type { SshContext } from '../context.js';
import { nonEmpty, parseGuest, parsePowerState, type VmRow } from '../parse.js';
import { checkOutput } from '../run.js';
import { parseVmodl, pick, pickArray, pickString, type VmodlValue } from '../vmodl.js';
import { findVm } from './inventory.js';

export const POLL_START_MS = 1000;
export const POLL_MAX_MS = 5000;

interface Look {
  seen: GuestObservation;
  mac: string | null;
}

export async function waitForGuest(context: SshContext, selector: VmSelector, options: GuestWaitOptions): Promise<GuestWaitOutcome> {
  const started = Date.now();
  const { row } = await findVm(context, selector);
  const vm = { name: row.name, id: row.id };
  const stop = abortion(options.signal, vm);
  try {
    const first = await Promise.race([look(context, row), stop.promise]);
    const target: GuestTarget = guestTarget(vm, first.mac, first.seen.extraConfig ?? new Map(), options.expectedIp);
    let seen = first.seen;
    if (options.until === 'now') {
      if (options.validate !== undefined) checkWaitable(target, seen, options.validate, 'ssh', false);
      return outcomeOf(target, seen, null);
    }
    const until = options.until;
    checkWaitable(target, seen, until, 'ssh');
    const deadline = started + options.timeoutMs;
    let interval = POLL_START_MS;
    for (;;) {
      const outcome = outcomeOf(target, seen, null);
      if (isSatisfied(until, outcome)) return { ...outcome, waitedMs: Date.now() - started };
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw timeoutError(target, seen, until, options.timeoutMs, 'ssh');
      if (options.signal?.aborted) throw interruptedError(target);
      await pause(Math.min(interval, remaining), options.signal, target);
      interval = Math.min(Math.round(interval * 1.5), POLL_MAX_MS);
      seen = (await Promise.race([look(context, row), stop.promise])).seen;
      assertRunning(target, seen.powerState, true);
    }
  } finally {
    stop.dispose();
  }
}

/** One look at the guest: one remote command. */
export async function look(context: SshContext, row: VmRow): Promise<Look> {
  const nonce = newNonce();
  const commands = { power: vimCmd.powerState(row.id), guest: vimCmd.guest(row.id), config: `vim-cmd vmsvc/get.config ${vmid(row.id)}` };
  const result = await context.shell.exec(
    sectionsScript(nonce, [
      { label: 'power', command: commands.power },
      { label: 'guest', command: commands.guest },
      { label: 'config', command: commands.config },
    ]),
  );
  const sections = splitSections(nonce, result.stdout);
  const what = `read the guest of ${row.name} (vmid ${row.id})`;
  const part = (label: keyof typeof commands): string => {
    const section = sections.get(label);
    if (section === undefined) {
      checkOutput(result, 'sh', { what });
      throw new CesoError('HOST_FAULT', `${what}: the host printed no ${label} section`);
    }
    checkOutput({ stdout: section.output, stderr: '', code: section.code }, commands[label], { what });
    return section.output;
  };
  const powerState = parsePowerState(part('power'));
  const guestText = part('guest');
  const guest = parseGuest(guestText);
  const guestDump = parseVmodl(guestText.replace(/^\s*Guest information:\s*/, ''));
  const config = parseConfig(part('config'));
  return {
    mac: config.mac,
    seen: {
      powerState,
      toolsStatus: nonEmpty(pickString(guestDump ?? undefined, 'toolsRunningStatus')),
      guestIp: guest.ip,
      net: guest.net.map((nic) => ({ mac: nic.mac, ips: nic.ips })),
      extraConfig: config.extraConfig,
    },
  };
}

/**
 * `vim-cmd vmsvc/get.config`: "Configuration:" and a vim.vm.ConfigInfo dump. extraConfig is null
 * when the dump has no extraConfig member at all (a host that does not show it there).
 */
export function parseConfig(output: string): { mac: string | null; extraConfig: Map<string, string> | null } {
  const dump: VmodlValue = parseVmodl(output.replace(/^\s*Configuration:\s*/, ''));
  let mac: string | null = null;
  for (const device of pickArray(dump, 'hardware.device')) {
    const address = pickString(device, 'macAddress');
    if (address !== null || pick(device, 'macAddress') === null) {
      mac = nonEmpty(address)?.toLowerCase() ?? null;
      break;
    }
  }
  const options = pick(dump, 'extraConfig');
  if (!Array.isArray(options)) return { mac, extraConfig: options === null ? new Map() : null };
  const extraConfig = new Map<string, string>();
  for (const option of options) {
    const key = pickString(option, 'key');
    const value = pickString(option, 'value');
    if (key !== null && value !== null && value !== '') extraConfig.set(key, value);
  }
  return { mac, extraConfig };
}
