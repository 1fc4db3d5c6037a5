/**
 * `template import` over the API, as govc's import.ova does it, with the cleanup govc 0.24.2
 * lacks: OvfManager.CreateImportSpec (read-only: planned and validated before anything is made)
 * -> ResourcePool.ImportVApp -> the HttpNfcLease (ready, uploads, progress, complete) -> the
 * template's markers. A failure or Ctrl-C aborts the lease and deletes the half-made VM and its
 * folder. The import spec is never modelled: the host's XML goes back to it verbatim.
 */
import { CesoError } from '../../core/errors.js';
import type { DroppedItem, ImportOutcome, ImportRequest } from '../../core/import.js';
import type { Mutation } from '../../core/backend.js';
import type { Plan, PlanStep } from '../../core/plan.js';
import { assertNameFree, gb } from '../../core/provisioning.js';
import { MARKERS } from '../../core/vm.js';
import { diskFile, resourceKind, withoutItems, type OvfDescriptor, type OvfItem } from '../../ovf/descriptor.js';
import { openPackage, type OvfPackage } from '../../ovf/package.js';
import { NfcLease, type LeaseInfo } from '../nfc/lease.js';
import { resolveDeviceUrl, upload } from '../nfc/upload.js';
import { MoRef, RawXml, asArray, asNumber, asObject, asString, type Decoded } from '../soap/xml.js';
import type { VimClient } from '../vim/client.js';
import { inventoryTraversal, retrieveProperties } from '../vim/property-collector.js';
import { getVmByRef } from './inventory.js';
import { findDatastore, findNetwork, readPlacement, type DatastoreInfo, type NetworkInfo, type Placement } from './placement.js';
import { apiAction, ignoreGone, option, runTask } from './steps.js';

interface ImportState {
  lease?: NfcLease;
  info?: LeaseInfo;
  vm?: MoRef;
  bytesUploaded: number;
}

interface FileItem {
  deviceId: string;
  path: string;
  size: number | null;
  create: boolean;
}

interface ImportSpec {
  xml: RawXml;
  fileItems: FileItem[];
  warnings: string[];
}

const LEASE_READY_TIMEOUT_MS = 10 * 60_000;

/** The element `<importSpec>` of the CreateImportSpec answer, to send back as ImportVApp's `spec`. */
export function extractImportSpec(text: string): RawXml {
  const open = /<([A-Za-z_][\w.-]*:)?importSpec(\s[^>]*)?>/.exec(text);
  if (open === null) throw new CesoError('HOST_FAULT', 'CreateImportSpec answered without an importSpec');
  const prefix = open[1] ?? '';
  const close = text.indexOf(`</${prefix}importSpec>`, open.index);
  if (close < 0) throw new CesoError('HOST_FAULT', 'CreateImportSpec answered with an unterminated importSpec');
  const attributes = open[2] ?? '';
  const typeMatch = /\s[\w.-]+:type="([^"]+)"/.exec(attributes);
  const xsiType = (typeMatch?.[1] ?? 'VirtualMachineImportSpec').replace(/^[\w.-]+:/, '');
  // The prefixes the subtree uses may be declared on the element or any ancestor: carry them all.
  const declarations = new Map<string, string>();
  for (const match of text.slice(0, open.index + open[0].length).matchAll(/\sxmlns:([\w.-]+)="([^"]*)"/g)) declarations.set(match[1]!, match[2]!);
  const attributeText = [...declarations].filter(([name]) => name !== 'xsi').map(([name, uri]) => `xmlns:${name}="${uri}"`).join(' ');
  return new RawXml(text.slice(open.index + open[0].length, close), xsiType, attributeText);
}

function fileItemsOf(result: Decoded | undefined): FileItem[] {
  return asArray(asObject(result).fileItem).map((value) => {
    const item = asObject(value);
    return { deviceId: asString(item.deviceId) ?? '', path: asString(item.path) ?? '', size: asNumber(item.size) ?? null, create: asString(item.create) === 'true' };
  });
}

function messagesOf(list: Decoded | undefined): Array<{ type: string; message: string; fault: Record<string, Decoded | undefined> }> {
  return asArray(list).map((value) => {
    const entry = asObject(value);
    const fault = asObject(entry.fault);
    return { type: fault._type ?? 'MethodFault', message: asString(entry.localizedMessage) ?? fault._type ?? 'unknown', fault };
  });
}

