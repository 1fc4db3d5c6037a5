// The SSH path's parsers on the verbatim samples of /work/shared/reference/esxi-shell.md and
// their quirks.
import { describe, expect, it } from 'vitest';
import { compareNatural } from '../../src/core/order.js';
import {
  currentSnapshotOf,
  descriptorCapacityKB,
  parseDatastores,
  parseDevices,
  parseFault,
  parseGetAllVms,
  parseGuest,
  parseMacLines,
  parsePortgroups,
  parsePowerState,
  parseRegisteredVmid,
  parseSnapshots,
  parseSummary,
  vmkfstoolsProgress,
} from '../../src/ssh/parse.js';
import { checkOutput, faultError } from '../../src/ssh/run.js';
import { parseVmodl, VmodlRef } from '../../src/ssh/vmodl.js';
import { VmxFile } from '../../src/ssh/vmx.js';

const GETALLVMS = `Vmid      Name                        File                         Guest OS        Version   Annotation
10     centos-00     [vs-00-das] centos-00/centos-00.vmx       centos7_64Guest     vmx-13     
11     centos-01     [vs-00-das] centos-01/centos-01.vmx       centos7_64Guest     vmx-13     
6      firewall-00   [vs-00-das] firewall-00/firewall-00.vmx   freebsd64Guest      vmx-13     
`;

describe('vim-cmd vmsvc/getallvms', () => {
  it('reads the reference rows, string-sorted vmids and trailing spaces included', () => {
    const { rows, skipped } = parseGetAllVms(GETALLVMS);
    expect(skipped).toEqual([]);
    expect(rows.map((row) => row.id)).toEqual(['10', '11', '6']);
    expect(rows[0]).toEqual({
      id: '10',
      name: 'centos-00',
      file: '[vs-00-das] centos-00/centos-00.vmx',
      datastore: 'vs-00-das',
      guestId: 'centos7_64Guest',
      version: 'vmx-13',
      annotation: null,
    });
    expect(rows.map((row) => row.id).sort(compareNatural)).toEqual(['6', '10', '11']);
  });

  it('keeps names with spaces, brackets and parentheses whole', () => {
    const { rows } = parseGetAllVms(
      'Vmid      Name                        File                         Guest OS        Version   Annotation\n' +
        '496  vm-ark-mcnc-9 (nonpersistent: base-v12)        [nfs-datastore] vm-ark/vm-ark.vmx   winXPProGuest   vmx-04\n' +
        '497   web [blue] 2   [SSD Home] web [blue] 2/web [blue] 2.vmx   ubuntu64Guest   vmx-19   \n' +
        '498   db (copy)   [datastore (1)] db (copy)/db (copy).vmx   ubuntu64Guest   vmx-19   keep me\n',
    );
    expect(rows.map((row) => [row.id, row.name, row.datastore, row.file])).toEqual([
      ['496', 'vm-ark-mcnc-9 (nonpersistent: base-v12)', 'nfs-datastore', '[nfs-datastore] vm-ark/vm-ark.vmx'],
      ['497', 'web [blue] 2', 'SSD Home', '[SSD Home] web [blue] 2/web [blue] 2.vmx'],
      ['498', 'db (copy)', 'datastore (1)', '[datastore (1)] db (copy)/db (copy).vmx'],
    ]);
    expect(rows[2]?.annotation).toBe('keep me');
  });

  it('reads system VMs with an empty [] datastore', () => {
    const { rows } = parseGetAllVms('1698   vCLS-6b72   [] /var/run/crx/infra/vCLS-6b72/vCLS-6b72.vmx   crxSys1Guest   vmx-21\n');
    expect(rows).toEqual([
      { id: '1698', name: 'vCLS-6b72', file: '[] /var/run/crx/infra/vCLS-6b72/vCLS-6b72.vmx', datastore: '', guestId: 'crxSys1Guest', version: 'vmx-21', annotation: null },
    ]);
  });

  it('continues a multi-line annotation on the lines that are not rows', () => {
    const { rows } = parseGetAllVms(
      'Vmid      Name                        File                         Guest OS        Version   Annotation\n' +
        '12     web1     [datastore1] web1/web1.vmx   ubuntu64Guest   vmx-19   first line\n' +
        'second line\n' +
        '  third: 3 [x]\n' +
        '13     web2     [datastore1] web2/web2.vmx   ubuntu64Guest   vmx-19   \n',
    );
    expect(rows.map((row) => [row.id, row.annotation])).toEqual([
      ['12', 'first line\nsecond line\n  third: 3 [x]'],
      ['13', null],
    ]);
  });

  it('notes "Skipping invalid VM" and keeps duplicate names as separate rows', () => {
    const { rows, skipped } = parseGetAllVms(
      "Skipping invalid VM '16'\n" +
        'Vmid      Name                        File                         Guest OS        Version   Annotation\n' +
        '14     twin     [datastore1] twin/twin.vmx   ubuntu64Guest   vmx-19   \n' +
        '15     twin     [datastore1] twin_1/twin.vmx   ubuntu64Guest   vmx-19   \n',
    );
    expect(skipped).toEqual(['16']);
    expect(rows.map((row) => [row.id, row.name])).toEqual([
      ['14', 'twin'],
      ['15', 'twin'],
    ]);
  });

  it('reads rows without a guest OS and the simulator moref-style vmids', () => {
    const { rows } = parseGetAllVms('vm-11   vm-0001   [datastore1] vm-0001/vm-0001.vmx      vmx-19   \n');
    expect(rows[0]).toMatchObject({ id: 'vm-11', name: 'vm-0001', guestId: null, version: 'vmx-19' });
  });
});

