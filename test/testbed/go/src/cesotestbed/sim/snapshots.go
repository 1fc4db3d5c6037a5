package sim

// Snapshots as a real ESXi host makes them (vcsim 0.24.2 only keeps a tree: no delta disks, no
// config restore on revert, no power state, and its file bookkeeping deletes the wrong files).
//
// Disk model. CreateSnapshot_Task gives every disk a delta "<base>-00000N.vmdk" in the VM's
// folder (N = the next free number for that base name): a seSparse descriptor whose
// parentFileNameHint names the previous file and whose parentCID is that file's CID, plus a
// small sparse extent "<base>-00000N-sesparse.vmdk". The disk's backing moves to the delta
// (backing.parent = the previous backing), the snapshot MO's config is a deep copy of the VM's
// configuration at that moment (its disks name the frozen files: the snapshot points).
//
// The test bed's delta extent holds data as a plain sparse file: the first deltaHeaderBytes are
// metadata (left empty), the disk's byte V is at deltaHeaderBytes+V. A merge overlays the data
// written into a child onto its parent (a flat parent at V, a delta parent at the same offset).
//
// Consolidation (RemoveSnapshot_Task with consolidate, RemoveAllSnapshots_Task,
// ConsolidateVMDisks_Task): a file of the VM's chain that no snapshot and no disk of the VM (or
// of another VM) needs any more is merged with its only child: the child's data goes into it,
// the child's children name it (new CID), the child's files are deleted and everything that
// named the child (the running point, a later snapshot) names it. An unneeded delta without
// children (a branch left by a revert) is deleted. Files not created here (the VM's base disk,
// a linked clone's template) are never deleted; the base disk takes the merged data.
//
// Revert discards the running point (a delta nobody else needs) and puts a NEW empty delta on
// top of each of the snapshot's disks, as a host does; the configuration comes back from the
// snapshot (CPU, memory, hot-add flags, devices, extraConfig without guest-set keys,
// annotation, guest OS, firmware); the power state too (see revert).

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"cesotestbed/vmx"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// deltaHeaderBytes is the size of an empty delta extent (its metadata area).
const deltaHeaderBytes = 4 << 20

// snapVM is what the test bed remembers about one VM's snapshots.
type snapVM struct {
	lastUID int32
	deltas  map[string]bool     // absolute descriptor paths of the deltas made for this VM
	recs    map[string]*snapRec // snapshot moref value -> its files
}

type snapRec struct {
	uid       int32
	vmsn      string            // absolute
	vmem      string            // absolute, "" without memory
	guestKeys map[string]string // keys the guest had set when the snapshot was taken
}

var (
	snapMu  sync.Mutex // serializes every snapshot operation (taken before any VM lock)
	snapVMs = map[*Testbed]map[string]*snapVM{}
)

// snapState returns the VM's record. Caller holds snapMu.
func (t *Testbed) snapState(ref types.ManagedObjectReference) *snapVM {
	m := snapVMs[t]
	if m == nil {
		m = map[string]*snapVM{}
		snapVMs[t] = m
	}
	s := m[ref.Value]
	if s == nil {
		s = &snapVM{deltas: map[string]bool{}, recs: map[string]*snapRec{}}
		m[ref.Value] = s
	}
	return s
}

func snapshotByRef(ref types.ManagedObjectReference) *simulator.VirtualMachineSnapshot {
	if ref.Type != "VirtualMachineSnapshot" {
		return nil
	}
	s, _ := simulator.Map.Get(ref).(*simulator.VirtualMachineSnapshot)
	return s
}

// ownSnapshot serves the snapshot methods (handler.go's own()); nil for other methods.
func (t *Testbed) ownSnapshot(method *simulator.Method) func() (int, http.Header, []byte) {
	vmRef := method.This
	var run func() (types.AnyType, types.BaseMethodFault)
	var immediate types.BaseMethodFault
	snapOf := func() {
		s := snapshotByRef(method.This)
		if s == nil {
			immediate = &types.ManagedObjectNotFound{Obj: method.This}
			return
		}
		vmRef = s.Vm
	}
	switch req := method.Body.(type) {
	case *types.CreateSnapshot_Task:
		run = func() (types.AnyType, types.BaseMethodFault) { return t.createSnapshot(vmRef, req) }
	case *types.RevertToSnapshot_Task:
		snapOf()
		run = func() (types.AnyType, types.BaseMethodFault) {
			return nil, t.revertToSnapshot(vmRef, method.This, isTrue(req.SuppressPowerOn))
		}
	case *types.RevertToCurrentSnapshot_Task:
		if vm := vmByRef(vmRef); vm != nil {
			var cur *types.ManagedObjectReference
			simulator.Map.WithLock(vm, func() {
				if vm.Snapshot != nil && vm.Snapshot.CurrentSnapshot != nil {
					c := *vm.Snapshot.CurrentSnapshot
					cur = &c
				}
			})
			if cur == nil {
				immediate = &types.NotFound{} // as vcsim and a host: no current snapshot
			} else {
				run = func() (types.AnyType, types.BaseMethodFault) {
					return nil, t.revertToSnapshot(vmRef, *cur, isTrue(req.SuppressPowerOn))
				}
			}
		}
	case *types.RemoveSnapshot_Task:
		snapOf()
		run = func() (types.AnyType, types.BaseMethodFault) {
			return nil, t.removeSnapshot(vmRef, method.This, req.RemoveChildren, req.Consolidate == nil || *req.Consolidate)
		}
	case *types.RemoveAllSnapshots_Task:
		run = func() (types.AnyType, types.BaseMethodFault) {
			return nil, t.removeAllSnapshots(vmRef, req.Consolidate == nil || *req.Consolidate)
		}
	case *types.ConsolidateVMDisks_Task:
		run = func() (types.AnyType, types.BaseMethodFault) { return nil, t.consolidateVMDisks(vmRef) }
	default:
		return nil
	}
	return func() (int, http.Header, []byte) {
		if immediate == nil && vmByRef(vmRef) == nil {
			immediate = &types.ManagedObjectNotFound{Obj: vmRef}
		}
		if immediate != nil {
			return http.StatusInternalServerError, xmlHeader, faultXML(immediate, "")
		}
		// the task's entity is the VM, as on a host (vcsim: the snapshot)
		task := simulator.CreateTask(vmRef, taskName(method.Name), func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
			return run()
		})
		ref := task.Run()
		t.fixTaskError(ref, "")
		return http.StatusOK, xmlHeader, taskResponseXML(method.Name, ref)
	}
}

// ---- deep copies --------------------------------------------------------------------------

