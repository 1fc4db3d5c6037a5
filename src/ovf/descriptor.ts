/**
 * What ceso needs of an OVF descriptor: the files it references, its disks (capacity, format,
 * populated size), networks, the virtual system's hardware items (to name what a host refuses),
 * and the vApp properties ceso deliberately does not map. Checked locally before the host is
 * asked anything, so a broken package is refused with nothing made.
 */
import { invalidInput } from '../core/errors.js';
import { child, children, childText, parseXml, type XmlElement } from './xml.js';

export const STREAM_OPTIMIZED = 'streamOptimized';

export interface OvfFile {
  id: string;
  href: string;
  /** ovf:size, when given. */
  size: number | null;
}

export interface OvfDisk {
  diskId: string;
  fileRef: string;
  capacityBytes: number;
  populatedBytes: number | null;
  format: string;
}

export interface OvfItem {
  instanceId: string;
  elementName: string;
  resourceType: number;
  resourceSubType: string | null;
  /** ovf:required="false" items may be left out; items are required by default. */
  required: boolean;
  /** For disks: the ovf:/disk/<id> they use. */
  hostResource: string | null;
  parent: string | null;
  /** For NICs: the OVF network name. */
  connection: string | null;
  virtualQuantity: number | null;
  allocationUnits: string | null;
  start: number;
  end: number;
}

export interface OvfDescriptor {
  text: string;
  name: string;
  files: OvfFile[];
  disks: OvfDisk[];
  networks: string[];
  items: OvfItem[];
  osType: string | null;
  cpus: number | null;
  memoryMB: number | null;
  /** vApp property keys (ProductSection), which ceso leaves unmapped: guests are configured through guestinfo. */
  properties: string[];
}

/** CIM ResourceType names, for messages ("serial0: serial port"). */
const RESOURCE_KINDS: Record<number, string> = {
  1: 'other device',
  3: 'processor',
  4: 'memory',
  5: 'IDE controller',
  6: 'SCSI controller',
  10: 'network adapter',
  14: 'floppy drive',
  15: 'CD drive',
  16: 'DVD drive',
  17: 'disk',
  20: 'storage controller',
  21: 'serial port',
  22: 'parallel port',
  23: 'USB controller',
  24: 'video card',
  35: 'sound card',
};

export function resourceKind(type: number): string {
  return RESOURCE_KINDS[type] ?? `device of resource type ${type}`;
}

function bad(detail: string): Error {
  return invalidInput(`the OVF descriptor is invalid: ${detail}`, 'Check the .ovf (or the OVA it came in); ceso imports OVF 1.x/2.x packages such as Ubuntu’s cloud images');
}

/** `byte * 2^30`, `KiloBytes`, `MegaBytes`, ... as a byte multiplier. */
export function allocationMultiplier(units: string | undefined | null): number {
  if (units === undefined || units === null || units.trim() === '' || /^bytes?$/i.test(units.trim())) return 1;
  const text = units.replace(/\s+/g, '');
  const power = /^byte\*(\d+)\^(\d+)$/i.exec(text);
  if (power !== null) return Number(power[1]) ** Number(power[2]);
  const named: Record<string, number> = { kilobytes: 1024, megabytes: 1024 ** 2, gigabytes: 1024 ** 3, terabytes: 1024 ** 4 };
  const multiple = named[text.toLowerCase()];
  if (multiple !== undefined) return multiple;
  throw bad(`unknown allocation units '${units}'`);
}

function integer(text: string | undefined, what: string): number | null {
  if (text === undefined || text.trim() === '') return null;
  const value = Number(text.trim());
  if (!Number.isSafeInteger(value) || value < 0) throw bad(`${what} '${text}' is not a whole number`);
  return value;
}

function items(system: XmlElement): OvfItem[] {
  const hardware = child(system, 'VirtualHardwareSection');
  if (hardware === undefined) return [];
  return hardware.children
    .filter((element) => element.name === 'Item' || element.name === 'StorageItem' || element.name === 'EthernetPortItem')
    .map((element) => {
      const type = integer(childText(element, 'ResourceType'), 'ResourceType');
      if (type === null) throw bad(`an Item (${childText(element, 'ElementName') ?? childText(element, 'InstanceID') ?? '?'}) has no ResourceType`);
      return {
        instanceId: childText(element, 'InstanceID') ?? '',
        elementName: childText(element, 'ElementName') ?? childText(element, 'Caption') ?? `item ${childText(element, 'InstanceID') ?? ''}`,
        resourceType: type,
        resourceSubType: childText(element, 'ResourceSubType') ?? null,
        required: (element.attributes['required'] ?? 'true').toLowerCase() !== 'false',
        hostResource: childText(element, 'HostResource') ?? null,
        parent: childText(element, 'Parent') ?? null,
        connection: childText(element, 'Connection') ?? null,
        virtualQuantity: integer(childText(element, 'VirtualQuantity'), 'VirtualQuantity'),
        allocationUnits: childText(element, 'AllocationUnits') ?? null,
        start: element.start,
        end: element.end,
      };
    });
}

