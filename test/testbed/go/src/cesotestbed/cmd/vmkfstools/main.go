// Command vmkfstools emulates the parts of ESXi's vmkfstools that ceso uses, on the test
// bed's datastore directories (volumesRoot/<datastore>, see package esxishell):
//
//	vmkfstools -i <src.vmdk> <dst.vmdk> [-d thin|zeroedthick|eagerzeroedthick]   clone
//	vmkfstools -X <size>[k|m|g|t] <disk.vmdk>                                   grow (not a delta, not a parent)
//	vmkfstools -c <size>[k|m|g|t] [-d format] [-a adapter] <disk.vmdk>          create
//	vmkfstools -U <disk.vmdk>                                                   delete
//
// The clone banner ("Destination disk format: VMFS thin-provisioned", "Cloning disk
// '<src>'...", "Clone: 100% done.") is from esxi-shell.md; the error texts, "Grow: 100%
// done." and "Create: 100% done." are RECONSTRUCTED from memory of real hosts (DiskLib
// messages with their numeric codes). Errors go to stderr with exit status 1.
//
// Paths may be absolute under volumesRoot, under /vmfs/volumes (mapped onto volumesRoot)
// or relative to the current directory. A disk is a text descriptor plus one flat extent;
// copies keep holes so thin templates clone fast. When $CESO_TESTBED_CONFIG is set, -X
// and -U refuse disks of powered-on VMs ("Failed to lock the file") and -X updates the
// capacity of registered VMs that use the disk, so the API sees the new size.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"cesotestbed/esxishell"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

type opts struct {
	clone, extend, create string
	del                   bool
	format, adapter       string
	positional            []string
}

func usage() int {
	fmt.Fprintln(os.Stderr, "Usage: vmkfstools -i <src.vmdk> <dst.vmdk> [-d thin|zeroedthick|eagerzeroedthick]")
	fmt.Fprintln(os.Stderr, "       vmkfstools -X <size>[kKmMgGtT] <disk.vmdk>")
	fmt.Fprintln(os.Stderr, "       vmkfstools -c <size>[kKmMgGtT] [-d format] [-a adapter] <disk.vmdk>")
	fmt.Fprintln(os.Stderr, "       vmkfstools -U <disk.vmdk>")
	return 1
}

func run(args []string) int {
	var o opts
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() (string, bool) {
			if i+1 >= len(args) {
				return "", false
			}
			i++
			return args[i], true
		}
		var ok = true
		switch a {
		case "-i", "--clonevirtualdisk":
			o.clone, ok = next()
		case "-X", "--extendvirtualdisk":
			o.extend, ok = next()
		case "-c", "--createvirtualdisk":
			o.create, ok = next()
		case "-U", "--deletevirtualdisk":
			o.del = true
		case "-d", "--diskformat":
			o.format, ok = next()
		case "-a", "--adaptertype":
			o.adapter, ok = next()
		case "-v", "--verbose":
			_, ok = next()
		default:
			if strings.HasPrefix(a, "-") && a != "-" {
				fmt.Fprintf(os.Stderr, "vmkfstools: unrecognized option '%s'\n", a)
				return usage()
			}
			o.positional = append(o.positional, a)
		}
		if !ok {
			fmt.Fprintf(os.Stderr, "vmkfstools: option '%s' requires an argument\n", a)
			return usage()
		}
	}
	cfg, _ := esxishell.LoadConfig()
	root := esxishell.RealVolumesRoot
	if cfg != nil {
		root = cfg.VolumesRoot
	}
	paths := &esxishell.Paths{VolumesRoot: root}
	local := func(p string) string {
		if strings.HasPrefix(strings.TrimSpace(p), "[") {
			if l, err := paths.Local(p); err == nil {
				return l
			}
		}
		if !filepath.IsAbs(p) {
			if wd, err := os.Getwd(); err == nil {
				p = filepath.Join(wd, p)
			}
		}
		return paths.LocalFromAny(p)
	}
	switch {
	case o.clone != "":
		if len(o.positional) != 1 {
			return usage()
		}
		return clone(o.clone, o.positional[0], local(o.clone), local(o.positional[0]), o.format)
	case o.extend != "":
		if len(o.positional) != 1 {
			return usage()
		}
		return extend(o.extend, o.positional[0], local(o.positional[0]), paths)
	case o.create != "":
		if len(o.positional) != 1 {
			return usage()
		}
		return create(o.create, o.positional[0], local(o.positional[0]), o.format, o.adapter)
	case o.del:
		if len(o.positional) != 1 {
			return usage()
		}
		return remove(o.positional[0], local(o.positional[0]), paths)
	}
	return usage()
}

