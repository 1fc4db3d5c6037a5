package sim

// ReconfigVM_Task: the refusals a real host makes and vcsim 0.24.2 does not, and the fixes to
// the request vcsim needs (handler.go's pre()).
//
// Refusals (fault type, localized message). Where /work/shared/reference/day2.md says the real
// fault type is unconfirmed, the type is the test bed's choice (marked *):
//   - memoryMB not a multiple of 4: GenericVmConfigFault "Memory (RAM) size (N) is invalid"
//   - changing cpuHotAddEnabled, cpuHotRemoveEnabled or memoryHotAddEnabled while the VM is not
//     powered off: InvalidPowerState* (requested poweredOff)
//   - numCPUs up while on without cpuHotAddEnabled, down while on without cpuHotRemoveEnabled,
//     numCoresPerSocket changed while on: CpuHotPlugNotSupported* "CPU hot plug is not supported
//     for this virtual machine."
//   - memoryMB up while on without memoryHotAddEnabled (or above hotPlugMemoryLimit), down while
//     on: MemoryHotPlugNotSupported* "Memory hot plug is not supported for this virtual machine."
//   - a disk edit that shrinks: InvalidDeviceOperation* "Invalid operation for device 'I'."
//   - a disk edit that grows a disk with a parent (a snapshot delta or a linked clone's child
//     disk): NotSupported* "Disks with parents cannot be expanded."
//   - growing thick disks by more than the datastore's free space: NoDiskSpace
//
// Request fixes (the body sent on to vcsim is re-encoded when one applies):
//   - an edit without deviceInfo (vcsim dereferences it: panic, the client saw EOF) gets the
//     device's current one; an edit without a backing keeps the current backing;
//   - capacityInKB and capacityInBytes are made to agree (vcsim stored what was sent: a
//     bytes-only edit left KB at the old size, a KB-only edit left bytes at the old size and the
//     files were not grown). The changed one wins (bytes when both changed);
//   - a disk added with a controller but no unitNumber gets the controller's next free unit
//     (SCSI skips 7), as a host assigns it (vcsim: InvalidDeviceSpec, or a disk with no unit).

import (
	"fmt"
	"net/http"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

const (
	msgCPUHotPlug    = "CPU hot plug is not supported for this virtual machine."
	msgMemoryHotPlug = "Memory hot plug is not supported for this virtual machine."
	msgDiskParent    = "Disks with parents cannot be expanded."
)

// requestedCapacity is the capacity an edit asks for: the field the client changed.
func requestedCapacity(cur, req *types.VirtualDisk) int64 {
	curB := diskCapacity(cur)
	switch {
	case req.CapacityInBytes != 0 && req.CapacityInBytes != curB:
		return req.CapacityInBytes
	case req.CapacityInKB != 0 && req.CapacityInKB*1024 != curB:
		return req.CapacityInKB * 1024
	}
	return curB
}

// diskParentName is the parent a disk has: its backing's, or the one its descriptor names.
func (t *Testbed) diskParentName(disk *types.VirtualDisk) string {
	b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	if !ok {
		return ""
	}
	if b.Parent != nil && b.Parent.FileName != "" {
		return b.Parent.FileName
	}
	if f, fault := t.resolve(b.FileName); fault == nil {
		if d, err := readDescriptor(f); err == nil && d.kv["parentFileNameHint"] != "" {
			return d.kv["parentFileNameHint"]
		}
	}
	return ""
}

func diskThin(t *Testbed, disk *types.VirtualDisk) bool {
	b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	if !ok {
		return true
	}
	if b.ThinProvisioned != nil {
		return *b.ThinProvisioned
	}
	if f, fault := t.resolve(b.FileName); fault == nil {
		if d, err := readDescriptor(f); err == nil {
			return d.thin()
		}
	}
	return false
}

// checkReconfig returns the fault (and its message) a host answers spec with, or nil.
func (t *Testbed) checkReconfig(ref types.ManagedObjectReference, spec *types.VirtualMachineConfigSpec) (types.BaseMethodFault, string) {
	vm := vmByRef(ref)
	if vm == nil {
		return nil, ""
	}
	var fault types.BaseMethodFault
	var msg string
	var growThick int64
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil {
			return
		}
		fault, msg, growThick = t.reconfigRefusal(vm, spec)
	})
	if fault == nil && growThick > 0 && growThick > t.freeBytes() {
		return &types.NoDiskSpace{FileFault: types.FileFault{File: "[" + datastoreName + "]"}, Datastore: datastoreName}, ""
	}
	return fault, msg
}

