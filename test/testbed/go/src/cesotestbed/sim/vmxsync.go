package sim

import (
	"bytes"
	"fmt"
	"io/ioutil"
	"log"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"cesotestbed/vmx"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func faultFromError(err error) types.BaseMethodFault {
	if soap.IsSoapFault(err) {
		if f, ok := soap.ToSoapFault(err).VimFault().(types.BaseMethodFault); ok {
			return f
		}
	}
	if soap.IsVimFault(err) {
		return soap.ToVimFault(err)
	}
	if te, ok := err.(task.Error); ok {
		if f := te.Fault(); f != nil {
			return f
		}
	}
	return &types.SystemError{Reason: err.Error()}
}

// afterChange brings the VMs' side effects in line with their configuration: extraConfig as a
// real host keeps it, disk files, what the guest reports, and the .vmx on disk.
func (t *Testbed) afterChange(refs []types.ManagedObjectReference) {
	seen := map[types.ManagedObjectReference]bool{}
	for _, ref := range refs {
		if seen[ref] {
			continue
		}
		seen[ref] = true
		vm := vmByRef(ref)
		if vm == nil {
			continue
		}
		var rendered *vmx.File
		var vmxFile string
		t.vmxMu.Lock()
		simulator.Map.WithLock(vm, func() {
			if vm.Config == nil {
				return
			}
			t.fixConfig(vm)
			t.syncDiskFiles(vm)
			t.syncGuest(vm)
			f, fault := t.resolve(vm.Config.Files.VmPathName)
			if fault != nil || path.Ext(f) != ".vmx" {
				return
			}
			vmxFile = f
			rendered = vmx.FromVM(&vm.VirtualMachine)
			t.dropGuestKeys(ref, rendered)
		})
		if rendered != nil {
			t.writeVMX(ref, vmxFile, rendered)
		}
		t.vmxMu.Unlock()
	}
	t.applyDatastoreSpace()
}

// fixConfig corrects vcsim's bookkeeping. Caller holds the VM's lock.
//   - extraConfig: vcsim appends every key of every ReconfigVM; a real host replaces the value
//     of an existing key and removes a key set to "". vcsim also adds "govcsim".
//   - Rename_Task renames the entity but not config.name.
func (t *Testbed) fixConfig(vm *simulator.VirtualMachine) {
	var out []types.BaseOptionValue
	index := map[string]int{}
	changed := false
	for _, ov := range vm.Config.ExtraConfig {
		o := ov.GetOptionValue()
		if o.Key == "govcsim" {
			changed = true
			continue
		}
		if i, ok := index[o.Key]; ok {
			out[i] = ov
			changed = true
			continue
		}
		index[o.Key] = len(out)
		out = append(out, ov)
	}
	final := out[:0]
	for _, ov := range out {
		o := ov.GetOptionValue()
		if o.Value == nil || fmt.Sprint(o.Value) == "" {
			changed = true
			continue
		}
		final = append(final, ov)
	}
	if changed {
		simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.extraConfig", Val: append([]types.BaseOptionValue(nil), final...)}})
	}
	if vm.Name != "" && vm.Config.Name != vm.Name {
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "config.name", Val: vm.Name},
			{Name: "summary.config.name", Val: vm.Name},
		})
	}
}

