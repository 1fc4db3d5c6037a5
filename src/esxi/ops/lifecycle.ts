import { CesoError } from '../../core/errors.js';
import type { Plan, PlanStep } from '../../core/plan.js';
import type { DeleteRequest, PowerRequest } from '../../core/requests.js';
import { parseDatastorePath, toPowerState, type PowerState, type VmDetails } from '../../core/vm.js';
import type { MoRef} from '../soap/xml.js';
import { asArray, asMoRef, asObject, asString } from '../soap/xml.js';
import { faultTypeOf, type VimClient } from '../vim/client.js';
import { inventoryTraversal, retrieveProperties } from '../vim/property-collector.js';
import { findVm, getVmByRef } from './inventory.js';
import { readPlacement } from './placement.js';
import { apiAction, runTask } from './steps.js';
import { assertNoDependents } from '../../core/linked.js';
import { linkedDependents } from './linked.js';
import { powerOutcome, powerStepDescription, settledPowerPlan, waitForPowerState, type PowerProgress } from '../../core/power.js';

export interface DeleteState {
  removedFolder?: boolean;
}

/** What a delete will destroy: shown before a confirmation and in the plan. */
export interface DeleteTarget {
  vm: VmDetails;
  folder: string | null;
}

export async function planDelete(client: VimClient, request: DeleteRequest): Promise<{ plan: Plan<DeleteState>; target: DeleteTarget }> {
  const { ref } = await findVm(client, request.vm);
  const vm = await getVmByRef(client, ref);
  assertNoDependents(vm, await linkedDependents(client, vm));
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
  const folder = await exclusiveFolder(client, vm);
  const steps: Array<PlanStep<DeleteState>> = [];
  if (vm.powerState === 'poweredOn' || vm.powerState === 'suspended') {
    steps.push({
      id: 'power-off',
      description: `power off ${vm.name} (--force)`,
      action: apiAction('PowerOffVM_Task', ref, {}),
      run: async () => {
        await runTask(client, 'PowerOffVM_Task', ref, {}, `power off ${vm.name}`);
      },
    });
  }
  if (folder === null && vm.linked) {
    throw new CesoError('CONFLICT', `"${vm.name}" is a linked clone whose folder another VM shares: ceso removes a linked clone by unregistering it and removing its own folder, never with a destroy that could reach its parent disk`, {
      hint: 'Move the other VM out of the folder, or remove this one by hand (unregister it, then delete only its own files)',
    });
  }
  // A linked clone's disk chain reaches into the template's folder: it is unregistered and only
  // its own folder removed, so nothing can take the parent disk with it.
  const linked = vm.linked || vm.disks.some((disk) => disk.parent !== null && folder !== null && !disk.parent.startsWith(`${folder}/`));
  steps.push(
    linked && folder !== null
      ? {
          id: 'unregister-vm',
          description: `unregister ${vm.name} (id ${vm.id}), a linked clone: its parent disk stays`,
          action: apiAction('UnregisterVM', ref, {}),
          run: async () => {
            await client.invoke('UnregisterVM', ref);
          },
        }
      : {
          id: 'destroy-vm',
          description: `destroy ${vm.name} (id ${vm.id}) and its files`,
          action: apiAction('Destroy_Task', ref, {}),
          run: async () => {
            await runTask(client, 'Destroy_Task', ref, {}, `destroy ${vm.name}`);
          },
        },
  );
  if (folder !== null) {
    const { fileManager } = client.serviceContent;
    const placement = await readPlacement(client);
    const args = { name: folder, datacenter: placement.datacenter };
    if (fileManager !== undefined) {
      steps.push({
        id: 'remove-folder',
        description: `remove what is left in ${folder} and check that nothing remains`,
        action: apiAction('DeleteDatastoreFile_Task', fileManager, args),
        run: async (state) => {
          try {
            await runTask(client, 'DeleteDatastoreFile_Task', fileManager, args, `delete ${folder}`);
            state.removedFolder = true;
          } catch (error) {
            if (faultTypeOf(error) !== 'FileNotFound') throw error;
          }
          await assertFolderGone(client, placement.datastores.find((ds) => ds.name === parseDatastorePath(folder)?.datastore)?.ref, folder);
        },
      });
    }
  }
  return {
    plan: { operation: 'delete', target: vm.name, via: 'api', steps, warnings: [], state: {} },
    target: { vm, folder },
  };
}

