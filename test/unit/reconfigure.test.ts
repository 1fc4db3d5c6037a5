// vm reconfigure's shared rules (core/reconfigure.ts), the SSH path's .vmx edit, the fault
// table both paths share (core/faults.ts) and restricted mode's limits on the new sizes.
import { describe, expect, it } from 'vitest';
import type { CesoError } from '../../src/core/errors.js';
import { faultCode, hostFaultError } from '../../src/core/faults.js';
import { Policy } from '../../src/core/policy.js';
import {
  changedFields,
  hasChanges,
  orderedDisks,
  planChanges,
  reconfigureFault,
  reconfigureRequestFrom,
  type PlannedChanges,
  type ReconfigureRequest,
  type ReconfigureView,
} from '../../src/core/reconfigure.js';
import type { VmDetails } from '../../src/core/vm.js';
import { SoapFault, faultToError } from '../../src/esxi/soap/faults.js';
import { descriptorParent, reconfiguredVmx } from '../../src/ssh/ops/reconfigure.js';
import { faultError } from '../../src/ssh/run.js';
import { errorOf, expectInvalid } from '../support/errors.js';

const GB = 1024 * 1024;
const vm = { name: 'web1' };

function view(overrides: Partial<ReconfigureView> = {}): ReconfigureView {
  return {
    name: 'web1',
    id: 'vm-1',
    managed: true,
    powerState: 'poweredOff',
    cpu: 2,
    memoryMB: 4096,
    coresPerSocket: 1,
    cpuHotAdd: false,
    memoryHotAdd: false,
    hotPlugMemoryLimitMB: null,
    annotation: null,
    snapshotCount: 0,
    vmxPath: '[datastore1] web1/web1.vmx',
    disks: [{ key: 2000, label: 'Hard disk 1', file: '[datastore1] web1/web1.vmdk', capacityKB: 40 * GB, controllerKey: 1000, unitNumber: 0, parent: null }],
    nics: [{ key: 4000, label: 'Network adapter 1', network: 'VM Network', mac: '00:50:56:00:00:01' }],
    controllers: [{ key: 1000, kind: 'scsi', busNumber: 0, type: 'ParaVirtualSCSIController', usedUnits: [0] }],
    datastores: [{ name: 'datastore1', freeBytes: 500 * GB * 1024 }],
    networks: ['VM Network', 'Lab'],
    ...overrides,
  };
}

const request = (flags: Parameters<typeof reconfigureRequestFrom>[1]): ReconfigureRequest => reconfigureRequestFrom(vm, flags);
const plan = (flags: Parameters<typeof reconfigureRequestFrom>[1], overrides: Partial<ReconfigureView> = {}): PlannedChanges => planChanges(view(overrides), request(flags));
const refusal = (flags: Parameters<typeof reconfigureRequestFrom>[1], overrides: Partial<ReconfigureView> = {}): CesoError => errorOf(() => plan(flags, overrides));

describe('vm reconfigure: the flags', () => {
  it('turns sizes into MB and KB, and picks disk 1 and NIC 1 unless told otherwise', () => {
    expect(request({ cpu: 4, memory: '0.5', disk: '40.5', 'add-disk': ['10', '1'], network: 'Lab', 'cpu-hot-add': 'on', 'memory-hot-add': 'off', annotation: '' })).toEqual({
      vm,
      cpu: 4,
      memoryMB: 512,
      disk: { select: { index: 0 }, capacityKB: 41472 * 1024 },
      addDisks: [{ capacityKB: 10 * GB }, { capacityKB: GB }],
      network: { select: { index: 0 }, portgroup: 'Lab' },
      cpuHotAdd: true,
      memoryHotAdd: false,
      annotation: '',
    });
    expect(request({ 'memory-mb': 3072, disk: '80', 'disk-label': 'Hard disk 2', network: 'Lab', nic: '2' })).toMatchObject({
      memoryMB: 3072,
      disk: { select: { label: 'Hard disk 2' } },
      network: { select: { index: 1 } },
    });
    expect(request({ disk: '80', 'disk-key': 2001, network: 'Lab', nic: 'Network adapter 2' })).toMatchObject({ disk: { select: { key: 2001 } }, network: { select: { label: 'Network adapter 2' } } });
  });

  it('refuses malformed values (exit 2) before any call to the host, each with a hint', () => {
    const cases: Array<[Parameters<typeof reconfigureRequestFrom>[1], string]> = [
      [{ memory: '4', 'memory-mb': 4096 }, 'say the same thing'],
      [{ cpu: 0 }, '--cpu 0'],
      [{ disk: 'big' }, '--disk big'],
      [{ disk: '-1' }, 'greater than 0'],
      [{ 'add-disk': ['0'] }, '--add-disk 0'],
      [{ 'disk-label': 'x' }, 'add --disk GB'],
      [{ nic: '2' }, 'add --network'],
      [{ network: 'Lab', nic: '0' }, 'numbered from 1'],
      [{ network: 'a\u0007b' }, 'expected a port group name'],
      [{}, 'nothing to change'],
    ];
    for (const [flags, message] of cases) {
      expect(expectInvalid(() => request(flags), message).hint).toBeTruthy();
    }
  });

  it('refuses memory that is not a multiple of 4 MB as a conflict with what the host accepts (exit 4)', () => {
    for (const [flags, message] of [
      [{ 'memory-mb': 1001 }, 'not a multiple of 4 MB'],
      [{ memory: '0.3' }, '307 MB is not a multiple of 4 MB'],
    ] as const) {
      const error = errorOf(() => request(flags));
      expect(error).toMatchObject({ code: 'CONFLICT', exitCode: 4, details: { reason: 'memoryNotMultipleOf4MB' } });
      expect(error.message).toContain(message);
    }
  });
});