const NOT_FOUND_OLD = `(vim.fault.NotFound) {
   dynamicType = <unset>,
   faultCause = (vmodl.MethodFault) null,
   msg = "Unable to find a VM corresponding to "16"",
}`;

const NOT_FOUND_NEW = `(vim.fault.NotFound) {
   faultCause = (vmodl.MethodFault) null, 
   faultMessage = <unset>
   msg = "Unable to find a VM corresponding to "16""
}`;

const POWER_ON_FAILED = `Powering on VM:
Power on failed: (vim.fault.InvalidPowerState) {
   faultCause = (vmodl.MethodFault) null, 
   faultMessage = <unset>, 
   requestedState = "poweredOn", 
   existingState = "poweredOff"
   msg = "The attempted operation cannot be performed in the current state (Powered off)."
}`;

describe('faults', () => {
  it('reads the older format, unescaped quotes in msg included', () => {
    expect(parseFault(NOT_FOUND_OLD)).toEqual({ type: 'NotFound', namespace: 'vim.fault', message: 'Unable to find a VM corresponding to "16"', prefix: '' });
  });

  it('reads the newer format (no dynamicType, no comma before msg)', () => {
    expect(parseFault(NOT_FOUND_NEW)).toEqual({ type: 'NotFound', namespace: 'vim.fault', message: 'Unable to find a VM corresponding to "16"', prefix: '' });
  });

  it('reads a fault after a prefix and maps it to the API path error code', () => {
    const fault = parseFault(POWER_ON_FAILED);
    expect(fault).toMatchObject({ type: 'InvalidPowerState', prefix: 'Power on failed:', message: 'The attempted operation cannot be performed in the current state (Powered off).' });
    const error = faultError(fault!, 'power on web1');
    expect(error.code).toBe('INVALID_POWER_STATE');
    expect(error.message).toBe('power on web1: InvalidPowerState: The attempted operation cannot be performed in the current state (Powered off).');
  });

  it('reads vmodl faults and ignores faults nested as members of a dump', () => {
    expect(parseFault('(vmodl.fault.ManagedObjectNotFound) {\n   msg = "gone"\n}')).toMatchObject({ type: 'ManagedObjectNotFound', namespace: 'vmodl.fault' });
    expect(parseFault('(vim.vm.Summary) {\n   cause = (vim.fault.NotFound) {\n      msg = "x"\n   },\n}')).toBeNull();
    expect(parseFault('Listsummary:\n(vim.vm.Summary) {\n   faultCause = (vmodl.MethodFault) null,\n}')).toBeNull();
  });

  it('fails a command on fault text even when vim-cmd exits 0, and on a non-zero exit without one', () => {
    expect(() => checkOutput({ stdout: NOT_FOUND_NEW, stderr: '', code: 0 }, "vim-cmd vmsvc/get.summary '16'", { what: 'read vm 16' })).toThrow(
      expect.objectContaining({ code: 'NOT_FOUND' }),
    );
    expect(checkOutput({ stdout: NOT_FOUND_NEW, stderr: '', code: 1 }, 'vim-cmd', { what: 'x', tolerate: ['NotFound'] }).fault?.type).toBe('NotFound');
    expect(() => checkOutput({ stdout: '', stderr: 'mkdir: cannot create directory', code: 1 }, "mkdir '/x'", { what: 'mkdir' })).toThrow(
      expect.objectContaining({ code: 'HOST_FAULT' }),
    );
    expect(() => checkOutput({ stdout: '', stderr: 'sh: vim-cmd: not found', code: 127 }, 'vim-cmd vmsvc/getallvms', { what: 'list' })).toThrow(
      expect.objectContaining({ code: 'NOT_SUPPORTED' }),
    );
    expect(() => checkOutput({ stdout: '<unset>\n', stderr: '', code: 0 }, 'vim-cmd vmsvc/get.summary 1', { what: 'read' })).toThrow(
      expect.objectContaining({ code: 'HOST_UNREACHABLE' }),
    );
  });
});