func formatBanner(format string) (string, bool, bool) {
	switch strings.ToLower(format) {
	case "thin":
		return "VMFS thin-provisioned", true, true
	case "", "zeroedthick":
		return "VMFS zeroedthick", false, true
	case "eagerzeroedthick":
		return "VMFS eagerzeroedthick", false, true
	}
	return "", false, false
}

func parseSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	case 't', 'T':
		mult = 1 << 40
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n * mult, true
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func clone(srcArg, dstArg, src, dst, format string) int {
	banner, thin, ok := formatBanner(format)
	if !ok {
		fmt.Fprintf(os.Stderr, "Unknown disk format '%s'\n", format)
		return 1
	}
	desc, err := esxishell.ReadDescriptorFile(src)
	if err != nil {
		if os.IsNotExist(err) {
			fmt.Fprintf(os.Stderr, "DiskLib_Check() failed for source disk '%s': The system cannot find the file specified (25).\n", srcArg)
		} else {
			fmt.Fprintf(os.Stderr, "Failed to open '%s': %v (1).\n", srcArg, err)
		}
		return 1
	}
	if len(desc.Extents) != 1 {
		fmt.Fprintf(os.Stderr, "Failed to open '%s': The file specified is not a virtual disk (15).\n", srcArg)
		return 1
	}
	fmt.Printf("Destination disk format: %s\n", banner)
	fmt.Printf("Cloning disk '%s'...\n", srcArg)
	if !strings.HasSuffix(dst, ".vmdk") {
		fmt.Fprintln(os.Stderr, "Failed to clone disk: The destination file name must end in .vmdk (1).")
		return 1
	}
	flatName := esxishell.FlatName(dst)
	flat := filepath.Join(filepath.Dir(dst), flatName)
	if exists(dst) || exists(flat) {
		fmt.Fprintln(os.Stderr, "Failed to clone disk: The file already exists (39).")
		return 1
	}
	if st, err := os.Stat(filepath.Dir(dst)); err != nil || !st.IsDir() {
		fmt.Fprintln(os.Stderr, "Failed to clone disk: The system cannot find the file specified (25).")
		return 1
	}
	if done, code := cloneViaAPI(src, dst, desc, thin, format); done {
		return code
	}
	ext := desc.Extents[0]
	size := ext.Sectors * esxishell.SectorSize
	srcExtent := filepath.Join(filepath.Dir(src), ext.File)
	if ext.File == "" || filepath.IsAbs(ext.File) {
		srcExtent = ext.File
	}
	// A hosted SPARSE extent has grain tables we do not parse: the copy keeps the size,
	// not the data (test templates are flat).
	if strings.EqualFold(ext.Type, "SPARSE") || strings.EqualFold(ext.Type, "VMFSSPARSE") {
		srcExtent = os.DevNull
	}
	if _, err := os.Stat(srcExtent); err != nil {
		fmt.Fprintf(os.Stderr, "Failed to clone disk: The system cannot find the file specified (25).\n")
		return 1
	}
	if err := esxishell.CopySparse(srcExtent, flat, size); err != nil {
		_ = os.Remove(flat)
		fmt.Fprintf(os.Stderr, "Failed to clone disk: %v (1).\n", err)
		return 1
	}
	ext.Type = "VMFS"
	ext.File = flatName
	ext.Offset = ""
	desc.SetExtent(0, ext)
	desc.Set("createType", "vmfs")
	desc.Set("parentCID", "ffffffff")
	if thin {
		desc.Set("ddb.thinProvisioned", "1")
	} else {
		desc.Set("ddb.thinProvisioned", "0")
	}
	desc.Fresh()
	if err := writeNew(dst, desc.Bytes()); err != nil {
		_ = os.Remove(flat)
		fmt.Fprintf(os.Stderr, "Failed to clone disk: %v (1).\n", err)
		return 1
	}
	fmt.Println("Clone: 100% done.")
	return 0
}