func deepCopyValue(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Ptr:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		n := reflect.New(v.Type().Elem())
		n.Elem().Set(deepCopyValue(v.Elem()))
		return n
	case reflect.Interface:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		n := reflect.New(v.Type()).Elem()
		n.Set(deepCopyValue(v.Elem()))
		return n
	case reflect.Slice:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		n := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			n.Index(i).Set(deepCopyValue(v.Index(i)))
		}
		return n
	case reflect.Map:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		n := reflect.MakeMapWithSize(v.Type(), v.Len())
		for _, k := range v.MapKeys() {
			n.SetMapIndex(k, deepCopyValue(v.MapIndex(k)))
		}
		return n
	case reflect.Struct:
		n := reflect.New(v.Type()).Elem()
		n.Set(v) // unexported fields (time.Time) by value
		for i := 0; i < v.NumField(); i++ {
			if n.Field(i).CanSet() {
				n.Field(i).Set(deepCopyValue(v.Field(i)))
			}
		}
		return n
	case reflect.Array:
		n := reflect.New(v.Type()).Elem()
		for i := 0; i < v.Len(); i++ {
			n.Index(i).Set(deepCopyValue(v.Index(i)))
		}
		return n
	}
	return v
}

// deepCopy returns a copy of v (a pointer, slice or struct) sharing nothing with it.
func deepCopy(v interface{}) interface{} {
	if v == nil {
		return nil
	}
	return deepCopyValue(reflect.ValueOf(v)).Interface()
}

func cloneConfig(c *types.VirtualMachineConfigInfo) types.VirtualMachineConfigInfo {
	return *deepCopy(c).(*types.VirtualMachineConfigInfo)
}

func cloneBacking(b *types.VirtualDiskFlatVer2BackingInfo) *types.VirtualDiskFlatVer2BackingInfo {
	return deepCopy(b).(*types.VirtualDiskFlatVer2BackingInfo)
}

// ---- the snapshot tree --------------------------------------------------------------------

func findTree(list []types.VirtualMachineSnapshotTree, ref types.ManagedObjectReference) (node, parent *types.VirtualMachineSnapshotTree) {
	for i := range list {
		if list[i].Snapshot == ref {
			return &list[i], nil
		}
		if n, p := findTree(list[i].ChildSnapshotList, ref); n != nil {
			if p == nil {
				p = &list[i]
			}
			return n, p
		}
	}
	return nil, nil
}

func walkTree(list []types.VirtualMachineSnapshotTree, fn func(n *types.VirtualMachineSnapshotTree, parent *types.VirtualMachineSnapshotTree)) {
	var walk func(list []types.VirtualMachineSnapshotTree, parent *types.VirtualMachineSnapshotTree)
	walk = func(list []types.VirtualMachineSnapshotTree, parent *types.VirtualMachineSnapshotTree) {
		for i := range list {
			fn(&list[i], parent)
			walk(list[i].ChildSnapshotList, &list[i])
		}
	}
	walk(list, nil)
}

func treeRefs(list []types.VirtualMachineSnapshotTree) []types.ManagedObjectReference {
	var out []types.ManagedObjectReference
	walkTree(list, func(n, _ *types.VirtualMachineSnapshotTree) { out = append(out, n.Snapshot) })
	return out
}

// removeFromTree removes ref; its children move up to its parent unless withChildren.
func removeFromTree(list []types.VirtualMachineSnapshotTree, ref types.ManagedObjectReference, withChildren bool) []types.VirtualMachineSnapshotTree {
	var out []types.VirtualMachineSnapshotTree
	for _, n := range list {
		if n.Snapshot == ref {
			if !withChildren {
				out = append(out, n.ChildSnapshotList...)
			}
			continue
		}
		n.ChildSnapshotList = removeFromTree(n.ChildSnapshotList, ref, withChildren)
		out = append(out, n)
	}
	return out
}

// setSnapshotInfo publishes the VM's snapshot, rootSnapshot and the snapshot MOs' childSnapshot.
// Caller holds the VM's lock.
func setSnapshotInfo(vm *simulator.VirtualMachine, roots []types.VirtualMachineSnapshotTree, current *types.ManagedObjectReference) {
	if len(roots) == 0 {
		simulator.Map.Update(vm, []types.PropertyChange{{Name: "snapshot", Val: nil}, {Name: "rootSnapshot", Val: nil}})
		return
	}
	info := types.VirtualMachineSnapshotInfo{RootSnapshotList: roots, CurrentSnapshot: current}
	var rootRefs []types.ManagedObjectReference
	for _, r := range roots {
		rootRefs = append(rootRefs, r.Snapshot)
	}
	simulator.Map.Update(vm, []types.PropertyChange{{Name: "snapshot", Val: info}, {Name: "rootSnapshot", Val: rootRefs}})
	walkTree(roots, func(n, _ *types.VirtualMachineSnapshotTree) {
		s := snapshotByRef(n.Snapshot)
		if s == nil {
			return
		}
		var kids []types.ManagedObjectReference
		for _, c := range n.ChildSnapshotList {
			kids = append(kids, c.Snapshot)
		}
		simulator.Map.WithLock(s, func() {
			simulator.Map.Update(s, []types.PropertyChange{{Name: "childSnapshot", Val: kids}})
		})
	})
}

// ---- files ---------------------------------------------------------------------------------

var deltaSuffixRE = regexp.MustCompile(`-\d{6}$`)

// hintToAbs resolves a descriptor's parentFileNameHint.
func (t *Testbed) hintToAbs(descFile, hint string) string {
	switch {
	case strings.HasPrefix(hint, "/vmfs/volumes/"):
		parts := strings.SplitN(strings.TrimPrefix(hint, "/vmfs/volumes/"), "/", 2)
		if len(parts) == 2 && parts[0] == datastoreName {
			return filepath.Join(t.DSDir, filepath.FromSlash(parts[1]))
		}
		return hint
	case filepath.IsAbs(hint):
		return hint
	}
	return filepath.Join(filepath.Dir(descFile), hint)
}

// hintFor is the parentFileNameHint a child in dir writes for parent: relative in the same
// folder, else the /vmfs/volumes path (as ESXi writes it).
func (t *Testbed) hintFor(parent, dir string) string {
	if filepath.Dir(parent) == dir {
		return filepath.Base(parent)
	}
	return "/vmfs/volumes/" + datastoreName + "/" + strings.TrimPrefix(t.dsPath(parent), "["+datastoreName+"] ")
}

// parentFile is the absolute parent of a delta descriptor ("" for a base disk).
func (t *Testbed) parentFile(desc string) (string, bool) {
	d, err := readDescriptor(desc)
	if err != nil {
		return "", false
	}
	hint := d.kv["parentFileNameHint"]
	if hint == "" {
		return "", true
	}
	return t.hintToAbs(desc, hint), true
}

// setDescriptorKeys rewrites header keys of a descriptor (CID=..., parentFileNameHint="...").
func setDescriptorKeys(file string, kv map[string]string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	done := map[string]bool{}
	for i, l := range lines {
		s := strings.TrimSpace(l)
		for k, v := range kv {
			if strings.HasPrefix(s, k) && strings.HasPrefix(strings.TrimSpace(s[len(k):]), "=") {
				if k == "CID" || k == "parentCID" {
					lines[i] = k + "=" + v
				} else {
					lines[i] = k + "=\"" + v + "\""
				}
				done[k] = true
			}
		}
	}
	for k, v := range kv { // missing keys go after createType
		if done[k] {
			continue
		}
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), "createType") {
				lines = append(lines[:i+1], append([]string{k + "=\"" + v + "\""}, lines[i+1:]...)...)
				break
			}
		}
	}
	return writeFileAtomic(file, []byte(strings.Join(lines, "\n")+"\n"))
}

