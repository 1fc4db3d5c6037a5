/**
 * `vm reconfigure` over SSH, for a powered-off VM: the .vmx edited (numvcpus, memSize,
 * vcpu.hotadd / mem.hotadd, ethernetN.networkName, annotation, the new disks' scsiX:Y entries)
 * and re-read by hostd (`vim-cmd vmsvc/reload`), disks grown with `vmkfstools -X` and made with
 * `vmkfstools -c … -d thin`. The rules and refusals are core/reconfigure.ts's, as over the API.
 *
 *   cp -p the .vmx to a backup; vmkfstools -c per new disk; vmkfstools -X (grow);
 *   cat > the .vmx (the new text on stdin); vim-cmd vmsvc/reload; read back and check; rm the backup
 *
 * A later step that fails undoes the earlier ones: the .vmx is restored from the backup and
 * reloaded, the new disk files are removed. A grow cannot be undone (a disk cannot shrink): it
 * runs after the new disks are made and before the .vmx is written, and is named among the
 * leftovers if a later step fails.
 * A VM that is not powered off is refused with NOT_SUPPORTED: hot add and hot extend need the API.
 */
import { posix } from 'node:path';
import type { Mutation } from '../../core/backend.js';
import { CesoError } from '../../core/errors.js';
import type { Plan, PlanStep } from '../../core/plan.js';
import {
  changedFields,
  controllerKind,
  describeChanges,
  hasChanges,
  planChanges,
  reconfigureFault,
  reconfigureOutcome,
  type PlannedChanges,
  type ReconfigureController,
  type ReconfigureOptions,
  type ReconfigureOutcome,
  type ReconfigureRequest,
  type ReconfigureView,
  type ReconfiguredVm,
} from '../../core/reconfigure.js';
import { parseDatastorePath, type VmSnapshot } from '../../core/vm.js';
import { DATASTORES, newNonce, sectionsScript, splitSections, vimCmd, vmid, vmkfstoolsSize } from '../commands.js';
import type { SshContext } from '../context.js';
import { parseDatastores, parsePortgroups, type VmRow } from '../parse.js';
import { hostPath, isSafeDatastoreName } from '../paths.js';
import { quote } from '../quote.js';
import { checkOutput, run } from '../run.js';
import { parseVmodl, pickBoolean, pickNumber } from '../vmodl.js';
import { VmxFile } from '../vmx.js';
import { findVm, readVm, type VmRead } from './inventory.js';

interface SshReconfigureState {
  after?: ReconfiguredVm;
  changed?: string[];
}

interface Extras {
  config: { cpuHotAdd: boolean | null; memoryHotAdd: boolean | null; coresPerSocket: number | null; hotPlugMemoryLimitMB: number | null };
  datastores: ReconfigureView['datastores'];
  networks: string[] | null;
  folderFiles: Set<string>;
  /** parentFileNameHint of the descriptors read, by datastore path. */
  parents: Map<string, string | null>;
}

const BACKUP_SUFFIX = '.ceso-reconfigure';

function countSnapshots(tree: VmSnapshot[]): number {
  return tree.reduce((sum, node) => sum + 1 + countSnapshots(node.children), 0);
}

function vmxFlag(vmx: VmxFile, key: string): boolean | null {
  const value = vmx.get(key);
  if (value === undefined) return null;
  return /^(true|1|yes|on)$/i.test(value.trim());
}

/** The parent a descriptor names (a child / delta disk), or null. */
export function descriptorParent(descriptor: string): string | null {
  const hint = /^\s*parentFileNameHint\s*=\s*"([^"]*)"/m.exec(descriptor)?.[1];
  if (hint !== undefined && hint !== '') return hint;
  const cid = /^\s*parentCID\s*=\s*([0-9a-fA-F]+)/m.exec(descriptor)?.[1];
  return cid !== undefined && cid.toLowerCase() !== 'ffffffff' ? `(parentCID ${cid})` : null;
}

