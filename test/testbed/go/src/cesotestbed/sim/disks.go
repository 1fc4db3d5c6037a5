package sim

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"cesotestbed/vmx"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// resolve maps a datastore path ("[datastore1] a/b.vmdk") to a file under the datastore's
// directory. Paths cannot escape the datastore.
func (t *Testbed) resolve(p string) (string, types.BaseMethodFault) {
	ds, rel, ok := vmx.DatastorePath(p)
	if !ok {
		return "", &types.InvalidDatastorePath{DatastorePath: p}
	}
	if ds != datastoreName {
		return "", &types.InvalidDatastore{Name: ds}
	}
	clean := path.Clean("/" + rel)
	return filepath.Join(t.DSDir, filepath.FromSlash(clean)), nil
}

// dsPath is the inverse of resolve.
func (t *Testbed) dsPath(file string) string {
	rel, err := filepath.Rel(t.DSDir, file)
	if err != nil || rel == "." {
		return "[" + datastoreName + "]"
	}
	return "[" + datastoreName + "] " + filepath.ToSlash(rel)
}

// canon normalizes a datastore path for use as a map key.
func canon(p string) string {
	ds, rel, ok := vmx.DatastorePath(p)
	if !ok {
		return p
	}
	return "[" + ds + "] " + strings.TrimPrefix(path.Clean("/"+rel), "/")
}

// scrub replaces the datastore's real directory with its datastore path in text sent to clients.
func (t *Testbed) scrub(s string) string {
	s = strings.ReplaceAll(s, t.DSDir+"/", "["+datastoreName+"] ")
	return strings.ReplaceAll(s, t.DSDir, "["+datastoreName+"]")
}

// ---- descriptors ----

var extentRE = regexp.MustCompile(`^(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\S+)\s+"([^"]+)"(?:\s+(\d+))?\s*$`)
var kvRE = regexp.MustCompile(`^([\w.]+)\s*=\s*"?([^"]*)"?\s*$`)

type extent struct {
	access  string
	sectors int64
	kind    string
	file    string
	line    int
}

type descriptor struct {
	lines   []string
	extents []extent
	kv      map[string]string
}

func readDescriptor(file string) (*descriptor, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() || fi.Size() > 64<<10 {
		return nil, fmt.Errorf("%s is not a disk descriptor", file)
	}
	data, err := ioutil.ReadFile(file)
	if err != nil {
		return nil, err
	}
	d := &descriptor{kv: map[string]string{}}
	d.lines = strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	for i, l := range d.lines {
		l = strings.TrimSpace(l)
		if m := extentRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseInt(m[2], 10, 64)
			d.extents = append(d.extents, extent{access: m[1], sectors: n, kind: m[3], file: m[4], line: i})
			continue
		}
		if m := kvRE.FindStringSubmatch(l); m != nil {
			d.kv[m[1]] = m[2]
		}
	}
	if len(d.extents) == 0 {
		return nil, fmt.Errorf("%s has no extents", file)
	}
	return d, nil
}

func (d *descriptor) sectors() int64 {
	var n int64
	for _, e := range d.extents {
		n += e.sectors
	}
	return n
}

func (d *descriptor) thin() bool { return d.kv["ddb.thinProvisioned"] == "1" }

func (d *descriptor) flat() bool {
	return len(d.extents) == 1 && (d.extents[0].kind == "VMFS" || d.extents[0].kind == "FLAT")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func diskUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	parts := make([]string, 16)
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts[:8], " ") + "-" + strings.Join(parts[8:], " ")
}

