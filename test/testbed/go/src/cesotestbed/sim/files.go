package sim

import (
	"io/ioutil"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// ---- FileManager: faults name datastore paths, never the simulator's real directories ----

func (t *Testbed) makeDirectory(req *types.MakeDirectory) types.BaseMethodFault {
	dir, fault := t.resolve(req.Name)
	if fault != nil {
		return fault
	}
	if exists(dir) {
		return &types.FileAlreadyExists{FileFault: types.FileFault{File: req.Name}}
	}
	var err error
	if isTrue(req.CreateParentDirectories) {
		err = os.MkdirAll(dir, 0o755)
	} else {
		if !exists(filepath.Dir(dir)) {
			return &types.FileNotFound{FileFault: types.FileFault{File: t.dsPath(filepath.Dir(dir))}}
		}
		err = os.Mkdir(dir, 0o755)
	}
	if err != nil {
		return &types.CannotCreateFile{FileFault: types.FileFault{File: req.Name}}
	}
	return nil
}

func (t *Testbed) deleteDatastoreFile(name string) types.BaseMethodFault {
	file, fault := t.resolve(name)
	if fault != nil {
		return fault
	}
	if file == t.DSDir {
		return &types.CannotDeleteFile{FileFault: types.FileFault{File: name}}
	}
	if _, err := os.Lstat(file); err != nil {
		return &types.FileNotFound{FileFault: types.FileFault{File: name}}
	}
	if err := os.RemoveAll(file); err != nil {
		return &types.CannotDeleteFile{FileFault: types.FileFault{File: name}}
	}
	return nil
}

func (t *Testbed) copyDatastoreFile(req *types.CopyDatastoreFile_Task) types.BaseMethodFault {
	src, fault := t.resolve(req.SourceName)
	if fault != nil {
		return fault
	}
	dst, fault := t.resolve(req.DestinationName)
	if fault != nil {
		return fault
	}
	if !exists(src) {
		return &types.FileNotFound{FileFault: types.FileFault{File: req.SourceName}}
	}
	if exists(dst) && !isTrue(req.Force) {
		return &types.FileAlreadyExists{FileFault: types.FileFault{File: req.DestinationName}}
	}
	if !exists(filepath.Dir(dst)) {
		return &types.FileNotFound{FileFault: types.FileFault{File: t.dsPath(filepath.Dir(dst))}}
	}
	if err := copyTree(src, dst); err != nil {
		return &types.CannotCreateFile{FileFault: types.FileFault{File: req.DestinationName}}
	}
	return nil
}

func (t *Testbed) moveDatastoreFile(req *types.MoveDatastoreFile_Task) types.BaseMethodFault {
	src, fault := t.resolve(req.SourceName)
	if fault != nil {
		return fault
	}
	dst, fault := t.resolve(req.DestinationName)
	if fault != nil {
		return fault
	}
	if !exists(src) {
		return &types.FileNotFound{FileFault: types.FileFault{File: req.SourceName}}
	}
	if exists(dst) && !isTrue(req.Force) {
		return &types.FileAlreadyExists{FileFault: types.FileFault{File: req.DestinationName}}
	}
	if err := os.Rename(src, dst); err != nil {
		return &types.CannotAccessFile{FileFault: types.FileFault{File: req.SourceName}}
	}
	return nil
}

// ---- HostDatastoreBrowser ----

var extentSuffixes = []string{"-flat.vmdk", "-delta.vmdk", "-sesparse.vmdk", "-ctk.vmdk", "-rdm.vmdk", "-rdmp.vmdk"}

func isExtent(name string) bool {
	for _, s := range extentSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

func (t *Testbed) searchDatastore(dsPath string, spec *types.HostDatastoreBrowserSearchSpec, recurse bool) (types.AnyType, types.BaseMethodFault) {
	dir, fault := t.resolve(dsPath)
	if fault != nil {
		return nil, fault
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return nil, &types.FileNotFound{FileFault: types.FileFault{File: dsPath}}
	}
	if spec == nil {
		spec = &types.HostDatastoreBrowserSearchSpec{}
	}
	var dsRef *types.ManagedObjectReference
	if len(t.dsRefs) > 0 {
		r := t.dsRefs[0]
		dsRef = &r
	}
	var results []types.HostDatastoreBrowserSearchResults
	var walk func(dir, folder string)
	walk = func(dir, folder string) {
		res := types.HostDatastoreBrowserSearchResults{Datastore: dsRef, FolderPath: folder}
		entries, _ := ioutil.ReadDir(dir)
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".testbed-tmp") {
				continue
			}
			if t.queryMatch(spec, e) && patternMatch(spec.MatchPattern, e.Name()) {
				res.File = append(res.File, t.fileInfo(spec, dir, e))
			}
		}
		results = append(results, res)
		if recurse {
			for _, e := range entries {
				if e.IsDir() {
					sub := folder + "/" + e.Name()
					if strings.HasSuffix(folder, "]") {
						sub = folder + " " + e.Name()
					}
					walk(filepath.Join(dir, e.Name()), sub)
				}
			}
		}
	}
	folder := strings.TrimRight(canon(dsPath), " /")
	walk(dir, folder)
	if recurse {
		return types.ArrayOfHostDatastoreBrowserSearchResults{HostDatastoreBrowserSearchResults: results}, nil
	}
	return results[0], nil
}

