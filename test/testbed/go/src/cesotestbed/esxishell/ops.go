package esxishell

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"cesotestbed/vmx"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// VMObject wraps a vmid as a govmomi VirtualMachine object.
func (s *Session) VMObject(vmid string) *object.VirtualMachine {
	return object.NewVirtualMachine(s.Client, VMRef(vmid))
}

// Wait waits for a task and returns its fault, if any, as a *Fault.
func (s *Session) Wait(t *object.Task, err error) (types.AnyType, error) {
	if err != nil {
		if f := AsFault(err); f != nil {
			return nil, f
		}
		return nil, err
	}
	info, err := t.WaitForResult(s.Ctx, nil)
	if err != nil {
		if f := AsFault(err); f != nil {
			return nil, f
		}
		return nil, err
	}
	return info.Result, nil
}

// RegisterVM implements solo/registervm and returns the new VM's vmid (its moref value).
//
// A real host reads the .vmx when it registers it. The test bed's simulator does so in its
// RegisterVM_Task; plain vcsim ignores the file (and wants <name>.nvram and vmware.log next
// to it). So: register through the API; when the simulator asked for those files, make
// placeholders and retry; when the registered VM does not reflect the .vmx, apply the
// .vmx here (BuildSpec). Either way the VM the API shows is the one the .vmx describes.
func (s *Session) RegisterVM(arg, name, poolArg string) (string, error) {
	paths, err := s.Paths()
	if err != nil {
		return "", err
	}
	dsPath, local, err := paths.Resolve(arg)
	if err != nil || dsPath == "" {
		return "", &Fault{Fault: &types.InvalidDatastorePath{DatastorePath: arg}}
	}
	data, err := os.ReadFile(local)
	if err != nil {
		return "", &Fault{Fault: &types.NotFound{}}
	}
	f := vmx.Parse(data)
	inv, err := s.Inventory()
	if err != nil {
		return "", err
	}
	pool := inv.Pool
	if poolArg != "" {
		fd := find.NewFinder(s.Client, false)
		fd.SetDatacenter(inv.Datacenter)
		p, err := fd.ResourcePool(s.Ctx, poolArg)
		if err != nil {
			if ref := (types.ManagedObjectReference{Type: "ResourcePool", Value: poolArg}); s.exists(ref) {
				p = object.NewResourcePool(s.Client, ref)
			} else {
				return "", &Fault{Fault: &types.InvalidArgument{InvalidProperty: "pool"}}
			}
		}
		pool = p
	}

	res, err := s.Wait(inv.VMFolder.RegisterVM(s.Ctx, dsPath, name, false, pool, nil))
	if f0 := AsFault(err); f0 != nil {
		if _, nf := f0.Fault.(*types.NotFound); nf {
			// plain vcsim: it opens <dir>/<name>.nvram and <dir>/vmware.log.
			vname := name
			if vname == "" {
				_, rel, _ := SplitDatastorePath(dsPath)
				vname = path.Dir(rel)
			}
			dir := filepath.Dir(local)
			nvram := filepath.Join(dir, path.Base(vname)+".nvram")
			madeNvram := ensureFile(nvram)
			madeLog := ensureFile(filepath.Join(dir, "vmware.log"))
			if madeNvram || madeLog {
				res, err = s.Wait(inv.VMFolder.RegisterVM(s.Ctx, dsPath, name, false, pool, nil))
			}
			if madeNvram {
				_ = os.Remove(nvram)
			}
		}
	}
	if err != nil {
		return "", err
	}
	ref, ok := res.(types.ManagedObjectReference)
	if !ok {
		return "", fmt.Errorf("registervm: unexpected task result %T", res)
	}
	cur, err := s.VM(ref.Value, "config", "name")
	if err != nil {
		return "", err
	}
	if !vmxApplied(cur, f) {
		if err := s.applyVMX(cur, f, local, paths, name); err != nil {
			_ = s.VMObject(ref.Value).Unregister(s.Ctx)
			return "", err
		}
	}
	return ref.Value, nil
}

// vmxApplied tells whether the simulator already made the VM what the .vmx says (CPU,
// memory, number of disks, guestinfo keys).
func vmxApplied(vm *mo.VirtualMachine, f *vmx.File) bool {
	if vm.Config == nil {
		return false
	}
	get := func(k string) string { v, _ := f.Get(k); return strings.TrimSpace(v) }
	cpus := int32(1)
	if n, err := strconv.Atoi(get("numvcpus")); err == nil && n > 0 {
		cpus = int32(n)
	}
	if vm.Config.Hardware.NumCPU != cpus {
		return false
	}
	if n, err := strconv.Atoi(get("memSize")); err == nil && n > 0 && vm.Config.Hardware.MemoryMB != int32(n) {
		return false
	}
	wantDisks := 0
	for _, k := range f.Keys() {
		lk := strings.ToLower(k)
		if m := diskKeyRE.FindStringSubmatch(lk); m != nil && m[1] != "ide" && strings.HasSuffix(lk, ".filename") &&
			strings.HasSuffix(strings.ToLower(get(k)), ".vmdk") {
			if p, ok := f.Get(k[:len(k)-len(".fileName")] + ".present"); !ok || isTrue(p) {
				wantDisks++
			}
		}
	}
	disks := 0
	for _, d := range vm.Config.Hardware.Device {
		if _, ok := d.(*types.VirtualDisk); ok {
			disks++
		}
	}
	if disks != wantDisks {
		return false
	}
	have := map[string]bool{}
	for _, ov := range vm.Config.ExtraConfig {
		have[strings.ToLower(ov.GetOptionValue().Key)] = true
	}
	for _, k := range f.Keys() {
		if strings.HasPrefix(strings.ToLower(k), "guestinfo.") && !have[strings.ToLower(k)] {
			return false
		}
	}
	return true
}