// writeVMX merges the rendered configuration into the .vmx on disk. Keys the renderer owns
// (typed properties) and keys it wrote last time but no longer renders are replaced or removed;
// any other key (written by someone else, e.g. the SSH emulator) is kept.
func (t *Testbed) writeVMX(ref types.ManagedObjectReference, file string, rendered *vmx.File) {
	existing, err := ioutil.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return
	}
	if os.IsNotExist(err) && !exists(filepath.Dir(file)) {
		return // the folder is gone (destroyed)
	}
	t.mu.Lock()
	prev := t.rendered[ref.Value]
	t.mu.Unlock()
	out := rendered
	if len(bytes.TrimSpace(existing)) > 0 {
		out = vmx.Parse(existing)
		for _, k := range out.Keys() {
			if _, ok := rendered.Get(k); ok {
				continue
			}
			if vmx.IsHardwareKey(k) || prev[strings.ToLower(k)] {
				out.Delete(k)
			}
		}
		for _, k := range rendered.Keys() {
			v, _ := rendered.Get(k)
			out.Set(k, v)
		}
	}
	keys := map[string]bool{}
	for _, k := range rendered.Keys() {
		keys[strings.ToLower(k)] = true
	}
	t.mu.Lock()
	t.rendered[ref.Value] = keys
	t.mu.Unlock()
	data := out.Bytes()
	if bytes.Equal(data, existing) {
		return
	}
	if err := writeFileAtomic(file, data); err != nil {
		log.Printf("writing %s: %v", file, err)
	}
}

// forget drops what the test bed remembers about a VM that left the inventory.
func (t *Testbed) forget(ref types.ManagedObjectReference) {
	t.mu.Lock()
	delete(t.rendered, ref.Value)
	delete(t.boots, ref.Value)
	delete(t.guestKeys, ref.Value)
	t.mu.Unlock()
}

// ---- placeholders: vcsim insists on "<disk>-flat.vmdk" for every disk it attaches ----

// placeholdFlats creates an empty "-flat.vmdk" next to attached disks that have none (child /
// seSparse disks) so vcsim accepts them, and returns a cleanup func that removes them again.
// Disks being destroyed have their real extents removed by the cleanup.
func (t *Testbed) placeholdFlats(changes []types.BaseVirtualDeviceConfigSpec) func() {
	var created, extents []string
	for _, c := range changes {
		spec := c.GetVirtualDeviceConfigSpec()
		disk, ok := spec.Device.(*types.VirtualDisk)
		if !ok {
			continue
		}
		b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
		if !ok {
			continue
		}
		file, fault := t.resolve(b.GetVirtualDeviceFileBackingInfo().FileName)
		if fault != nil || !strings.HasSuffix(file, ".vmdk") {
			continue
		}
		if spec.FileOperation == types.VirtualDeviceConfigSpecFileOperationCreate || !exists(file) {
			continue
		}
		if spec.FileOperation == types.VirtualDeviceConfigSpecFileOperationDestroy {
			if d, err := readDescriptor(file); err == nil {
				extents = append(extents, extentFiles(file, d)...)
			}
		}
		fl := flatName(file)
		if !exists(fl) {
			if f, err := os.Create(fl); err == nil {
				_ = f.Close()
				created = append(created, fl)
			}
		}
	}
	return func() {
		for _, f := range created {
			if st, err := os.Stat(f); err == nil && st.Size() == 0 {
				_ = os.Remove(f)
			}
		}
		for _, f := range extents {
			_ = os.Remove(f)
		}
	}
}

// ---- RegisterVM_Task / Reload: read the .vmx as a real host does ----

var scsiTypes = map[string]func(bus int32, key int32) types.BaseVirtualDevice{
	"pvscsi": func(bus, key int32) types.BaseVirtualDevice {
		return &types.ParaVirtualSCSIController{VirtualSCSIController: scsiController(bus, key)}
	},
	"lsilogic": func(bus, key int32) types.BaseVirtualDevice {
		return &types.VirtualLsiLogicController{VirtualSCSIController: scsiController(bus, key)}
	},
	"lsisas1068": func(bus, key int32) types.BaseVirtualDevice {
		return &types.VirtualLsiLogicSASController{VirtualSCSIController: scsiController(bus, key)}
	},
	"buslogic": func(bus, key int32) types.BaseVirtualDevice {
		return &types.VirtualBusLogicController{VirtualSCSIController: scsiController(bus, key)}
	},
}

func scsiController(bus, key int32) types.VirtualSCSIController {
	return types.VirtualSCSIController{
		VirtualController:  types.VirtualController{VirtualDevice: types.VirtualDevice{Key: key}, BusNumber: bus},
		SharedBus:          types.VirtualSCSISharingNoSharing,
		ScsiCtlrUnitNumber: 7,
	}
}

