/** delete and power over SSH, with the API path's safety rules, messages and results. */
import type { PowerOutcome } from '../../core/backend.js';
import { CesoError } from '../../core/errors.js';
import type { Plan, PlanStep } from '../../core/plan.js';
import type { DeleteRequest, PowerAction, PowerRequest } from '../../core/requests.js';
import { statusOf, type PowerState, type VmDetails } from '../../core/vm.js';
import { files, vimCmd } from '../commands.js';
import type { SshContext } from '../context.js';
import { parsePowerState } from '../parse.js';
import { folderOf, hostPath } from '../paths.js';
import { run } from '../run.js';
import { findVm, readVm } from './inventory.js';

export interface SshDeleteState {
  removedFolder?: boolean;
}

export interface SshDeleteTarget {
  vm: VmDetails;
  folder: string | null;
}

export async function planDelete(context: SshContext, request: DeleteRequest): Promise<{ plan: Plan<SshDeleteState>; target: SshDeleteTarget }> {
  const { row, rows } = await findVm(context, request.vm);
  const { details: vm } = await readVm(context, row);
  if (!vm.managed && !request.force) {
    throw new CesoError('NOT_MANAGED', `"${vm.name}" was not created by ceso (no ceso.managed marker)`, {
      hint: 'Check the name; to delete it anyway pass --force',
    });
  }
  if (vm.powerState !== 'poweredOff' && !request.force) {
    throw new CesoError('INVALID_POWER_STATE', `"${vm.name}" is ${vm.powerState ?? 'in an unknown state'}`, {
      hint: `Power it off first (ceso vm power ${vm.name} shutdown), or pass --force to power it off and delete it`,
    });
  }
  // The VM's folder, if no other registered VM keeps its files there.
  const candidate = vm.vmxPath === null ? null : folderOf(vm.vmxPath);
  const folder = candidate !== null && !rows.some((other) => other.id !== vm.id && other.file.startsWith(`${candidate}/`)) ? candidate : null;
  const shell = context.shell;
  const steps: Array<PlanStep<SshDeleteState>> = [];
  if (vm.powerState === 'poweredOn' || vm.powerState === 'suspended') {
    const command = vimCmd.power('off', vm.id);
    steps.push({
      id: 'power-off',
      description: `power off ${vm.name} (--force)`,
      action: { kind: 'ssh', command },
      run: async () => {
        await run(shell, command, { what: `power off ${vm.name}` });
      },
    });
  }
  const destroy = vimCmd.destroy(vm.id);
  steps.push({
    id: 'destroy-vm',
    description: `destroy ${vm.name} (id ${vm.id}) and its files`,
    action: { kind: 'ssh', command: destroy },
    run: async () => {
      await run(shell, destroy, { what: `destroy ${vm.name}` });
    },
  });
  if (folder !== null) {
    const path = hostPath(context.volumesRoot, folder);
    const remove = files.removeFolder(path);
    steps.push({
      id: 'remove-folder',
      description: `remove what is left in ${folder} and check that nothing remains`,
      action: { kind: 'ssh', command: remove },
      run: async (state) => {
        const result = await shell.exec(remove);
        if (result.code !== 0) {
          const left = result.stdout.split('\n').filter((line) => line.trim() !== '');
          throw new CesoError('HOST_FAULT', `${folder} still holds ${left.length} file(s) after the delete: ${left.join(', ') || result.stderr.trim()}`, {
            hint: `Remove them on the host: rm -rf '${path.replaceAll("'", `'\\''`)}'`,
            details: { leftovers: left },
          });
        }
        state.removedFolder = true;
      },
    });
  }
  return {
    plan: { operation: 'delete', target: vm.name, via: 'ssh', steps, warnings: [], state: {} },
    target: { vm, folder },
  };
}

const TARGET_STATE: Record<PowerAction, PowerState | null> = {
  on: 'poweredOn',
  off: 'poweredOff',
  shutdown: 'poweredOff',
  suspend: 'suspended',
  reset: null,
};

export interface SshPowerProgress {
  result?: PowerOutcome;
}

export async function planPower(context: SshContext, request: PowerRequest): Promise<Plan<SshPowerProgress>> {
  const { row } = await findVm(context, request.vm);
  const { id, name } = row;
  const shell = context.shell;
  const current = await readPowerState(context, id, name);
  const wanted = TARGET_STATE[request.action];
  const base = { name, id, action: request.action, previousState: current };
  if (wanted !== null && current === wanted) {
    const state: SshPowerProgress = {
      result: { ...base, powerState: current, status: statusOf(current), changed: false, message: `${name} is already ${describe(current)}` },
    };
    return { operation: `power ${request.action}`, target: name, via: 'ssh', steps: [], warnings: [`${name} is already ${describe(current)}: nothing to do`], state };
  }
  if ((request.action === 'reset' || request.action === 'shutdown' || request.action === 'suspend') && current !== 'poweredOn') {
    throw new CesoError('INVALID_POWER_STATE', `cannot ${request.action} ${name}: it is ${describe(current)}`, {
      hint: request.action === 'reset' ? `Power it on instead: ceso vm power ${name} on` : 'The VM must be running',
    });
  }
  const command = vimCmd.power(request.action, id);
  const step: PlanStep<SshPowerProgress> = {
    id: `power-${request.action}`,
    description: request.action === 'shutdown' ? `ask the guest of ${name} to shut down, wait up to ${request.timeoutMs / 1000} s` : `power ${request.action} ${name}`,
    action: { kind: 'ssh', command },
    run: async (state) => {
      await run(shell, command, { what: `power ${request.action} ${name}` });
      if (request.action === 'shutdown') await waitForPowerState(context, id, 'poweredOff', request.timeoutMs, name);
      const after = await readPowerState(context, id, name);
      state.result = { ...base, powerState: after, status: statusOf(after), changed: true, message: `${name}: ${describe(current)} -> ${describe(after)}` };
    },
  };
  return { operation: `power ${request.action}`, target: name, via: 'ssh', steps: [step], warnings: [], state: {} };
}

async function readPowerState(context: SshContext, id: string, name: string): Promise<PowerState | null> {
  const result = await run(context.shell, vimCmd.powerState(id), { what: `read the power state of ${name}` });
  return parsePowerState(result.stdout);
}

async function waitForPowerState(context: SshContext, id: string, wanted: PowerState, timeoutMs: number, name: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let interval = 250;
  while (Date.now() < deadline) {
    if ((await readPowerState(context, id, name)) === wanted) return;
    await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(0, deadline - Date.now()))));
    interval = Math.min(interval * 2, 2000);
  }
  if ((await readPowerState(context, id, name)) === wanted) return;
  throw new CesoError('TIMEOUT', `${name} did not shut down within ${timeoutMs / 1000} s`, {
    hint: `The guest may lack VMware Tools or ignore the request: use "ceso vm power ${name} off" to cut the power, or raise --timeout`,
  });
}

function describe(state: PowerState | null): string {
  return state === 'poweredOn' ? 'powered on' : state === 'poweredOff' ? 'powered off' : state === 'suspended' ? 'suspended' : 'in an unknown state';
}