// makeDelta creates an empty delta on top of parent in dir and returns its descriptor.
func (t *Testbed) makeDelta(dir, parent string, capBytes int64) (string, error) {
	pbase := deltaSuffixRE.ReplaceAllString(strings.TrimSuffix(filepath.Base(parent), ".vmdk"), "")
	name := ""
	for n := 1; n < 1000000; n++ {
		c := fmt.Sprintf("%s-%06d", pbase, n)
		if !exists(filepath.Join(dir, c+".vmdk")) && !exists(filepath.Join(dir, c+"-sesparse.vmdk")) && !exists(filepath.Join(dir, c+"-delta.vmdk")) {
			name = c
			break
		}
	}
	sectors := capBytes / 512
	cid := ""
	if pd, err := readDescriptor(parent); err == nil {
		cid = pd.kv["CID"]
		if s := pd.sectors(); s > 0 {
			sectors = s
		}
	}
	desc := filepath.Join(dir, name+".vmdk")
	ext := filepath.Join(dir, name+"-sesparse.vmdk")
	f, err := os.OpenFile(ext, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	err = f.Truncate(deltaHeaderBytes)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = writeFileAtomic(desc, []byte(deltaDescriptor(name, sectors, t.hintFor(parent, dir), cid)))
	}
	if err != nil {
		_ = os.Remove(ext)
		return "", err
	}
	return desc, nil
}

// deleteDiskFiles removes a descriptor and its extents.
func deleteDiskFiles(desc string) {
	if d, err := readDescriptor(desc); err == nil {
		for _, f := range extentFiles(desc, d) {
			_ = os.Remove(f)
		}
	}
	_ = os.Remove(desc)
}

// dataRanges lists the data regions of a file from offset from on (SEEK_DATA/SEEK_HOLE; the
// whole rest when the file system cannot say).
func dataRanges(f *os.File, from, size int64) [][2]int64 {
	const seekData, seekHole = 3, 4
	var out [][2]int64
	for off := from; off < size; {
		start, err := f.Seek(off, seekData)
		if err != nil {
			if !errors.Is(err, syscall.ENXIO) {
				out = append(out, [2]int64{off, size})
			}
			break
		}
		end, err := f.Seek(start, seekHole)
		if err != nil || end <= start {
			end = size
		}
		out = append(out, [2]int64{start, end})
		off = end
	}
	return out
}

// overlay copies the data of a delta extent (past its header) onto dst: a flat extent
// (shift = -deltaHeaderBytes) or another delta extent (shift 0). Zero blocks are skipped.
func overlay(src, dst string, shift int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil || fi.Size() <= deltaHeaderBytes {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	limit := int64(-1)
	if shift < 0 { // a flat extent does not grow
		if st, err := out.Stat(); err == nil {
			limit = st.Size()
		}
	}
	buf := make([]byte, 1<<20)
	var werr error
	for _, r := range dataRanges(in, deltaHeaderBytes, fi.Size()) {
		for off := r[0]; off < r[1] && werr == nil; {
			n := int64(len(buf))
			if r[1]-off < n {
				n = r[1] - off
			}
			got, err := in.ReadAt(buf[:n], off)
			if got == 0 {
				if err != nil && !errors.Is(err, io.EOF) {
					werr = err
				}
				break
			}
			chunk := buf[:got]
			at := off + shift
			if limit >= 0 && at+int64(len(chunk)) > limit {
				if at >= limit {
					break
				}
				chunk = chunk[:limit-at]
			}
			if !allZero(chunk) {
				_, werr = out.WriteAt(chunk, at)
			}
			off += int64(got)
		}
	}
	if err := out.Close(); werr == nil {
		werr = err
	}
	return werr
}

// overlayChain applies the data of a delta chain (descriptors, top first, as
// CopyVirtualDisk_Task walks them down to the flat disk) onto a flat copy of its base.
func (t *Testbed) overlayChain(chain []string, flat string) {
	for i := len(chain) - 1; i >= 0; i-- {
		d, err := readDescriptor(chain[i])
		if err != nil || len(d.extents) != 1 {
			continue
		}
		if err := overlay(extentFiles(chain[i], d)[0], flat, -deltaHeaderBytes); err != nil {
			log.Printf("copy: merging %s: %v", chain[i], err)
		}
	}
}

// mergeInto merges child (the only child of parent) into parent: data, CIDs, hints; the
// child's files are deleted. grandchildren are the descriptors naming child.
func (t *Testbed) mergeInto(child, parent string, grandchildren []string) error {
	cd, cerr := readDescriptor(child)
	pd, perr := readDescriptor(parent)
	newCID := randHex(4)
	if cerr == nil && perr == nil && len(cd.extents) == 1 && len(pd.extents) == 1 {
		shift := int64(0)
		if pd.flat() {
			shift = -deltaHeaderBytes
		}
		if err := overlay(extentFiles(child, cd)[0], extentFiles(parent, pd)[0], shift); err != nil {
			return err
		}
	}
	if perr == nil {
		if err := setDescriptorKeys(parent, map[string]string{"CID": newCID}); err != nil {
			return err
		}
	}
	for _, g := range grandchildren {
		kv := map[string]string{"parentFileNameHint": t.hintFor(parent, filepath.Dir(g))}
		if perr == nil {
			kv["parentCID"] = newCID
		}
		if err := setDescriptorKeys(g, kv); err != nil {
			return err
		}
	}
	deleteDiskFiles(child)
	from, to := canon(t.dsPath(child)), canon(t.dsPath(parent))
	t.mu.Lock()
	if s, ok := t.ciStates[from]; ok {
		t.ciStates[to] = s
		delete(t.ciStates, from)
	}
	t.mu.Unlock()
	return nil
}

// ---- which files are whose --------------------------------------------------------------

func diskBackings(devices []types.BaseVirtualDevice, fn func(disk *types.VirtualDisk, b *types.VirtualDiskFlatVer2BackingInfo)) {
	for _, d := range devices {
		if disk, ok := d.(*types.VirtualDisk); ok {
			if b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
				fn(disk, b)
			}
		}
	}
}

// editSnapshotConfigs lets fn change a copy of each snapshot's configuration (in the VM's tree)
// and stores it under the snapshot's lock (the property collector reads it meanwhile).
func editSnapshotConfigs(vm *simulator.VirtualMachine, fn func(c *types.VirtualMachineConfigInfo)) {
	if vm.Snapshot == nil {
		return
	}
	for _, ref := range treeRefs(vm.Snapshot.RootSnapshotList) {
		s := snapshotByRef(ref)
		if s == nil {
			continue
		}
		c := cloneConfig(&s.Config)
		fn(&c)
		if !reflect.DeepEqual(c, s.Config) {
			simulator.Map.WithLock(s, func() { s.Config = c })
		}
	}
}

