/** ceso.* markers set on a VM in any power state: one ReconfigVM_Task with extraConfig only. */
import type { MarkerChange, Mutation } from '../../core/backend.js';
import type { Plan } from '../../core/plan.js';
import { MoRef } from '../soap/xml.js';
import type { VimClient } from '../vim/client.js';
import { apiAction, option, runTask } from './steps.js';

export function planSetMarkers(client: VimClient, change: MarkerChange): Mutation<{ name: string; id: string }> {
  const ref = new MoRef('VirtualMachine', change.vm.id);
  // An empty value removes the key (the host drops extraConfig entries set to "").
  const args = { spec: { extraConfig: Object.entries(change.set).map(([key, value]) => option(key, value ?? '')) } };
  const plan: Plan<Record<string, never>> = {
    operation: 'set markers',
    target: change.vm.name,
    via: 'api',
    steps: [
      {
        id: 'set-markers',
        description: `set ${Object.entries(change.set).map(([key, value]) => (value === null ? `remove ${key}` : `${key}=${value}`)).join(', ')} on ${change.vm.name}`,
        action: apiAction('ReconfigVM_Task', ref, args),
        run: async () => {
          await runTask(client, 'ReconfigVM_Task', ref, args, `set markers on ${change.vm.name}`);
        },
      },
    ],
    warnings: [],
    state: {},
  };
  return { plan, finish: async () => ({ name: change.vm.name, id: change.vm.id }) };
}