interface Target {
  placement: Placement;
  datastore: DatastoreInfo;
  network: NetworkInfo;
}

/**
 * CreateImportSpec until the host accepts what is left: items it refuses as OvfUnsupportedType
 * (Ubuntu's serial port on some hosts) are cut out of the descriptor and named; any other error
 * stops the import before anything is made.
 */
async function createImportSpec(client: VimClient, descriptor: OvfDescriptor, request: ImportRequest, target: Target): Promise<{ spec: ImportSpec; dropped: Array<DroppedItem & { item: OvfItem }> }> {
  const { ovfManager } = client.serviceContent;
  if (ovfManager === undefined) throw new CesoError('NOT_SUPPORTED', 'the host offers no OvfManager', { hint: 'Import the OVA with the host’s web UI' });
  const dropped: Array<DroppedItem & { item: OvfItem }> = [];
  for (let round = 0; round <= descriptor.items.length; round += 1) {
    const text = withoutItems(descriptor, dropped.map((entry) => entry.item));
    const cisp = {
      locale: 'US',
      deploymentOption: '',
      entityName: request.name,
      networkMapping: descriptor.networks.map((name) => ({ name, network: target.network.ref })),
      diskProvisioning: 'thin',
    };
    const { returnval, text: xml } = await client.invokeWithText('CreateImportSpec', ovfManager, {
      ovfDescriptor: text,
      resourcePool: target.placement.resourcePool,
      datastore: target.datastore.ref,
      cisp,
    });
    const result = asObject(returnval);
    const errors = messagesOf(result.error);
    const warnings = messagesOf(result.warning).map((entry) => entry.message);
    if (errors.length === 0) {
      if (asObject(result).importSpec === undefined) throw new CesoError('HOST_FAULT', 'CreateImportSpec returned no import spec and no error');
      return { spec: { xml: extractImportSpec(xml), fileItems: fileItemsOf(result), warnings }, dropped };
    }
    const refusedNow: Array<DroppedItem & { item: OvfItem }> = [];
    for (const error of errors) {
      const instanceId = asString(error.fault.instanceId);
      const item = error.type === 'OvfUnsupportedType' ? descriptor.items.find((candidate) => candidate.instanceId === instanceId && !dropped.some((entry) => entry.item === candidate)) : undefined;
      if (item === undefined) {
        throw new CesoError('HOST_FAULT', `the host cannot import this OVF: ${error.message}`, {
          hint: 'Nothing was made. Check that the package suits this host (hardware version, device types), or edit the .ovf',
          details: { fault: error.type },
        });
      }
      if (item.resourceType === 17 || descriptor.items.some((disk) => disk.resourceType === 17 && disk.parent === item.instanceId)) {
        throw new CesoError('HOST_FAULT', `the host refuses ${item.elementName} (${resourceKind(item.resourceType)}), which a disk needs: ${error.message}`, { hint: 'Nothing was made. Edit the .ovf to use a controller this host supports' });
      }
      refusedNow.push({ name: item.elementName, kind: resourceKind(item.resourceType), reason: error.message, item });
    }
    dropped.push(...refusedNow);
  }
  throw new CesoError('HOST_FAULT', 'the host kept refusing items of the OVF');
}

async function vmNames(client: VimClient): Promise<Array<{ name: string; id: string }>> {
  const { rootFolder } = await client.connect();
  const objects = await retrieveProperties(client, [{ obj: rootFolder, selectSet: inventoryTraversal() }], [{ type: 'VirtualMachine', paths: ['name'] }]);
  return objects.map((object) => ({ name: asString(object.props.name) ?? '', id: object.ref.value }));
}

/** Bytes the thin disks take once written: the populated size when the OVF says it, else the file's. */
function neededBytes(pkg: OvfPackage): number {
  return pkg.descriptor.disks.reduce((sum, disk) => {
    const file = diskFile(pkg.descriptor, disk);
    return sum + (disk.populatedBytes ?? pkg.sizes.get(file.href) ?? file.size ?? disk.capacityBytes);
  }, 0);
}