const SUMMARY = `Listsummary:
(vim.vm.Summary) {
   vm = 'vim.VirtualMachine:10', 
   runtime = (vim.vm.RuntimeInfo) {
      powerState = "poweredOn", 
      ...
   }, 
   guest = (vim.vm.Summary.GuestSummary) {
      toolsStatus = "toolsOk", 
      hostName = "web1", 
      ipAddress = "10.0.0.5", 
   }, 
   config = (vim.vm.Summary.ConfigSummary) {
      name = "web1", 
      vmPathName = "[datastore1] web1/web1.vmx", 
      memorySizeMB = 4096, 
      numCpu = 2, 
      uuid = "564d...", 
      guestId = "ubuntu64Guest", 
   }, 
   overallStatus = "green", 
}`;

describe('vmodl dumps', () => {
  it('reads the reference get.summary (abridged with "...")', () => {
    expect(parseSummary(SUMMARY)).toEqual({
      name: 'web1',
      vmPathName: '[datastore1] web1/web1.vmx',
      uuid: '564d...',
      powerState: 'poweredOn',
      cpu: 2,
      memoryMB: 4096,
      guestId: 'ubuntu64Guest',
      ip: '10.0.0.5',
      annotation: null,
      committedBytes: null,
    });
    expect((parseVmodl(SUMMARY) as unknown as { vm: VmodlRef }).vm).toEqual(new VmodlRef('VirtualMachine', '10'));
  });

  it('reads <unset>, quotes and commas inside strings, and multi-line strings', () => {
    const value = parseVmodl(`(vim.vm.Summary.ConfigSummary) {
   name = "say "hi", then go", 
   annotation = "first line
second line", 
   product = <unset>, 
   template = false, 
}`);
    expect(value).toEqual({ _type: 'vim.vm.Summary.ConfigSummary', name: 'say "hi", then go', annotation: 'first line\nsecond line', product: null, template: false });
  });

  it('reads get.guest with the one-line (string) [ ... ] lists and a bare <unset>', () => {
    const guest = parseGuest(`Guest information:

(vim.vm.GuestInfo) {
   toolsStatus = "toolsOk", 
   hostName = "web1", 
   ipAddress = "10.0.0.5", 
   net = (vim.vm.GuestInfo.NicInfo) [
      (vim.vm.GuestInfo.NicInfo) {
         network = "VM Network", 
         ipAddress = (string) [ "10.0.0.5", "fe80::250:56ff:fe00:1" ], 
         macAddress = "00:50:56:AA:BB:CC", 
         connected = true, 
      }
   ], 
}`);
    expect(guest).toEqual({ ip: '10.0.0.5', hostName: 'web1', toolsStatus: 'toolsOk', net: [{ mac: '00:50:56:aa:bb:cc', network: 'VM Network', ips: ['10.0.0.5', 'fe80::250:56ff:fe00:1'] }] });
    expect(parseGuest('Guest information:\n\n<unset>\n')).toEqual({ ip: null, hostName: null, toolsStatus: null, net: [] });
  });

  it('reads disks, NICs and controllers from device.getdevices', () => {
    const hardware = parseDevices(`(vim.vm.VirtualHardware) {
   numCPU = 2, 
   device = (vim.vm.device.VirtualDevice) [
      (vim.vm.device.ParaVirtualSCSIController) {
         key = 1000, 
         deviceInfo = (vim.Description) {
            label = "SCSI controller 0", 
            summary = "VMware paravirtual SCSI", 
         }, 
         controllerKey = 100, 
         busNumber = 0, 
      }, 
      (vim.vm.device.VirtualDisk) {
         key = 2000, 
         deviceInfo = (vim.Description) {
            label = "Hard disk 1", 
            summary = "41,943,040 KB", 
         }, 
         backing = (vim.vm.device.VirtualDisk.FlatVer2BackingInfo) {
            fileName = "[datastore (1)] web 1/web 1.vmdk", 
            datastore = 'vim.Datastore:5f1e:ab', 
            thinProvisioned = true, 
         }, 
         controllerKey = 1000, 
         unitNumber = 0, 
         capacityInKB = 41943040, 
         capacityInBytes = 42949672960, 
      }, 
      (vim.vm.device.VirtualVmxnet3) {
         key = 4000, 
         deviceInfo = (vim.Description) {
            label = "Network adapter 1", 
            summary = "VM Network", 
         }, 
         backing = (vim.vm.device.VirtualEthernetCard.NetworkBackingInfo) {
            deviceName = "VM Network", 
         }, 
         macAddress = "00:50:56:01:02:03", 
      }
   ], 
}`);
    expect(hardware.disks).toEqual([
      { key: 2000, label: 'Hard disk 1', file: '[datastore (1)] web 1/web 1.vmdk', capacityGB: 40, thin: true, parent: null, controllerKey: 1000, unitNumber: 0, capacityKB: 41943040 },
    ]);
    expect(hardware.nics).toEqual([{ key: 4000, label: 'Network adapter 1', network: 'VM Network', mac: '00:50:56:01:02:03', type: 'vmxnet3' }]);
    expect(hardware.controllers.map((controller) => [controller.type, controller.busNumber])).toEqual([['ParaVirtualSCSIController', 0]]);
  });

  it('reads datastore summaries, names with spaces and parentheses included', () => {
    expect(
      parseDatastores(`(vim.Datastore.Summary) [
   (vim.Datastore.Summary) {
      name = "SSD Home", 
      url = "/vmfs/volumes/5f1e-ab", 
      capacity = 1000, 
      freeSpace = 400, 
      accessible = true, 
   }, 
   (vim.Datastore.Summary) {
      name = "datastore (1)", 
      capacity = 10, 
      freeSpace = 0, 
      accessible = false, 
   }
]`),
    ).toEqual([
      { name: 'SSD Home', url: '/vmfs/volumes/5f1e-ab', capacityBytes: 1000, freeBytes: 400, accessible: true },
      { name: 'datastore (1)', url: null, capacityBytes: 10, freeBytes: 0, accessible: false },
    ]);
  });
});