describe('vm reconfigure: what changes and what is refused', () => {
  it('leaves out what the VM already has; nothing asked that differs is no change', () => {
    const same = plan({ cpu: 2, 'memory-mb': 4096, disk: '40', network: 'VM Network', 'cpu-hot-add': 'off', annotation: '' });
    expect(hasChanges(same)).toBe(false);
    expect(plan({ cpu: 4, annotation: 'x' })).toEqual({ add: [], cpu: 4, annotation: 'x' });
  });

  it('refuses a shrink, and a grow with snapshots or a parent disk (exit 4, the reason in details)', () => {
    expect(refusal({ disk: '20' })).toMatchObject({ code: 'CONFLICT', details: { reason: 'disk-shrink', capacityGB: 40, requestedGB: 20 } });
    expect(refusal({ disk: '20' }).hint).toMatch(/--disk 40 or more/);
    expect(refusal({ disk: '50' }, { snapshotCount: 2 })).toMatchObject({ code: 'CONFLICT', details: { reason: 'disk-has-snapshots', snapshots: 2 } });
    const parent = view().disks.map((disk) => ({ ...disk, parent: '[datastore1] base/base.vmdk' }));
    expect(refusal({ disk: '50' }, { disks: parent })).toMatchObject({ code: 'CONFLICT', details: { reason: 'disk-has-parent' } });
    // The same size with snapshots is no change, not a refusal.
    expect(hasChanges(plan({ disk: '40' }, { snapshotCount: 1 }))).toBe(false);
  });

  it('counts disks by controller and unit, not in the order the host lists them', () => {
    const disks = [
      { key: 2001, label: 'Hard disk 2', file: '[datastore1] web1/web1_1.vmdk', capacityKB: 10 * GB, controllerKey: 1000, unitNumber: 1, parent: null },
      { key: 2000, label: 'Hard disk 1', file: '[datastore1] web1/web1.vmdk', capacityKB: 40 * GB, controllerKey: 1000, unitNumber: 0, parent: null },
    ];
    expect(orderedDisks(view({ disks })).map((disk) => disk.key)).toEqual([2000, 2001]);
    expect(plan({ disk: '50' }, { disks }).grow).toMatchObject({ index: 0, disk: { key: 2000 } });
    expect(plan({ disk: '50', 'disk-label': 'Hard disk 2' }, { disks }).grow).toMatchObject({ index: 1, disk: { key: 2001 } });
    expect(refusal({ disk: '50', 'disk-key': 7 }, { disks })).toMatchObject({ code: 'NOT_FOUND' });
    expect(refusal({ disk: '50' }, { disks: [] }).message).toContain('has no disk 1');
  });

  it('adds thin disks at the next free units of the first disk’s controller, skipping SCSI unit 7, with free names', () => {
    const busy = view({ controllers: [{ key: 1000, kind: 'scsi', busNumber: 0, type: 'ParaVirtualSCSIController', usedUnits: [0, 1, 2, 3, 4, 5, 6] }] });
    const changes = planChanges({ ...busy, folderFiles: new Set(['[datastore1] web1/web1_1.vmdk']) }, request({ 'add-disk': ['1', '2'] }));
    expect(changes.add.map((addition) => [addition.device, addition.unitNumber, addition.file])).toEqual([
      ['scsi0:8', 8, '[datastore1] web1/web1_2.vmdk'],
      ['scsi0:9', 9, '[datastore1] web1/web1_3.vmdk'],
    ]);
    const full = view({ controllers: [{ key: 1000, kind: 'scsi', busNumber: 0, type: 'ParaVirtualSCSIController', usedUnits: [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15] }] });
    expect(errorOf(() => planChanges(full, request({ 'add-disk': ['1'] })))).toMatchObject({ code: 'CONFLICT', details: { reason: 'no-free-unit' } });
    const sata = view({ controllers: [{ key: 15000, kind: 'sata', busNumber: 0, type: 'VirtualAHCIController', usedUnits: [0] }], disks: [{ ...view().disks[0]!, controllerKey: 15000 }] });
    expect(planChanges(sata, request({ 'add-disk': ['1'] })).add[0]).toMatchObject({ device: 'sata0:1', unitNumber: 1 });
    expect(errorOf(() => planChanges(view({ controllers: [] }), request({ 'add-disk': ['1'] })))).toMatchObject({ code: 'CONFLICT', details: { reason: 'no-controller' } });
  });

  it('refuses CPU and memory changes a running VM cannot take, and hot-add flags while it runs', () => {
    const on = { powerState: 'poweredOn' as const };
    expect(refusal({ cpu: 4 }, on)).toMatchObject({ code: 'INVALID_POWER_STATE', details: { reason: 'cpu-hot-add-disabled' } });
    expect(refusal({ cpu: 1 }, { ...on, cpuHotAdd: true })).toMatchObject({ details: { reason: 'cpu-hot-remove' } });
    expect(plan({ cpu: 4 }, { ...on, cpuHotAdd: true }).cpu).toBe(4);
    expect(refusal({ memory: '8' }, on)).toMatchObject({ details: { reason: 'memory-hot-add-disabled' } });
    expect(refusal({ memory: '2' }, { ...on, memoryHotAdd: true })).toMatchObject({ details: { reason: 'memory-hot-remove' } });
    expect(refusal({ memory: '16' }, { ...on, memoryHotAdd: true, hotPlugMemoryLimitMB: 8192 })).toMatchObject({ details: { reason: 'memory-hot-add-limit' } });
    expect(plan({ memory: '8' }, { ...on, memoryHotAdd: true }).memoryMB).toBe(8192);
    expect(refusal({ 'cpu-hot-add': 'on' }, on)).toMatchObject({ code: 'INVALID_POWER_STATE', details: { reason: 'hot-add-flag-while-on' } });
    expect(hasChanges(plan({ 'cpu-hot-add': 'on' }, { ...on, cpuHotAdd: true }))).toBe(false);
    // A running VM takes a disk grow, a new disk, a NIC move and an annotation (over the API).
    expect(hasChanges(plan({ disk: '50', 'add-disk': ['1'], network: 'Lab', annotation: 'x' }, on))).toBe(true);
    const suspended = { powerState: 'suspended' as const, cpuHotAdd: true };
    for (const flags of [{ cpu: 4 }, { disk: '50' }, { network: 'Lab' }]) expect(refusal(flags, suspended)).toMatchObject({ code: 'INVALID_POWER_STATE', details: { reason: 'suspended' } });
    expect(refusal({ cpu: 3 }, { coresPerSocket: 2, cpu: 4 })).toMatchObject({ code: 'CONFLICT', details: { reason: 'cores-per-socket' } });
  });

  it('refuses an unknown port group (exit 3) where the path lists them; checks the space the disks ask for', () => {
    expect(refusal({ network: 'nope' })).toMatchObject({ code: 'NETWORK_NOT_FOUND' });
    expect(plan({ network: 'nope' }, { networks: null }).network).toMatchObject({ portgroup: 'nope', index: 0 });
    const tight = { datastores: [{ name: 'datastore1', freeBytes: 15 * GB * 1024 }] };
    expect(refusal({ disk: '50', 'add-disk': ['6'] }, tight)).toMatchObject({ code: 'INSUFFICIENT_SPACE', details: { neededBytes: 16 * GB * 1024 } });
    expect(plan({ disk: '50', 'add-disk': ['5'] }, tight).add).toHaveLength(1);
    expect(hasChanges(plan({ 'add-disk': ['5000'] }, { datastores: [{ name: 'datastore1', freeBytes: null }] }))).toBe(true);
  });
});