// session connects to the simulator when $CESO_TESTBED_CONFIG is set; nil otherwise.
func session() *esxishell.Session {
	if os.Getenv(esxishell.ConfigEnv) == "" {
		return nil
	}
	s, err := esxishell.Connect()
	if err != nil {
		return nil
	}
	return s
}

// cloneViaAPI copies the disk with the simulator's VirtualDiskManager.CopyVirtualDisk_Task,
// as hostd and vmkfstools share DiskLib on a real host: the test bed's simulator then
// flattens child disks and carries the disk's guest state (cloud-init's instance-id) over
// to the copy exactly as for an API clone. done=false: do the copy locally (no simulator,
// paths outside the datastores, or a simulator whose copy is not a real one).
func cloneViaAPI(src, dst string, desc *esxishell.Descriptor, thin bool, format string) (done bool, code int) {
	s := session()
	if s == nil {
		return false, 0
	}
	defer s.Close()
	paths, err := s.Paths()
	if err != nil {
		return false, 0
	}
	srcDS, ok1 := paths.DatastorePath(src)
	dstDS, ok2 := paths.DatastorePath(dst)
	inv, err := s.Inventory()
	if !ok1 || !ok2 || err != nil {
		return false, 0
	}
	diskType := string(types.VirtualDiskTypeThin)
	switch {
	case !thin && strings.EqualFold(format, "eagerzeroedthick"):
		diskType = string(types.VirtualDiskTypeEagerZeroedThick)
	case !thin:
		diskType = string(types.VirtualDiskTypePreallocated)
	}
	adapter, _ := desc.Get("ddb.adapterType")
	if adapter == "" {
		adapter = string(types.VirtualDiskAdapterTypeLsiLogic)
	}
	spec := &types.VirtualDiskSpec{DiskType: diskType, AdapterType: adapter}
	vdm := object.NewVirtualDiskManager(s.Client)
	_, err = s.Wait(vdm.CopyVirtualDisk(s.Ctx, srcDS, inv.Datacenter, dstDS, inv.Datacenter, spec, false))
	if f := esxishell.AsFault(err); f != nil {
		if _, ni := f.Fault.(*types.NotImplemented); ni { // vCenter takes no destSpec
			_, err = s.Wait(vdm.CopyVirtualDisk(s.Ctx, srcDS, inv.Datacenter, dstDS, inv.Datacenter, nil, false))
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "Failed to clone disk: %s.\n", diskLibError(err))
		return true, 1
	}
	// Plain vcsim copies the descriptor verbatim (still naming the source's extent) and
	// leaves sparse files: undo that and copy locally instead.
	d, err := esxishell.ReadDescriptorFile(dst)
	if err != nil || len(d.Extents) != 1 || d.Extents[0].File != esxishell.FlatName(dst) {
		for _, f := range []string{dst, filepath.Join(filepath.Dir(dst), esxishell.FlatName(dst))} {
			_ = os.Remove(f)
		}
		return false, 0
	}
	fmt.Println("Clone: 100% done.")
	return true, 0
}

// diskLibError turns a simulator fault into vmkfstools' "<text> (<code>)" form.
func diskLibError(err error) string {
	f := esxishell.AsFault(err)
	if f == nil {
		return err.Error() + " (1)"
	}
	switch f.Fault.(type) {
	case *types.FileAlreadyExists:
		return "The file already exists (39)"
	case *types.FileNotFound, *types.NotFound:
		return "The system cannot find the file specified (25)"
	case *types.NoDiskSpace:
		return "There is not enough space on the file system for the selected operation (13)"
	case *types.FileLocked:
		return "Failed to lock the file (16392)"
	}
	return strings.TrimSuffix(f.Message(), ".") + " (1)"
}