describe('snapshots, power, register, vmkfstools', () => {
  it('reads the reference snapshot tree ("Desciption", varying padding) and no snapshots', () => {
    const tree = parseSnapshots(
      `Get Snapshot:
|-ROOT
--Snapshot Name        : snap01
--Snapshot Id          : 1
--Snapshot Desciption  : snap01 description
--Snapshot Created On  : 2/23/2015 18:12:50
--Snapshot State       : powered on
--|-CHILD
----Snapshot Name        : snap02
----Snapshot Id : 2
----Snapshot Desciption :
----Snapshot State: powered off
|-ROOT
--Snapshot Name        : other root
`,
      '2',
    );
    expect(tree).toEqual([
      {
        name: 'snap01',
        id: '1',
        description: 'snap01 description',
        createdAt: '2015-02-23T18:12:50.000Z',
        state: 'poweredOn',
        current: false,
        children: [{ name: 'snap02', id: '2', description: null, createdAt: null, state: 'poweredOff', current: true, children: [] }],
      },
      { name: 'other root', id: null, description: null, createdAt: null, state: null, current: false, children: [] },
    ]);
    expect(parseSnapshots('Get Snapshot:\n')).toEqual([]);
    expect(currentSnapshotOf(VmxFile.parse('snapshot.current = "2"\nsnapshot0.uid = "1"\n').toMap())).toBe('2');
  });

  it('reads power states', () => {
    expect(parsePowerState('Retrieved runtime info\nPowered on\n')).toBe('poweredOn');
    expect(parsePowerState('Retrieved runtime info\nPowered off\n')).toBe('poweredOff');
    expect(parsePowerState('Retrieved runtime info\nSuspended\n')).toBe('suspended');
    expect(parsePowerState('Retrieved runtime info\n')).toBeNull();
  });

  it('takes the vmid registervm prints, and nothing else', () => {
    expect(parseRegisteredVmid('42\n')).toBe('42');
    expect(parseRegisteredVmid('')).toBeNull();
    expect(parseRegisteredVmid('some text\n')).toBeNull();
  });

  it('reads vmkfstools progress and descriptor capacity', () => {
    expect(vmkfstoolsProgress("Destination disk format: VMFS thin-provisioned\nCloning disk '/vmfs/volumes/ds/a/a.vmdk'...\nClone: 37% done.\rClone: 100% done.\n")).toBe(100);
    expect(vmkfstoolsProgress('Cloning disk')).toBeNull();
    expect(descriptorCapacityKB('# Extent description\nRW 83886080 VMFS "web1-flat.vmdk"\n')).toBe(41943040);
  });

  it('reads port groups and MACs in use', () => {
    expect(
      parsePortgroups(`Name                    Virtual Switch  Active Clients  VLAN ID
----------------------  --------------  --------------  -------
Management Network      vSwitch0                     1        0
VM Network              vSwitch0                     2        0
`),
    ).toEqual(['Management Network', 'VM Network']);
    expect([...parseMacLines('ethernet0.generatedAddress = "00:0C:29:AA:BB:CC"\nethernet1.address = "00:50:56:00:00:01"\nethernet0.addressType = "static"\n')]).toEqual([
      '00:0c:29:aa:bb:cc',
      '00:50:56:00:00:01',
    ]);
  });
});