describe('vm reconfigure: changed', () => {
  const details = (overrides: Partial<VmDetails>): VmDetails =>
    ({
      name: 'web1',
      cpu: 4,
      memoryMB: 8192,
      annotation: 'x',
      disks: [
        { label: 'Hard disk 2', file: '[datastore1] web1/web1_1.vmdk', capacityGB: 1, thin: true },
        { label: 'Hard disk 1', file: '[datastore1] web1/web1.vmdk', capacityGB: 50, thin: true },
      ],
      nics: [{ label: 'Network adapter 1', network: 'Lab', mac: '00:50:56:00:00:01', type: 'vmxnet3' }],
      ...overrides,
    }) as VmDetails;

  it('names the result’s fields in order, indexes into the result, and what it does not show as missing', () => {
    const changes = plan({ cpu: 4, memory: '8', disk: '50', 'add-disk': ['1'], network: 'Lab', annotation: 'x', 'cpu-hot-add': 'on' });
    expect(changedFields({ details: details({}), cpuHotAdd: true, memoryHotAdd: null }, changes)).toEqual({
      changed: ['cpu', 'memoryMB', 'disks[1].capacityGB', 'disks[0]', 'nics[0].network', 'annotation', 'cpuHotAdd'],
      missing: [],
    });
    expect(changedFields({ details: details({ cpu: 2 }), cpuHotAdd: false, memoryHotAdd: null }, changes).missing).toEqual(['cpu', 'cpuHotAdd']);
  });
});