func writeNew(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeReplace(name string, data []byte) error {
	tmp := name + ".tmp-vmkfstools"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// users finds registered VMs whose disks use the descriptor at local; nil without a
// simulator config.
type diskUser struct {
	vmid string
	on   bool
	disk *types.VirtualDisk
}

func users(local string, paths *esxishell.Paths) ([]diskUser, *esxishell.Session) {
	s := session()
	if s == nil {
		return nil, nil
	}
	p, err := s.Paths()
	if err != nil {
		return nil, s
	}
	*paths = *p
	vms, err := s.ListVMs([]string{"config.hardware.device", "runtime.powerState"})
	if err != nil {
		return nil, s
	}
	var out []diskUser
	for _, vm := range vms {
		if vm.Config == nil {
			continue
		}
		for _, d := range vm.Config.Hardware.Device {
			disk, ok := d.(*types.VirtualDisk)
			if !ok {
				continue
			}
			fb, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
			if !ok {
				continue
			}
			l, err := p.Local(fb.GetVirtualDeviceFileBackingInfo().FileName)
			if err == nil && filepath.Clean(l) == filepath.Clean(local) {
				out = append(out, diskUser{vmid: vm.Self.Value, on: vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff, disk: disk})
			}
		}
	}
	return out, s
}

func extend(sizeArg, diskArg, disk string, paths *esxishell.Paths) int {
	size, ok := parseSize(sizeArg)
	if !ok {
		fmt.Fprintf(os.Stderr, "Failed to extend disk : One of the parameters supplied is invalid (1).\n")
		return 1
	}
	desc, err := esxishell.ReadDescriptorFile(disk)
	if err != nil || len(desc.Extents) != 1 {
		fmt.Fprintf(os.Stderr, "Failed to open '%s': The system cannot find the file specified (25).\n", diskArg)
		return 1
	}
	ext := desc.Extents[0]
	// a delta (snapshot or linked clone) cannot grow, as on a host (message reconstructed)
	if hint, _ := desc.Get("parentFileNameHint"); hint != "" || isDeltaExtent(ext.Type) {
		if hint == "" {
			hint = "?"
		}
		fmt.Fprintf(os.Stderr, "Failed to extend disk : The disk '%s' has parent '%s': disks with parents (snapshots, linked clones) cannot be expanded (1).\n", diskArg, hint)
		return 1
	}
	cur := ext.Sectors * esxishell.SectorSize
	if size < cur {
		fmt.Fprintf(os.Stderr, "Failed to extend disk : Shrinking a disk is not supported; the new size (%d) is smaller than the current size (%d) (1).\n", size, cur)
		return 1
	}
	us, s := users(disk, paths)
	if s != nil {
		defer s.Close()
	}
	for _, u := range us {
		if u.on {
			fmt.Fprintf(os.Stderr, "Failed to extend disk : Failed to lock the file (16392).\n")
			return 1
		}
	}
	if child := chainChild(disk, s); child != "" {
		fmt.Fprintf(os.Stderr, "Failed to extend disk : The disk '%s' is the parent of '%s' (a snapshot chain or a linked clone): a disk with children cannot be expanded (1).\n", diskArg, child)
		return 1
	}
	if size == cur {
		fmt.Println("Grow: 100% done.")
		return 0
	}
	flat := filepath.Join(filepath.Dir(disk), ext.File)
	if err := os.Truncate(flat, size); err != nil {
		fmt.Fprintf(os.Stderr, "Failed to extend disk : %v (1).\n", err)
		return 1
	}
	ext.Sectors = size / esxishell.SectorSize
	desc.SetExtent(0, ext)
	desc.Resized()
	if err := writeReplace(disk, desc.Bytes()); err != nil {
		fmt.Fprintf(os.Stderr, "Failed to extend disk : %v (1).\n", err)
		return 1
	}
	for _, u := range us {
		d := *u.disk
		d.CapacityInBytes = size
		d.CapacityInKB = size / 1024
		spec := types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
			&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: &d},
		}}
		if _, err := s.Wait(s.VMObject(u.vmid).Reconfigure(s.Ctx, spec)); err != nil {
			fmt.Fprintf(os.Stderr, "warning: the disk grew but VM %s was not updated: %v\n", u.vmid, err)
		}
	}
	fmt.Println("Grow: 100% done.")
	return 0
}