/** The VM's folder, if no other registered VM keeps its files there. */
async function exclusiveFolder(client: VimClient, vm: VmDetails): Promise<string | null> {
  if (vm.vmxPath === null) return null;
  const parsed = parseDatastorePath(vm.vmxPath);
  if (parsed === null || !parsed.path.includes('/')) return null;
  const folder = `[${parsed.datastore}] ${parsed.path.slice(0, parsed.path.lastIndexOf('/'))}`;
  const { rootFolder } = await client.connect();
  const others = await retrieveProperties(client, [{ obj: rootFolder, selectSet: inventoryTraversal() }], [{ type: 'VirtualMachine', paths: ['config.files.vmPathName'] }]);
  const shared = others.some((object) => object.ref.value !== vm.id && (asString(object.props['config.files.vmPathName']) ?? '').startsWith(`${folder}/`));
  return shared ? null : folder;
}

async function assertFolderGone(client: VimClient, datastore: MoRef | undefined, folder: string): Promise<void> {
  if (datastore === undefined) return;
  const [object] = await retrieveProperties(client, [{ obj: datastore }], [{ type: 'Datastore', paths: ['browser'] }]);
  const browser = asMoRef(object?.props.browser);
  if (browser === undefined) return;
  try {
    const result = asObject((await runTask(client, 'SearchDatastore_Task', browser, { datastorePath: folder }, `list ${folder}`)) as never);
    const files = asArray(result.file).map((file) => asString(asObject(file).path) ?? '?');
    throw new CesoError('HOST_FAULT', `${folder} still holds ${files.length} file(s) after the delete: ${files.join(', ')}`, {
      hint: `Remove them with the host's datastore browser, or: rm -rf /vmfs/volumes/${parseDatastorePath(folder)?.datastore}/${parseDatastorePath(folder)?.path}`,
      details: { leftovers: files },
    });
  } catch (error) {
    const fault = faultTypeOf(error);
    if (fault === 'FileNotFound' || fault === 'NotFound') return;
    throw error;
  }
}


export async function planPower(client: VimClient, request: PowerRequest): Promise<Plan<PowerProgress>> {
  const { ref, name } = await findVm(client, request.vm);
  const vm = { name, id: ref.value };
  const current = await readPowerState(client, ref);
  const settled = settledPowerPlan(vm, request.action, current, 'api');
  if (settled !== undefined) return settled;
  const method = { on: 'PowerOnVM_Task', off: 'PowerOffVM_Task', reset: 'ResetVM_Task', suspend: 'SuspendVM_Task', shutdown: 'ShutdownGuest' }[request.action];
  const step: PlanStep<PowerProgress> = {
    id: `power-${request.action}`,
    description: powerStepDescription(name, request.action, request.timeoutMs),
    action: apiAction(method, ref, {}),
    run: async (state) => {
      const read = () => readPowerState(client, ref);
      if (request.action === 'shutdown') {
        await client.invoke('ShutdownGuest', ref);
        await waitForPowerState(read, 'poweredOff', request.timeoutMs, name);
      } else {
        await runTask(client, method, ref, {}, `power ${request.action} ${name}`);
      }
      state.result = powerOutcome(vm, request.action, current, await read());
    },
  };
  return { operation: `power ${request.action}`, target: name, via: 'api', steps: [step], warnings: [], state: {} };
}

async function readPowerState(client: VimClient, ref: MoRef): Promise<PowerState | null> {
  const [object] = await retrieveProperties(client, [{ obj: ref }], [{ type: 'VirtualMachine', paths: ['runtime.powerState'] }]);
  return toPowerState(asString(object?.props['runtime.powerState']));
}