func flatDescriptor(base string, sectors int64, thin bool, adapter string) string {
	if adapter == "" {
		adapter = "lsilogic"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=%s\nparentCID=ffffffff\ncreateType=\"vmfs\"\n\n", randHex(4))
	fmt.Fprintf(&b, "# Extent description\nRW %d VMFS \"%s-flat.vmdk\"\n\n", sectors, base)
	fmt.Fprintf(&b, "# The Disk Data Base \n#DDB\n\nddb.adapterType = \"%s\"\n", adapter)
	fmt.Fprintf(&b, "ddb.geometry.cylinders = \"%d\"\nddb.geometry.heads = \"255\"\nddb.geometry.sectors = \"63\"\n", sectors/(255*63))
	fmt.Fprintf(&b, "ddb.longContentID = \"%s\"\n", randHex(16))
	if thin {
		b.WriteString("ddb.thinProvisioned = \"1\"\n")
	}
	fmt.Fprintf(&b, "ddb.uuid = \"%s\"\nddb.virtualHWVersion = \"19\"\n", diskUUID())
	return b.String()
}

func deltaDescriptor(base string, sectors int64, parentHint, parentCID string) string {
	if parentCID == "" {
		parentCID = "fffffffe"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=%s\nparentCID=%s\ncreateType=\"seSparse\"\nparentFileNameHint=\"%s\"\n\n", randHex(4), parentCID, parentHint)
	fmt.Fprintf(&b, "# Extent description\nRW %d SESPARSE \"%s-sesparse.vmdk\"\n\n", sectors, base)
	fmt.Fprintf(&b, "# The Disk Data Base \n#DDB\n\nddb.grain = \"8\"\nddb.longContentID = \"%s\"\nddb.thinProvisioned = \"1\"\nddb.uuid = \"%s\"\nddb.virtualHWVersion = \"19\"\n", randHex(16), diskUUID())
	return b.String()
}

// writeFileAtomic writes data through a temporary file and a rename.
func writeFileAtomic(file string, data []byte) error {
	tmp := fmt.Sprintf("%s.%s.testbed-tmp", file, randHex(4))
	if err := ioutil.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// extentFiles are the absolute files a descriptor's extents name.
func extentFiles(descFile string, d *descriptor) []string {
	var out []string
	for _, e := range d.extents {
		f := e.file
		if !filepath.IsAbs(f) {
			f = filepath.Join(filepath.Dir(descFile), f)
		}
		out = append(out, f)
	}
	return out
}

// growDisk rewrites a flat descriptor's extent to newSectors and extends the extent file.
func growDisk(descFile string, d *descriptor, newSectors int64) error {
	if !d.flat() {
		return fmt.Errorf("%s: only flat disks can be extended", descFile)
	}
	e := d.extents[0]
	lines := append([]string(nil), d.lines...)
	lines[e.line] = fmt.Sprintf("RW %d %s \"%s\"", newSectors, e.kind, e.file)
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "ddb.geometry.cylinders") {
			lines[i] = fmt.Sprintf("ddb.geometry.cylinders = \"%d\"", newSectors/(255*63))
		}
	}
	if err := writeFileAtomic(descFile, []byte(strings.Join(lines, "\n")+"\n")); err != nil {
		return err
	}
	return os.Truncate(extentFiles(descFile, d)[0], newSectors*512)
}

