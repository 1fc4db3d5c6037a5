package esxishell

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"cesotestbed/vmx"

	"github.com/google/uuid"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// The .vmx -> vSphere mapping used by solo/registervm and vmsvc/reload. vcsim's
// RegisterVM_Task ignores the file, so the emulator reads it and reconfigures the VM to
// match: displayName, numvcpus, cpuid.coresPerSocket, memSize, guestOS, firmware,
// annotation, virtualHW.version, uuid.bios / vc.uuid (uuid.action = "create": fresh
// ones), disks (scsiX:Y / sataX:Y / nvmeX:Y .fileName, capacity from the descriptor's
// extents), their controllers, NICs (ethernetN.*), and every other key as extraConfig.

var (
	diskKeyRE = regexp.MustCompile(`^(scsi|sata|nvme|ide)(\d+):(\d+)\.`)
	ctlKeyRE  = regexp.MustCompile(`^(scsi|sata|nvme|ide)(\d+)\.`)
	nicKeyRE  = regexp.MustCompile(`^ethernet(\d+)\.`)
)

// consumedKeys are turned into ConfigSpec fields, not extraConfig.
var consumedKeys = map[string]bool{
	".encoding": true, "config.version": true, "virtualhw.version": true, "displayname": true,
	"guestos": true, "numvcpus": true, "cpuid.corespersocket": true, "memsize": true,
	"firmware": true, "annotation": true, "uuid.bios": true, "vc.uuid": true, "uuid.action": true,
}

type wantController struct {
	kind string // scsi, sata, nvme
	bus  int32
	dev  string // virtualDev for scsi
}

type wantDisk struct {
	kind     string
	bus      int32
	unit     int32
	dsPath   string
	capacity int64
	mode     string
	thin     bool
}

type wantNIC struct {
	index          int
	dev            string
	network        string
	addressType    string // generated, manual, assigned
	mac            string
	startConnected bool
}