/** One remote command: get.config, the datastores, and what the request needs (port groups, the folder, descriptors). */
async function readExtras(context: SshContext, read: VmRead, request: ReconfigureRequest): Promise<Extras> {
  const nonce = newNonce();
  const folder = read.details.vmxPath === null ? null : posix.dirname(hostPath(context.volumesRoot, read.details.vmxPath));
  const descriptors = read.hardware.disks.map((disk) => disk.file).filter((file) => parseDatastorePath(file) !== null);
  const sections = [
    { label: 'config', command: `vim-cmd vmsvc/get.config ${vmid(read.details.id)}` },
    { label: 'datastores', command: DATASTORES },
    ...(request.network === undefined ? [] : [{ label: 'portgroups', command: 'esxcli network vswitch standard portgroup list' }]),
    ...(request.addDisks.length === 0 || folder === null ? [] : [{ label: 'folder', command: `ls -a ${quote(folder)}` }]),
    ...(request.disk === undefined ? [] : descriptors.map((file, index) => ({ label: `descriptor.${index}`, command: `head -c 65536 ${quote(hostPath(context.volumesRoot, file))}` }))),
  ];
  const result = await context.shell.exec(sectionsScript(nonce, sections));
  const parts = splitSections(nonce, result.stdout);
  const datastores = parts.get('datastores');
  if (datastores === undefined) {
    checkOutput(result, 'sh', { what: `read ${read.details.name}` });
    throw new CesoError('HOST_FAULT', `read ${read.details.name}: the host printed nothing`);
  }
  checkOutput({ stdout: datastores.output, stderr: '', code: datastores.code }, DATASTORES, { what: 'read the datastores' });
  const configSection = parts.get('config');
  const config = configSection !== undefined && configSection.code === 0 ? parseVmodl(configSection.output) : null;
  const portgroups = parts.get('portgroups');
  const listing = parts.get('folder');
  const vmxDatastorePath = read.details.vmxPath ?? '';
  const folderPath = vmxDatastorePath.includes('/') ? vmxDatastorePath.slice(0, vmxDatastorePath.lastIndexOf('/')) : vmxDatastorePath.replace(/\][^\]]*$/, ']');
  const folderFiles = new Set(
    listing === undefined || listing.code !== 0
      ? []
      : listing.output
          .split('\n')
          .map((line) => line.trim())
          .filter((line) => line !== '' && line !== '.' && line !== '..')
          .map((line) => `${folderPath}${folderPath.endsWith(']') ? ' ' : '/'}${line}`.toLowerCase()),
  );
  const parents = new Map<string, string | null>();
  descriptors.forEach((file, index) => {
    const section = parts.get(`descriptor.${index}`);
    if (section !== undefined && section.code === 0) parents.set(file, descriptorParent(section.output));
  });
  return {
    config: {
      cpuHotAdd: pickBoolean(config ?? undefined, 'cpuHotAddEnabled'),
      memoryHotAdd: pickBoolean(config ?? undefined, 'memoryHotAddEnabled'),
      coresPerSocket: pickNumber(config ?? undefined, 'hardware.numCoresPerSocket'),
      hotPlugMemoryLimitMB: pickNumber(config ?? undefined, 'hotPlugMemoryLimit'),
    },
    datastores: parseDatastores(datastores.output).map((datastore) => ({ name: datastore.name, freeBytes: datastore.freeBytes })),
    networks: portgroups !== undefined && portgroups.code === 0 ? parsePortgroups(portgroups.output) : null,
    folderFiles,
    parents,
  };
}

/** The hot-add flags as the host holds them: the .vmx's keys (what this path edits), else get.config. */
function hotAdd(vmx: VmxFile, config: Extras['config']): { cpuHotAdd: boolean | null; memoryHotAdd: boolean | null } {
  return { cpuHotAdd: vmxFlag(vmx, 'vcpu.hotadd') ?? config.cpuHotAdd, memoryHotAdd: vmxFlag(vmx, 'mem.hotadd') ?? config.memoryHotAdd };
}

