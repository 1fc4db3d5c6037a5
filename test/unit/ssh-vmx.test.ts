import { describe, expect, it } from 'vitest';
import { buildCloneVmx, generateMac, reviewVmx, vmxDisks } from '../../src/ssh/ops/clone-vmx.js';
import { decodeVmxValue, encodeVmxValue, uuidFromVmx, VmxFile } from '../../src/ssh/vmx.js';

const TEMPLATE = `.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
nvram = "tmpl.nvram"
displayName = "tmpl"
guestOS = "ubuntu-64"
firmware = "efi"
numvcpus = "4"
cpuid.coresPerSocket = "4"
memSize = "4096"
uuid.bios = "42 1d 3b 5c 8e 8e 9d 1a-4b 2e 95 7c 2c 06 3d 1b"
uuid.location = "56 4d 00 00 00 00 00 00-00 00 00 00 00 00 00 01"
vc.uuid = "52 aa bb cc dd ee ff 00-11 22 33 44 55 66 77 88"
sched.swap.derivedName = "/vmfs/volumes/5f1e/tmpl/tmpl-1234.vswp"
annotation = "golden image|0Asecond line with |22quotes|22"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.deviceType = "scsi-hardDisk"
scsi0:0.fileName = "tmpl.vmdk"
scsi0:1.present = "TRUE"
scsi0:1.fileName = "/vmfs/volumes/SSD Home/shared/data.vmdk"
sata0.present = "TRUE"
sata0:0.present = "TRUE"
sata0:0.deviceType = "cdrom-image"
sata0:0.fileName = "/vmfs/volumes/iso/ubuntu.iso"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "e1000e"
ethernet0.networkName = "Old Net"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "00:0c:29:aa:bb:cc"
ethernet0.generatedAddressOffset = "0"
ethernet1.present = "TRUE"
ethernet1.generatedAddress = "00:0c:29:aa:bb:cd"
guestinfo.metadata = "stale"
guestinfo.vendordata = "stale vendor"
ceso.managed = "true"
ceso.template = "older"
tools.syncTime = "FALSE"
`;

describe('.vmx', () => {
  it('parses key = "value" lines, |XX escapes and keys in any case; renders them back', () => {
    const vmx = VmxFile.parse(TEMPLATE);
    expect(vmx.get('DISPLAYNAME')).toBe('tmpl');
    expect(vmx.get('annotation')).toBe('golden image\nsecond line with "quotes"');
    expect(VmxFile.parse(vmx.render()).toMap()).toEqual(vmx.toMap());
    expect(vmx.render()).toContain('annotation = "golden image|0Asecond line with |22quotes|22"\n');
  });

  it('keeps a key where it first appeared, last value wins; drops lines that are not pairs', () => {
    const vmx = VmxFile.parse('# comment\na = "1"\nbogus line\nB = "2"\nA = "3"\n  c   =   "x y"  \r\n');
    expect(vmx.keys()).toEqual(['a', 'B', 'c']);
    expect(vmx.get('a')).toBe('3');
    expect(vmx.get('c')).toBe('x y');
  });

  it('escapes quotes, pipes and control characters and decodes UTF-8 back', () => {
    expect(encodeVmxValue('a"b|c\nd\te')).toBe('a|22b|7Cc|0Ad|09e');
    expect(decodeVmxValue('a|22b|7Cc|0Ad|09e')).toBe('a"b|c\nd\te');
    expect(decodeVmxValue('caf|C3|A9 |zz|')).toBe('café |zz|');
    expect(uuidFromVmx('42 1d 3b 5c 8e 8e 9d 1a-4b 2e 95 7c 2c 06 3d 1b')).toBe('421d3b5c-8e8e-9d1a-4b2e-957c2c063d1b');
    expect(uuidFromVmx('nope')).toBeNull();
  });
});

describe('the cold clone .vmx', () => {
  const source = VmxFile.parse(TEMPLATE);

  it('lists the hard disks (not CD-ROMs) as datastore paths in device order', () => {
    expect(vmxDisks(source, '[datastore (1)] tmpl/tmpl.vmx')).toEqual([
      { device: 'scsi0:0', file: '[datastore (1)] tmpl/tmpl.vmdk' },
      { device: 'scsi0:1', file: '[SSD Home] shared/data.vmdk' },
    ]);
  });

  it('writes the new identity and removes the old one', () => {
    const vmx = buildCloneVmx(source, {
      name: 'web1',
      cpu: 2,
      memoryMB: 2048,
      disks: [
        { device: 'scsi0:0', fileName: 'web1.vmdk' },
        { device: 'scsi0:1', fileName: 'web1_1.vmdk' },
      ],
      network: 'VM Network',
      mac: '00:50:56:12:34:56',
      guestinfo: { 'guestinfo.metadata': 'H4sI', 'guestinfo.metadata.encoding': 'gzip+base64', 'guestinfo.vendordata': '', 'guestinfo.vendordata.encoding': '' },
      markers: { 'ceso.managed': 'true', 'ceso.template': 'tmpl' },
    });
    const map = Object.fromEntries(vmx.toMap());
    for (const gone of ['uuid.bios', 'uuid.location', 'vc.uuid', 'sched.swap.derivedName', 'ethernet0.generatedAddress', 'ethernet0.generatedAddressOffset', 'ethernet1.present', 'ethernet1.generatedAddress', 'annotation', 'cpuid.coresPerSocket', 'guestinfo.vendordata']) {
      expect(map).not.toHaveProperty(gone);
    }
    expect(map).toMatchObject({
      displayName: 'web1',
      nvram: 'web1.nvram',
      numvcpus: '2',
      memSize: '2048',
      'scsi0:0.fileName': 'web1.vmdk',
      'scsi0:1.fileName': 'web1_1.vmdk',
      'sata0:0.fileName': '/vmfs/volumes/iso/ubuntu.iso',
      'ethernet0.virtualDev': 'e1000e',
      'ethernet0.networkName': 'VM Network',
      'ethernet0.addressType': 'static',
      'ethernet0.address': '00:50:56:12:34:56',
      'uuid.action': 'create',
      'guestinfo.metadata': 'H4sI',
      'guestinfo.metadata.encoding': 'gzip+base64',
      'ceso.managed': 'true',
      'ceso.template': 'tmpl',
      firmware: 'efi',
      'tools.syncTime': 'FALSE',
    });
    expect(reviewVmx(vmx)['guestinfo.metadata']).toBe('<gzip+base64, 4 bytes: decoded under review>');
    expect(reviewVmx(vmx)['guestinfo.metadata.encoding']).toBe('gzip+base64');
  });

  it('picks static MACs in 00:50:56:00:00:00-00:50:56:3f:ff:ff that are not in use', () => {
    for (let index = 0; index < 200; index++) {
      const mac = generateMac(new Set());
      expect(mac).toMatch(/^00:50:56:[0-3][0-9a-f]:[0-9a-f]{2}:[0-9a-f]{2}$/);
    }
    expect(generateMac(new Set(), () => 0x3fffff)).toBe('00:50:56:3f:ff:ff');
    expect(generateMac(new Set(['00:50:56:00:00:00', '00:50:56:00:00:01']), () => 0)).toBe('00:50:56:00:00:02');
    expect(generateMac(new Set(['00:50:56:3f:ff:ff']), () => 0x3fffff)).toBe('00:50:56:00:00:00');
  });
});