// copySparse copies a regular file without filling its holes (flat disks are sparse files of
// many GB), using SEEK_DATA/SEEK_HOLE where available and skipping zero blocks otherwise.
func copySparse(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	size := fi.Size()
	buf := make([]byte, 1<<20)
	copyRange := func(from, to int64) error {
		for off := from; off < to; {
			n := int64(len(buf))
			if to-off < n {
				n = to - off
			}
			r, err := in.ReadAt(buf[:n], off)
			if err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			if r == 0 {
				return nil
			}
			if !allZero(buf[:r]) {
				if _, err := out.WriteAt(buf[:r], off); err != nil {
					return err
				}
			}
			off += int64(r)
		}
		return nil
	}
	const seekData, seekHole = 3, 4
	var cerr error
	off := int64(0)
	for off < size {
		start, err := in.Seek(off, seekData)
		if err != nil {
			if errors.Is(err, syscall.ENXIO) {
				break // only a hole remains
			}
			cerr = copyRange(off, size) // SEEK_DATA unsupported
			break
		}
		end, err := in.Seek(start, seekHole)
		if err != nil || end <= start {
			end = size
		}
		if cerr = copyRange(start, end); cerr != nil {
			break
		}
		off = end
	}
	if cerr == nil {
		cerr = out.Truncate(size)
	}
	if err := out.Close(); cerr == nil {
		cerr = err
	}
	return cerr
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func copyTree(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return copySparse(src, dst)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := ioutil.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := copyTree(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func flatName(desc string) string {
	return strings.TrimSuffix(desc, ".vmdk") + "-flat.vmdk"
}

func diskCapacity(disk *types.VirtualDisk) int64 {
	if disk.CapacityInBytes > 0 {
		return disk.CapacityInBytes
	}
	return disk.CapacityInKB * 1024
}

// syncDiskFiles gives the VM's disks real files: vcsim creates empty .vmdk and -flat.vmdk
// files and never grows them. A new flat disk gets a descriptor and a sparse -flat.vmdk of
// its capacity; a new child disk (backing.parent set) gets a seSparse delta descriptor whose
// parentFileNameHint names the parent; a disk whose capacity grew (ReconfigVM) is extended.
// Caller holds the VM's lock.
func (t *Testbed) syncDiskFiles(vm *simulator.VirtualMachine) {
	for _, d := range vm.Config.Hardware.Device {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			continue
		}
		b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			continue
		}
		file, fault := t.resolve(b.FileName)
		if fault != nil {
			continue
		}
		fi, err := os.Stat(file)
		if err != nil {
			continue
		}
		capBytes := diskCapacity(disk)
		sectors := capBytes / 512
		base := strings.TrimSuffix(filepath.Base(file), ".vmdk")
		if fi.Size() == 0 {
			if b.Parent != nil {
				parent, pf := t.resolve(b.Parent.FileName)
				hint := b.Parent.FileName
				cid := ""
				if pf == nil {
					if filepath.Dir(parent) == filepath.Dir(file) {
						hint = filepath.Base(parent)
					} else {
						hint = "/vmfs/volumes/" + datastoreName + "/" + strings.TrimPrefix(t.dsPath(parent), "["+datastoreName+"] ")
					}
					if pd, err := readDescriptor(parent); err == nil {
						cid = pd.kv["CID"]
						if sectors == 0 {
							sectors = pd.sectors()
						}
					}
				}
				_ = writeFileAtomic(file, []byte(deltaDescriptor(base, sectors, hint, cid)))
				if fl := flatName(file); exists(fl) {
					if st, err := os.Stat(fl); err == nil && st.Size() == 0 {
						_ = os.Remove(fl)
					}
				}
				delta := filepath.Join(filepath.Dir(file), base+"-sesparse.vmdk")
				if f, err := os.Create(delta); err == nil {
					_ = f.Truncate(4 << 20)
					_ = f.Close()
				}
				continue
			}
			thin := b.ThinProvisioned != nil && *b.ThinProvisioned
			_ = writeFileAtomic(file, []byte(flatDescriptor(base, sectors, thin, t.adapterOf(vm, disk))))
			fl := flatName(file)
			if f, err := os.OpenFile(fl, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				_ = f.Truncate(capBytes)
				_ = f.Close()
			}
			continue
		}
		desc, err := readDescriptor(file)
		if err != nil {
			continue
		}
		if desc.flat() && desc.sectors() < sectors {
			_ = growDisk(file, desc, sectors)
		}
	}
}

func (t *Testbed) adapterOf(vm *simulator.VirtualMachine, disk *types.VirtualDisk) string {
	for _, d := range vm.Config.Hardware.Device {
		if d.GetVirtualDevice().Key != disk.ControllerKey {
			continue
		}
		switch d.(type) {
		case *types.ParaVirtualSCSIController:
			return "pvscsi"
		case *types.VirtualBusLogicController:
			return "buslogic"
		case *types.VirtualLsiLogicSASController:
			return "lsisas1068"
		case *types.VirtualLsiLogicController:
			return "lsilogic"
		case *types.VirtualIDEController:
			return "ide"
		}
	}
	return "lsilogic"
}

// ---- VirtualDiskManager ----

func (t *Testbed) copyVirtualDisk(req *types.CopyVirtualDisk_Task) (types.AnyType, types.BaseMethodFault) {
	src, fault := t.resolve(req.SourceName)
	if fault != nil {
		return nil, fault
	}
	dst, fault := t.resolve(req.DestName)
	if fault != nil {
		return nil, fault
	}
	if !strings.HasSuffix(dst, ".vmdk") {
		return nil, &types.InvalidArgument{InvalidProperty: "destName"}
	}
	if t.opts.Mode == "vpx" && req.DestSpec != nil {
		return nil, new(types.NotImplemented) // vCenter does not take destSpec
	}
	d, err := readDescriptor(src)
	if err != nil {
		return nil, &types.FileNotFound{FileFault: types.FileFault{File: req.SourceName}}
	}
	if exists(dst) && !isTrue(req.Force) {
		return nil, &types.FileAlreadyExists{FileFault: types.FileFault{File: req.DestName}}
	}
	if !exists(filepath.Dir(dst)) {
		return nil, &types.FileNotFound{FileFault: types.FileFault{File: t.dsPath(filepath.Dir(dst))}}
	}
	thin := false // a real host copies to preallocated without destSpec
	adapter := d.kv["ddb.adapterType"]
	if spec, ok := req.DestSpec.(*types.FileBackedVirtualDiskSpec); ok {
		thin = spec.DiskType == string(types.VirtualDiskTypeThin) || spec.DiskType == string(types.VirtualDiskTypeSeSparse)
		if spec.AdapterType != "" {
			adapter = spec.AdapterType
		}
	} else if spec, ok := req.DestSpec.(*types.VirtualDiskSpec); ok {
		thin = spec.DiskType == string(types.VirtualDiskTypeThin)
		if spec.AdapterType != "" {
			adapter = spec.AdapterType
		}
	}
	sectors := d.sectors()
	if !thin && sectors*512 > t.freeBytes() {
		return nil, &types.NoDiskSpace{FileFault: types.FileFault{File: req.DestName}, Datastore: datastoreName}
	}
	// data: the flat extent at the bottom of the chain
	flatSrc := ""
	var deltas []string // the chain above the flat disk, top first (their data is merged in)
	cur, curFile := d, src
	for i := 0; i < 32 && cur != nil; i++ {
		if cur.flat() {
			flatSrc = extentFiles(curFile, cur)[0]
			break
		}
		deltas = append(deltas, curFile)
		hint := cur.kv["parentFileNameHint"]
		if hint == "" {
			break
		}
		if strings.HasPrefix(hint, "/vmfs/volumes/") {
			parts := strings.SplitN(strings.TrimPrefix(hint, "/vmfs/volumes/"), "/", 2)
			if len(parts) == 2 {
				hint = filepath.Join(t.DSDir, parts[1])
			}
		} else if !filepath.IsAbs(hint) {
			hint = filepath.Join(filepath.Dir(curFile), hint)
		}
		curFile = hint
		cur, _ = readDescriptor(curFile)
	}
	base := strings.TrimSuffix(filepath.Base(dst), ".vmdk")
	flatDst := filepath.Join(filepath.Dir(dst), base+"-flat.vmdk")
	if flatSrc != "" && exists(flatSrc) {
		if err := copySparse(flatSrc, flatDst); err != nil {
			return nil, &types.CannotCreateFile{FileFault: types.FileFault{File: t.dsPath(flatDst)}}
		}
	}
	if err := os.Truncate(flatDst, sectors*512); err != nil {
		f, cerr := os.Create(flatDst)
		if cerr != nil {
			return nil, &types.CannotCreateFile{FileFault: types.FileFault{File: t.dsPath(flatDst)}}
		}
		_ = f.Truncate(sectors * 512)
		_ = f.Close()
	}
	t.overlayChain(deltas, flatDst) // snapshots.go
	if err := writeFileAtomic(dst, []byte(flatDescriptor(base, sectors, thin, adapter))); err != nil {
		return nil, &types.CannotCreateFile{FileFault: types.FileFault{File: req.DestName}}
	}
	t.mu.Lock()
	if st, ok := t.ciStates[canon(req.SourceName)]; ok {
		c := *st
		t.ciStates[canon(req.DestName)] = &c
	} else {
		delete(t.ciStates, canon(req.DestName))
	}
	t.mu.Unlock()
	return nil, nil
}

func (t *Testbed) deleteVirtualDisk(name string) types.BaseMethodFault {
	file, fault := t.resolve(name)
	if fault != nil {
		return fault
	}
	d, err := readDescriptor(file)
	if err != nil {
		return &types.FileNotFound{FileFault: types.FileFault{File: name}}
	}
	if vm := t.diskUser(canon(name), true); vm != "" {
		return &types.FileLocked{FileFault: types.FileFault{File: name}}
	}
	for _, f := range extentFiles(file, d) {
		_ = os.Remove(f)
	}
	if err := os.Remove(file); err != nil {
		return &types.CannotDeleteFile{FileFault: types.FileFault{File: name}}
	}
	t.mu.Lock()
	delete(t.ciStates, canon(name))
	t.mu.Unlock()
	return nil
}

// diskUser returns the name of a VM that uses the disk (a powered-on one when poweredOn).
func (t *Testbed) diskUser(diskPath string, poweredOn bool) string {
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		found := ""
		simulator.Map.WithLock(vm, func() {
			if vm.Config == nil || (poweredOn && vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn) {
				return
			}
			for _, d := range vm.Config.Hardware.Device {
				if disk, ok := d.(*types.VirtualDisk); ok {
					if b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok && canon(b.GetVirtualDeviceFileBackingInfo().FileName) == diskPath {
						found = vm.Name
					}
				}
			}
		})
		if found != "" {
			return found
		}
	}
	return ""
}