// snapshotConfigs are the configurations of the snapshots in the VM's tree (read only).
func snapshotConfigs(vm *simulator.VirtualMachine) []*types.VirtualMachineConfigInfo {
	var out []*types.VirtualMachineConfigInfo
	if vm.Snapshot == nil {
		return nil
	}
	for _, ref := range treeRefs(vm.Snapshot.RootSnapshotList) {
		if s := snapshotByRef(ref); s != nil {
			out = append(out, &s.Config)
		}
	}
	return out
}

// neededFiles: the files a snapshot point or a disk of the VM is. Caller holds the VM's lock.
func (t *Testbed) neededFiles(vm *simulator.VirtualMachine) map[string]bool {
	need := map[string]bool{}
	add := func(devices []types.BaseVirtualDevice) {
		diskBackings(devices, func(_ *types.VirtualDisk, b *types.VirtualDiskFlatVer2BackingInfo) {
			if f, fault := t.resolve(b.FileName); fault == nil {
				need[f] = true
			}
		})
	}
	add(vm.Config.Hardware.Device)
	for _, c := range snapshotConfigs(vm) {
		add(c.Hardware.Device)
	}
	return need
}

// foreignFiles are the disk files (with their parents) other VMs use: never merged into,
// never deleted. Takes each other VM's lock: call without holding one.
func (t *Testbed) foreignFiles(self types.ManagedObjectReference) map[string]bool {
	out := map[string]bool{}
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		if vm.Self == self {
			continue
		}
		simulator.Map.WithLock(vm, func() {
			if vm.Config == nil {
				return
			}
			diskBackings(vm.Config.Hardware.Device, func(_ *types.VirtualDisk, b *types.VirtualDiskFlatVer2BackingInfo) {
				for p := b; p != nil; p = p.Parent {
					if f, fault := t.resolve(p.FileName); fault == nil {
						out[f] = true
					}
				}
			})
		})
	}
	return out
}

// isChainParent reports whether file (absolute) is the parent of a snapshot delta or another
// disk of a registered VM (its current backing chain or a snapshot's).
func (t *Testbed) isChainParent(file string) bool {
	found := false
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		simulator.Map.WithLock(vm, func() {
			if vm.Config == nil {
				return
			}
			check := func(devices []types.BaseVirtualDevice) {
				diskBackings(devices, func(_ *types.VirtualDisk, b *types.VirtualDiskFlatVer2BackingInfo) {
					for p := b.Parent; p != nil; p = p.Parent {
						if f, fault := t.resolve(p.FileName); fault == nil && f == file {
							found = true
						}
					}
				})
			}
			check(vm.Config.Hardware.Device)
		})
		if found {
			return true
		}
	}
	return false
}

// replaceFile makes every backing of the VM (and of its snapshots) that names from name to.
// Caller holds the VM's lock.
func (t *Testbed) replaceFile(vm *simulator.VirtualMachine, from, to string) {
	fromDS, toDS := canon(t.dsPath(from)), t.dsPath(to)
	fix := func(devices []types.BaseVirtualDevice) bool {
		changed := false
		diskBackings(devices, func(_ *types.VirtualDisk, b *types.VirtualDiskFlatVer2BackingInfo) {
			for p := b; p != nil; p = p.Parent {
				if canon(p.FileName) == fromDS {
					p.FileName = toDS
					changed = true
				}
			}
		})
		return changed
	}
	editSnapshotConfigs(vm, func(c *types.VirtualMachineConfigInfo) { fix(c.Hardware.Device) })
	devices := deepCopy(vm.Config.Hardware.Device).([]types.BaseVirtualDevice)
	if fix(devices) {
		simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
	}
}

// rebuildChains re-derives every backing's parent chain from the descriptors on disk (after
// merges). Known backings keep their details. Caller holds the VM's lock.
func (t *Testbed) rebuildChains(vm *simulator.VirtualMachine) {
	known := map[string]*types.VirtualDiskFlatVer2BackingInfo{}
	collect := func(devices []types.BaseVirtualDevice) {
		diskBackings(devices, func(_ *types.VirtualDisk, b *types.VirtualDiskFlatVer2BackingInfo) {
			for p := b; p != nil; p = p.Parent {
				if _, ok := known[canon(p.FileName)]; !ok {
					known[canon(p.FileName)] = p
				}
			}
		})
	}
	collect(vm.Config.Hardware.Device)
	for _, c := range snapshotConfigs(vm) {
		collect(c.Hardware.Device)
	}
	var chain func(file string, mode string, depth int) (*types.VirtualDiskFlatVer2BackingInfo, bool)
	chain = func(file, mode string, depth int) (*types.VirtualDiskFlatVer2BackingInfo, bool) {
		if depth > 64 {
			return nil, false
		}
		p, ok := t.parentFile(file)
		if !ok {
			return nil, false
		}
		if p == "" {
			return nil, true
		}
		ds := t.dsPath(p)
		if !strings.HasPrefix(p, t.DSDir+string(filepath.Separator)) {
			ds = p
		}
		nb := &types.VirtualDiskFlatVer2BackingInfo{
			VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: ds},
			DiskMode:                     mode,
		}
		k := known[canon(ds)]
		if k != nil {
			c := *k
			nb = &c
		} else if pd, err := readDescriptor(p); err == nil {
			nb.ThinProvisioned = types.NewBool(pd.thin())
		}
		nb.Parent = nil
		if pp, ok := chain(p, mode, depth+1); ok {
			nb.Parent = pp
		} else if k != nil {
			nb.Parent = k.Parent
		}
		return nb, true
	}
	fix := func(devices []types.BaseVirtualDevice) {
		diskBackings(devices, func(_ *types.VirtualDisk, b *types.VirtualDiskFlatVer2BackingInfo) {
			f, fault := t.resolve(b.FileName)
			if fault != nil {
				return
			}
			if p, ok := chain(f, b.DiskMode, 0); ok {
				b.Parent = p
			}
		})
	}
	editSnapshotConfigs(vm, func(c *types.VirtualMachineConfigInfo) { fix(c.Hardware.Device) })
	devices := deepCopy(vm.Config.Hardware.Device).([]types.BaseVirtualDevice)
	fix(devices)
	if !reflect.DeepEqual(devices, vm.Config.Hardware.Device) {
		simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
	}
}

// repairChains is ReconfigVM_Task's after-hook: a client that edits a disk of a VM with
// snapshots may send the backing without its parent chain.
func (t *Testbed) repairChains(ref types.ManagedObjectReference) {
	vm := vmByRef(ref)
	if vm == nil {
		return
	}
	snapMu.Lock()
	defer snapMu.Unlock()
	if len(t.snapState(ref).deltas) == 0 {
		return
	}
	simulator.Map.WithLock(vm, func() {
		if vm.Config != nil {
			t.rebuildChains(vm)
		}
	})
}

