import type { DeleteOutcome, Mutation, PowerOutcome } from './backend.js';
import { CesoError } from './errors.js';
import type { Plan } from './plan.js';
import type { PowerProgress } from './power.js';
import type { VmDetails } from './vm.js';

/** How both backends turn a delete plan and a power plan into a Mutation with its outcome. */

export function deleteMutation<S>(plan: Plan<S>, target: { vm: VmDetails; folder: string | null }): Mutation<DeleteOutcome> & { target: VmDetails } {
  const { vm, folder } = target;
  return {
    plan,
    target: vm,
    finish: async () => ({
      name: vm.name,
      id: vm.id,
      deleted: true,
      removed: [vm.vmxPath, ...vm.disks.map((disk) => disk.file), folder].filter((item): item is string => item !== null),
    }),
  };
}

export function powerMutation(plan: Plan<PowerProgress>): Mutation<PowerOutcome> {
  return {
    plan,
    finish: async () => {
      if (plan.state.result === undefined) throw new CesoError('INTERNAL', 'the power change reported no result');
      return plan.state.result;
    },
  };
}
