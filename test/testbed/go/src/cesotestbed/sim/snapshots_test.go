package sim

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"cesotestbed/vmx"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type snapEnv struct {
	t      *testing.T
	tb     *Testbed
	c      *govmomi.Client
	ctx    context.Context
	finder *find.Finder
}

func newSnapEnv(t *testing.T) *snapEnv {
	tb, c, ctx := start(t, "esx")
	finder := find.NewFinder(c.Client, false)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	finder.SetDatacenter(dc)
	return &snapEnv{t: t, tb: tb, c: c, ctx: ctx, finder: finder}
}

func (e *snapEnv) vm(name string) *object.VirtualMachine {
	e.t.Helper()
	vm, err := e.finder.VirtualMachine(e.ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return vm
}

func (e *snapEnv) get(vm *object.VirtualMachine) mo.VirtualMachine {
	e.t.Helper()
	return getVM(e.t, e.ctx, e.c, vm.Reference())
}

// do waits for a task and returns its error.
func (e *snapEnv) do(tk *object.Task, err error) error {
	if err != nil {
		return err
	}
	return tk.Wait(e.ctx)
}

func (e *snapEnv) consolidate(vm *object.VirtualMachine) (*object.Task, error) {
	res, err := methods.ConsolidateVMDisks_Task(e.ctx, e.c.Client, &types.ConsolidateVMDisks_Task{This: vm.Reference()})
	if err != nil {
		return nil, err
	}
	return object.NewTask(e.c.Client, res.Returnval), nil
}

func (e *snapEnv) must(tk *object.Task, err error) {
	e.t.Helper()
	if err := e.do(tk, err); err != nil {
		e.t.Fatal(err)
	}
}

func (e *snapEnv) snapshot(vm *object.VirtualMachine, name string, memory, quiesce bool) types.ManagedObjectReference {
	e.t.Helper()
	tk, err := vm.CreateSnapshot(e.ctx, name, name+" description", memory, quiesce)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := tk.WaitForResult(e.ctx, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return info.Result.(types.ManagedObjectReference)
}

func (e *snapEnv) files(dir string) []string {
	entries, _ := os.ReadDir(filepath.Join(e.tb.DSDir, dir))
	var out []string
	for _, x := range entries {
		out = append(out, x.Name())
	}
	sort.Strings(out)
	return out
}

func (e *snapEnv) exists(rel string) bool { return exists(filepath.Join(e.tb.DSDir, rel)) }

func (e *snapEnv) descriptor(rel string) *descriptor {
	e.t.Helper()
	d, err := readDescriptor(filepath.Join(e.tb.DSDir, rel))
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *snapEnv) vmxKey(rel, key string) string {
	data, _ := os.ReadFile(filepath.Join(e.tb.DSDir, rel))
	v, _ := vmx.Parse(data).Get(key)
	return v
}

func firstDiskOf(v mo.VirtualMachine) (*types.VirtualDisk, *types.VirtualDiskFlatVer2BackingInfo) {
	for _, d := range v.Config.Hardware.Device {
		if disk, ok := d.(*types.VirtualDisk); ok {
			b, _ := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			return disk, b
		}
	}
	return nil, nil
}

func chainOf(b *types.VirtualDiskFlatVer2BackingInfo) []string {
	var out []string
	for p := b; p != nil; p = p.Parent {
		out = append(out, p.FileName)
	}
	return out
}

func treeNames(list []types.VirtualMachineSnapshotTree) string {
	var parts []string
	for _, n := range list {
		s := n.Name
		if len(n.ChildSnapshotList) > 0 {
			s += "(" + treeNames(n.ChildSnapshotList) + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ",")
}

func (e *snapEnv) snapConfig(ref types.ManagedObjectReference) mo.VirtualMachineSnapshot {
	e.t.Helper()
	var s mo.VirtualMachineSnapshot
	if err := property.DefaultCollector(e.c.Client).RetrieveOne(e.ctx, ref, nil, &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func writeAt(t *testing.T, file string, off int64, data string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(data), off); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
}

func readAt(t *testing.T, file string, off int64, n int) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	_, _ = f.ReadAt(b, off)
	return string(b)
}

func ds(rel string) string { return "[datastore1] " + rel }

func TestSnapshotChain(t *testing.T) {
	e := newSnapEnv(t)
	vm := e.vm("vm-0002") // powered off, 2048 MB
	baseCID := e.descriptor("vm-0002/vm-0002.vmdk").kv["CID"]

	// memory and quiesce are ignored for a powered-off VM
	s1 := e.snapshot(vm, "s1", true, true)
	v := e.get(vm)
	if v.Snapshot == nil || len(v.Snapshot.RootSnapshotList) != 1 || *v.Snapshot.CurrentSnapshot != s1 || len(v.RootSnapshot) != 1 || v.RootSnapshot[0] != s1 {
		t.Fatalf("tree after s1: %+v root %v", v.Snapshot, v.RootSnapshot)
	}
	n1 := v.Snapshot.RootSnapshotList[0]
	if n1.Id != 1 || n1.Name != "s1" || n1.Description != "s1 description" || n1.State != types.VirtualMachinePowerStatePoweredOff || n1.Quiesced || n1.CreateTime.IsZero() {
		t.Fatalf("s1 node: %+v", n1)
	}
	_, b := firstDiskOf(v)
	if got := chainOf(b); strings.Join(got, "|") != ds("vm-0002/vm-0002-000001.vmdk")+"|"+ds("vm-0002/vm-0002.vmdk") {
		t.Fatalf("chain after s1: %v", got)
	}
	d1 := e.descriptor("vm-0002/vm-0002-000001.vmdk")
	if d1.kv["createType"] != "seSparse" || d1.kv["parentFileNameHint"] != "vm-0002.vmdk" || d1.kv["parentCID"] != baseCID ||
		len(d1.extents) != 1 || d1.extents[0].kind != "SESPARSE" || d1.extents[0].file != "vm-0002-000001-sesparse.vmdk" || d1.sectors() != 16<<21 {
		t.Fatalf("delta 1:\n%s", strings.Join(d1.lines, "\n"))
	}
	if st, err := os.Stat(filepath.Join(e.tb.DSDir, "vm-0002/vm-0002-000001-sesparse.vmdk")); err != nil || st.Size() > 16<<20 {
		t.Fatalf("delta extent: %v %v", st, err)
	}
	if !e.exists("vm-0002/vm-0002-Snapshot1.vmsn") || e.exists("vm-0002/vm-0002-Snapshot1.vmem") || !e.exists("vm-0002/vm-0002.vmsd") {
		t.Fatalf("snapshot files: %v", e.files("vm-0002"))
	}
	if got := e.vmxKey("vm-0002/vm-0002.vmx", "scsi0:0.fileName"); got != "vm-0002-000001.vmdk" {
		t.Fatalf(".vmx scsi0:0.fileName = %q", got)
	}
	// the snapshot's config is a copy taken at that moment: its disk is the frozen base
	sc := e.snapConfig(s1)
	if _, sb := firstDiskOf(mo.VirtualMachine{Config: &sc.Config}); sb == nil || sb.FileName != ds("vm-0002/vm-0002.vmdk") || sb.Parent != nil || sc.Vm != vm.Reference() {
		t.Fatalf("snapshot config disk: %+v", sb)
	}

	e.must(vm.Reconfigure(e.ctx, types.VirtualMachineConfigSpec{MemoryMB: 3072, NumCPUs: 4}))
	s2 := e.snapshot(vm, "s2", false, false)
	v = e.get(vm)
	if treeNames(v.Snapshot.RootSnapshotList) != "s1(s2)" || *v.Snapshot.CurrentSnapshot != s2 || v.Snapshot.RootSnapshotList[0].ChildSnapshotList[0].Id != 2 {
		t.Fatalf("tree after s2: %s", treeNames(v.Snapshot.RootSnapshotList))
	}
	_, b = firstDiskOf(v)
	if got := chainOf(b); len(got) != 3 || got[0] != ds("vm-0002/vm-0002-000002.vmdk") || got[1] != ds("vm-0002/vm-0002-000001.vmdk") {
		t.Fatalf("chain after s2: %v", got)
	}
	d2 := e.descriptor("vm-0002/vm-0002-000002.vmdk")
	if d2.kv["parentFileNameHint"] != "vm-0002-000001.vmdk" || d2.kv["parentCID"] != d1.kv["CID"] {
		t.Fatalf("delta 2:\n%s", strings.Join(d2.lines, "\n"))
	}
	if sc := e.snapConfig(s1); sc.Config.Hardware.MemoryMB != 2048 || len(sc.ChildSnapshot) != 1 || sc.ChildSnapshot[0] != s2 {
		t.Fatalf("s1 must keep its own config (memory %d), children %v", sc.Config.Hardware.MemoryMB, sc.ChildSnapshot)
	}
	vmsd, _ := os.ReadFile(filepath.Join(e.tb.DSDir, "vm-0002/vm-0002.vmsd"))
	f := vmx.Parse(vmsd)
	for k, want := range map[string]string{"snapshot.lastUID": "2", "snapshot.current": "2", "snapshot.numSnapshots": "2", "snapshot0.uid": "1",
		"snapshot0.displayName": "s1", "snapshot0.filename": "vm-0002-Snapshot1.vmsn", "snapshot0.disk0.fileName": "vm-0002.vmdk",
		"snapshot0.disk0.node": "scsi0:0", "snapshot1.parent": "1", "snapshot1.disk0.fileName": "vm-0002-000001.vmdk"} {
		if got, _ := f.Get(k); got != want {
			t.Errorf(".vmsd %s = %q, want %q\n%s", k, got, want, vmsd)
		}
	}

	e.must(vm.Reconfigure(e.ctx, types.VirtualMachineConfigSpec{MemoryMB: 4096}))

	t.Run("RevertRestoresConfigAndDisks", func(t *testing.T) {
		e.must(vm.RevertToSnapshot(e.ctx, s1.Value, false))
		v := e.get(vm)
		if v.Config.Hardware.MemoryMB != 2048 || v.Config.Hardware.NumCPU != 2 || v.Summary.Config.MemorySizeMB != 2048 || *v.Snapshot.CurrentSnapshot != s1 {
			t.Fatalf("after revert to s1: %d MB %d CPUs current %v", v.Config.Hardware.MemoryMB, v.Config.Hardware.NumCPU, v.Snapshot.CurrentSnapshot)
		}
		if v.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
			t.Fatalf("power %s", v.Runtime.PowerState)
		}
		_, b := firstDiskOf(v)
		got := chainOf(b)
		if len(got) != 2 || got[1] != ds("vm-0002/vm-0002.vmdk") || got[0] == ds("vm-0002/vm-0002-000001.vmdk") {
			t.Fatalf("chain after revert: %v", got)
		}
		if e.exists("vm-0002/vm-0002-000002.vmdk") || e.exists("vm-0002/vm-0002-000002-sesparse.vmdk") {
			t.Fatalf("the discarded running point is left: %v", e.files("vm-0002"))
		}
		if !e.exists("vm-0002/vm-0002-000001.vmdk") {
			t.Fatalf("s2's point was deleted: %v", e.files("vm-0002"))
		}
		if e.vmxKey("vm-0002/vm-0002.vmx", "memSize") != "2048" || ds("vm-0002/"+e.vmxKey("vm-0002/vm-0002.vmx", "scsi0:0.fileName")) != got[0] {
			t.Fatalf(".vmx not rendered from the reverted config")
		}
		e.must(vm.RevertToSnapshot(e.ctx, s2.Value, false))
		v = e.get(vm)
		if v.Config.Hardware.MemoryMB != 3072 || v.Config.Hardware.NumCPU != 4 || *v.Snapshot.CurrentSnapshot != s2 {
			t.Fatalf("after revert to s2: %d MB", v.Config.Hardware.MemoryMB)
		}
		_, b = firstDiskOf(v)
		if got := chainOf(b); len(got) != 3 || got[1] != ds("vm-0002/vm-0002-000001.vmdk") {
			t.Fatalf("chain after revert to s2: %v", got)
		}
		var deltas []string
		for _, n := range e.files("vm-0002") {
			if strings.HasSuffix(n, "-sesparse.vmdk") {
				deltas = append(deltas, n)
			}
		}
		if len(deltas) != 2 {
			t.Fatalf("deltas: %v", deltas)
		}
		e.must(vm.RevertToCurrentSnapshot(e.ctx, true))
		if v := e.get(vm); *v.Snapshot.CurrentSnapshot != s2 {
			t.Fatal("revert to current")
		}
	})

	t.Run("DuplicateNamesAndIDs", func(t *testing.T) {
		a := e.snapshot(vm, "dup", false, false)
		b := e.snapshot(vm, "dup", false, false)
		v := e.get(vm)
		if treeNames(v.Snapshot.RootSnapshotList) != "s1(s2(dup(dup)))" || a == b {
			t.Fatalf("tree: %s", treeNames(v.Snapshot.RootSnapshotList))
		}
		node, _ := findTree(v.Snapshot.RootSnapshotList, b)
		if node.Id != 4 {
			t.Fatalf("id %d", node.Id)
		}
	})

	t.Run("RemoveAll", func(t *testing.T) {
		e.must(vm.RemoveAllSnapshot(e.ctx, nil))
		v := e.get(vm)
		if v.Snapshot != nil || len(v.RootSnapshot) != 0 {
			t.Fatalf("snapshots left: %+v", v.Snapshot)
		}
		_, b := firstDiskOf(v)
		if b.FileName != ds("vm-0002/vm-0002.vmdk") || b.Parent != nil {
			t.Fatalf("backing %s parent %v", b.FileName, b.Parent)
		}
		for _, n := range e.files("vm-0002") {
			if strings.Contains(n, "-00000") || strings.HasSuffix(n, ".vmsn") || strings.HasSuffix(n, ".vmem") {
				t.Fatalf("left after removeall: %v", e.files("vm-0002"))
			}
		}
		if !e.exists("vm-0002/vm-0002.vmdk") || !e.exists("vm-0002/vm-0002-flat.vmdk") {
			t.Fatalf("base disk gone: %v", e.files("vm-0002"))
		}
		if e.vmxKey("vm-0002/vm-0002.vmx", "scsi0:0.fileName") != "vm-0002.vmdk" {
			t.Fatal(".vmx still names a delta")
		}
		if snapshotByRef(s1) != nil {
			t.Fatal("snapshot MO still registered")
		}
		if _, err := vm.RevertToCurrentSnapshot(e.ctx, false); faultName2(err) != "NotFound" {
			t.Fatalf("revert without snapshots: %v", err)
		}
		// ids are not reused
		s := e.snapshot(vm, "again", false, false)
		node, _ := findTree(e.get(vm).Snapshot.RootSnapshotList, s)
		if node.Id != 5 {
			t.Fatalf("id after removeall: %d", node.Id)
		}
		e.must(vm.RemoveAllSnapshot(e.ctx, nil))
	})

	t.Run("TaskEntityIsTheVM", func(t *testing.T) {
		s := e.snapshot(vm, "x", false, false)
		req := types.RemoveSnapshot_Task{This: s, RemoveChildren: false}
		res, err := methods.RemoveSnapshot_Task(e.ctx, e.c.Client, &req)
		if err != nil {
			t.Fatal(err)
		}
		tk := object.NewTask(e.c.Client, res.Returnval)
		info, err := tk.WaitForResult(e.ctx, nil)
		if err != nil || info.Entity == nil || *info.Entity != vm.Reference() || info.Name != "RemoveSnapshot_Task" {
			t.Fatalf("task info %+v %v", info, err)
		}
	})
}

func TestSnapshotPowerStates(t *testing.T) {
	e := newSnapEnv(t)
	vm := e.vm("vm-0001") // powered on
	ip := e.get(vm).Guest.IpAddress
	if ip == "" {
		t.Fatal("no guest IP before the test")
	}
	mem := e.snapshot(vm, "mem", true, false)
	v := e.get(vm)
	node, _ := findTree(v.Snapshot.RootSnapshotList, mem)
	if node.State != types.VirtualMachinePowerStatePoweredOn {
		t.Fatalf("memory snapshot state %s", node.State)
	}
	if !e.exists("vm-0001/vm-0001-Snapshot1.vmem") || !e.exists("vm-0001/vm-0001-Snapshot1.vmsn") {
		t.Fatalf("files: %v", e.files("vm-0001"))
	}
	if v.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn || v.Guest.IpAddress != ip {
		t.Fatal("a snapshot must not change the running VM")
	}
	disk := e.snapshot(vm, "disk", false, true) // tools run: quiesced
	v = e.get(vm)
	node, _ = findTree(v.Snapshot.RootSnapshotList, disk)
	if node.State != types.VirtualMachinePowerStatePoweredOff || !node.Quiesced || e.exists("vm-0001/vm-0001-Snapshot2.vmem") {
		t.Fatalf("disk-only snapshot of a running VM: %+v", node)
	}

	t.Run("MemorySnapshotComesBackRunning", func(t *testing.T) {
		e.must(vm.PowerOff(e.ctx))
		e.must(vm.RevertToSnapshot(e.ctx, mem.Value, false))
		v := e.get(vm)
		if v.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn || v.Guest.IpAddress != ip || v.Guest.ToolsRunningStatus != "guestToolsRunning" {
			t.Fatalf("after revert to the memory snapshot: %s ip %q", v.Runtime.PowerState, v.Guest.IpAddress)
		}
		// a running VM reverted to a memory snapshot runs again
		e.must(vm.RevertToSnapshot(e.ctx, mem.Value, false))
		if v := e.get(vm); v.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn || v.Guest.IpAddress != ip {
			t.Fatalf("running VM after revert: %s", v.Runtime.PowerState)
		}
	})

	t.Run("DiskOnlySnapshotComesBackOff", func(t *testing.T) {
		e.must(vm.RevertToSnapshot(e.ctx, disk.Value, false))
		if v := e.get(vm); v.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff || v.Guest.IpAddress != "" {
			t.Fatalf("after revert to the disk-only snapshot: %s", v.Runtime.PowerState)
		}
	})

	t.Run("SuppressPowerOn", func(t *testing.T) {
		e.must(vm.RevertToSnapshot(e.ctx, mem.Value, true))
		if v := e.get(vm); v.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
			t.Fatalf("suppressPowerOn: %s", v.Runtime.PowerState)
		}
	})

	t.Run("QuiesceWithoutTools", func(t *testing.T) {
		other := e.vm("vm-0003")
		ref := other.Reference()
		sv := vmByRef(ref)
		simulator.Map.WithLock(sv, func() {
			simulator.Map.Update(sv, []types.PropertyChange{{Name: "guest.toolsRunningStatus", Val: string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)}})
		})
		_, err := func() (types.AnyType, error) {
			tk, err := other.CreateSnapshot(e.ctx, "q", "", false, true)
			if err != nil {
				return nil, err
			}
			return tk.WaitForResult(e.ctx, nil)
		}()
		if faultName2(err) != "ToolsUnavailable" {
			t.Fatalf("quiesce without tools: %v", err)
		}
		if v := e.get(other); v.Snapshot != nil {
			t.Fatal("a refused snapshot was made")
		}
	})
}