func vmxBool(f *vmx.File, key string) bool {
	v, _ := f.Get(key)
	return strings.EqualFold(v, "TRUE")
}

// vmxFileToDS turns a .vmx fileName into a datastore path.
func (t *Testbed) vmxFileToDS(name, vmDirDS string) string {
	switch {
	case strings.HasPrefix(name, "/vmfs/volumes/"):
		parts := strings.SplitN(strings.TrimPrefix(name, "/vmfs/volumes/"), "/", 2)
		if len(parts) == 2 {
			return "[" + parts[0] + "] " + parts[1]
		}
	case strings.HasPrefix(name, t.DSDir+"/"):
		return t.dsPath(name)
	case strings.HasPrefix(name, "/"):
		return name
	}
	return vmDirDS + "/" + name
}

// specFromVMX builds the configuration a real host would load from a .vmx.
func (t *Testbed) specFromVMX(f *vmx.File, vmxDS string, setName bool) types.VirtualMachineConfigSpec {
	spec := types.VirtualMachineConfigSpec{}
	if v, ok := f.Get("displayName"); ok && setName && v != "" {
		spec.Name = v
	}
	if v, ok := f.Get("guestOS"); ok {
		id := vmx.GuestIDFromOS(v)
		valid := false
		for _, g := range simulator.GuestID {
			if string(g) == id {
				valid = true
			}
		}
		if !valid {
			id = "otherGuest"
		}
		spec.GuestId = id
	}
	if v, ok := f.Get("numvcpus"); ok {
		if n, err := strconv.Atoi(v); err == nil {
			spec.NumCPUs = int32(n)
		}
	}
	if v, ok := f.Get("cpuid.coresPerSocket"); ok {
		if n, err := strconv.Atoi(v); err == nil {
			spec.NumCoresPerSocket = int32(n)
		}
	}
	if v, ok := f.Get("memSize"); ok {
		if n, err := strconv.Atoi(v); err == nil {
			spec.MemoryMB = int64(n)
		}
	}
	if v, ok := f.Get("firmware"); ok && v != "" {
		spec.Firmware = v
	} else {
		spec.Firmware = "bios"
	}
	if v, ok := f.Get("annotation"); ok {
		spec.Annotation = v
	}
	if v, ok := f.Get("virtualHW.version"); ok {
		if _, err := strconv.Atoi(v); err == nil {
			spec.Version = "vmx-" + v
		}
	}
	action, _ := f.Get("uuid.action")
	if v, ok := f.Get("uuid.bios"); ok && action != "create" {
		if u := vmx.ParseUUID(v); u != "" {
			spec.Uuid = u
		}
	}
	if v, ok := f.Get("vc.uuid"); ok && action != "create" {
		if u := vmx.ParseUUID(v); u != "" {
			spec.InstanceUuid = u
		}
	}
	for _, k := range f.Keys() {
		lk := strings.ToLower(k)
		if vmx.IsHardwareKey(k) || lk == ".encoding" || strings.HasPrefix(lk, "uuid.") {
			continue
		}
		v, _ := f.Get(k)
		spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: v})
	}

	_, vmRel, _ := vmx.DatastorePath(vmxDS)
	vmDirDS := "[" + datastoreName + "] " + path.Dir(vmRel)
	add := func(d types.BaseVirtualDevice, fop types.VirtualDeviceConfigSpecFileOperation) {
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationAdd, FileOperation: fop, Device: d,
		})
	}
	ctlKeys := map[string]int32{}
	for bus := int32(0); bus < 4; bus++ {
		n := fmt.Sprintf("scsi%d", bus)
		if vmxBool(f, n+".present") {
			dev, _ := f.Get(n + ".virtualDev")
			mk, ok := scsiTypes[strings.ToLower(dev)]
			if !ok {
				mk = scsiTypes["lsilogic"]
			}
			key := 1000 + bus
			add(mk(bus, key), "")
			ctlKeys[n] = key
		}
		n = fmt.Sprintf("sata%d", bus)
		if vmxBool(f, n+".present") {
			key := 15000 + bus
			add(&types.VirtualAHCIController{VirtualSATAController: types.VirtualSATAController{
				VirtualController: types.VirtualController{VirtualDevice: types.VirtualDevice{Key: key}, BusNumber: bus}}}, "")
			ctlKeys[n] = key
		}
		n = fmt.Sprintf("nvme%d", bus)
		if vmxBool(f, n+".present") {
			key := 31000 + bus
			add(&types.VirtualNVMEController{VirtualController: types.VirtualController{VirtualDevice: types.VirtualDevice{Key: key}, BusNumber: bus}}, "")
			ctlKeys[n] = key
		}
	}
	diskKey := int32(2000)
	for _, ctl := range []string{"scsi", "sata", "nvme"} {
		for bus := int32(0); bus < 4; bus++ {
			ck, ok := ctlKeys[fmt.Sprintf("%s%d", ctl, bus)]
			if !ok {
				continue
			}
			for unit := int32(0); unit < 65; unit++ {
				n := fmt.Sprintf("%s%d:%d", ctl, bus, unit)
				name, ok := f.Get(n + ".fileName")
				if !ok || !vmxBool(f, n+".present") || !strings.HasSuffix(strings.ToLower(name), ".vmdk") {
					continue
				}
				dsFile := t.vmxFileToDS(name, vmDirDS)
				backing := &types.VirtualDiskFlatVer2BackingInfo{
					VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: dsFile},
					DiskMode:                     string(types.VirtualDiskModePersistent),
					ThinProvisioned:              types.NewBool(false),
				}
				if m, ok := f.Get(n + ".mode"); ok && m != "" {
					backing.DiskMode = m
				}
				var capKB int64
				if file, fault := t.resolve(dsFile); fault == nil {
					if d, err := readDescriptor(file); err == nil {
						capKB = d.sectors() / 2
						backing.ThinProvisioned = types.NewBool(d.thin())
						if hint := d.kv["parentFileNameHint"]; hint != "" {
							backing.Parent = &types.VirtualDiskFlatVer2BackingInfo{
								VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: t.vmxFileToDS(hint, path.Dir(dsFile))},
								DiskMode:                     string(types.VirtualDiskModePersistent),
							}
						}
					}
				}
				u := unit
				add(&types.VirtualDisk{
					VirtualDevice: types.VirtualDevice{Key: diskKey, ControllerKey: ck, UnitNumber: &u, Backing: backing},
					CapacityInKB:  capKB, CapacityInBytes: capKB * 1024,
				}, "")
				diskKey++
			}
		}
	}
	for i := 0; i < 10; i++ {
		n := fmt.Sprintf("ethernet%d", i)
		if !vmxBool(f, n+".present") {
			continue
		}
		netName, _ := f.Get(n + ".networkName")
		if netName == "" || !t.networkExists(netName) {
			netName = networkName
		}
		card := types.VirtualEthernetCard{
			VirtualDevice: types.VirtualDevice{
				Key: int32(4000 + i),
				Backing: &types.VirtualEthernetCardNetworkBackingInfo{
					VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: netName},
				},
				Connectable: &types.VirtualDeviceConnectInfo{StartConnected: !strings.EqualFold(get(f, n+".startConnected"), "FALSE"), AllowGuestControl: true},
			},
			AddressType: string(types.VirtualEthernetCardMacTypeGenerated),
		}
		switch strings.ToLower(get(f, n+".addressType")) {
		case "static":
			card.AddressType = string(types.VirtualEthernetCardMacTypeManual)
			card.MacAddress = get(f, n+".address")
		default:
			card.MacAddress = get(f, n+".generatedAddress")
		}
		var dev types.BaseVirtualDevice
		switch strings.ToLower(get(f, n+".virtualDev")) {
		case "e1000":
			dev = &types.VirtualE1000{VirtualEthernetCard: card}
		case "e1000e":
			dev = &types.VirtualE1000e{VirtualEthernetCard: card}
		case "vlance":
			dev = &types.VirtualPCNet32{VirtualEthernetCard: card}
		default:
			dev = &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: card}}
		}
		add(dev, "")
	}
	return spec
}

