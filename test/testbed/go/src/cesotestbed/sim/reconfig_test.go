package sim

import (
	"bytes"
	"io/ioutil"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func (e *snapEnv) reconfig(vm *object.VirtualMachine, spec types.VirtualMachineConfigSpec) error {
	return e.do(vm.Reconfigure(e.ctx, spec))
}

func (e *snapEnv) power(vm *object.VirtualMachine, on bool) {
	e.t.Helper()
	state := e.get(vm).Runtime.PowerState
	if on && state != types.VirtualMachinePowerStatePoweredOn {
		e.must(vm.PowerOn(e.ctx))
	}
	if !on && state != types.VirtualMachinePowerStatePoweredOff {
		e.must(vm.PowerOff(e.ctx))
	}
}

// refused checks the fault type and the task's localized message.
func refused(t *testing.T, err error, fault, msg string) {
	t.Helper()
	if faultName2(err) != fault {
		t.Fatalf("want %s, got %v", fault, err)
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		t.Fatalf("want message %q, got %q", msg, err.Error())
	}
}

func diskEdit(d *types.VirtualDisk) types.VirtualMachineConfigSpec {
	return types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
		&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: d},
	}}
}

func TestReconfigRefusals(t *testing.T) {
	e := newSnapEnv(t)
	vm := e.vm("vm-0001") // on: 1 CPU, 1024 MB
	tru, fals := true, false

	t.Run("MemoryMultipleOf4", func(t *testing.T) {
		refused(t, e.reconfig(vm, types.VirtualMachineConfigSpec{MemoryMB: 1025}), "GenericVmConfigFault", "Memory (RAM) size (1025) is invalid")
		e.power(vm, false)
		refused(t, e.reconfig(vm, types.VirtualMachineConfigSpec{MemoryMB: 257}), "GenericVmConfigFault", "Memory (RAM) size (257) is invalid")
		e.power(vm, true)
	})

	t.Run("CPUHotPlug", func(t *testing.T) {
		refused(t, e.reconfig(vm, types.VirtualMachineConfigSpec{NumCPUs: 2}), "CpuHotPlugNotSupported", "CPU hot plug is not supported for this virtual machine.")
		refused(t, e.reconfig(vm, types.VirtualMachineConfigSpec{NumCoresPerSocket: 2}), "CpuHotPlugNotSupported", "")
		refused(t, e.reconfig(vm, types.VirtualMachineConfigSpec{CpuHotAddEnabled: &tru}), "InvalidPowerState", "(Powered on)")
		if err := e.reconfig(vm, types.VirtualMachineConfigSpec{CpuHotAddEnabled: &fals, NumCPUs: 1}); err != nil {
			t.Fatalf("unchanged values while on: %v", err)
		}
		e.power(vm, false)
		if err := e.reconfig(vm, types.VirtualMachineConfigSpec{CpuHotAddEnabled: &tru}); err != nil {
			t.Fatal(err)
		}
		e.power(vm, true)
		if err := e.reconfig(vm, types.VirtualMachineConfigSpec{NumCPUs: 2}); err != nil {
			t.Fatalf("hot add with cpuHotAddEnabled: %v", err)
		}
		refused(t, e.reconfig(vm, types.VirtualMachineConfigSpec{NumCPUs: 1}), "CpuHotPlugNotSupported", "")
		if v := e.get(vm); v.Config.Hardware.NumCPU != 2 {
			t.Fatalf("CPUs %d", v.Config.Hardware.NumCPU)
		}
	})

	t.Run("MemoryHotPlug", func(t *testing.T) {
		refused(t, e.reconfig(vm, types.VirtualMachineConfigSpec{MemoryMB: 2048}), "MemoryHotPlugNotSupported", "Memory hot plug is not supported for this virtual machine.")
		refused(t, e.reconfig(vm, types.VirtualMachineConfigSpec{MemoryHotAddEnabled: &tru}), "InvalidPowerState", "")
		e.power(vm, false)
		if err := e.reconfig(vm, types.VirtualMachineConfigSpec{MemoryHotAddEnabled: &tru, MemoryMB: 512}); err != nil {
			t.Fatal(err)
		}
		e.power(vm, true)
		if err := e.reconfig(vm, types.VirtualMachineConfigSpec{MemoryMB: 2048}); err != nil {
			t.Fatalf("hot add with memoryHotAddEnabled: %v", err)
		}
		refused(t, e.reconfig(vm, types.VirtualMachineConfigSpec{MemoryMB: 1024}), "MemoryHotPlugNotSupported", "")
		if v := e.get(vm); v.Config.Hardware.MemoryMB != 2048 {
			t.Fatalf("memory %d", v.Config.Hardware.MemoryMB)
		}
	})

	t.Run("Disks", func(t *testing.T) {
		dir := filepath.Join(e.tb.DSDir, "vm-0001")
		freeBefore := e.tb.freeBytes()
		disk, _ := firstDiskOf(e.get(vm))
		// shrink: refused (vcsim accepted it)
		d := *disk
		d.CapacityInKB, d.CapacityInBytes = 8<<20, 8<<30
		refused(t, e.reconfig(vm, diskEdit(&d)), "InvalidDeviceOperation", "Invalid operation for device '0'.")

		// grow by capacityInKB only (govc 0.24 sends the old capacityInBytes) and without
		// deviceInfo (vcsim panicked): both fields agree, the extent grows
		d = *disk
		d.DeviceInfo = nil
		d.CapacityInKB = 20 << 20
		if err := e.reconfig(vm, diskEdit(&d)); err != nil {
			t.Fatal(err)
		}
		got, _ := firstDiskOf(e.get(vm))
		if got.CapacityInKB != 20<<20 || got.CapacityInBytes != 20<<30 || got.DeviceInfo == nil {
			t.Fatalf("after the grow: %d KB %d bytes", got.CapacityInKB, got.CapacityInBytes)
		}
		if st, err := os.Stat(filepath.Join(dir, "vm-0001-flat.vmdk")); err != nil || st.Size() != 20<<30 {
			t.Fatalf("flat: %v %v", st, err)
		}
		if dd := e.descriptor("vm-0001/vm-0001.vmdk"); dd.sectors() != 20<<21 {
			t.Fatalf("descriptor: %d sectors", dd.sectors())
		}
		// bytes only
		d = *got
		d.CapacityInBytes, d.CapacityInKB = 24<<30, 0
		if err := e.reconfig(vm, diskEdit(&d)); err != nil {
			t.Fatal(err)
		}
		got, _ = firstDiskOf(e.get(vm))
		if got.CapacityInKB != 24<<20 || got.CapacityInBytes != 24<<30 {
			t.Fatalf("after the bytes-only grow: %d KB %d bytes", got.CapacityInKB, got.CapacityInBytes)
		}
		// the datastore does not lose the disk's full size on every edit
		var dsMo mo.Datastore
		dsObj, _ := e.finder.Datastore(e.ctx, "datastore1")
		if err := dsObj.Properties(e.ctx, dsObj.Reference(), []string{"summary"}, &dsMo); err != nil {
			t.Fatal(err)
		}
		if dsMo.Summary.FreeSpace != freeBefore || e.tb.freeBytes() != freeBefore {
			t.Fatalf("free space %d, was %d", dsMo.Summary.FreeSpace, freeBefore)
		}

		// a disk with a snapshot (a parent) cannot grow
		s := e.snapshot(vm, "s", false, false)
		got, _ = firstDiskOf(e.get(vm))
		d = *got
		d.CapacityInKB, d.CapacityInBytes = 32<<20, 32<<30
		refused(t, e.reconfig(vm, diskEdit(&d)), "NotSupported", "Disks with parents cannot be expanded.")
		// an unchanged edit of the delta keeps its parent chain
		d = *got
		d.Backing = &types.VirtualDiskFlatVer2BackingInfo{VirtualDeviceFileBackingInfo: got.Backing.(*types.VirtualDiskFlatVer2BackingInfo).VirtualDeviceFileBackingInfo, DiskMode: "persistent"}
		if err := e.reconfig(vm, diskEdit(&d)); err != nil {
			t.Fatal(err)
		}
		if _, b := firstDiskOf(e.get(vm)); b.Parent == nil || b.Parent.FileName != ds("vm-0001/vm-0001.vmdk") {
			t.Fatalf("the edit lost the parent: %+v", b.Parent)
		}
		dc, _ := e.finder.DefaultDatacenter(e.ctx)
		ext := func() error {
			dcRef := dc.Reference()
			res, err := methods.ExtendVirtualDisk_Task(e.ctx, e.c.Client, &types.ExtendVirtualDisk_Task{This: *e.c.ServiceContent.VirtualDiskManager,
				Name: ds("vm-0001/vm-0001-000001.vmdk"), Datacenter: &dcRef, NewCapacityKb: 40 << 20})
			if err != nil {
				return err
			}
			return object.NewTask(e.c.Client, res.Returnval).Wait(e.ctx)
		}
		refused(t, ext(), "NotSupported", "")
		e.must(vm.RemoveSnapshot(e.ctx, s.Value, false, nil))

		// thick growth beyond the free space
		e.tb.mu.Lock()
		savedFree := e.tb.free
		e.tb.mu.Unlock()
		unit := int32(1)
		thick := &types.VirtualDisk{
			VirtualDevice: types.VirtualDevice{Key: -1, ControllerKey: 1000, UnitNumber: &unit, Backing: &types.VirtualDiskFlatVer2BackingInfo{
				VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[datastore1]"}, DiskMode: "persistent", ThinProvisioned: &fals}},
			CapacityInKB: 1 << 20,
		}
		if err := e.reconfig(vm, types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
			&types.VirtualDeviceConfigSpec{Operation: "add", FileOperation: "create", Device: thick}}}); err != nil {
			t.Fatal(err)
		}
		var tk *types.VirtualDisk
		for _, dev := range e.get(vm).Config.Hardware.Device {
			if x, ok := dev.(*types.VirtualDisk); ok && x.UnitNumber != nil && *x.UnitNumber == 1 {
				tk = x
			}
		}
		if tk == nil || tk.CapacityInBytes != 1<<30 {
			t.Fatalf("thick disk: %+v", tk)
		}
		e.tb.mu.Lock()
		e.tb.free = 1 << 30
		e.tb.mu.Unlock()
		d = *tk
		d.CapacityInKB, d.CapacityInBytes = 3<<20, 3<<30
		refused(t, e.reconfig(vm, diskEdit(&d)), "NoDiskSpace", "")
		d.CapacityInKB, d.CapacityInBytes = 1<<20+512<<10, 1<<30+512<<20
		if err := e.reconfig(vm, diskEdit(&d)); err != nil {
			t.Fatalf("thick growth within the free space: %v", err)
		}
		e.tb.mu.Lock()
		e.tb.free = savedFree
		e.tb.mu.Unlock()
	})

	t.Run("AddDiskOnTheNextFreeUnit", func(t *testing.T) {
		off := e.vm("vm-0002")
		add := func() {
			t.Helper()
			disk := &types.VirtualDisk{
				VirtualDevice: types.VirtualDevice{Key: -1, ControllerKey: 1000, Backing: &types.VirtualDiskFlatVer2BackingInfo{
					VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[datastore1]"}, DiskMode: "persistent", ThinProvisioned: &tru}},
				CapacityInBytes: 2 << 30,
			}
			if err := e.reconfig(off, types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
				&types.VirtualDeviceConfigSpec{Operation: "add", FileOperation: "create", Device: disk}}}); err != nil {
				t.Fatal(err)
			}
		}
		add()
		add()
		units := map[int32]string{}
		for _, dev := range e.get(off).Config.Hardware.Device {
			if x, ok := dev.(*types.VirtualDisk); ok && x.UnitNumber != nil {
				units[*x.UnitNumber] = x.Backing.(*types.VirtualDiskFlatVer2BackingInfo).FileName
				if *x.UnitNumber > 0 && (x.CapacityInKB != 2<<20 || x.CapacityInBytes != 2<<30) {
					t.Errorf("disk %d: %d KB %d bytes", *x.UnitNumber, x.CapacityInKB, x.CapacityInBytes)
				}
			}
		}
		if len(units) != 3 || units[1] != ds("vm-0002/vm-0002_1.vmdk") || units[2] != ds("vm-0002/vm-0002_2.vmdk") {
			t.Fatalf("units: %v", units)
		}
		dd := e.descriptor("vm-0002/vm-0002_1.vmdk")
		var st syscall.Stat_t
		if !dd.flat() || dd.sectors() != 2<<21 || syscall.Stat(filepath.Join(e.tb.DSDir, "vm-0002/vm-0002_1-flat.vmdk"), &st) != nil || st.Size != 2<<30 {
			t.Fatalf("files of the new disk: %s %+v", strings.Join(dd.lines, "\n"), st)
		}
		if e.vmxKey("vm-0002/vm-0002.vmx", "scsi0:2.fileName") != "vm-0002_2.vmdk" {
			t.Fatal(".vmx lacks the new disk")
		}
	})

	t.Run("EditWithoutDeviceInfoOverHTTP", func(t *testing.T) {
		// the raw request a client sends without deviceInfo (govmomi would add nothing either)
		disk, _ := firstDiskOf(e.get(e.vm("vm-0002")))
		d := *disk
		d.DeviceInfo = nil
		req := types.ReconfigVM_Task{This: e.vm("vm-0002").Reference(), Spec: diskEdit(&d)}
		res, err := methods.ReconfigVM_Task(e.ctx, e.c.Client, &req)
		if err != nil {
			t.Fatal(err)
		}
		if err := object.NewTask(e.c.Client, res.Returnval).Wait(e.ctx); err != nil {
			t.Fatal(err)
		}
		// and the server is still there
		resp, err := http.Get(strings.Replace(e.tb.URL, "https://", "http://", 1))
		if err == nil {
			_, _ = ioutil.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if _, err := methods.GetCurrentTime(e.ctx, e.c.Client); err != nil {
			t.Fatal(err)
		}
		_ = bytes.MinRead
	})
}

func TestReconfigLinkedChild(t *testing.T) {
	e := newSnapEnv(t)
	folders, _ := func() (*object.DatacenterFolders, error) {
		dc, _ := e.finder.DefaultDatacenter(e.ctx)
		return dc.Folders(e.ctx)
	}()
	pool, _ := e.finder.DefaultResourcePool(e.ctx)
	unit := int32(0)
	spec := types.VirtualMachineConfigSpec{
		Name: "linked", GuestId: "ubuntu64Guest", NumCPUs: 1, MemoryMB: 512,
		Files: &types.VirtualMachineFileInfo{VmPathName: "[datastore1] linked/linked.vmx"},
		DeviceChange: []types.BaseVirtualDeviceConfigSpec{
			&types.VirtualDeviceConfigSpec{Operation: "add", Device: &types.ParaVirtualSCSIController{VirtualSCSIController: types.VirtualSCSIController{VirtualController: types.VirtualController{VirtualDevice: types.VirtualDevice{Key: -100}}}}},
			&types.VirtualDeviceConfigSpec{Operation: "add", FileOperation: "create", Device: &types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: -101, ControllerKey: -100, UnitNumber: &unit,
				Backing: &types.VirtualDiskFlatVer2BackingInfo{VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[datastore1] linked/linked.vmdk"}, DiskMode: "persistent",
					Parent: &types.VirtualDiskFlatVer2BackingInfo{VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[datastore1] ubuntu-22.04-template/ubuntu-22.04-template.vmdk"}, DiskMode: "persistent"}}}}},
		},
	}
	_ = os.MkdirAll(filepath.Join(e.tb.DSDir, "linked"), 0o755)
	tk, err := folders.VmFolder.CreateVM(e.ctx, spec, pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := tk.WaitForResult(e.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	vm := object.NewVirtualMachine(e.c.Client, info.Result.(types.ManagedObjectReference))
	disk, _ := firstDiskOf(e.get(vm))
	d := *disk
	d.CapacityInKB, d.CapacityInBytes = 20<<20, 20<<30
	refused(t, e.reconfig(vm, diskEdit(&d)), "NotSupported", "Disks with parents cannot be expanded.")

	// snapshots of a linked clone never touch the template's disk
	tmplDesc, _ := os.ReadFile(filepath.Join(e.tb.DSDir, "ubuntu-22.04-template/ubuntu-22.04-template.vmdk"))
	e.snapshot(vm, "a", false, false)
	e.snapshot(vm, "b", false, false)
	e.must(vm.RemoveAllSnapshot(e.ctx, nil))
	_, b := firstDiskOf(e.get(vm))
	if got := chainOf(b); len(got) != 2 || got[0] != ds("linked/linked.vmdk") || got[1] != ds("ubuntu-22.04-template/ubuntu-22.04-template.vmdk") {
		t.Fatalf("chain after removeall: %v", got)
	}
	after, _ := os.ReadFile(filepath.Join(e.tb.DSDir, "ubuntu-22.04-template/ubuntu-22.04-template.vmdk"))
	if !bytes.Equal(tmplDesc, after) || !e.exists("linked/linked.vmdk") {
		t.Fatal("the template's disk changed")
	}
	e.must(vm.Destroy(e.ctx))
	if !e.exists("ubuntu-22.04-template/ubuntu-22.04-template.vmdk") || !e.exists("ubuntu-22.04-template/ubuntu-22.04-template-flat.vmdk") {
		t.Fatal("destroying the linked clone deleted the template's disk")
	}
}