// BuildSpec turns a parsed .vmx into a ConfigSpec for the VM cur (the freshly registered
// VM or the one being reloaded). vmxLocal is the .vmx's local path. nameOverride (the
// registervm name argument) wins over displayName when set.
func (s *Session) BuildSpec(f *vmx.File, vmxLocal string, cur *mo.VirtualMachine, paths *Paths, nameOverride string) (*types.VirtualMachineConfigSpec, error) {
	spec := &types.VirtualMachineConfigSpec{}
	get := func(k string) string { v, _ := f.Get(k); return strings.TrimSpace(v) }

	name := nameOverride
	if name == "" {
		name = get("displayName")
	}
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(vmxLocal), ".vmx")
	}
	if cur.Config == nil || cur.Config.Name != name {
		spec.Name = name
	}
	if v := get("virtualHW.version"); v != "" {
		if _, err := strconv.Atoi(v); err == nil {
			spec.Version = "vmx-" + v
		}
	}
	if v := get("guestOS"); v != "" {
		if id := GuestIDFromOS(v); id != "" {
			spec.GuestId = id
		}
	}
	if n, err := strconv.Atoi(get("numvcpus")); err == nil && n > 0 {
		spec.NumCPUs = int32(n)
	} else if get("numvcpus") == "" {
		spec.NumCPUs = 1
	}
	if n, err := strconv.Atoi(get("cpuid.coresPerSocket")); err == nil && n > 0 {
		spec.NumCoresPerSocket = int32(n)
	} else {
		spec.NumCoresPerSocket = 1
	}
	if n, err := strconv.Atoi(get("memSize")); err == nil && n > 0 {
		spec.MemoryMB = int64(n)
	}
	if v := strings.ToLower(get("firmware")); v == "efi" {
		spec.Firmware = "efi"
	} else {
		spec.Firmware = "bios"
	}
	if v, ok := f.Get("annotation"); ok || (cur.Config != nil && cur.Config.Annotation != "") {
		spec.Annotation = v
		if v == "" {
			spec.Annotation = " " // vcsim ignores "", a real host clears it; a blank is close enough
		}
	}
	if strings.EqualFold(get("uuid.action"), "create") {
		spec.Uuid = uuid.New().String()
		spec.InstanceUuid = uuid.New().String()
	} else {
		if u := vmx.ParseUUID(get("uuid.bios")); u != "" {
			spec.Uuid = u
		}
		if u := vmx.ParseUUID(get("vc.uuid")); u != "" {
			spec.InstanceUuid = u
		}
	}

	// Devices.
	vmxDir := filepath.Dir(vmxLocal)
	var ctls []wantController
	var disks []wantDisk
	nicIdx := map[int]bool{}
	seenCtl := map[string]bool{}
	addCtl := func(kind string, bus int32) {
		k := fmt.Sprintf("%s%d", kind, bus)
		if seenCtl[k] || kind == "ide" {
			return
		}
		seenCtl[k] = true
		ctls = append(ctls, wantController{kind: kind, bus: bus, dev: strings.ToLower(get(k + ".virtualDev"))})
	}
	for _, k := range f.Keys() {
		lk := strings.ToLower(k)
		if m := ctlKeyRE.FindStringSubmatch(lk); m != nil && strings.HasSuffix(lk, ".present") && isTrue(get(k)) {
			bus, _ := strconv.Atoi(m[2])
			addCtl(m[1], int32(bus))
		}
		if m := nicKeyRE.FindStringSubmatch(lk); m != nil {
			n, _ := strconv.Atoi(m[1])
			nicIdx[n] = true
		}
	}
	for _, k := range f.Keys() {
		lk := strings.ToLower(k)
		m := diskKeyRE.FindStringSubmatch(lk)
		if m == nil || !strings.HasSuffix(lk, ".filename") {
			continue
		}
		prefix := k[:len(k)-len(".fileName")]
		if p, ok := f.Get(prefix + ".present"); ok && !isTrue(p) {
			continue
		}
		dt := strings.ToLower(get(prefix + ".deviceType"))
		if strings.Contains(dt, "cdrom") || m[1] == "ide" {
			continue // CD-ROMs and IDE devices are not modelled
		}
		fileName := get(k)
		if !strings.HasSuffix(strings.ToLower(fileName), ".vmdk") {
			continue
		}
		bus, _ := strconv.Atoi(m[2])
		unit, _ := strconv.Atoi(m[3])
		dsPath, local, err := paths.ResolveRelative(fileName, vmxDir)
		if err != nil {
			return nil, &Fault{Fault: &types.FileNotFound{FileFault: types.FileFault{File: fileName}}}
		}
		if dsPath == "" {
			return nil, &Fault{Fault: &types.InvalidDatastorePath{DatastorePath: fileName}}
		}
		desc, err := ReadDescriptorFile(local)
		if err != nil {
			return nil, &Fault{Fault: &types.FileNotFound{FileFault: types.FileFault{File: dsPath}}}
		}
		thin, _ := desc.Get("ddb.thinProvisioned")
		mode := get(prefix + ".mode")
		if mode == "" {
			mode = string(types.VirtualDiskModePersistent)
		}
		addCtl(m[1], int32(bus))
		disks = append(disks, wantDisk{kind: m[1], bus: int32(bus), unit: int32(unit), dsPath: dsPath,
			capacity: desc.CapacityBytes(), mode: mode, thin: thin == "1"})
	}
	var nics []wantNIC
	idx := make([]int, 0, len(nicIdx))
	for n := range nicIdx {
		idx = append(idx, n)
	}
	sort.Ints(idx)
	for _, n := range idx {
		p := fmt.Sprintf("ethernet%d", n)
		if !isTrue(get(p + ".present")) {
			continue
		}
		w := wantNIC{index: n, dev: strings.ToLower(get(p + ".virtualDev")), network: get(p + ".networkName"), startConnected: true}
		if v := get(p + ".startConnected"); v != "" {
			w.startConnected = isTrue(v)
		}
		switch strings.ToLower(get(p + ".addressType")) {
		case "static":
			w.addressType = string(types.VirtualEthernetCardMacTypeManual)
			w.mac = strings.ToLower(get(p + ".address"))
		case "vpx":
			w.addressType = string(types.VirtualEthernetCardMacTypeAssigned)
			w.mac = strings.ToLower(get(p + ".generatedAddress"))
		default:
			w.addressType = string(types.VirtualEthernetCardMacTypeGenerated)
			w.mac = strings.ToLower(get(p + ".generatedAddress"))
		}
		if w.network == "" {
			w.network = "VM Network"
		}
		nics = append(nics, w)
	}
	changes, err := s.deviceChanges(cur, ctls, disks, nics)
	if err != nil {
		return nil, err
	}
	spec.DeviceChange = changes

	// extraConfig: every other key. Keys that disappeared from the file are sent with an
	// empty value (the API's way to remove a key).
	current := map[string]string{}
	if cur.Config != nil {
		for _, ov := range cur.Config.ExtraConfig {
			o := ov.GetOptionValue()
			current[strings.ToLower(o.Key)] = fmt.Sprint(o.Value)
		}
	}
	wanted := map[string]bool{}
	for _, k := range f.Keys() {
		lk := strings.ToLower(k)
		if consumedKeys[lk] || diskKeyRE.MatchString(lk) || ctlKeyRE.MatchString(lk) || nicKeyRE.MatchString(lk) {
			continue
		}
		v, _ := f.Get(k)
		wanted[lk] = true
		if old, ok := current[lk]; ok && old == v {
			continue
		}
		spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: v})
	}
	if cur.Config != nil {
		for _, ov := range cur.Config.ExtraConfig {
			o := ov.GetOptionValue()
			lk := strings.ToLower(o.Key)
			if wanted[lk] || lk == "govcsim" || strings.HasPrefix(lk, "run.") || current[lk] == "" {
				continue
			}
			current[lk] = ""
			spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: o.Key, Value: ""})
		}
	}
	return spec, nil
}

func isTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

func newController(w wantController) types.BaseVirtualDevice {
	switch w.kind {
	case "sata":
		c := &types.VirtualAHCIController{}
		c.BusNumber = w.bus
		return c
	case "nvme":
		c := &types.VirtualNVMEController{}
		c.BusNumber = w.bus
		return c
	}
	var c types.BaseVirtualSCSIController
	switch w.dev {
	case "pvscsi":
		c = &types.ParaVirtualSCSIController{}
	case "lsisas1068":
		c = &types.VirtualLsiLogicSASController{}
	case "buslogic":
		c = &types.VirtualBusLogicController{}
	default:
		c = &types.VirtualLsiLogicController{}
	}
	sc := c.GetVirtualSCSIController()
	sc.BusNumber = w.bus
	sc.SharedBus = types.VirtualSCSISharingNoSharing
	sc.ScsiCtlrUnitNumber = 7
	return c.(types.BaseVirtualDevice)
}

func controllerKind(d types.BaseVirtualDevice) (string, int32, bool) {
	switch c := d.(type) {
	case types.BaseVirtualSCSIController:
		return "scsi", c.GetVirtualSCSIController().BusNumber, true
	case types.BaseVirtualSATAController:
		return "sata", c.GetVirtualSATAController().BusNumber, true
	case *types.VirtualNVMEController:
		return "nvme", c.BusNumber, true
	}
	return "", 0, false
}

func newNIC(w wantNIC) types.BaseVirtualDevice {
	var d types.BaseVirtualEthernetCard
	switch w.dev {
	case "vmxnet3":
		d = &types.VirtualVmxnet3{}
	case "e1000e":
		d = &types.VirtualE1000e{}
	case "vlance":
		d = &types.VirtualPCNet32{}
	case "vmxnet", "vmxnet2":
		d = &types.VirtualVmxnet2{}
	default:
		d = &types.VirtualE1000{}
	}
	fillNIC(d.GetVirtualEthernetCard(), w)
	return d.(types.BaseVirtualDevice)
}