func get(f *vmx.File, key string) string {
	v, _ := f.Get(key)
	return v
}

func (t *Testbed) networkExists(name string) bool {
	for _, kind := range []string{"Network", "DistributedVirtualPortgroup"} {
		for _, e := range simulator.Map.All(kind) {
			if e.Entity().Name == name {
				return true
			}
		}
	}
	return false
}

// importVMX applies a registered VM's .vmx to the VM vcsim created for it (vcsim registers a
// VM with default settings and no disks or NICs). setName: RegisterVM_Task had no name, so
// the name comes from displayName as on a real host.
func (t *Testbed) importVMX(ref types.ManagedObjectReference, setName bool, replaceDevices bool) error {
	vm := vmByRef(ref)
	if vm == nil {
		return fmt.Errorf("no VM %s", ref.Value)
	}
	var vmxDS string
	var existing []types.BaseVirtualDevice
	simulator.Map.WithLock(vm, func() {
		vmxDS = vm.Config.Files.VmPathName
		for _, d := range vm.Config.Hardware.Device {
			switch d.(type) {
			case *types.VirtualDisk, types.BaseVirtualEthernetCard, types.BaseVirtualSCSIController,
				types.BaseVirtualSATAController, *types.VirtualNVMEController:
				existing = append(existing, d)
			}
		}
	})
	file, fault := t.resolve(vmxDS)
	if fault != nil {
		return fmt.Errorf("%s: %s", vmxDS, faultName(fault))
	}
	data, err := ioutil.ReadFile(file)
	if err != nil {
		return err
	}
	f := vmx.Parse(data)
	spec := t.specFromVMX(f, vmxDS, setName)
	if replaceDevices {
		var removes []types.BaseVirtualDeviceConfigSpec
		for _, d := range existing {
			removes = append(removes, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationRemove, Device: d})
		}
		// extraConfig keys missing from the file are removed
		simulator.Map.WithLock(vm, func() {
			for _, ov := range vm.Config.ExtraConfig {
				k := ov.GetOptionValue().Key
				if t.isGuestKey(ref, k, ov.GetOptionValue().Value) {
					continue // runtime state set by the guest, never in the file
				}
				if _, ok := f.Get(k); !ok {
					spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: ""})
				}
			}
		})
		if len(removes) > 0 {
			if err := t.reconfigure(ref, types.VirtualMachineConfigSpec{DeviceChange: removes}); err != nil {
				return err
			}
		}
	}
	cleanup := t.placeholdFlats(spec.DeviceChange)
	err = t.reconfigure(ref, spec)
	cleanup()
	// what the file said is what the host now has: remember its keys as ours
	keys := map[string]bool{}
	for _, k := range f.Keys() {
		keys[strings.ToLower(k)] = true
	}
	t.mu.Lock()
	t.rendered[ref.Value] = keys
	t.mu.Unlock()
	return err
}

// registerNeeds makes the files vcsim wants before it registers a VM (an .nvram named after the
// VM and a vmware.log): a real host needs only the .vmx. It returns a cleanup func.
func (t *Testbed) registerNeeds(req *types.RegisterVM_Task) func() {
	file, fault := t.resolve(req.Path)
	if fault != nil || !exists(file) {
		return func() {}
	}
	name := req.Name
	if name == "" {
		_, rel, _ := vmx.DatastorePath(req.Path)
		name = path.Dir(rel)
	}
	var created []string
	for _, f := range []string{filepath.Join(filepath.Dir(file), name+".nvram"), filepath.Join(filepath.Dir(file), "vmware.log")} {
		if !exists(f) {
			if fh, err := os.Create(f); err == nil {
				_ = fh.Close()
				created = append(created, f)
			}
		}
	}
	return func() {
		for _, f := range created {
			_ = os.Remove(f)
		}
	}
}