function viewOf(read: VmRead, extras: Extras): ReconfigureView {
  const { details, hardware, vmx } = read;
  const flags = hotAdd(vmx, extras.config);
  const controllers: ReconfigureController[] = hardware.controllers.flatMap((controller) => {
    const kind = controllerKind(controller.type);
    if (kind === null) return [];
    const busNumber = controller.busNumber ?? 0;
    const prefix = `${kind}${busNumber}:`;
    const units = new Set<number>();
    for (const disk of hardware.disks) if (disk.controllerKey === controller.key && disk.unitNumber !== null) units.add(disk.unitNumber);
    // CD-ROMs and disks the device list leaves out still hold their unit in the .vmx.
    for (const key of vmx.keys()) {
      const match = /^([a-z]+\d+):(\d+)\.present$/i.exec(key);
      if (match !== null && `${(match[1] as string).toLowerCase()}:` === prefix && vmxFlag(vmx, key) === true) units.add(Number(match[2]));
    }
    return [{ key: controller.key, kind, busNumber, type: controller.type, usedUnits: [...units] }];
  });
  const coresFromVmx = Number(vmx.get('cpuid.coresPerSocket'));
  return {
    name: details.name,
    id: details.id,
    managed: details.managed,
    powerState: details.powerState,
    cpu: details.cpu,
    memoryMB: details.memoryMB,
    coresPerSocket: Number.isInteger(coresFromVmx) && coresFromVmx > 0 ? coresFromVmx : extras.config.coresPerSocket,
    cpuHotAdd: flags.cpuHotAdd ?? false,
    memoryHotAdd: flags.memoryHotAdd ?? false,
    hotPlugMemoryLimitMB: extras.config.hotPlugMemoryLimitMB,
    annotation: details.annotation,
    snapshotCount: countSnapshots(details.snapshots),
    vmxPath: details.vmxPath,
    disks: hardware.disks.map((disk) => ({
      key: disk.key,
      label: disk.label,
      file: disk.file,
      capacityKB: disk.capacityKB ?? 0,
      controllerKey: disk.controllerKey,
      unitNumber: disk.unitNumber,
      parent: extras.parents.get(disk.file) ?? null,
    })),
    nics: hardware.nics.map((nic) => ({ key: nic.key, label: nic.label, network: nic.network, mac: nic.mac })),
    controllers,
    datastores: extras.datastores,
    networks: extras.networks,
    folderFiles: extras.folderFiles,
  };
}

function readOutcome(read: VmRead, config: Extras['config']): ReconfiguredVm {
  return { details: read.details, ...hotAdd(read.vmx, config) };
}

/** The ethernetN index of the n-th NIC: the present ethernet devices in number order. */
function ethernetIndex(vmx: VmxFile, nic: number): number | undefined {
  const indexes = new Set<number>();
  for (const key of vmx.keys()) {
    const match = /^ethernet(\d+)\.present$/i.exec(key);
    if (match !== null && vmxFlag(vmx, key) === true) indexes.add(Number(match[1]));
  }
  return [...indexes].sort((a, b) => a - b)[nic];
}

/** The .vmx with the changes: only the keys they touch; every other line as it was. */
export function reconfiguredVmx(text: string, changes: PlannedChanges): VmxFile {
  const vmx = VmxFile.parse(text);
  if (changes.cpu !== undefined) vmx.set('numvcpus', String(changes.cpu));
  if (changes.memoryMB !== undefined) vmx.set('memSize', String(changes.memoryMB));
  if (changes.cpuHotAdd !== undefined) vmx.set('vcpu.hotadd', changes.cpuHotAdd ? 'TRUE' : 'FALSE');
  if (changes.memoryHotAdd !== undefined) vmx.set('mem.hotadd', changes.memoryHotAdd ? 'TRUE' : 'FALSE');
  if (changes.annotation !== undefined) {
    if (changes.annotation === '') vmx.delete('annotation');
    else vmx.set('annotation', changes.annotation);
  }
  if (changes.network !== undefined) {
    const index = ethernetIndex(vmx, changes.network.index);
    if (index === undefined) throw new CesoError('HOST_FAULT', `the .vmx has no ethernet entry for NIC ${changes.network.index + 1}`);
    // A standard port group by name: a distributed switch's port keys no longer apply.
    vmx.deleteWhere((key) => key.toLowerCase().startsWith(`ethernet${index}.dvs.`));
    vmx.set(`ethernet${index}.networkName`, changes.network.portgroup);
  }
  for (const addition of changes.add) {
    vmx.set(`${addition.device}.present`, 'TRUE');
    vmx.set(`${addition.device}.fileName`, posix.basename(parseDatastorePath(addition.file)?.path ?? addition.file));
    if (addition.controller.kind === 'scsi') vmx.set(`${addition.device}.deviceType`, 'scsi-hardDisk');
  }
  return vmx;
}

