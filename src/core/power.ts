import type { PowerOutcome } from './backend.js';
import { CesoError } from './errors.js';
import type { Plan } from './plan.js';
import type { PowerAction } from './requests.js';
import { statusOf, type PowerState, type Via } from './vm.js';

/** What `vm power` means, whichever path carries it out. */

const TARGET_STATE: Record<PowerAction, PowerState | null> = {
  on: 'poweredOn',
  off: 'poweredOff',
  shutdown: 'poweredOff',
  suspend: 'suspended',
  reset: null,
};

export interface PowerProgress {
  result?: PowerOutcome;
}

export function describePowerState(state: PowerState | null): string {
  return state === 'poweredOn' ? 'powered on' : state === 'poweredOff' ? 'powered off' : state === 'suspended' ? 'suspended' : 'in an unknown state';
}

/**
 * Asking for the state a VM is already in is a success that says so: a plan with no step.
 * Reset, shutdown and suspend need a running VM. Otherwise undefined: the caller plans the change.
 */
export function settledPowerPlan(vm: { name: string; id: string }, action: PowerAction, current: PowerState | null, via: Via): Plan<PowerProgress> | undefined {
  const wanted = TARGET_STATE[action];
  if (wanted !== null && current === wanted) {
    const message = `${vm.name} is already ${describePowerState(current)}`;
    const result: PowerOutcome = { ...vm, action, previousState: current, powerState: current, status: statusOf(current), changed: false, message };
    return { operation: `power ${action}`, target: vm.name, via, steps: [], warnings: [`${message}: nothing to do`], state: { result } };
  }
  if ((action === 'reset' || action === 'shutdown' || action === 'suspend') && current !== 'poweredOn') {
    throw new CesoError('INVALID_POWER_STATE', `cannot ${action} ${vm.name}: it is ${describePowerState(current)}`, {
      hint: action === 'reset' ? `Power it on instead: ceso vm power ${vm.name} on` : 'The VM must be running',
    });
  }
  return undefined;
}

export function powerStepDescription(name: string, action: PowerAction, timeoutMs: number): string {
  return action === 'shutdown' ? `ask the guest of ${name} to shut down, wait up to ${timeoutMs / 1000} s` : `power ${action} ${name}`;
}

export function powerOutcome(vm: { name: string; id: string }, action: PowerAction, before: PowerState | null, after: PowerState | null): PowerOutcome {
  return {
    ...vm,
    action,
    previousState: before,
    powerState: after,
    status: statusOf(after),
    changed: true,
    message: `${vm.name}: ${describePowerState(before)} -> ${describePowerState(after)}`,
  };
}

/** Polls until the VM reaches `wanted` (a guest shutdown), backing off from 250 ms to 2 s. */
export async function waitForPowerState(read: () => Promise<PowerState | null>, wanted: PowerState, timeoutMs: number, name: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let interval = 250;
  while (Date.now() < deadline) {
    if ((await read()) === wanted) return;
    await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(0, deadline - Date.now()))));
    interval = Math.min(interval * 2, 2000);
  }
  if ((await read()) === wanted) return;
  throw new CesoError('TIMEOUT', `${name} did not shut down within ${timeoutMs / 1000} s`, {
    hint: `The guest may lack VMware Tools or ignore the request: use "ceso vm power ${name} off" to cut the power, or raise --timeout`,
  });
}