func (t *Testbed) extendVirtualDisk(req *types.ExtendVirtualDisk_Task) (types.AnyType, types.BaseMethodFault) {
	file, fault := t.resolve(req.Name)
	if fault != nil {
		return nil, fault
	}
	d, err := readDescriptor(file)
	if err != nil {
		return nil, &types.FileNotFound{FileFault: types.FileFault{File: req.Name}}
	}
	newSectors := req.NewCapacityKb * 2
	if newSectors < d.sectors() {
		return nil, &types.InvalidArgument{InvalidProperty: "newCapacityKb"}
	}
	if newSectors > d.sectors() && (d.kv["parentFileNameHint"] != "" || t.isChainParent(file)) {
		return nil, new(types.NotSupported) // disks with parents (or children) cannot be expanded
	}
	if vm := t.diskUser(canon(req.Name), true); vm != "" {
		return nil, &types.FileLocked{FileFault: types.FileFault{File: req.Name}}
	}
	if !d.thin() && (newSectors-d.sectors())*512 > t.freeBytes() {
		return nil, &types.NoDiskSpace{FileFault: types.FileFault{File: req.Name}, Datastore: datastoreName}
	}
	if newSectors > d.sectors() {
		if err := growDisk(file, d, newSectors); err != nil {
			return nil, &types.InvalidArgument{InvalidProperty: "name"}
		}
	}
	// the VMs using it see the new capacity (as after a reload on a real host)
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		simulator.Map.WithLock(vm, func() {
			if vm.Config == nil {
				return
			}
			for _, dev := range vm.Config.Hardware.Device {
				if disk, ok := dev.(*types.VirtualDisk); ok {
					if b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok && canon(b.GetVirtualDeviceFileBackingInfo().FileName) == canon(req.Name) {
						disk.CapacityInKB = req.NewCapacityKb
						disk.CapacityInBytes = req.NewCapacityKb * 1024
					}
				}
			}
		})
	}
	return nil, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

// freeBytes is the datastore's free space: the configured free space less what NFC uploads
// allocated.
func (t *Testbed) freeBytes() int64 {
	used := t.nfcUsed()
	t.mu.Lock()
	free := t.free - used
	t.mu.Unlock()
	if free < 0 {
		return 0
	}
	return free
}