// consolidate merges and deletes what nothing needs any more (see the package comment above).
// Caller holds snapMu and the VM's lock; foreign comes from foreignFiles.
func (t *Testbed) consolidate(vm *simulator.VirtualMachine, st *snapVM, foreign map[string]bool) error {
	for iter := 0; iter < 10000; iter++ {
		need := t.neededFiles(vm)
		for f := range foreign {
			need[f] = true
		}
		children := map[string][]string{}
		for d := range st.deltas {
			if !exists(d) {
				delete(st.deltas, d)
				continue
			}
			if p, ok := t.parentFile(d); ok && p != "" {
				children[p] = append(children[p], d)
			}
		}
		var cands []string
		seen := map[string]bool{}
		for d := range st.deltas {
			cands = append(cands, d)
			seen[d] = true
		}
		for p := range children {
			if !seen[p] {
				cands = append(cands, p)
			}
		}
		sort.Strings(cands)
		did := false
		for _, p := range cands {
			if need[p] {
				continue
			}
			kids := children[p]
			sort.Strings(kids)
			switch {
			case len(kids) == 0 && st.deltas[p]:
				deleteDiskFiles(p)
				delete(st.deltas, p)
				t.mu.Lock()
				delete(t.ciStates, canon(t.dsPath(p)))
				t.mu.Unlock()
				did = true
			case len(kids) == 1 && !foreign[kids[0]]:
				if err := t.mergeInto(kids[0], p, children[kids[0]]); err != nil {
					return err
				}
				delete(st.deltas, kids[0])
				t.replaceFile(vm, kids[0], p)
				did = true
			}
			if did {
				break
			}
		}
		if !did {
			break
		}
	}
	t.rebuildChains(vm)
	return nil
}

// unconsolidated reports whether consolidation would change something.
func (t *Testbed) unconsolidated(vm *simulator.VirtualMachine, st *snapVM, foreign map[string]bool) bool {
	need := t.neededFiles(vm)
	children := map[string]int{}
	for d := range st.deltas {
		if p, ok := t.parentFile(d); ok && p != "" {
			children[p]++
		}
	}
	for d := range st.deltas {
		if !need[d] && !foreign[d] && children[d] == 0 {
			return true
		}
	}
	for d := range st.deltas { // a delta that can take its only child
		if p, ok := t.parentFile(d); ok && p != "" && !need[p] && !foreign[p] && !foreign[d] && children[p] == 1 {
			return true
		}
	}
	return false
}

func setConsolidationNeeded(vm *simulator.VirtualMachine, v bool) {
	simulator.Map.Update(vm, []types.PropertyChange{{Name: "runtime.consolidationNeeded", Val: v}})
}

// ---- .vmsd ---------------------------------------------------------------------------------

// vmFiles returns the VM's folder and the .vmx base name. Caller holds the VM's lock.
func (t *Testbed) vmFiles(vm *simulator.VirtualMachine) (dir, base string, fault types.BaseMethodFault) {
	vmxFile, fault := t.resolve(vm.Config.Files.VmPathName)
	if fault != nil {
		return "", "", fault
	}
	if filepath.Ext(vmxFile) != ".vmx" {
		return vmxFile, vm.Config.Name, nil
	}
	return filepath.Dir(vmxFile), strings.TrimSuffix(filepath.Base(vmxFile), ".vmx"), nil
}

// writeVMSD writes the snapshot list as ESXi keeps it (<vm>.vmsd). Caller holds the VM's lock.
func (t *Testbed) writeVMSD(vm *simulator.VirtualMachine, st *snapVM) {
	dir, base, fault := t.vmFiles(vm)
	if fault != nil {
		return
	}
	f := vmx.New()
	f.Set(".encoding", "UTF-8")
	f.Set("snapshot.lastUID", strconv.Itoa(int(st.lastUID)))
	n := 0
	if vm.Snapshot != nil {
		if cur := vm.Snapshot.CurrentSnapshot; cur != nil {
			if node, _ := findTree(vm.Snapshot.RootSnapshotList, *cur); node != nil {
				f.Set("snapshot.current", strconv.Itoa(int(node.Id)))
			}
		}
		walkTree(vm.Snapshot.RootSnapshotList, func(node, parent *types.VirtualMachineSnapshotTree) {
			p := fmt.Sprintf("snapshot%d.", n)
			n++
			f.Set(p+"uid", strconv.Itoa(int(node.Id)))
			if parent != nil {
				f.Set(p+"parent", strconv.Itoa(int(parent.Id)))
			}
			if rec := st.recs[node.Snapshot.Value]; rec != nil {
				f.Set(p+"filename", filepath.Base(rec.vmsn))
			}
			f.Set(p+"displayName", node.Name)
			if node.Description != "" {
				f.Set(p+"description", node.Description)
			}
			us := node.CreateTime.UnixNano() / 1000
			f.Set(p+"createTimeHigh", strconv.Itoa(int(int32(us>>32))))
			f.Set(p+"createTimeLow", strconv.Itoa(int(int32(uint32(us)))))
			s := snapshotByRef(node.Snapshot)
			if s == nil {
				return
			}
			disks := 0
			names := controllerNames(s.Config.Hardware.Device)
			diskBackings(s.Config.Hardware.Device, func(d *types.VirtualDisk, b *types.VirtualDiskFlatVer2BackingInfo) {
				dp := fmt.Sprintf("%sdisk%d.", p, disks)
				disks++
				name := b.FileName
				if file, fault := t.resolve(b.FileName); fault == nil {
					if filepath.Dir(file) == dir {
						name = filepath.Base(file)
					} else {
						name = t.hintFor(file, dir)
					}
				}
				f.Set(dp+"fileName", name)
				if cn, ok := names[d.ControllerKey]; ok && d.UnitNumber != nil {
					f.Set(dp+"node", fmt.Sprintf("%s:%d", cn, *d.UnitNumber))
				}
			})
			f.Set(p+"numDisks", strconv.Itoa(disks))
		})
	}
	f.Set("snapshot.numSnapshots", strconv.Itoa(n))
	if err := writeFileAtomic(filepath.Join(dir, base+".vmsd"), f.Bytes()); err != nil {
		log.Printf("writing %s.vmsd: %v", base, err)
	}
}

func controllerNames(devices []types.BaseVirtualDevice) map[int32]string {
	out := map[int32]string{}
	for _, d := range devices {
		switch c := d.(type) {
		case types.BaseVirtualSCSIController:
			out[d.GetVirtualDevice().Key] = fmt.Sprintf("scsi%d", c.GetVirtualSCSIController().BusNumber)
		case types.BaseVirtualSATAController:
			out[d.GetVirtualDevice().Key] = fmt.Sprintf("sata%d", c.GetVirtualSATAController().BusNumber)
		case *types.VirtualNVMEController:
			out[d.GetVirtualDevice().Key] = fmt.Sprintf("nvme%d", c.BusNumber)
		case *types.VirtualIDEController:
			out[d.GetVirtualDevice().Key] = fmt.Sprintf("ide%d", c.BusNumber)
		}
	}
	return out
}