export function parseDescriptor(text: string): OvfDescriptor {
  let root: XmlElement;
  try {
    root = parseXml(text);
  } catch (error) {
    throw bad(`not well-formed XML (${error instanceof Error ? error.message : String(error)})`);
  }
  if (root.name !== 'Envelope') throw bad(`the root element is <${root.name}>, not an OVF <Envelope>`);
  const system = child(root, 'VirtualSystem') ?? child(child(root, 'VirtualSystemCollection'), 'VirtualSystem');
  if (system === undefined) throw bad('it has no VirtualSystem');
  if (child(root, 'VirtualSystemCollection') !== undefined) throw bad('it is a multi-VM vApp (VirtualSystemCollection); ceso imports one virtual system');

  const files = children(child(root, 'References'), 'File').map((element) => {
    const href = element.attributes['href'];
    const id = element.attributes['id'];
    if (href === undefined || id === undefined) throw bad('a References/File lacks ovf:id or ovf:href');
    if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.includes('..') || href.startsWith('/')) {
      throw bad(`File ${id} points outside the package (${href}); ceso reads only files inside it`);
    }
    return { id, href, size: integer(element.attributes['size'], `the size of ${href}`) };
  });

  const disks = children(child(root, 'DiskSection'), 'Disk').map((element) => {
    const diskId = element.attributes['diskId'] ?? '';
    const fileRef = element.attributes['fileRef'];
    if (fileRef === undefined) throw bad(`disk ${diskId} has no ovf:fileRef (an empty disk); ceso imports disks with content`);
    if (!files.some((file) => file.id === fileRef)) throw bad(`disk ${diskId} names file ${fileRef}, which References does not list`);
    const capacity = integer(element.attributes['capacity'], `the capacity of disk ${diskId}`);
    if (capacity === null) throw bad(`disk ${diskId} has no ovf:capacity`);
    const multiplier = allocationMultiplier(element.attributes['capacityAllocationUnits']);
    const format = element.attributes['format'] ?? '';
    return {
      diskId,
      fileRef,
      capacityBytes: capacity * multiplier,
      populatedBytes: integer(element.attributes['populatedSize'], `the populated size of disk ${diskId}`),
      format: format.includes('#') ? format.slice(format.indexOf('#') + 1) : format,
    };
  });
  if (disks.length === 0) throw bad('it has no disk (DiskSection/Disk)');
  for (const disk of disks) {
    if (disk.format !== STREAM_OPTIMIZED) {
      throw invalidInput(`disk ${disk.diskId} is in the format '${disk.format || 'unknown'}'; the host imports only streamOptimized VMDKs`, 'Convert it: qemu-img convert -O vmdk -o subformat=streamOptimized in.vmdk out.vmdk, and update the .ovf');
    }
  }

  const hardwareItems = items(system);
  const cpuItem = hardwareItems.find((item) => item.resourceType === 3);
  const memoryItem = hardwareItems.find((item) => item.resourceType === 4);
  const memoryBytes = memoryItem?.virtualQuantity === null || memoryItem === undefined ? null : memoryItem.virtualQuantity * allocationMultiplier(memoryItem.allocationUnits ?? 'byte * 2^20');
  const os = child(system, 'OperatingSystemSection');
  const product = children(system, 'ProductSection');
  return {
    text,
    name: childText(system, 'Name') ?? system.attributes['id'] ?? '',
    files,
    disks,
    networks: children(child(root, 'NetworkSection'), 'Network').map((element) => element.attributes['name'] ?? ''),
    items: hardwareItems,
    osType: os?.attributes['osType'] ?? null,
    cpus: cpuItem?.virtualQuantity ?? null,
    memoryMB: memoryBytes === null ? null : Math.round(memoryBytes / 1024 ** 2),
    properties: product.flatMap((section) => [...children(section, 'Property'), ...children(child(section, 'Category'), 'Property')].map((element) => element.attributes['key'] ?? '')),
  };
}

/** The file a disk's data comes from. */
export function diskFile(descriptor: OvfDescriptor, disk: OvfDisk): OvfFile {
  const file = descriptor.files.find((item) => item.id === disk.fileRef);
  if (file === undefined) throw bad(`disk ${disk.diskId} names file ${disk.fileRef}, which References does not list`);
  return file;
}

/** The descriptor without the given items (cut out of the text, so everything else stays as written). */
export function withoutItems(descriptor: OvfDescriptor, dropped: readonly OvfItem[]): string {
  const spans = [...dropped].sort((a, b) => b.start - a.start);
  let text = descriptor.text;
  for (const item of spans) text = text.slice(0, item.start) + text.slice(item.end);
  return text;
}