// reconfigRefusal: caller holds the VM's lock. growThick is how much thick disks grow.
func (t *Testbed) reconfigRefusal(vm *simulator.VirtualMachine, spec *types.VirtualMachineConfigSpec) (types.BaseMethodFault, string, int64) {
	c := vm.Config
	power := vm.Runtime.PowerState
	on := power != types.VirtualMachinePowerStatePoweredOff
	if spec.MemoryMB != 0 && spec.MemoryMB%4 != 0 {
		m := fmt.Sprintf("Memory (RAM) size (%d) is invalid", spec.MemoryMB)
		return &types.GenericVmConfigFault{Reason: m}, m, 0
	}
	if on {
		for _, f := range []struct{ want, cur *bool }{
			{spec.CpuHotAddEnabled, c.CpuHotAddEnabled},
			{spec.CpuHotRemoveEnabled, c.CpuHotRemoveEnabled},
			{spec.MemoryHotAddEnabled, c.MemoryHotAddEnabled},
		} {
			if f.want != nil && *f.want != isTrue(f.cur) {
				return &types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: power}, "", 0
			}
		}
		if n, cur := spec.NumCPUs, c.Hardware.NumCPU; n != 0 && n != cur {
			if (n > cur && !isTrue(c.CpuHotAddEnabled)) || (n < cur && !isTrue(c.CpuHotRemoveEnabled)) {
				return &types.CpuHotPlugNotSupported{}, msgCPUHotPlug, 0
			}
		}
		curCores := c.Hardware.NumCoresPerSocket
		if curCores == 0 {
			curCores = 1
		}
		if n := spec.NumCoresPerSocket; n != 0 && n != curCores {
			return &types.CpuHotPlugNotSupported{}, msgCPUHotPlug, 0
		}
		if m, cur := spec.MemoryMB, int64(c.Hardware.MemoryMB); m != 0 && m != cur {
			if m < cur || !isTrue(c.MemoryHotAddEnabled) || (c.HotPlugMemoryLimit > 0 && m > c.HotPlugMemoryLimit) {
				return &types.MemoryHotPlugNotSupported{}, msgMemoryHotPlug, 0
			}
		}
	}
	devices := object.VirtualDeviceList(c.Hardware.Device)
	var growThick int64
	for i, ch := range spec.DeviceChange {
		ds := ch.GetVirtualDeviceConfigSpec()
		if ds.Operation != types.VirtualDeviceConfigSpecOperationEdit {
			continue
		}
		disk, ok := ds.Device.(*types.VirtualDisk)
		if !ok {
			continue
		}
		cur, ok := devices.FindByKey(disk.Key).(*types.VirtualDisk)
		if !ok {
			continue
		}
		curB, newB := diskCapacity(cur), requestedCapacity(cur, disk)
		if newB < curB {
			return &types.InvalidDeviceOperation{
				InvalidDeviceSpec: types.InvalidDeviceSpec{InvalidVmConfig: types.InvalidVmConfig{Property: "virtualDeviceSpec.device.capacityInKB"}, DeviceIndex: int32(i)},
				BadOp:             types.VirtualDeviceConfigSpecOperationEdit,
			}, fmt.Sprintf("Invalid operation for device '%d'.", i), 0
		}
		if newB > curB {
			if t.diskParentName(cur) != "" {
				return &types.NotSupported{}, msgDiskParent, 0
			}
			if !diskThin(t, cur) {
				growThick += newB - curB
			}
		}
	}
	return nil, "", growThick
}

// unitLimit is how many units a controller has (SCSI: 16 with 7 for the controller).
func unitLimit(ctl types.BaseVirtualDevice) (int32, int32) {
	switch ctl.(type) {
	case types.BaseVirtualSCSIController:
		return 16, 7
	case types.BaseVirtualSATAController:
		return 30, -1
	case *types.VirtualNVMEController:
		return 15, -1
	case *types.VirtualIDEController:
		return 2, -1
	}
	return 16, -1
}