func isDeltaExtent(kind string) bool {
	switch strings.ToUpper(kind) {
	case "SESPARSE", "VMFSSPARSE":
		return true
	}
	return false
}

// chainChild returns a disk of a registered VM whose parent chain holds the descriptor at
// local (the VM's current disk, e.g. a snapshot delta, or a linked clone's child disk); "" when
// there is none or no simulator.
func chainChild(local string, s *esxishell.Session) string {
	if s == nil {
		return ""
	}
	p, err := s.Paths()
	if err != nil {
		return ""
	}
	vms, err := s.ListVMs([]string{"config.hardware.device"})
	if err != nil {
		return ""
	}
	for _, vm := range vms {
		if vm.Config == nil {
			continue
		}
		for _, d := range vm.Config.Hardware.Device {
			disk, ok := d.(*types.VirtualDisk)
			if !ok {
				continue
			}
			b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !ok {
				continue
			}
			for q := b.Parent; q != nil; q = q.Parent {
				if l, err := p.Local(q.FileName); err == nil && filepath.Clean(l) == filepath.Clean(local) {
					return b.FileName
				}
			}
		}
	}
	return ""
}

func create(sizeArg, diskArg, disk, format, adapter string) int {
	size, ok := parseSize(sizeArg)
	_, thin, fok := formatBanner(format)
	if !ok || !fok || !strings.HasSuffix(disk, ".vmdk") {
		fmt.Fprintf(os.Stderr, "Failed to create virtual disk: One of the parameters supplied is invalid (1).\n")
		return 1
	}
	flatName := esxishell.FlatName(disk)
	flat := filepath.Join(filepath.Dir(disk), flatName)
	if exists(disk) || exists(flat) {
		fmt.Fprintf(os.Stderr, "Failed to create virtual disk: The file already exists (39).\n")
		return 1
	}
	f, err := os.OpenFile(flat, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "Failed to create virtual disk: The system cannot find the file specified (25).\n")
		} else {
			fmt.Fprintf(os.Stderr, "Failed to create virtual disk: %v (1).\n", err)
		}
		return 1
	}
	err = f.Truncate(size)
	f.Close()
	if err == nil {
		err = writeNew(disk, esxishell.NewDescriptor(flatName, size/esxishell.SectorSize, thin, adapter).Bytes())
	}
	if err != nil {
		_ = os.Remove(flat)
		fmt.Fprintf(os.Stderr, "Failed to create virtual disk: %v (1).\n", err)
		return 1
	}
	_ = diskArg
	fmt.Println("Create: 100% done.")
	return 0
}

func remove(diskArg, disk string, paths *esxishell.Paths) int {
	if !exists(disk) {
		fmt.Fprintf(os.Stderr, "Failed to delete virtual disk: The system cannot find the file specified (25).\n")
		return 1
	}
	us, s := users(disk, paths)
	if s != nil {
		defer s.Close()
	}
	for _, u := range us {
		if u.on {
			fmt.Fprintf(os.Stderr, "Failed to delete virtual disk: Failed to lock the file (16392).\n")
			return 1
		}
	}
	if s != nil && len(paths.Datastores) > 0 {
		if ds, ok := paths.DatastorePath(disk); ok {
			if inv, err := s.Inventory(); err == nil {
				vdm := object.NewVirtualDiskManager(s.Client)
				if _, err := s.Wait(vdm.DeleteVirtualDisk(s.Ctx, ds, inv.Datacenter)); err != nil {
					fmt.Fprintf(os.Stderr, "Failed to delete virtual disk: %s.\n", diskLibError(err))
					return 1
				}
			}
		}
	}
	for _, f := range esxishell.DiskFiles(disk) {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			fmt.Fprintf(os.Stderr, "Failed to delete virtual disk: %v (1).\n", err)
			return 1
		}
	}
	_ = diskArg
	return 0
}