function checkImportSpace(pkg: OvfPackage, datastore: DatastoreInfo): string[] {
  if (datastore.freeBytes === null) return [];
  const needed = neededBytes(pkg);
  if (needed > datastore.freeBytes) {
    throw new CesoError('INSUFFICIENT_SPACE', `datastore "${datastore.name}" has ${gb(datastore.freeBytes / 1024)} GB free; the template's disks need about ${gb(needed / 1024)} GB`, {
      hint: 'Free space on the datastore or choose another --datastore. Nothing was uploaded',
    });
  }
  const capacity = pkg.descriptor.disks.reduce((sum, disk) => sum + disk.capacityBytes, 0);
  return capacity > datastore.freeBytes ? [`datastore "${datastore.name}" has less free space (${gb(datastore.freeBytes / 1024)} GB) than the thin disks may grow to (${gb(capacity / 1024)} GB)`] : [];
}

function progressLine(sent: number, total: number, started: number): string {
  const seconds = Math.max((performance.now() - started) / 1000, 0.001);
  const rate = sent / seconds;
  const left = rate > 0 ? Math.round((total - sent) / rate) : 0;
  const mb = (bytes: number): string => (bytes / 1024 ** 2).toFixed(1);
  return `${mb(sent)}/${mb(total)} MB  ${mb(rate)} MB/s  ETA ${Math.floor(left / 60)}m${String(left % 60).padStart(2, '0')}s`;
}

export async function planImport(client: VimClient, request: ImportRequest): Promise<Mutation<ImportOutcome>> {
  const pkg = await openPackage(request.source);
  try {
    assertNameFree(request.name, await vmNames(client));
    const placement = await readPlacement(client);
    const datastoreName = request.datastore ?? largestDatastore(placement).name;
    const target: Target = { placement, datastore: findDatastore(placement, datastoreName), network: findNetwork(placement, request.network ?? 'VM Network') };
    const warnings = checkImportSpace(pkg, target.datastore);
    const { spec, dropped } = await createImportSpec(client, pkg.descriptor, request, target);
    const uploads = pkg.descriptor.disks.map((disk) => diskFile(pkg.descriptor, disk).href);
    for (const href of uploads) {
      if (!spec.fileItems.some((item) => item.path === href)) throw new CesoError('HOST_FAULT', `the host's import spec has no upload for ${href}`, { hint: 'Nothing was made; the host did not accept the disk of this package' });
    }
    for (const entry of dropped) warnings.push(`the host does not support ${entry.name} (${entry.kind}): left out of the template`);
    warnings.push(...spec.warnings);
    if (pkg.descriptor.properties.length > 0) {
      warnings.push(`vApp properties not mapped (${pkg.descriptor.properties.join(', ')}): ceso configures guests through guestinfo, and an OVF environment would compete with it`);
    }
    const plan = buildPlan(client, request, pkg, target, spec, warnings, dropped);
    return {
      plan,
      finish: async () => {
        if (plan.state.vm === undefined) throw new CesoError('INTERNAL', 'the import made no VM');
        const details = await getVmByRef(client, plan.state.vm);
        return { ...details, bytesUploaded: plan.state.bytesUploaded, dropped: dropped.map(({ name, kind, reason }) => ({ name, kind, reason })) };
      },
      close: () => pkg.close(),
    };
  } catch (error) {
    await pkg.close();
    throw error;
  }
}

function largestDatastore(placement: Placement): DatastoreInfo {
  const candidates = placement.datastores.filter((datastore) => datastore.accessible).sort((a, b) => (b.freeBytes ?? 0) - (a.freeBytes ?? 0));
  const best = candidates[0];
  if (best === undefined) throw new CesoError('DATASTORE_NOT_FOUND', 'the host has no accessible datastore', { hint: 'Add or mount a datastore on the host' });
  return best;
}