const ADAPTERS: Record<string, string> = {
  ParaVirtualSCSIController: 'pvscsi',
  VirtualLsiLogicController: 'lsilogic',
  VirtualLsiLogicSASController: 'lsisas',
  VirtualBusLogicController: 'buslogic',
};

function createDiskCommand(kb: number, controller: ReconfigureController, path: string): string {
  const adapter = ADAPTERS[controller.type.replace(/^.*\./, '')];
  return `vmkfstools -c ${vmkfstoolsSize(kb)} -d thin${adapter === undefined ? '' : ` -a ${adapter}`} ${quote(path)}`;
}

export async function planReconfigure(context: SshContext, request: ReconfigureRequest, options: ReconfigureOptions = {}): Promise<Mutation<ReconfigureOutcome>> {
  const { row } = await findVm(context, request.vm);
  const before = await readVm(context, row);
  options.authorize?.(before.details);
  if (before.vmxText === null) throw new CesoError('HOST_FAULT', `cannot read the .vmx of "${row.name}" (${row.file})`);
  const extras = await readExtras(context, before, request);
  const view = viewOf(before, extras);
  const changes = planChanges(view, request);
  const name = view.name;

  if (!hasChanges(changes)) {
    const plan: Plan<SshReconfigureState> = { operation: 'reconfigure', target: name, via: 'ssh', steps: [], warnings: [`${name} already has what was asked: nothing to change`], state: {} };
    return { plan, finish: async () => reconfigureOutcome(readOutcome(before, extras.config), []) };
  }
  const lines = describeChanges(view, changes);
  if (view.powerState !== 'poweredOff') {
    throw new CesoError('NOT_SUPPORTED', `"${name}" is ${view.powerState === 'suspended' ? 'suspended' : 'powered on'}: over SSH ceso reconfigures only powered-off VMs (it edits the .vmx and has hostd reload it); ${lines.join('; ')} needs the vSphere API (hot add, hot extend)`, {
      hint: 'Run it with --via api (or auto) once the API answers, or power the VM off first (ceso vm power NAME shutdown)',
      details: { powerState: view.powerState, via: 'ssh' },
    });
  }
  return buildPlan(context, row, before, extras, view, changes, lines);
}

