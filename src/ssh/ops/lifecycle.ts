/** delete and power over SSH, with the API path's safety rules, messages and results. */
import { CesoError } from '../../core/errors.js';
import type { Plan, PlanStep } from '../../core/plan.js';
import type { DeleteRequest, PowerRequest } from '../../core/requests.js';
import type { PowerState, VmDetails } from '../../core/vm.js';
import { files, vimCmd } from '../commands.js';
import type { SshContext } from '../context.js';
import { parsePowerState } from '../parse.js';
import { folderOf, hostPath } from '../paths.js';
import { run } from '../run.js';
import { findVm, readVm } from './inventory.js';
import { assertNoDependents } from '../../core/linked.js';
import { linkedDependents } from './linked.js';
import { powerOutcome, powerStepDescription, settledPowerPlan, waitForPowerState, type PowerProgress } from '../../core/power.js';

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
  assertNoDependents(vm, await linkedDependents(context, vm, rows));
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
  if (folder === null && vm.linked) {
    throw new CesoError('CONFLICT', `"${vm.name}" is a linked clone whose folder another VM shares: ceso removes a linked clone by unregistering it and removing its own folder, never with a destroy that could reach its parent disk`, {
      hint: 'Move the other VM out of the folder, or remove this one by hand (unregister it, then delete only its own files)',
    });
  }
  // A linked clone is unregistered and only its own folder removed: nothing reaches the parent disk.
  const linked = folder !== null && (vm.linked || vm.disks.some((disk) => disk.parent !== null && !disk.parent.startsWith(`${folder}/`)));
  const destroy = linked ? vimCmd.unregister(vm.id) : vimCmd.destroy(vm.id);
  steps.push({
    id: linked ? 'unregister-vm' : 'destroy-vm',
    description: linked ? `unregister ${vm.name} (id ${vm.id}), a linked clone: its parent disk stays` : `destroy ${vm.name} (id ${vm.id}) and its files`,
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

export async function planPower(context: SshContext, request: PowerRequest): Promise<Plan<PowerProgress>> {
  const { row } = await findVm(context, request.vm);
  const vm = { name: row.name, id: row.id };
  const current = await readPowerState(context, vm.id, vm.name);
  const settled = settledPowerPlan(vm, request.action, current, 'ssh');
  if (settled !== undefined) return settled;
  const command = vimCmd.power(request.action, vm.id);
  const step: PlanStep<PowerProgress> = {
    id: `power-${request.action}`,
    description: powerStepDescription(vm.name, request.action, request.timeoutMs),
    action: { kind: 'ssh', command },
    run: async (state) => {
      await run(context.shell, command, { what: `power ${request.action} ${vm.name}` });
      const read = () => readPowerState(context, vm.id, vm.name);
      if (request.action === 'shutdown') await waitForPowerState(read, 'poweredOff', request.timeoutMs, vm.name);
      state.result = powerOutcome(vm, request.action, current, await read());
    },
  };
  return { operation: `power ${request.action}`, target: vm.name, via: 'ssh', steps: [step], warnings: [], state: {} };
}

async function readPowerState(context: SshContext, id: string, name: string): Promise<PowerState | null> {
  const result = await run(context.shell, vimCmd.powerState(id), { what: `read the power state of ${name}` });
  return parsePowerState(result.stdout);
}