func (s *Session) exists(ref types.ManagedObjectReference) bool {
	var o mo.ManagedEntity
	return s.propertyOne(ref, []string{"name"}, &o) == nil
}

func (s *Session) applyVMX(cur *mo.VirtualMachine, f *vmx.File, local string, paths *Paths, name string) error {
	spec, err := s.BuildSpec(f, local, cur, paths, name)
	if err != nil {
		return err
	}
	if err := s.checkNetworks(spec); err != nil {
		return err
	}
	_, err = s.Wait(s.VMObject(cur.Self.Value).Reconfigure(s.Ctx, *spec))
	return err
}

// checkNetworks refuses NICs on port groups the host does not have (vcsim would crash).
func (s *Session) checkNetworks(spec *types.VirtualMachineConfigSpec) error {
	var names []string
	for _, c := range spec.DeviceChange {
		cs := c.GetVirtualDeviceConfigSpec()
		if cs.Operation == types.VirtualDeviceConfigSpecOperationRemove {
			continue
		}
		if e, ok := cs.Device.(types.BaseVirtualEthernetCard); ok {
			if b, ok := e.GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardNetworkBackingInfo); ok {
				names = append(names, b.DeviceName)
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	inv, err := s.Inventory()
	if err != nil {
		return err
	}
	fd := find.NewFinder(s.Client, false)
	fd.SetDatacenter(inv.Datacenter)
	for _, n := range names {
		if _, err := fd.Network(s.Ctx, n); err != nil {
			return &Fault{Fault: &types.NotFound{}, Msg: fmt.Sprintf("Network '%s' not found", n)}
		}
	}
	return nil
}

// Reload implements vmsvc/reload: the host re-reads the .vmx (VirtualMachine.Reload,
// which the test bed's simulator implements); against plain vcsim, which lacks it, the
// .vmx is applied here.
func (s *Session) Reload(vmid string) error {
	vm, err := s.VM(vmid, "config", "name", "runtime.powerState")
	if err != nil {
		return err
	}
	_, err = methods.Reload(s.Ctx, s.Client, &types.Reload{This: vm.Self})
	if err == nil {
		return nil
	}
	if f := AsFault(err); f != nil {
		switch f.Fault.(type) {
		case *types.MethodNotFound, *types.NotImplemented, *types.NotSupported:
		default:
			return f
		}
	}
	if vm.Config == nil {
		return err
	}
	paths, perr := s.Paths()
	if perr != nil {
		return perr
	}
	local, perr := paths.Local(vm.Config.Files.VmPathName)
	if perr != nil {
		return perr
	}
	data, rerr := os.ReadFile(local)
	if rerr != nil {
		return &Fault{Fault: &types.NotFound{}}
	}
	return s.applyVMX(vm, vmx.Parse(data), local, paths, "")
}

// Destroy implements vmsvc/destroy: unregister and delete every file of the VM,
// including disks kept outside its folder (the test bed's simulator does it; plain vcsim
// leaves disks outside the VM's folder, removed here).
func (s *Session) Destroy(vmid string) error {
	vm, err := s.VM(vmid, "config", "name", "runtime.powerState")
	if err != nil {
		return err
	}
	var files []string
	var dirs []string
	protected := map[string]bool{s.Config.VolumesRoot: true, "/": true, "": true}
	if paths, err := s.Paths(); err == nil && vm.Config != nil {
		for _, d := range paths.Datastores {
			protected[d.Dir] = true
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
			local, err := paths.Local(fb.GetVirtualDeviceFileBackingInfo().FileName)
			if err != nil {
				continue
			}
			files = append(files, DiskFiles(local)...)
		}
		if local, err := paths.Local(vm.Config.Files.VmPathName); err == nil {
			dirs = append(dirs, filepath.Dir(local))
		}
	}
	if _, err := s.Wait(s.VMObject(vmid).Destroy(s.Ctx)); err != nil {
		return err
	}
	for _, f := range files {
		_ = os.Remove(f)
	}
	for _, d := range dirs {
		if !protected[d] {
			_ = os.Remove(d) // only when empty: files that are not the VM's stay, as on a host
		}
	}
	return nil
}

// DiskFiles lists a disk's descriptor and extent files (local paths).
func DiskFiles(descriptor string) []string {
	out := []string{descriptor}
	if d, err := ReadDescriptorFile(descriptor); err == nil {
		for _, e := range d.Extents {
			if e.File != "" {
				out = append(out, filepath.Join(filepath.Dir(descriptor), e.File))
			}
		}
	}
	flat := filepath.Join(filepath.Dir(descriptor), FlatName(descriptor))
	for _, o := range out {
		if o == flat {
			return out
		}
	}
	if _, err := os.Stat(flat); err == nil {
		out = append(out, flat)
	}
	return out
}