function buildPlan(client: VimClient, request: ImportRequest, pkg: OvfPackage, target: Target, spec: ImportSpec, warnings: string[], dropped: DroppedItem[]): Plan<ImportState> {
  const { descriptor } = pkg;
  const folder = target.placement.vmFolder;
  const importArgs = { spec: spec.xml, folder };
  const totalBytes = (): number => spec.fileItems.reduce((sum, item) => sum + (pkg.sizes.get(item.path) ?? item.size ?? 0), 0);
  const vmDirectory = `[${target.datastore.name}] ${request.name}`;
  const discard = async (state: ImportState): Promise<void> => {
    await state.lease?.abort();
    const vm = state.vm ?? (await findByName(client, request.name).catch(() => undefined));
    if (vm !== undefined) await ignoreGone(runTask(client, 'Destroy_Task', vm, {}, `delete ${request.name}`));
    const { fileManager } = client.serviceContent;
    if (fileManager !== undefined) {
      await ignoreGone(runTask(client, 'DeleteDatastoreFile_Task', fileManager, { name: vmDirectory, datacenter: target.placement.datacenter }, `delete ${vmDirectory}`));
    }
  };
  const steps: Array<PlanStep<ImportState>> = [
    {
      id: 'import-vapp',
      description: `create the VM ${request.name} on ${target.datastore.name} from the OVF (ImportVApp) and wait for the host's upload lease`,
      action: apiAction('ImportVApp', target.placement.resourcePool, importArgs),
      run: async (state, _progress, signal) => {
        const lease = await client.invoke('ImportVApp', target.placement.resourcePool, importArgs);
        if (!(lease instanceof MoRef)) throw new CesoError('HOST_FAULT', 'ImportVApp returned no lease');
        state.lease = new NfcLease(client, lease);
        try {
          state.info = await state.lease.waitReady(LEASE_READY_TIMEOUT_MS, signal);
          state.vm = state.info.entity ?? (await findByName(client, request.name));
        } catch (error) {
          // the VM exists from ImportVApp on: a step that fails half-way takes back its own part
          await discard(state).catch(() => undefined);
          throw error;
        }
      },
      undo: {
        description: `abort the upload lease and delete the VM ${request.name} and the folder ${vmDirectory}`,
        run: discard,
      },
    },
    {
      id: 'upload-disks',
      description: `upload ${descriptor.disks.length === 1 ? 'the disk' : `${descriptor.disks.length} disks`} (${spec.fileItems.map((item) => item.path).join(', ')}) to the lease's device URLs, keeping the lease alive`,
      action: { kind: 'api', method: 'HttpNfcLeaseProgress', object: 'HttpNfcLease:<the lease>', arguments: { uploads: spec.fileItems.map((item) => ({ file: item.path, deviceId: item.deviceId, method: item.create ? 'PUT' : 'POST application/x-vnd.vmware-streamVmdk' })) } },
      run: async (state, progress, signal) => {
        const lease = state.lease;
        const info = state.info;
        if (lease === undefined || info === undefined) throw new CesoError('INTERNAL', 'no lease to upload to');
        await uploadFiles(client, pkg, spec, lease, info, state, { total: totalBytes(), progress, ...(signal === undefined ? {} : { signal }) });
      },
    },
    {
      id: 'complete-lease',
      description: 'complete the lease (HttpNfcLeaseComplete): the host finishes the VM',
      action: { kind: 'api', method: 'HttpNfcLeaseComplete', object: 'HttpNfcLease:<the lease>', arguments: {} },
      run: async (state) => {
        await state.lease?.complete();
      },
    },
    markStep(client, request, pkg.label),
  ];
  return {
    operation: 'template import',
    target: request.name,
    via: 'api',
    steps,
    review: {
      import: {
        source: pkg.label,
        name: request.name,
        datastore: target.datastore.name,
        hardware: { guestId: descriptor.osType, cpu: descriptor.cpus, memoryMB: descriptor.memoryMB },
        disks: descriptor.disks.map((disk) => {
          const file = diskFile(descriptor, disk);
          return { file: file.href, capacityGB: gb(disk.capacityBytes / 1024), uploadBytes: pkg.sizes.get(file.href) ?? file.size, thin: true };
        }),
        networks: descriptor.networks.map((name) => ({ ovf: name, portGroup: target.network.name })),
        dropped,
        vAppProperties: { mapped: [], unmapped: descriptor.properties },
      },
    },
    warnings,
    state: { bytesUploaded: 0 },
  };
}