func patternMatch(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func (t *Testbed) queryMatch(spec *types.HostDatastoreBrowserSearchSpec, e os.FileInfo) bool {
	if len(spec.Query) == 0 {
		return true
	}
	name := e.Name()
	ext := path.Ext(name)
	for _, q := range spec.Query {
		switch q.(type) {
		case *types.FileQuery:
			return true
		case *types.FolderFileQuery:
			if e.IsDir() {
				return true
			}
		case *types.VmDiskFileQuery:
			if !e.IsDir() && ext == ".vmdk" && !isExtent(name) {
				return true
			}
		case *types.VmConfigFileQuery:
			if !e.IsDir() && ext == ".vmx" {
				return true
			}
		case *types.TemplateConfigFileQuery:
			if !e.IsDir() && ext == ".vmtx" {
				return true
			}
		case *types.VmLogFileQuery:
			if !e.IsDir() && ext == ".log" {
				return true
			}
		case *types.VmNvramFileQuery:
			if !e.IsDir() && ext == ".nvram" {
				return true
			}
		case *types.VmSnapshotFileQuery:
			if !e.IsDir() && ext == ".vmsn" {
				return true
			}
		case *types.IsoImageFileQuery:
			if !e.IsDir() && ext == ".iso" {
				return true
			}
		case *types.FloppyImageFileQuery:
			if !e.IsDir() && (ext == ".flp" || ext == ".img") {
				return true
			}
		}
	}
	return false
}

func (t *Testbed) fileInfo(spec *types.HostDatastoreBrowserSearchSpec, dir string, e os.FileInfo) types.BaseFileInfo {
	details := spec.Details
	if details == nil {
		details = &types.FileQueryFlags{}
	}
	info := types.FileInfo{Path: e.Name()}
	if details.FileSize {
		info.FileSize = e.Size()
	}
	if details.Modification {
		m := e.ModTime()
		info.Modification = &m
	}
	if isTrue(details.FileOwner) {
		info.Owner = "root"
	}
	if e.IsDir() {
		return &types.FolderFileInfo{FileInfo: info}
	}
	name := e.Name()
	ext := path.Ext(name)
	typed := details.FileType
	switch {
	case ext == ".vmdk" && !isExtent(name):
		di := &types.VmDiskFileInfo{FileInfo: info}
		if d, err := readDescriptor(filepath.Join(dir, name)); err == nil {
			if details.FileSize {
				for _, f := range extentFiles(filepath.Join(dir, name), d) {
					if st, err := os.Stat(f); err == nil {
						di.FileSize += st.Size()
					}
				}
			}
			for _, q := range spec.Query {
				if dq, ok := q.(*types.VmDiskFileQuery); ok && dq.Details != nil {
					if dq.Details.CapacityKb {
						di.CapacityKb = d.sectors() / 2
					}
					if dq.Details.DiskType {
						di.DiskType = "VirtualDiskFlatVer2BackingInfo"
						if !d.flat() {
							di.DiskType = "VirtualDiskSeSparseBackingInfo"
						}
					}
					if isTrue(dq.Details.Thin) {
						di.Thin = types.NewBool(d.thin())
					}
					if dq.Details.HardwareVersion {
						di.HardwareVersion = 19
					}
					if isTrue(dq.Details.ControllerType) {
						di.ControllerType = "VirtualLsiLogicController"
					}
					if isTrue(dq.Details.DiskExtents) {
						for _, f := range extentFiles(filepath.Join(dir, name), d) {
							di.DiskExtents = append(di.DiskExtents, t.dsPath(f))
						}
					}
				}
			}
		}
		if typed || len(spec.Query) > 0 {
			return di
		}
	case !typed:
	case ext == ".vmx":
		return &types.VmConfigFileInfo{FileInfo: info}
	case ext == ".vmtx":
		return &types.TemplateConfigFileInfo{VmConfigFileInfo: types.VmConfigFileInfo{FileInfo: info}}
	case ext == ".log":
		return &types.VmLogFileInfo{FileInfo: info}
	case ext == ".nvram":
		return &types.VmNvramFileInfo{FileInfo: info}
	case ext == ".vmsn":
		return &types.VmSnapshotFileInfo{FileInfo: info}
	case ext == ".iso":
		return &types.IsoImageFileInfo{FileInfo: info}
	case ext == ".flp" || ext == ".img":
		return &types.FloppyImageFileInfo{FileInfo: info}
	}
	return &info
}

// ---- Destroy_Task of a VM ----

// destroyVM deletes what a real host deletes: the VM's own files (configuration, nvram, logs,
// swap, snapshot files) and every disk attached to it (descriptor and extents, wherever they
// are; not the parents of child disks), then its folder when that is left empty. vcsim removes
// the whole folder of the VM's logDirectory instead (the datastore root for a VM kept there).
func (t *Testbed) destroyVM(ref types.ManagedObjectReference) types.BaseMethodFault {
	vm := vmByRef(ref)
	if vm == nil {
		return &types.ManagedObjectNotFound{Obj: ref}
	}
	var files []string
	var vmDir string
	var fault types.BaseMethodFault
	simulator.Map.WithLock(vm, func() {
		if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
			fault = &types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: vm.Runtime.PowerState}
			return
		}
		vmxFile, f := t.resolve(vm.Config.Files.VmPathName)
		if f != nil {
			return
		}
		vmDir = filepath.Dir(vmxFile)
		base := strings.TrimSuffix(filepath.Base(vmxFile), ".vmx")
		files = append(files, vmxFile)
		entries, _ := ioutil.ReadDir(vmDir)
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() {
				continue
			}
			switch {
			case strings.HasPrefix(n, base+".") && n != base+".vmdk":
				files = append(files, filepath.Join(vmDir, n)) // .vmxf .vmsd .nvram .vmx~ .vmx.lck
			case strings.HasSuffix(n, ".log") && strings.HasPrefix(n, "vmware"):
				files = append(files, filepath.Join(vmDir, n))
			case strings.HasSuffix(n, ".vswp") || strings.HasSuffix(n, ".vmsn") || strings.HasSuffix(n, ".vmss") || strings.HasSuffix(n, ".vmem"):
				files = append(files, filepath.Join(vmDir, n))
			}
		}
		if vm.Config.Files.LogDirectory != "" {
			if logDir, f := t.resolve(vm.Config.Files.LogDirectory); f == nil && logDir != vmDir && logDir != t.DSDir {
				files = append(files, filepath.Join(logDir, "vmware.log"))
			}
		}
		for _, d := range vm.Config.Hardware.Device {
			disk, ok := d.(*types.VirtualDisk)
			if !ok {
				continue
			}
			b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
			if !ok {
				continue
			}
			file, f := t.resolve(b.GetVirtualDeviceFileBackingInfo().FileName)
			if f != nil {
				continue
			}
			files = append(files, file)
			if desc, err := readDescriptor(file); err == nil {
				files = append(files, extentFiles(file, desc)...)
			}
		}
	})
	if fault != nil {
		return fault
	}
	res, err := methods.UnregisterVM(t.ctx, t.client, &types.UnregisterVM{This: ref})
	if err != nil {
		return faultFromError(err)
	}
	_ = res
	for _, f := range files {
		_ = os.Remove(f)
	}
	if vmDir != "" && vmDir != t.DSDir {
		if entries, err := ioutil.ReadDir(vmDir); err == nil && len(entries) == 0 {
			_ = os.Remove(vmDir)
		}
	}
	t.forget(ref)
	return nil
}