// reconfigBody applies the request fixes to req and returns the re-encoded SOAP request, or nil
// when nothing changed.
func (t *Testbed) reconfigBody(ref types.ManagedObjectReference, req *types.ReconfigVM_Task) []byte {
	vm := vmByRef(ref)
	if vm == nil {
		return nil
	}
	changed := false
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil {
			return
		}
		devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
		used := map[int32]map[int32]bool{}
		mark := func(d *types.VirtualDevice, v bool) {
			if d.UnitNumber == nil {
				return
			}
			if used[d.ControllerKey] == nil {
				used[d.ControllerKey] = map[int32]bool{}
			}
			used[d.ControllerKey][*d.UnitNumber] = v
		}
		for _, d := range devices {
			if _, ok := d.(*types.VirtualDisk); ok {
				mark(d.GetVirtualDevice(), true)
			}
		}
		controllers := map[int32]types.BaseVirtualDevice{}
		for _, d := range devices {
			controllers[d.GetVirtualDevice().Key] = d
		}
		for _, ch := range req.Spec.DeviceChange {
			ds := ch.GetVirtualDeviceConfigSpec()
			if ds.Device == nil {
				continue
			}
			switch ds.Operation {
			case types.VirtualDeviceConfigSpecOperationAdd:
				controllers[ds.Device.GetVirtualDevice().Key] = ds.Device
				if _, ok := ds.Device.(*types.VirtualDisk); ok {
					mark(ds.Device.GetVirtualDevice(), true)
				}
			case types.VirtualDeviceConfigSpecOperationRemove:
				if cur := devices.FindByKey(ds.Device.GetVirtualDevice().Key); cur != nil {
					if _, ok := cur.(*types.VirtualDisk); ok {
						mark(cur.GetVirtualDevice(), false)
					}
				}
			}
		}
		for _, ch := range req.Spec.DeviceChange {
			ds := ch.GetVirtualDeviceConfigSpec()
			if ds.Device == nil {
				continue
			}
			vd := ds.Device.GetVirtualDevice()
			switch ds.Operation {
			case types.VirtualDeviceConfigSpecOperationEdit:
				cur := devices.FindByKey(vd.Key)
				if cur == nil {
					continue
				}
				if vd.DeviceInfo == nil {
					if ci := cur.GetVirtualDevice().DeviceInfo; ci != nil {
						vd.DeviceInfo = deepCopy(ci).(types.BaseDescription)
					} else {
						vd.DeviceInfo = &types.Description{}
					}
					changed = true
				}
				disk, ok := ds.Device.(*types.VirtualDisk)
				curDisk, ok2 := cur.(*types.VirtualDisk)
				if !ok || !ok2 {
					continue
				}
				if disk.Backing == nil {
					disk.Backing = deepCopy(curDisk.Backing).(types.BaseVirtualDeviceBackingInfo)
					changed = true
				}
				if n := requestedCapacity(curDisk, disk); disk.CapacityInBytes != n || disk.CapacityInKB != n/1024 {
					disk.CapacityInBytes, disk.CapacityInKB = n, n/1024
					changed = true
				}
			case types.VirtualDeviceConfigSpecOperationAdd:
				disk, ok := ds.Device.(*types.VirtualDisk)
				if !ok {
					continue
				}
				if disk.CapacityInBytes == 0 && disk.CapacityInKB != 0 {
					disk.CapacityInBytes = disk.CapacityInKB * 1024
					changed = true
				} else if disk.CapacityInBytes != 0 && disk.CapacityInKB != disk.CapacityInBytes/1024 {
					disk.CapacityInKB = disk.CapacityInBytes / 1024
					changed = true
				}
				if disk.UnitNumber != nil || disk.ControllerKey == 0 {
					continue
				}
				ctl, ok := controllers[disk.ControllerKey]
				if !ok {
					continue
				}
				limit, skip := unitLimit(ctl)
				for u := int32(0); u < limit; u++ {
					if u == skip || used[disk.ControllerKey][u] {
						continue
					}
					unit := u
					disk.UnitNumber = &unit
					mark(&disk.VirtualDevice, true)
					changed = true
					break
				}
			}
		}
	})
	if !changed {
		return nil
	}
	b, err := xml.Marshal(soap.Envelope{Body: &methods.ReconfigVM_TaskBody{Req: req}})
	if err != nil {
		return nil
	}
	return append([]byte(xml.Header), b...)
}

// faultTask answers a *_Task call with a Task that failed with fault and msg (the host's
// localized message; "" for the usual one).
func (t *Testbed) faultTask(method *simulator.Method, fault types.BaseMethodFault, msg string) (int, http.Header, []byte) {
	task := simulator.CreateTask(method.This, taskName(method.Name), func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, fault
	})
	ref := task.Run()
	t.fixTaskError(ref, msg)
	return http.StatusOK, xmlHeader, taskResponseXML(method.Name, ref)
}