async function uploadFiles(
  client: VimClient,
  pkg: OvfPackage,
  spec: ImportSpec,
  lease: NfcLease,
  info: LeaseInfo,
  state: ImportState,
  options: { total: number; progress: (percent: number, detail?: string) => void; signal?: AbortSignal },
): Promise<void> {
  const started = performance.now();
  let sent = 0;
  let reported = -1;
  let shownAt = 0;
  let lastByteAt = Date.now();
  const stallLimitMs = info.leaseTimeoutSeconds * 1000;
  const controller = new AbortController();
  const forward = (): void => controller.abort();
  options.signal?.addEventListener('abort', forward, { once: true });
  let leaseFailure: CesoError | undefined;
  const stopListening = lease.onFailure((error) => {
    leaseFailure = error;
    controller.abort();
  });
  const stall = setInterval(() => {
    if (Date.now() - lastByteAt > stallLimitMs) {
      leaseFailure ??= new CesoError('TIMEOUT', `no data moved for ${Math.round(stallLimitMs / 1000)} s (the lease timeout): the upload stalled`, {
        hint: 'Check the source (a stalled download) and the network to the host, then run the import again',
      });
      controller.abort();
    }
  }, Math.min(1000, stallLimitMs / 2));
  stall.unref();
  lease.startKeepAlive(info, () => (options.total > 0 ? (100 * sent) / options.total : 0), () => {
    const moved = sent !== reported;
    reported = sent;
    return moved;
  });
  try {
    for await (const file of pkg.files()) {
      const item = spec.fileItems.find((candidate) => candidate.path === file.href);
      if (item === undefined) {
        for await (const _chunk of file.data) void _chunk;
        continue;
      }
      const device = info.deviceUrls.find((url) => url.importKey === item.deviceId);
      if (device === undefined) throw new CesoError('HOST_FAULT', `the lease offers no device URL for ${file.href} (${item.deviceId})`);
      const trust = device.sslThumbprint === null ? client.tlsOptions : { insecure: false, thumbprint: device.sslThumbprint };
      const cookie = client.sessionCookie;
      await upload(
        { url: resolveDeviceUrl(device.url, client.address), disk: !item.create, trust, connectTimeoutMs: client.tlsOptions.connectTimeoutMs, ...(cookie === undefined ? {} : { cookie }) },
        file.size,
        file.data,
        {
          signal: controller.signal,
          onBytes: (count) => {
            sent += count;
            state.bytesUploaded = sent;
            lastByteAt = Date.now();
            if (lastByteAt - shownAt < 200) return;
            shownAt = lastByteAt;
            options.progress(options.total > 0 ? Math.min(99, Math.floor((100 * sent) / options.total)) : 0, progressLine(sent, options.total, started));
          },
        },
      );
      file.verify();
    }
  } catch (error) {
    if (options.signal?.aborted === true) throw new CesoError('INTERRUPTED', `interrupted during the upload (${sent} bytes sent)`);
    const failure = leaseFailure ?? (await lease.currentFailure());
    throw failure ?? error;
  } finally {
    clearInterval(stall);
    stopListening();
    options.signal?.removeEventListener('abort', forward);
  }
  if (leaseFailure !== undefined) throw leaseFailure;
}

function markStep(client: VimClient, request: ImportRequest, label: string): PlanStep<ImportState> {
  const extraConfig = [option(MARKERS.template, 'true'), option(MARKERS.importedFrom, label), option('guestinfo.ovfEnv', '')];
  const spec = (vCenter: boolean): Record<string, unknown> => ({
    annotation: `Imported by ceso from ${label}`,
    extraConfig,
    ...(vCenter ? { vAppConfigRemoved: true } : {}),
  });
  return {
    id: 'mark-template',
    description: `mark ${request.name} as a ceso template (ceso.template = "true", ceso.importedFrom)${client.isVCenter ? ' and remove its vApp options, so no OVF environment reaches the guest' : ''}; it stays powered off`,
    action: apiAction('ReconfigVM_Task', new MoRef('VirtualMachine', `<${request.name}>`), { spec: spec(client.isVCenter) as never }),
    run: async (state) => {
      if (state.vm === undefined) throw new CesoError('INTERNAL', 'the import made no VM');
      await runTask(client, 'ReconfigVM_Task', state.vm, { spec: spec(client.isVCenter) as never }, `mark ${request.name} as a template`);
    },
  };
}

async function findByName(client: VimClient, name: string): Promise<MoRef> {
  const { rootFolder } = await client.connect();
  const objects = await retrieveProperties(client, [{ obj: rootFolder, selectSet: inventoryTraversal() }], [{ type: 'VirtualMachine', paths: ['name'] }]);
  const found = objects.find((object) => asString(object.props.name) === name);
  if (found === undefined) throw new CesoError('HOST_FAULT', `the lease gave no VM and none is named ${name}`);
  return found.ref;
}


