/**
 * list and info over SSH, with the API path's result shapes (core/vm.ts): unknown values null,
 * managed / expiresAt / markers / guestinfo sizes from the .vmx (what the API reads as
 * extraConfig), sorted by name then id like the API.
 */
import type { MarkedVm } from '../../core/backend.js';
import { CesoError } from '../../core/errors.js';
import { byNameThenId } from '../../core/order.js';
import { selectOne } from '../../core/select.js';
import { markersOf, parseDatastorePath, statusOf, type VmDetails, type VmSelector, type VmSummary } from '../../core/vm.js';
import { GETALLVMS, listScript, newNonce, sectionsScript, splitSections, vimCmd, type SectionOutput } from '../commands.js';
import type { SshContext } from '../context.js';
import { quote } from '../quote.js';
import {
  currentSnapshotOf,
  nonEmpty,
  parseDevices,
  parseGetAllVms,
  parseGuest,
  parseSnapshots,
  parseSummary,
  type GetAllVms,
  type HardwareInfo,
  type SummaryInfo,
  type VmRow,
} from '../parse.js';
import { hostPath } from '../paths.js';
import { checkOutput, run } from '../run.js';
import { VmxFile } from '../vmx.js';

export async function readRows(context: SshContext): Promise<GetAllVms> {
  const result = await run(context.shell, GETALLVMS, { what: 'list the VMs (vim-cmd vmsvc/getallvms)' });
  return parseGetAllVms(`${result.stdout}\n${result.stderr}`);
}

/** Every VM with its summary fields: ONE remote command (getallvms and a loop over the vmids). */
export async function listVms(context: SshContext): Promise<VmSummary[]> {
  return (await listMarkedVms(context)).map(({ markers: _markers, ...summary }) => summary);
}

/** As listVms, each VM with its ceso.* markers (read from the same .vmx). */
export async function listMarkedVms(context: SshContext): Promise<MarkedVm[]> {
  const nonce = newNonce();
  const result = await context.shell.exec(listScript(nonce, context.volumesRoot), { timeoutMs: 600_000 });
  const sections = splitSections(nonce, result.stdout);
  const all = sections.get('getallvms');
  if (all === undefined) {
    checkOutput(result, 'sh', { what: 'list the VMs' });
    throw new CesoError('HOST_FAULT', 'list the VMs: the host printed no inventory', { details: { stdout: result.stdout.slice(0, 2000), stderr: result.stderr.slice(0, 2000) } });
  }
  checkSection(all, GETALLVMS, 'list the VMs (vim-cmd vmsvc/getallvms)');
  const { rows } = parseGetAllVms(all.output);
  const vms: MarkedVm[] = [];
  for (const row of rows) {
    const section = sections.get(`vm.${row.id}`);
    if (section === undefined) continue;
    const checked = checkOutput({ stdout: section.output, stderr: '', code: section.code }, vimCmd.summary(row.id), {
      what: `read ${row.name} (vmid ${row.id})`,
      tolerate: ['NotFound', 'ManagedObjectNotFound'],
    });
    if (checked.fault !== null) continue; // unregistered while the list ran
    const vmx = VmxFile.parse(sections.get(`vmx.${row.id}`)?.output ?? '');
    vms.push({ ...summaryOf(row, parseSummary(section.output), vmx), markers: markersOf(extraConfigOf(vmx)).markers });
  }
  return vms.sort(byNameThenId);
}

function checkSection(section: SectionOutput, command: string, what: string): void {
  checkOutput({ stdout: section.output, stderr: '', code: section.code }, command, { what });
}

/** extraConfig as the API shows it: a key set to "" does not exist. */
export function extraConfigOf(vmx: VmxFile): Map<string, string> {
  return new Map([...vmx.toMap()].filter(([, value]) => value !== ''));
}

function summaryOf(row: VmRow, summary: SummaryInfo, vmx: VmxFile): VmSummary {
  const { managed, expiresAt, linked, pool, poolState } = markersOf(extraConfigOf(vmx));
  return {
    name: summary.name ?? row.name,
    id: row.id,
    uuid: summary.uuid,
    status: statusOf(summary.powerState),
    powerState: summary.powerState,
    cpu: summary.cpu,
    memoryMB: summary.memoryMB,
    ip: summary.ip,
    guestId: summary.guestId ?? nonEmpty(row.guestId),
    managed,
    expiresAt,
    linked,
    pool,
    poolState,
  };
}