// lastUIDOnDisk reads snapshot.lastUID from the VM's .vmsd (ids are never reused).
func (t *Testbed) lastUIDOnDisk(vm *simulator.VirtualMachine) int32 {
	dir, base, fault := t.vmFiles(vm)
	if fault != nil {
		return 0
	}
	data, err := os.ReadFile(filepath.Join(dir, base+".vmsd"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(get(vmx.Parse(data), "snapshot.lastUID"))
	return int32(n)
}

// ---- CreateSnapshot_Task ------------------------------------------------------------------

func (t *Testbed) createSnapshot(ref types.ManagedObjectReference, req *types.CreateSnapshot_Task) (types.AnyType, types.BaseMethodFault) {
	vm := vmByRef(ref)
	if vm == nil {
		return nil, &types.ManagedObjectNotFound{Obj: ref}
	}
	snapMu.Lock()
	defer snapMu.Unlock()
	st := t.snapState(ref)
	var result types.ManagedObjectReference
	var fault types.BaseMethodFault
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil {
			fault = &types.InvalidState{}
			return
		}
		power := vm.Runtime.PowerState
		on := power == types.VirtualMachinePowerStatePoweredOn
		if req.Quiesce && on && (vm.Guest == nil || vm.Guest.ToolsRunningStatus != string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)) {
			fault = &types.ToolsUnavailable{}
			return
		}
		// memory only for a running VM (a suspended one always has its memory image);
		// powered off, memory and quiesce are ignored
		memory := (req.Memory && on) || power == types.VirtualMachinePowerStateSuspended
		state := types.VirtualMachinePowerStatePoweredOff
		if memory {
			state = power
		}
		dir, base, f := t.vmFiles(vm)
		if f != nil {
			fault = f
			return
		}
		uid := st.lastUID
		if u := t.lastUIDOnDisk(vm); u > uid {
			uid = u
		}
		if vm.Snapshot != nil {
			walkTree(vm.Snapshot.RootSnapshotList, func(n, _ *types.VirtualMachineSnapshotTree) {
				if n.Id > uid {
					uid = n.Id
				}
			})
		}
		uid++
		cfg := cloneConfig(vm.Config) // the configuration at this moment: disks name the frozen files

		devices := deepCopy(vm.Config.Hardware.Device).([]types.BaseVirtualDevice)
		made, moved, derr := t.pushDeltas(dir, devices)
		if derr != nil {
			log.Printf("snapshot of %s: %v", vm.Name, derr)
			fault = &types.CannotCreateFile{FileFault: types.FileFault{File: vm.Config.Files.VmPathName}}
			return
		}
		for _, d := range made {
			st.deltas[d] = true
		}
		rec := &snapRec{uid: uid, vmsn: filepath.Join(dir, fmt.Sprintf("%s-Snapshot%d.vmsn", base, uid))}
		if memory {
			rec.vmem = filepath.Join(dir, fmt.Sprintf("%s-Snapshot%d.vmem", base, uid))
		}
		cfgVM := mo.VirtualMachine{Config: &cfg}
		cfgVM.Name = vm.Name
		if err := writeFileAtomic(rec.vmsn, vmx.FromVM(&cfgVM).Bytes()); err != nil {
			log.Printf("snapshot of %s: %v", vm.Name, err)
		}
		if rec.vmem != "" {
			if fh, err := os.Create(rec.vmem); err == nil {
				_ = fh.Truncate(int64(vm.Config.Hardware.MemoryMB) << 20)
				_ = fh.Close()
			}
		}
		t.mu.Lock()
		if keys := t.guestKeys[ref.Value]; len(keys) > 0 {
			rec.guestKeys = map[string]string{}
			for k, v := range keys {
				rec.guestKeys[k] = v
			}
		}
		for from, to := range moved { // the disk's guest state follows the running point
			if s, ok := t.ciStates[from]; ok {
				c := *s
				t.ciStates[to] = &c
			}
		}
		t.mu.Unlock()

		snap := &simulator.VirtualMachineSnapshot{}
		snap.Vm = ref
		snap.Config = cfg
		simulator.Map.Put(snap)
		item := types.VirtualMachineSnapshotTree{
			Snapshot: snap.Self, Vm: ref, Name: req.Name, Description: req.Description, Id: uid,
			CreateTime: time.Now(), State: state, Quiesced: req.Quiesce && on, ReplaySupported: types.NewBool(false),
		}
		var roots []types.VirtualMachineSnapshotTree
		if vm.Snapshot != nil {
			roots = deepCopy(vm.Snapshot.RootSnapshotList).([]types.VirtualMachineSnapshotTree)
		}
		placed := false
		if vm.Snapshot != nil && vm.Snapshot.CurrentSnapshot != nil {
			if node, _ := findTree(roots, *vm.Snapshot.CurrentSnapshot); node != nil {
				node.ChildSnapshotList = append(node.ChildSnapshotList, item)
				placed = true
			}
		}
		if !placed {
			roots = append(roots, item)
		}
		st.recs[snap.Self.Value] = rec
		st.lastUID = uid
		simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
		setSnapshotInfo(vm, roots, &snap.Self)
		t.writeVMSD(vm, st)
		result = snap.Self
	})
	if fault != nil {
		return nil, fault
	}
	t.afterChange([]types.ManagedObjectReference{ref})
	return result, nil
}

// ---- revert ----------------------------------------------------------------------------------

// powerInProcess changes the power state through vcsim (no corrections, no fault injection).
func (t *Testbed) powerInProcess(ref types.ManagedObjectReference, op string) error {
	vm := object.NewVirtualMachine(t.client, ref)
	var task *object.Task
	var err error
	switch op {
	case "on":
		task, err = vm.PowerOn(t.ctx)
	case "off":
		task, err = vm.PowerOff(t.ctx)
	case "suspend":
		task, err = vm.Suspend(t.ctx)
	}
	if err == nil {
		err = task.Wait(t.ctx)
	}
	t.afterChange([]types.ManagedObjectReference{ref})
	return err
}