describe('vm reconfigure: the host’s refusals', () => {
  const host = (type: string): CesoError => faultToError(new SoapFault(type, 'refused', {}, 'ReconfigVM_Task'), 'reconfigure web1');
  it('map to the codes ceso’s own checks give, keeping the fault type', () => {
    const grow = plan({ disk: '50' });
    const cpu = plan({ cpu: 4 });
    const memory = plan({ memory: '8' });
    expect(reconfigureFault(host('InvalidDeviceOperation'), view(), grow)).toMatchObject({ code: 'CONFLICT', details: { fault: 'InvalidDeviceOperation' } });
    expect(reconfigureFault(host('NotSupported'), view(), grow)).toMatchObject({ code: 'CONFLICT' });
    expect(reconfigureFault(host('NotSupported'), view(), cpu)).toMatchObject({ code: 'NOT_SUPPORTED' });
    expect(reconfigureFault(host('CpuHotPlugNotSupported'), view(), cpu)).toMatchObject({ code: 'INVALID_POWER_STATE' });
    expect(reconfigureFault(host('MemoryHotPlugNotSupported'), view(), memory)).toMatchObject({ code: 'INVALID_POWER_STATE' });
    expect(reconfigureFault(host('GenericVmConfigFault'), view(), memory)).toMatchObject({ code: 'CONFLICT' });
    expect(reconfigureFault(host('GenericVmConfigFault'), view(), cpu)).toMatchObject({ code: 'HOST_FAULT' });
    expect((reconfigureFault(host('InvalidPowerState'), view(), cpu) as CesoError).hint).toMatch(/Power it off first/);
    expect(reconfigureFault(new Error('x'), view(), cpu)).toBeInstanceOf(Error);
  });
});

describe('the fault table both paths share (core/faults.ts)', () => {
  it('gives the same code and message whichever path carried the fault', () => {
    for (const type of ['InvalidLogin', 'NotFound', 'InvalidPowerState', 'NotSupported', 'CpuHotPlugNotSupported', 'InvalidDeviceOperation', 'SomethingNew']) {
      const api = faultToError(new SoapFault(type, 'text', {}, 'power on web1'), 'power on web1');
      const ssh = faultError({ type, namespace: 'vim.fault', message: 'text', prefix: '' }, 'power on web1');
      expect(ssh.toJSON()).toEqual(api.toJSON());
      expect(api.code).toBe(faultCode(type));
    }
    expect(faultCode('CpuHotPlugNotSupported')).toBe('INVALID_POWER_STATE');
    expect(faultCode('InvalidDeviceOperation')).toBe('CONFLICT');
    expect(hostFaultError({ type: 'InvalidLogin', message: 'x', method: 'Login' }).message).toBe('the host rejected the user name or password');
    expect(hostFaultError({ type: 'Weird', message: 'x', method: 'M' })).toMatchObject({ code: 'HOST_FAULT', details: { fault: 'Weird', method: 'M' } });
  });
});