export async function findVm(context: SshContext, selector: VmSelector): Promise<{ row: VmRow; rows: VmRow[] }> {
  const { rows } = await readRows(context);
  return { row: selectOne(rows, selector), rows };
}

export async function getVm(context: SshContext, selector: VmSelector): Promise<VmDetails> {
  const { row } = await findVm(context, selector);
  return (await readVm(context, row)).details;
}

export interface VmRead {
  details: VmDetails;
  summary: SummaryInfo;
  hardware: HardwareInfo;
  vmx: VmxFile;
  vmxText: string | null;
}

/** A VM's details in ONE remote command: get.summary, get.guest, snapshot.get, device.getdevices, the .vmx (and .vmsd). */
export async function readVm(context: SshContext, row: VmRow): Promise<VmRead> {
  const nonce = newNonce();
  const vmxFile = hostPath(context.volumesRoot, row.file);
  const vmsdFile = vmxFile.replace(/\.vmx$/i, '.vmsd');
  const result = await context.shell.exec(
    sectionsScript(nonce, [
      { label: 'summary', command: vimCmd.summary(row.id) },
      { label: 'guest', command: vimCmd.guest(row.id) },
      { label: 'snapshots', command: vimCmd.snapshots(row.id) },
      { label: 'devices', command: vimCmd.devices(row.id) },
      { label: 'vmx', command: `cat ${quote(vmxFile)}` },
      { label: 'vmsd', command: `if [ -f ${quote(vmsdFile)} ]; then cat ${quote(vmsdFile)}; fi` },
    ]),
  );
  const sections = splitSections(nonce, result.stdout);
  const what = `read ${row.name} (vmid ${row.id})`;
  const part = (label: string, command: string): string => {
    const section = sections.get(label);
    if (section === undefined) {
      checkOutput(result, 'sh', { what });
      throw new CesoError('HOST_FAULT', `${what}: the host printed no ${label}`);
    }
    if (label !== 'vmx') checkSection(section, command, what);
    return section.output;
  };
  const summary = parseSummary(part('summary', vimCmd.summary(row.id)));
  const guest = parseGuest(part('guest', vimCmd.guest(row.id)));
  const vmsd = VmxFile.parse(part('vmsd', 'cat'));
  const snapshots = parseSnapshots(part('snapshots', vimCmd.snapshots(row.id)), currentSnapshotOf(vmsd.toMap()));
  const hardware = parseDevices(part('devices', vimCmd.devices(row.id)));
  const vmxSection = sections.get('vmx');
  const vmxText = vmxSection !== undefined && vmxSection.code === 0 ? vmxSection.output : null;
  const vmx = VmxFile.parse(vmxText ?? '');
  const { managed, expiresAt, linked, pool, poolState, markers, guestinfo } = markersOf(extraConfigOf(vmx));
  const vmxPath = summary.vmPathName ?? row.file;
  const details: VmDetails = {
    name: summary.name ?? row.name,
    id: row.id,
    uuid: summary.uuid,
    status: statusOf(summary.powerState),
    powerState: summary.powerState,
    cpu: summary.cpu,
    memoryMB: summary.memoryMB,
    ip: summary.ip ?? guest.ip,
    guestId: summary.guestId ?? nonEmpty(row.guestId),
    managed,
    expiresAt,
    linked,
    pool,
    poolState,
    vmxPath,
    datastore: parseDatastorePath(vmxPath)?.datastore ?? null,
    firmware: vmxText === null ? null : (nonEmpty(vmx.get('firmware')?.toLowerCase()) ?? 'bios'),
    disks: hardware.disks.map(({ label, file, capacityGB, thin, parent }) => ({ label, file, capacityGB, thin, parent })),
    nics: hardware.nics.map(({ label, network, mac, type }) => ({ label, network, mac, type })),
    snapshots,
    annotation: vmxText === null ? summary.annotation : nonEmpty(vmx.get('annotation')),
    guestinfo,
    markers,
  };
  return { details, summary, hardware, vmx, vmxText };
}