// revertToSnapshot: a snapshot taken with memory of a running VM comes back running (as after
// a resume: a new boot time, the guest reports its address again), one of a suspended VM
// suspended; a disk-only snapshot comes back powered off. suppressPowerOn keeps the VM off.
func (t *Testbed) revertToSnapshot(vmRef, snapRef types.ManagedObjectReference, suppressPowerOn bool) types.BaseMethodFault {
	vm := vmByRef(vmRef)
	snap := snapshotByRef(snapRef)
	if vm == nil {
		return &types.ManagedObjectNotFound{Obj: vmRef}
	}
	if snap == nil {
		return &types.ManagedObjectNotFound{Obj: snapRef}
	}
	snapMu.Lock()
	defer snapMu.Unlock()
	var node *types.VirtualMachineSnapshotTree
	var power types.VirtualMachinePowerState
	simulator.Map.WithLock(vm, func() {
		power = vm.Runtime.PowerState
		if vm.Snapshot != nil {
			if n, _ := findTree(vm.Snapshot.RootSnapshotList, snapRef); n != nil {
				c := *n
				node = &c
			}
		}
	})
	if node == nil {
		return &types.NotFound{}
	}
	if power != types.VirtualMachinePowerStatePoweredOff {
		if err := t.powerInProcess(vmRef, "off"); err != nil {
			return faultFromError(err)
		}
	}
	st := t.snapState(vmRef)
	rec := st.recs[snapRef.Value]
	var fault types.BaseMethodFault
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil {
			fault = &types.InvalidState{}
			return
		}
		dir, _, f := t.vmFiles(vm)
		if f != nil {
			fault = f
			return
		}
		var oldRunning []string
		diskBackings(vm.Config.Hardware.Device, func(_ *types.VirtualDisk, b *types.VirtualDiskFlatVer2BackingInfo) {
			if f, fault := t.resolve(b.FileName); fault == nil {
				oldRunning = append(oldRunning, f)
			}
		})
		cfg := cloneConfig(&snap.Config)
		made, copies, derr := t.pushDeltas(dir, cfg.Hardware.Device)
		if derr != nil {
			log.Printf("revert of %s: %v", vm.Name, derr)
			fault = &types.CannotCreateFile{FileFault: types.FileFault{File: vm.Config.Files.VmPathName}}
			return
		}
		for _, d := range made {
			st.deltas[d] = true
		}
		// extraConfig as it was, without what the guest had set at runtime
		var ec []types.BaseOptionValue
		for _, ov := range cfg.ExtraConfig {
			o := ov.GetOptionValue()
			if rec != nil {
				if v, ok := rec.guestKeys[o.Key]; ok && fmt.Sprint(o.Value) == v {
					continue
				}
			}
			ec = append(ec, ov)
		}
		if ec == nil {
			ec = []types.BaseOptionValue{}
		}
		nics, disks := int32(0), int32(0)
		for _, d := range cfg.Hardware.Device {
			switch d.(type) {
			case types.BaseVirtualEthernetCard:
				nics++
			case *types.VirtualDisk:
				disks++
			}
		}
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "config.hardware.device", Val: cfg.Hardware.Device},
			{Name: "config.hardware.numCPU", Val: cfg.Hardware.NumCPU},
			{Name: "config.hardware.numCoresPerSocket", Val: cfg.Hardware.NumCoresPerSocket},
			{Name: "config.hardware.memoryMB", Val: cfg.Hardware.MemoryMB},
			{Name: "config.extraConfig", Val: ec},
			{Name: "config.cpuHotAddEnabled", Val: boolVal(cfg.CpuHotAddEnabled)},
			{Name: "config.cpuHotRemoveEnabled", Val: boolVal(cfg.CpuHotRemoveEnabled)},
			{Name: "config.memoryHotAddEnabled", Val: boolVal(cfg.MemoryHotAddEnabled)},
			{Name: "config.annotation", Val: cfg.Annotation},
			{Name: "config.guestId", Val: cfg.GuestId},
			{Name: "config.guestFullName", Val: cfg.GuestFullName},
			{Name: "config.firmware", Val: cfg.Firmware},
			{Name: "summary.config.numCpu", Val: cfg.Hardware.NumCPU},
			{Name: "summary.config.memorySizeMB", Val: cfg.Hardware.MemoryMB},
			{Name: "summary.config.annotation", Val: cfg.Annotation},
			{Name: "summary.config.guestId", Val: cfg.GuestId},
			{Name: "summary.config.guestFullName", Val: cfg.GuestFullName},
			{Name: "summary.config.numEthernetCards", Val: nics},
			{Name: "summary.config.numVirtualDisks", Val: disks},
		})
		var roots []types.VirtualMachineSnapshotTree
		if vm.Snapshot != nil {
			roots = vm.Snapshot.RootSnapshotList
		}
		cur := snapRef
		setSnapshotInfo(vm, roots, &cur)
		t.mu.Lock()
		for from, to := range copies { // the disk's guest state as it was at the snapshot
			if s, ok := t.ciStates[from]; ok {
				c := *s
				t.ciStates[to] = &c
			} else {
				delete(t.ciStates, to)
			}
		}
		t.mu.Unlock()
		// the old running point is discarded (what no snapshot and no other disk needs)
		need := t.neededFiles(vm)
		for _, f := range oldRunning {
			if !st.deltas[f] || need[f] {
				continue
			}
			hasChild := false
			for d := range st.deltas {
				if p, ok := t.parentFile(d); ok && p == f {
					hasChild = true
				}
			}
			if hasChild {
				continue
			}
			deleteDiskFiles(f)
			delete(st.deltas, f)
			t.mu.Lock()
			delete(t.ciStates, canon(t.dsPath(f)))
			t.mu.Unlock()
		}
		t.writeVMSD(vm, st)
	})
	if fault != nil {
		return fault
	}
	t.afterChange([]types.ManagedObjectReference{vmRef})
	if suppressPowerOn {
		return nil
	}
	switch node.State {
	case types.VirtualMachinePowerStatePoweredOn:
		if err := t.powerInProcess(vmRef, "on"); err != nil {
			return faultFromError(err)
		}
	case types.VirtualMachinePowerStateSuspended:
		if err := t.powerInProcess(vmRef, "on"); err != nil {
			return faultFromError(err)
		}
		if err := t.powerInProcess(vmRef, "suspend"); err != nil {
			return faultFromError(err)
		}
	}
	return nil
}

func boolVal(b *bool) interface{} {
	if b == nil {
		return nil
	}
	return *b
}

// ---- remove ----------------------------------------------------------------------------------

// dropSnapshots forgets snapshot MOs and deletes their .vmsn/.vmem. Caller holds snapMu.
func dropSnapshots(st *snapVM, refs []types.ManagedObjectReference) {
	for _, r := range refs {
		if rec := st.recs[r.Value]; rec != nil {
			_ = os.Remove(rec.vmsn)
			if rec.vmem != "" {
				_ = os.Remove(rec.vmem)
			}
			delete(st.recs, r.Value)
		}
		simulator.Map.Remove(r)
	}
}