func fillNIC(e *types.VirtualEthernetCard, w wantNIC) {
	e.Backing = &types.VirtualEthernetCardNetworkBackingInfo{
		VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: w.network},
	}
	e.AddressType = w.addressType
	e.MacAddress = w.mac
	e.Connectable = &types.VirtualDeviceConnectInfo{StartConnected: w.startConnected, Connected: false, AllowGuestControl: true}
}

func nicMatches(d types.BaseVirtualDevice, w wantNIC) bool {
	if reflect.TypeOf(d) != reflect.TypeOf(newNIC(w)) {
		return false
	}
	e := d.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
	b, ok := e.Backing.(*types.VirtualEthernetCardNetworkBackingInfo)
	if !ok || b.DeviceName != w.network {
		return false
	}
	if w.mac != "" && !strings.EqualFold(e.MacAddress, w.mac) {
		return false
	}
	if w.addressType == string(types.VirtualEthernetCardMacTypeManual) && e.AddressType != w.addressType {
		return false
	}
	return true
}

// deviceChanges diffs the VM's controllers, disks and NICs against the wanted ones.
func (s *Session) deviceChanges(cur *mo.VirtualMachine, ctls []wantController, disks []wantDisk, nics []wantNIC) ([]types.BaseVirtualDeviceConfigSpec, error) {
	var existing []types.BaseVirtualDevice
	if cur.Config != nil {
		existing = cur.Config.Hardware.Device
	}
	var changes []types.BaseVirtualDeviceConfigSpec
	add := func(d types.BaseVirtualDevice) {
		changes = append(changes, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: d})
	}
	remove := func(d types.BaseVirtualDevice) {
		changes = append(changes, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationRemove, Device: d})
	}
	var pciKey int32
	for _, d := range existing {
		if _, ok := d.(*types.VirtualPCIController); ok {
			pciKey = d.GetVirtualDevice().Key
		}
	}

	// Controllers: keep the ones of the same kind, bus and type; replace the others.
	ctlKey := map[string]int32{} // "scsi0" -> key (negative for new ones)
	keep := map[int32]bool{}
	tmp := int32(-1000)
	for _, w := range ctls {
		id := fmt.Sprintf("%s%d", w.kind, w.bus)
		want := newController(w)
		for _, d := range existing {
			kind, bus, ok := controllerKind(d)
			if ok && kind == w.kind && bus == w.bus && reflect.TypeOf(d) == reflect.TypeOf(want) {
				ctlKey[id] = d.GetVirtualDevice().Key
				keep[d.GetVirtualDevice().Key] = true
			}
		}
		if _, ok := ctlKey[id]; !ok {
			tmp--
			want.GetVirtualDevice().Key = tmp
			want.GetVirtualDevice().ControllerKey = pciKey
			ctlKey[id] = tmp
		}
	}

	// Disks.
	usedDisk := map[int32]bool{}
	var diskAdds []types.BaseVirtualDevice
	var diskEdits []types.BaseVirtualDeviceConfigSpec
	for _, w := range disks {
		key := ctlKey[fmt.Sprintf("%s%d", w.kind, w.bus)]
		var found *types.VirtualDisk
		for _, d := range existing {
			if vd, ok := d.(*types.VirtualDisk); ok && vd.ControllerKey == key && vd.UnitNumber != nil && *vd.UnitNumber == w.unit {
				found = vd
			}
		}
		backing := &types.VirtualDiskFlatVer2BackingInfo{
			VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: w.dsPath},
			DiskMode:                     w.mode,
			ThinProvisioned:              types.NewBool(w.thin),
		}
		if found != nil {
			usedDisk[found.Key] = true
			fb, _ := found.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if fb != nil && fb.FileName == w.dsPath && found.CapacityInBytes == w.capacity && fb.DiskMode == w.mode {
				continue
			}
			d := *found
			if fb != nil {
				nb := *fb
				nb.FileName, nb.DiskMode, nb.ThinProvisioned = w.dsPath, w.mode, types.NewBool(w.thin)
				backing = &nb
			}
			d.Backing = backing
			d.CapacityInBytes = w.capacity
			d.CapacityInKB = w.capacity / 1024
			if d.DeviceInfo == nil {
				d.DeviceInfo = &types.Description{}
			}
			diskEdits = append(diskEdits, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: &d})
			continue
		}
		unit := w.unit
		vd := &types.VirtualDisk{CapacityInBytes: w.capacity, CapacityInKB: w.capacity / 1024}
		vd.Backing = backing
		vd.ControllerKey = key
		vd.UnitNumber = &unit
		tmp--
		vd.Key = tmp
		diskAdds = append(diskAdds, vd)
	}
	// Removals first (disks, then controllers), then additions.
	for _, d := range existing {
		if vd, ok := d.(*types.VirtualDisk); ok && !usedDisk[vd.Key] {
			remove(d)
		}
	}
	for _, d := range existing {
		if _, _, ok := controllerKind(d); ok && !keep[d.GetVirtualDevice().Key] {
			remove(d)
		}
	}

	// NICs, paired by position (ethernetN is the N-th NIC, as vmx.FromVM numbers them).
	var curNICs []types.BaseVirtualDevice
	for _, d := range existing {
		if _, ok := d.(types.BaseVirtualEthernetCard); ok {
			curNICs = append(curNICs, d)
		}
	}
	var nicAdds []types.BaseVirtualDevice
	for i, w := range nics {
		if i < len(curNICs) && nicMatches(curNICs[i], w) {
			continue
		}
		if i < len(curNICs) {
			remove(curNICs[i])
		}
		d := newNIC(w)
		tmp--
		d.GetVirtualDevice().Key = tmp
		d.GetVirtualDevice().ControllerKey = pciKey
		nicAdds = append(nicAdds, d)
	}
	for i := len(nics); i < len(curNICs); i++ {
		remove(curNICs[i])
	}

	// Controllers to add, then disks, then NICs.
	for _, w := range ctls {
		id := fmt.Sprintf("%s%d", w.kind, w.bus)
		if k := ctlKey[id]; k < 0 {
			c := newController(w)
			c.GetVirtualDevice().Key = k
			c.GetVirtualDevice().ControllerKey = pciKey
			add(c)
		}
	}
	changes = append(changes, diskEdits...)
	for _, d := range diskAdds {
		add(d)
	}
	for _, d := range nicAdds {
		add(d)
	}
	return changes, nil
}

// GuestIDFromOS maps a .vmx guestOS ("ubuntu-64", "otherlinux-64", "windows9srv-64")
// to a vSphere guestId that vcsim accepts ("ubuntu64Guest", "otherLinux64Guest"); ""
// when nothing matches.
func GuestIDFromOS(os string) string {
	os = strings.TrimSpace(os)
	for _, id := range guestIDs {
		if string(id) == os {
			return os
		}
	}
	want := strings.ToLower(os)
	for _, id := range guestIDs {
		if strings.ToLower(vmx.GuestOSFromID(string(id))) == want {
			return string(id)
		}
	}
	cand := strings.ToLower(vmx.GuestIDFromOS(os))
	for _, id := range guestIDs {
		if strings.ToLower(string(id)) == cand {
			return string(id)
		}
	}
	return ""
}

// ensureFile creates an empty file when missing; it reports whether it did.
func ensureFile(name string) bool {
	if _, err := os.Stat(name); err == nil {
		return false
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return false
	}
	_ = f.Close()
	return true
}