describe('vm reconfigure over SSH: the .vmx', () => {
  const text = [
    '.encoding = "UTF-8"',
    'displayName = "web1"',
    'numvcpus = "2"',
    'memSize = "4096"',
    'annotation = "old"',
    'scsi0.present = "TRUE"',
    'scsi0:0.present = "TRUE"',
    'scsi0:0.fileName = "web1.vmdk"',
    'ethernet0.present = "TRUE"',
    'ethernet0.networkName = "VM Network"',
    'ethernet2.present = "TRUE"',
    'ethernet2.dvs.portId = "7"',
    'ethernet2.networkName = "Old"',
    '',
  ].join('\n');

  it('sets only the keys the changes touch', () => {
    const changes = planChanges(
      view({ annotation: 'old', memoryHotAdd: true, nics: [...view().nics, { key: 4002, label: 'Network adapter 2', network: 'Old', mac: null }] }),
      request({ cpu: 4, 'memory-mb': 8192, 'cpu-hot-add': 'on', 'memory-hot-add': 'off', annotation: '', network: 'Lab', nic: '2', 'add-disk': ['1'] }),
    );
    const vmx = reconfiguredVmx(text, changes).toMap();
    expect(Object.fromEntries(vmx)).toEqual({
      '.encoding': 'UTF-8',
      displayName: 'web1',
      numvcpus: '4',
      memSize: '8192',
      'scsi0.present': 'TRUE',
      'scsi0:0.present': 'TRUE',
      'scsi0:0.fileName': 'web1.vmdk',
      'ethernet0.present': 'TRUE',
      'ethernet0.networkName': 'VM Network',
      'ethernet2.present': 'TRUE',
      'ethernet2.networkName': 'Lab',
      'vcpu.hotadd': 'TRUE',
      'mem.hotadd': 'FALSE',
      'scsi0:1.present': 'TRUE',
      'scsi0:1.fileName': 'web1_1.vmdk',
      'scsi0:1.deviceType': 'scsi-hardDisk',
    });
  });

  it('reads a child disk’s parent from its descriptor', () => {
    expect(descriptorParent('CID=1\nparentCID=abcd1234\ncreateType="seSparse"\nparentFileNameHint="base.vmdk"\n')).toBe('base.vmdk');
    expect(descriptorParent('CID=1\nparentCID=abcd1234\n')).toBe('(parentCID abcd1234)');
    expect(descriptorParent('CID=1\nparentCID=ffffffff\ncreateType="vmfs"\n')).toBeNull();
  });
});

describe('restricted mode on a reconfigure', () => {
  const policy = new Policy({ mode: 'restricted', limits: { cpu: 4, memoryGB: 8, diskGB: 100 } } as never);
  it('applies the limits to the new sizes and managedOnly to the VM read', () => {
    expect(errorOf(() => policy.checkReconfigure(request({ cpu: 8 })))).toMatchObject({ code: 'POLICY_DENIED', details: { rule: 'limits.cpu', value: '8' } });
    expect(errorOf(() => policy.checkReconfigure(request({ memory: '16' })))).toMatchObject({ details: { rule: 'limits.memoryGB' } });
    expect(errorOf(() => policy.checkReconfigure(request({ disk: '200' })))).toMatchObject({ details: { rule: 'limits.diskGB', value: '200' } });
    expect(errorOf(() => policy.checkReconfigure(request({ 'add-disk': ['10', '101'] })))).toMatchObject({ details: { rule: 'limits.diskGB', value: '101' } });
    expect(() => policy.checkReconfigure(request({ cpu: 4, memory: '8', disk: '100', annotation: 'x' }))).not.toThrow();
    expect(errorOf(() => policy.checkManagedVm({ name: 'db', managed: false }, 'reconfigure'))).toMatchObject({ code: 'POLICY_DENIED', details: { rule: 'managedOnly' } });
    expect(() => new Policy({ mode: 'standard' } as never).checkReconfigure(request({ cpu: 64 }))).not.toThrow();
  });
});
