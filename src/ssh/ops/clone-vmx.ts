/**
 * The .vmx of a cold clone: the source's file with the new name, disks, resources, one NIC with
 * a MAC ceso chose, fresh guestinfo and ceso markers, and the source's identity removed
 * (`uuid.bios`, `uuid.location`, `vc.uuid`, `sched.swap.derivedName`, generated MACs) with
 * `uuid.action = "create"` so the host makes a new BIOS uuid without asking whether the VM was
 * moved or copied.
 */
import { randomInt } from 'node:crypto';
import { CesoError } from '../../core/errors.js';
import { vmxFileToDatastorePath } from '../paths.js';
import { VmxFile } from '../vmx.js';

export interface VmxDisk {
  /** `scsi0:0` */
  device: string;
  /** The disk as a datastore path. */
  file: string;
}

const DISK_KEY = /^(scsi|sata|nvme|ide)(\d+):(\d+)\.fileName$/i;
const BUS_ORDER: Record<string, number> = { scsi: 0, ide: 1, sata: 2, nvme: 3 };

/** The hard disks a .vmx names (CD-ROMs and absent devices skipped), in the host's device order. */
export function vmxDisks(vmx: VmxFile, vmxDatastorePath: string): VmxDisk[] {
  const disks: Array<VmxDisk & { order: number[] }> = [];
  for (const key of vmx.keys()) {
    const match = DISK_KEY.exec(key);
    if (match === null) continue;
    const device = key.slice(0, key.length - '.fileName'.length);
    const value = vmx.get(key) ?? '';
    if (!/\.vmdk$/i.test(value)) continue;
    if (/cdrom/i.test(vmx.get(`${device}.deviceType`) ?? '')) continue;
    if (/^false$/i.test(vmx.get(`${device}.present`) ?? 'TRUE')) continue;
    const file = vmxFileToDatastorePath(value, vmxDatastorePath);
    if (file === null) throw new CesoError('HOST_FAULT', `${device}.fileName "${value}" is not on a datastore`);
    const kind = (match[1] as string).toLowerCase();
    disks.push({ device, file, order: [BUS_ORDER[kind] ?? 9, Number(match[2]), Number(match[3])] });
  }
  disks.sort((a, b) => (a.order[0] as number) - (b.order[0] as number) || (a.order[1] as number) - (b.order[1] as number) || (a.order[2] as number) - (b.order[2] as number));
  return disks.map(({ device, file }) => ({ device, file }));
}

/**
 * A MAC in VMware's range for static addresses (00:50:56:00:00:00 - 00:50:56:3f:ff:ff) that no
 * .vmx on the host uses: random, then the next free one after it.
 */
export function generateMac(inUse: ReadonlySet<string>, random: (max: number) => number = (max) => randomInt(0, max)): string {
  const RANGE = 0x40_0000;
  const start = random(RANGE);
  for (let offset = 0; offset < RANGE; offset++) {
    const value = (start + offset) % RANGE;
    const mac = `00:50:56:${[value >> 16, (value >> 8) & 0xff, value & 0xff].map((byte) => byte.toString(16).padStart(2, '0')).join(':')}`;
    if (!inUse.has(mac)) return mac;
  }
  throw new CesoError('HOST_FAULT', 'found no free MAC address in 00:50:56:00:00:00-00:50:56:3f:ff:ff');
}

export interface CloneVmxSpec {
  name: string;
  cpu: number;
  memoryMB: number;
  /** New file names of the disks, in the order of `disks`. */
  disks: Array<{ device: string; fileName: string }>;
  network: string;
  mac: string;
  guestinfo: Record<string, string>;
  markers: Record<string, string>;
}

const IDENTITY = /^(uuid\.bios|uuid\.location|vc\.uuid|sched\.swap\.derivedName|checkpoint\.vmState|migrate\.hostLog|extendedConfigFile|annotation|cpuid\.coresPerSocket|uuid\.action)$/i;
const NIC = /^ethernet(\d+)\.(.*)$/i;

export function buildCloneVmx(source: VmxFile, spec: CloneVmxSpec): VmxFile {
  const vmx = VmxFile.parse(source.render());
  const nicIndexes = [...new Set(vmx.keys().flatMap((key) => (NIC.exec(key) === null ? [] : [Number((NIC.exec(key) as RegExpExecArray)[1])])))].sort((a, b) => a - b);
  const firstNic = nicIndexes[0];
  const nicType = firstNic === undefined ? undefined : vmx.get(`ethernet${firstNic}.virtualDev`);
  vmx.deleteWhere((key) => IDENTITY.test(key) || NIC.test(key) || /^guestinfo\./i.test(key) || /^ceso\./i.test(key));
  vmx.set('displayName', spec.name);
  vmx.set('nvram', `${spec.name}.nvram`);
  vmx.set('numvcpus', String(spec.cpu));
  vmx.set('memSize', String(spec.memoryMB));
  for (const disk of spec.disks) vmx.set(`${disk.device}.fileName`, disk.fileName);
  vmx.set('ethernet0.present', 'TRUE');
  vmx.set('ethernet0.virtualDev', nicType ?? 'vmxnet3');
  vmx.set('ethernet0.networkName', spec.network);
  vmx.set('ethernet0.addressType', 'static');
  vmx.set('ethernet0.address', spec.mac);
  vmx.set('ethernet0.startConnected', 'TRUE');
  vmx.set('uuid.action', 'create');
  // A key set to "" is absent for cloud-init and for the API: leave such keys out.
  for (const [key, value] of Object.entries(spec.guestinfo)) if (value !== '') vmx.set(key, value);
  for (const [key, value] of Object.entries(spec.markers)) vmx.set(key, value);
  return vmx;
}

/** The .vmx for a plan's review: guestinfo payloads summarised (they are decoded under cloudInit). */
export function reviewVmx(vmx: VmxFile): Record<string, string> {
  return Object.fromEntries(
    [...vmx.toMap()].map(([key, value]) => [
      key,
      /^guestinfo\./i.test(key) && !/\.encoding$/i.test(key) && value !== '' ? `<gzip+base64, ${value.length} bytes: decoded under review>` : value,
    ]),
  );
}