function buildPlan(context: SshContext, row: VmRow, before: VmRead, extras: Extras, view: ReconfigureView, changes: PlannedChanges, lines: string[]): Mutation<ReconfigureOutcome> {
  const { shell } = context;
  const name = view.name;
  const vmxDatastorePath = view.vmxPath ?? row.file;
  const vmxPath = hostPath(context.volumesRoot, vmxDatastorePath);
  const backup = `${vmxPath}${BACKUP_SUFFIX}`;
  const vmx = reconfiguredVmx(before.vmxText as string, changes);
  const vmxText = vmx.render();
  const reload = `vim-cmd vmsvc/reload ${vmid(view.id)}`;
  const steps: Array<PlanStep<SshReconfigureState>> = [];
  const state: SshReconfigureState = {};
  const wrap = async (work: () => Promise<unknown>): Promise<void> => {
    try {
      await work();
    } catch (error) {
      throw reconfigureFault(error, view, changes);
    }
  };

  const copy = `cp -p ${quote(vmxPath)} ${quote(backup)}`;
  steps.push({
    id: 'backup-vmx',
    description: `keep a copy of ${posix.basename(vmxPath)} to restore if a later step fails`,
    action: { kind: 'ssh', command: copy },
    run: () => wrap(() => run(shell, copy, { what: `copy ${vmxPath}` })),
    undo: { description: `remove the copy ${backup}`, run: async () => void (await run(shell, `rm -f ${quote(backup)}`, { what: `remove ${backup}` })) },
  });
  changes.add.forEach((addition, index) => {
    const parsed = parseDatastorePath(addition.file);
    if (parsed === null || !isSafeDatastoreName(parsed.datastore)) throw new CesoError('INVALID_INPUT', `cannot build a path for the new disk ${addition.file}`);
    const path = hostPath(context.volumesRoot, addition.file);
    const create = createDiskCommand(addition.capacityKB, addition.controller, path);
    steps.push({
      id: `create-disk-${index}`,
      description: `make a thin ${vmkfstoolsSize(addition.capacityKB)} disk ${addition.file} (${addition.device})`,
      action: { kind: 'ssh', command: create },
      run: () => wrap(() => run(shell, create, { what: `make the disk ${addition.file}` })),
      undo: { description: `delete the disk ${addition.file}`, run: async () => void (await run(shell, `vmkfstools -U ${quote(path)}`, { what: `delete the disk ${addition.file}` })) },
    });
  });
  if (changes.grow !== undefined) {
    const { grow } = changes;
    const path = hostPath(context.volumesRoot, grow.disk.file);
    const command = `vmkfstools -X ${vmkfstoolsSize(grow.capacityKB)} ${quote(path)}`;
    steps.push({
      id: 'grow-disk',
      description: `grow ${grow.disk.file} to ${vmkfstoolsSize(grow.capacityKB)} (cannot be undone: a disk cannot shrink)`,
      action: { kind: 'ssh', command },
      run: () => wrap(() => run(shell, command, { what: `grow the disk ${grow.disk.file}` })),
      undo: {
        description: `${grow.disk.file} stays grown to ${vmkfstoolsSize(grow.capacityKB)}`,
        run: async () => {
          throw new CesoError('CONFLICT', 'a disk cannot shrink: the VM can use the larger disk as it is');
        },
      },
    });
  }
  const write = `cat > ${quote(vmxPath)}`;
  steps.push({
    id: 'write-vmx',
    description: `write ${posix.basename(vmxPath)} (on stdin, the keys under review.vmx): ${lines.join('; ')}`,
    action: { kind: 'ssh', command: write },
    run: () => wrap(() => run(shell, write, { what: `write ${vmxPath}`, stdin: vmxText })),
    undo: {
      description: `restore ${posix.basename(vmxPath)} from ${posix.basename(backup)} and reload ${name}`,
      run: async () => {
        await run(shell, `cp -p ${quote(backup)} ${quote(vmxPath)}`, { what: `restore ${vmxPath}` });
        await run(shell, reload, { what: `reload ${name}` });
      },
    },
  });
  steps.push({
    id: 'reload-vm',
    description: `have hostd read the new ${posix.basename(vmxPath)} (vim-cmd vmsvc/reload)`,
    action: { kind: 'ssh', command: reload },
    run: () => wrap(() => run(shell, reload, { what: `reload ${name}` })),
  });
  steps.push({
    id: 'verify',
    description: `read ${name} back and check that it shows every change`,
    action: { kind: 'ssh', command: `${vimCmd.summary(view.id)}; ${vimCmd.devices(view.id)}; cat ${quote(vmxPath)} (read back)` },
    run: async () => {
      const read = await readVm(context, row);
      const after = readOutcome(read, extras.config);
      const { changed, missing } = changedFields(after, changes);
      if (missing.length > 0) {
        const network = changes.network;
        if (network !== undefined && view.networks === null && missing.includes(`nics[${network.index}].network`)) {
          throw new CesoError('NETWORK_NOT_FOUND', `network "${network.portgroup}" does not exist on this host: hostd did not put NIC ${network.index + 1} of "${name}" on it`, {
            hint: "Check the port group's name: over SSH this host cannot list them (no esxcli)",
          });
        }
        throw new CesoError('HOST_FAULT', `the host did not apply ${missing.join(', ')} to "${name}" after the reload`, { hint: 'Check the .vmx on the host, or run it with --via api', details: { missing } });
      }
      state.after = after;
      state.changed = changed;
    },
  });
  const remove = `rm -f ${quote(backup)}`;
  steps.push({
    id: 'remove-backup',
    description: `remove the copy ${posix.basename(backup)}`,
    action: { kind: 'ssh', command: remove },
    run: async () => void (await run(shell, remove, { what: `remove ${backup}` })),
  });

  const original = before.vmx.toMap();
  const review: Record<string, string | null> = {};
  for (const [key, value] of vmx.toMap()) if (original.get(key) !== value) review[key] = value;
  for (const key of original.keys()) if (!vmx.has(key)) review[key] = null;
  const plan: Plan<SshReconfigureState> = {
    operation: 'reconfigure',
    target: name,
    via: 'ssh',
    steps,
    review: { changes: lines, vmx: review },
    warnings: [],
    state,
  };
  return {
    plan,
    finish: async () => {
      if (state.after === undefined || state.changed === undefined) throw new CesoError('INTERNAL', 'the reconfigure was not checked');
      return reconfigureOutcome(state.after, state.changed);
    },
  };
}