func TestSnapshotRemoval(t *testing.T) {
	e := newSnapEnv(t)
	vm := e.vm("vm-0003")
	dir := filepath.Join(e.tb.DSDir, "vm-0003")
	const mib = 1 << 20

	t.Run("MergeAndDelete", func(t *testing.T) {
		a := e.snapshot(vm, "a", false, false)
		writeAt(t, filepath.Join(dir, "vm-0003-000001-sesparse.vmdk"), deltaHeaderBytes+1*mib, "written-after-a")
		b := e.snapshot(vm, "b", false, false)
		writeAt(t, filepath.Join(dir, "vm-0003-000002-sesparse.vmdk"), deltaHeaderBytes+2*mib, "written-after-b")
		baseDesc := e.descriptor("vm-0003/vm-0003.vmdk")

		// a (the root) goes: its delta (what was written after a) merges into the base
		e.must(vm.RemoveSnapshot(e.ctx, a.Value, false, nil))
		if e.exists("vm-0003/vm-0003-000001.vmdk") || e.exists("vm-0003/vm-0003-000001-sesparse.vmdk") {
			t.Fatalf("merged delta left: %v", e.files("vm-0003"))
		}
		if got := readAt(t, filepath.Join(dir, "vm-0003-flat.vmdk"), 1*mib, 15); got != "written-after-a" {
			t.Fatalf("base data: %q", got)
		}
		nb := e.descriptor("vm-0003/vm-0003.vmdk")
		d2 := e.descriptor("vm-0003/vm-0003-000002.vmdk")
		if d2.kv["parentFileNameHint"] != "vm-0003.vmdk" || d2.kv["parentCID"] != nb.kv["CID"] || nb.kv["CID"] == baseDesc.kv["CID"] || !nb.flat() {
			t.Fatalf("after the merge:\n%s\n%s", strings.Join(nb.lines, "\n"), strings.Join(d2.lines, "\n"))
		}
		v := e.get(vm)
		if treeNames(v.Snapshot.RootSnapshotList) != "b" || *v.Snapshot.CurrentSnapshot != b {
			t.Fatalf("tree %s", treeNames(v.Snapshot.RootSnapshotList))
		}
		_, bk := firstDiskOf(v)
		if got := chainOf(bk); strings.Join(got, "|") != ds("vm-0003/vm-0003-000002.vmdk")+"|"+ds("vm-0003/vm-0003.vmdk") {
			t.Fatalf("chain: %v", got)
		}
		sc := e.snapConfig(b)
		if _, sb := firstDiskOf(mo.VirtualMachine{Config: &sc.Config}); sb.FileName != ds("vm-0003/vm-0003.vmdk") {
			t.Fatalf("b's point: %s", sb.FileName)
		}
		if e.exists("vm-0003/vm-0003-Snapshot1.vmsn") || !e.exists("vm-0003/vm-0003-Snapshot2.vmsn") {
			t.Fatalf("vmsn: %v", e.files("vm-0003"))
		}

		// b (the last) goes: the running point merges into the base, the VM is back on it
		e.must(vm.RemoveSnapshot(e.ctx, b.Value, false, nil))
		v = e.get(vm)
		_, bk = firstDiskOf(v)
		if v.Snapshot != nil || bk.FileName != ds("vm-0003/vm-0003.vmdk") || bk.Parent != nil {
			t.Fatalf("after removing b: %+v %s", v.Snapshot, bk.FileName)
		}
		if got := readAt(t, filepath.Join(dir, "vm-0003-flat.vmdk"), 2*mib, 15); got != "written-after-b" {
			t.Fatalf("base data: %q", got)
		}
		want := []string{"vm-0003-flat.vmdk", "vm-0003.vmdk", "vm-0003.vmsd", "vm-0003.vmx"}
		var got []string
		for _, n := range e.files("vm-0003") {
			if n != "vmware.log" && !strings.HasSuffix(n, ".nvram") {
				got = append(got, n)
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("files: %v", got)
		}
		if e.vmxKey("vm-0003/vm-0003.vmx", "scsi0:0.fileName") != "vm-0003.vmdk" {
			t.Fatal(".vmx still names a delta")
		}
	})

	t.Run("RemoveChildren", func(t *testing.T) {
		r := e.snapshot(vm, "r", false, false)
		p := e.snapshot(vm, "p", false, false)
		e.snapshot(vm, "c", false, false)
		e.must(vm.RemoveSnapshot(e.ctx, p.Value, true, nil))
		v := e.get(vm)
		if treeNames(v.Snapshot.RootSnapshotList) != "r" || *v.Snapshot.CurrentSnapshot != r {
			t.Fatalf("tree %s current %v", treeNames(v.Snapshot.RootSnapshotList), v.Snapshot.CurrentSnapshot)
		}
		_, bk := firstDiskOf(v)
		if got := chainOf(bk); len(got) != 2 || got[1] != ds("vm-0003/vm-0003.vmdk") {
			t.Fatalf("chain %v", got)
		}
		if snapshotByRef(p) != nil {
			t.Fatal("removed child still registered")
		}
		// vcsim panicked here (current pointed at a removed child)
		x := e.snapshot(vm, "x", false, false)
		if v := e.get(vm); treeNames(v.Snapshot.RootSnapshotList) != "r(x)" || *v.Snapshot.CurrentSnapshot != x {
			t.Fatalf("tree %s", treeNames(v.Snapshot.RootSnapshotList))
		}
		e.must(vm.RemoveSnapshot(e.ctx, r.Value, true, nil))
		v = e.get(vm)
		_, bk = firstDiskOf(v)
		if v.Snapshot != nil || bk.FileName != ds("vm-0003/vm-0003.vmdk") || bk.Parent != nil {
			t.Fatalf("after removing the whole tree: %+v %s", v.Snapshot, bk.FileName)
		}
		for _, n := range e.files("vm-0003") {
			if strings.Contains(n, "-00000") || strings.HasSuffix(n, ".vmsn") {
				t.Fatalf("left: %v", e.files("vm-0003"))
			}
		}
	})

	t.Run("ConsolidateLater", func(t *testing.T) {
		x := e.snapshot(vm, "x", false, false)
		y := e.snapshot(vm, "y", false, false)
		no := false
		e.must(vm.RemoveSnapshot(e.ctx, x.Value, false, &no))
		v := e.get(vm)
		if v.Runtime.ConsolidationNeeded == nil || !*v.Runtime.ConsolidationNeeded || treeNames(v.Snapshot.RootSnapshotList) != "y" {
			t.Fatalf("consolidationNeeded %v tree %s", v.Runtime.ConsolidationNeeded, treeNames(v.Snapshot.RootSnapshotList))
		}
		if !e.exists("vm-0003/vm-0003-000001.vmdk") || !e.exists("vm-0003/vm-0003-000002.vmdk") {
			t.Fatalf("consolidate=false must leave the deltas: %v", e.files("vm-0003"))
		}
		e.must(e.consolidate(vm))
		v = e.get(vm)
		if v.Runtime.ConsolidationNeeded == nil || *v.Runtime.ConsolidationNeeded {
			t.Fatal("consolidationNeeded still set")
		}
		if e.exists("vm-0003/vm-0003-000001.vmdk") || !e.exists("vm-0003/vm-0003-000002.vmdk") {
			t.Fatalf("after consolidation: %v", e.files("vm-0003"))
		}
		sc := e.snapConfig(y)
		if _, sb := firstDiskOf(mo.VirtualMachine{Config: &sc.Config}); sb.FileName != ds("vm-0003/vm-0003.vmdk") {
			t.Fatalf("y's point after consolidation: %s", sb.FileName)
		}
		if d := e.descriptor("vm-0003/vm-0003-000002.vmdk"); d.kv["parentFileNameHint"] != "vm-0003.vmdk" {
			t.Fatalf("running delta's parent: %s", d.kv["parentFileNameHint"])
		}
		e.must(vm.RemoveAllSnapshot(e.ctx, nil))
	})

	t.Run("RemoveAllWithoutConsolidation", func(t *testing.T) {
		e.snapshot(vm, "m", false, false)
		e.snapshot(vm, "n", false, false)
		no := false
		e.must(vm.RemoveAllSnapshot(e.ctx, &no))
		v := e.get(vm)
		if v.Snapshot != nil || v.Runtime.ConsolidationNeeded == nil || !*v.Runtime.ConsolidationNeeded {
			t.Fatalf("removeall(consolidate=false): %+v %v", v.Snapshot, v.Runtime.ConsolidationNeeded)
		}
		if e.exists("vm-0003/vm-0003-Snapshot6.vmsn") || !e.exists("vm-0003/vm-0003-000002.vmdk") {
			t.Fatalf("files: %v", e.files("vm-0003"))
		}
		e.must(e.consolidate(vm))
		_, bk := firstDiskOf(e.get(vm))
		if bk.FileName != ds("vm-0003/vm-0003.vmdk") || bk.Parent != nil || e.exists("vm-0003/vm-0003-000002.vmdk") {
			t.Fatalf("after consolidation: %s %v", bk.FileName, e.files("vm-0003"))
		}
	})

	t.Run("CopyOfADeltaHasItsData", func(t *testing.T) {
		e.snapshot(vm, "k", false, false)
		writeAt(t, filepath.Join(dir, "vm-0003-000001-sesparse.vmdk"), deltaHeaderBytes+3*mib, "in-the-delta")
		dc, _ := e.finder.DefaultDatacenter(e.ctx)
		vdm := object.NewVirtualDiskManager(e.c.Client)
		e.must(vdm.CopyVirtualDisk(e.ctx, ds("vm-0003/vm-0003-000001.vmdk"), dc, ds("vm-0003/copy.vmdk"), dc, &types.VirtualDiskSpec{DiskType: "thin", AdapterType: "lsiLogic"}, false))
		if got := readAt(t, filepath.Join(dir, "copy-flat.vmdk"), 3*mib, 12); got != "in-the-delta" {
			t.Fatalf("copy: %q", got)
		}
		if got := readAt(t, filepath.Join(dir, "copy-flat.vmdk"), 2*mib, 15); got != "written-after-b" {
			t.Fatalf("copy of the base's data: %q", got)
		}
	})

	t.Run("DestroyDeletesTheChains", func(t *testing.T) {
		e.snapshot(vm, "l", true, false)
		e.must(vm.PowerOff(e.ctx))
		e.must(vm.Destroy(e.ctx))
		for _, n := range e.files("vm-0003") {
			if n != "copy.vmdk" && n != "copy-flat.vmdk" {
				t.Fatalf("left after destroy: %v", e.files("vm-0003"))
			}
		}
	})
}