func (t *Testbed) removeSnapshot(vmRef, snapRef types.ManagedObjectReference, withChildren, consolidate bool) types.BaseMethodFault {
	vm := vmByRef(vmRef)
	if vm == nil {
		return &types.ManagedObjectNotFound{Obj: vmRef}
	}
	foreign := t.foreignFiles(vmRef)
	snapMu.Lock()
	defer snapMu.Unlock()
	st := t.snapState(vmRef)
	var fault types.BaseMethodFault
	var removed []types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		if vm.Snapshot == nil {
			fault = &types.NotFound{}
			return
		}
		roots := deepCopy(vm.Snapshot.RootSnapshotList).([]types.VirtualMachineSnapshotTree)
		node, parent := findTree(roots, snapRef)
		if node == nil {
			fault = &types.NotFound{}
			return
		}
		removed = []types.ManagedObjectReference{snapRef}
		if withChildren {
			removed = append(removed, treeRefs(node.ChildSnapshotList)...)
		}
		cur := vm.Snapshot.CurrentSnapshot
		for _, r := range removed {
			if cur != nil && *cur == r { // the current one goes: its parent becomes current
				cur = nil
				if parent != nil {
					p := parent.Snapshot
					cur = &p
				}
			}
		}
		roots = removeFromTree(roots, snapRef, withChildren)
		setSnapshotInfo(vm, roots, cur)
		dropSnapshots(st, removed)
		if consolidate {
			if err := t.consolidate(vm, st, foreign); err != nil {
				log.Printf("consolidating %s: %v", vm.Name, err)
				setConsolidationNeeded(vm, true)
			} else {
				setConsolidationNeeded(vm, false)
			}
		} else if t.unconsolidated(vm, st, foreign) {
			setConsolidationNeeded(vm, true)
		}
		t.writeVMSD(vm, st)
	})
	if fault != nil {
		return fault
	}
	t.afterChange([]types.ManagedObjectReference{vmRef})
	return nil
}

func (t *Testbed) removeAllSnapshots(vmRef types.ManagedObjectReference, consolidate bool) types.BaseMethodFault {
	vm := vmByRef(vmRef)
	if vm == nil {
		return &types.ManagedObjectNotFound{Obj: vmRef}
	}
	foreign := t.foreignFiles(vmRef)
	snapMu.Lock()
	defer snapMu.Unlock()
	st := t.snapState(vmRef)
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil {
			return
		}
		had := vm.Snapshot != nil
		var refs []types.ManagedObjectReference
		if had {
			refs = treeRefs(vm.Snapshot.RootSnapshotList)
		}
		setSnapshotInfo(vm, nil, nil)
		dropSnapshots(st, refs)
		if consolidate {
			if err := t.consolidate(vm, st, foreign); err != nil {
				log.Printf("consolidating %s: %v", vm.Name, err)
				setConsolidationNeeded(vm, true)
			} else {
				setConsolidationNeeded(vm, false)
			}
		} else if t.unconsolidated(vm, st, foreign) {
			setConsolidationNeeded(vm, true)
		}
		if had {
			t.writeVMSD(vm, st)
		}
	})
	t.afterChange([]types.ManagedObjectReference{vmRef})
	return nil
}

func (t *Testbed) consolidateVMDisks(vmRef types.ManagedObjectReference) types.BaseMethodFault {
	vm := vmByRef(vmRef)
	if vm == nil {
		return &types.ManagedObjectNotFound{Obj: vmRef}
	}
	foreign := t.foreignFiles(vmRef)
	snapMu.Lock()
	defer snapMu.Unlock()
	st := t.snapState(vmRef)
	var fault types.BaseMethodFault
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil {
			return
		}
		if err := t.consolidate(vm, st, foreign); err != nil {
			log.Printf("consolidating %s: %v", vm.Name, err)
			fault = &types.CannotAccessFile{FileFault: types.FileFault{File: vm.Config.Files.VmPathName}}
			return
		}
		setConsolidationNeeded(vm, false)
	})
	if fault != nil {
		return fault
	}
	t.afterChange([]types.ManagedObjectReference{vmRef})
	return nil
}

// ---- destroy / unregister ------------------------------------------------------------------

// destroyVMWithSnapshots is Destroy_Task: destroyVM deletes the VM's files and current disks;
// a VM with snapshots also has the rest of its chains (the base disks, the snapshot points, the
// deltas), deleted here unless another VM uses them.
func (t *Testbed) destroyVMWithSnapshots(ref types.ManagedObjectReference) types.BaseMethodFault {
	vm := vmByRef(ref)
	if vm == nil {
		return t.destroyVM(ref)
	}
	snapMu.Lock()
	defer snapMu.Unlock()
	st := t.snapState(ref)
	var files []string
	var refs []types.ManagedObjectReference
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil {
			return
		}
		seen := map[string]bool{}
		for f := range t.neededFiles(vm) {
			for cur := f; cur != "" && !seen[cur]; {
				seen[cur] = true
				files = append(files, cur)
				if !st.deltas[cur] {
					break // the VM's base disk: its own parent (a template) is not the VM's
				}
				p, _ := t.parentFile(cur)
				cur = p
			}
		}
		for d := range st.deltas {
			if !seen[d] {
				files = append(files, d)
			}
		}
		if vm.Snapshot != nil {
			refs = treeRefs(vm.Snapshot.RootSnapshotList)
		}
	})
	if fault := t.destroyVM(ref); fault != nil {
		return fault
	}
	if len(st.deltas) > 0 || len(refs) > 0 {
		for _, f := range files {
			if t.diskUser(canon(t.dsPath(f)), false) == "" && !t.isChainParent(f) {
				deleteDiskFiles(f)
			}
		}
	}
	dropSnapshots(st, refs)
	delete(snapVMs[t], ref.Value)
	return nil
}

// forgetSnapshots: the VM left the inventory (UnregisterVM keeps its files, as on a host).
func (t *Testbed) forgetSnapshots(ref types.ManagedObjectReference) {
	snapMu.Lock()
	defer snapMu.Unlock()
	st := snapVMs[t][ref.Value]
	if st == nil {
		return
	}
	for id := range st.recs {
		simulator.Map.Remove(types.ManagedObjectReference{Type: "VirtualMachineSnapshot", Value: id})
	}
	delete(snapVMs[t], ref.Value)
}

// pushDeltas puts a new, empty delta in dir on top of every disk of devices (a snapshot's point,
// or the running point after a revert): each backing moves to its delta, its old backing becomes
// the parent. It returns the deltas made and old -> new backing file; on failure it removes
// what it made.
func (t *Testbed) pushDeltas(dir string, devices []types.BaseVirtualDevice) ([]string, map[string]string, error) {
	var made []string
	moved := map[string]string{}
	var derr error
	diskBackings(devices, func(disk *types.VirtualDisk, b *types.VirtualDiskFlatVer2BackingInfo) {
		if derr != nil {
			return
		}
		parent, f := t.resolve(b.FileName)
		if f != nil {
			return
		}
		delta, err := t.makeDelta(dir, parent, diskCapacity(disk))
		if err != nil {
			derr = err
			return
		}
		made = append(made, delta)
		prev := cloneBacking(b)
		b.FileName = t.dsPath(delta)
		b.Parent = prev
		b.DeltaDiskFormat = string(types.VirtualDiskDeltaDiskFormatSeSparseFormat)
		b.DeltaGrainSize = 8
		moved[canon(prev.FileName)] = canon(b.FileName)
	})
	if derr != nil {
		for _, d := range made {
			deleteDiskFiles(d)
		}
		return nil, nil, derr
	}
	return made, moved, nil
}
