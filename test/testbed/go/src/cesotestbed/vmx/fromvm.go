package vmx

import (
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// FormatUUID turns "421d3b5c-8e8e-9d1a-4b2e-957c2c063d1b" into the .vmx form
// "42 1d 3b 5c 8e 8e 9d 1a-4b 2e 95 7c 2c 06 3d 1b". Anything else is returned unchanged.
func FormatUUID(u string) string {
	h := strings.ReplaceAll(u, "-", "")
	if len(h) != 32 {
		return u
	}
	if _, err := hex.DecodeString(h); err != nil {
		return u
	}
	h = strings.ToLower(h)
	var b strings.Builder
	for i := 0; i < 16; i++ {
		if i == 8 {
			b.WriteByte('-')
		} else if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(h[2*i : 2*i+2])
	}
	return b.String()
}

// ParseUUID turns the .vmx form back into "8-4-4-4-12"; "" when it is not a UUID.
func ParseUUID(v string) string {
	h := strings.NewReplacer(" ", "", "-", "").Replace(v)
	if len(h) != 32 {
		return ""
	}
	if _, err := hex.DecodeString(h); err != nil {
		return ""
	}
	h = strings.ToLower(h)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// SCSIVirtualDev is the .vmx virtualDev of a SCSI controller.
func SCSIVirtualDev(d types.BaseVirtualDevice) string {
	switch d.(type) {
	case *types.ParaVirtualSCSIController:
		return "pvscsi"
	case *types.VirtualBusLogicController:
		return "buslogic"
	case *types.VirtualLsiLogicSASController:
		return "lsisas1068"
	default:
		return "lsilogic"
	}
}

// EthernetVirtualDev is the .vmx virtualDev of a NIC.
func EthernetVirtualDev(d types.BaseVirtualDevice) string {
	switch d.(type) {
	case *types.VirtualE1000:
		return "e1000"
	case *types.VirtualE1000e:
		return "e1000e"
	case *types.VirtualPCNet32:
		return "vlance"
	case *types.VirtualVmxnet2, *types.VirtualVmxnet:
		return "vmxnet"
	default:
		return "vmxnet3"
	}
}

// DatastorePath splits "[ds] a/b.vmx" into ("ds", "a/b.vmx"); ok=false if not of that form.
func DatastorePath(p string) (ds, rel string, ok bool) {
	p = strings.TrimSpace(p)
	if !strings.HasPrefix(p, "[") {
		return "", p, false
	}
	i := strings.Index(p, "]")
	if i < 0 {
		return "", p, false
	}
	return p[1:i], strings.TrimLeft(p[i+1:], " "), true
}

// FromVM renders a realistic .vmx from a VM's configuration. Disk file names in the
// VM's own folder are written relative ("web1.vmdk"), others as datastore paths
// ("/vmfs/volumes/ds/dir/x.vmdk", as ESXi writes them). Every extraConfig key is
// written after the hardware keys.
func FromVM(vm *mo.VirtualMachine) *File {
	f := New()
	f.Set(".encoding", "UTF-8")
	f.Set("config.version", "8")
	if vm == nil || vm.Config == nil {
		if vm != nil && vm.Name != "" {
			f.Set("displayName", vm.Name)
		}
		return f
	}
	c := vm.Config
	hw := strings.TrimPrefix(c.Version, "vmx-")
	if hw == "" {
		hw = "13"
	}
	f.Set("virtualHW.version", hw)
	vmDS, vmRel, _ := DatastorePath(c.Files.VmPathName)
	vmDir := path.Dir(vmRel)
	base := strings.TrimSuffix(path.Base(vmRel), ".vmx")
	if base == "" || base == "." {
		base = c.Name
	}
	f.Set("nvram", base+".nvram")
	f.Set("pciBridge0.present", "TRUE")
	f.Set("svga.present", "TRUE")
	f.Set("displayName", c.Name)
	if c.GuestId != "" {
		f.Set("guestOS", GuestOSFromID(c.GuestId))
	}
	if c.Firmware != "" && c.Firmware != "bios" {
		f.Set("firmware", c.Firmware)
	}
	if c.Hardware.NumCPU > 0 {
		f.Set("numvcpus", strconv.Itoa(int(c.Hardware.NumCPU)))
	}
	if c.Hardware.NumCoresPerSocket > 1 {
		f.Set("cpuid.coresPerSocket", strconv.Itoa(int(c.Hardware.NumCoresPerSocket)))
	}
	if c.Hardware.MemoryMB > 0 {
		f.Set("memSize", strconv.Itoa(int(c.Hardware.MemoryMB)))
	}
	if c.Uuid != "" {
		f.Set("uuid.bios", FormatUUID(c.Uuid))
	}
	if c.InstanceUuid != "" {
		f.Set("vc.uuid", FormatUUID(c.InstanceUuid))
	}
	if c.Annotation != "" {
		f.Set("annotation", c.Annotation)
	}

	devices := c.Hardware.Device
	byKey := map[int32]types.BaseVirtualDevice{}
	for _, d := range devices {
		byKey[d.GetVirtualDevice().Key] = d
	}
	ctlName := map[int32]string{}
	for _, d := range devices {
		switch ctl := d.(type) {
		case types.BaseVirtualSCSIController:
			bus := ctl.GetVirtualSCSIController().BusNumber
			n := fmt.Sprintf("scsi%d", bus)
			ctlName[d.GetVirtualDevice().Key] = n
			f.Set(n+".present", "TRUE")
			f.Set(n+".virtualDev", SCSIVirtualDev(d))
			f.Set(n+".sharedBus", "none")
		case types.BaseVirtualSATAController:
			bus := ctl.GetVirtualSATAController().BusNumber
			n := fmt.Sprintf("sata%d", bus)
			ctlName[d.GetVirtualDevice().Key] = n
			f.Set(n+".present", "TRUE")
		case *types.VirtualNVMEController:
			n := fmt.Sprintf("nvme%d", ctl.BusNumber)
			ctlName[d.GetVirtualDevice().Key] = n
			f.Set(n+".present", "TRUE")
		case *types.VirtualIDEController:
			ctlName[d.GetVirtualDevice().Key] = fmt.Sprintf("ide%d", ctl.BusNumber)
		}
	}
	for _, d := range devices {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			continue
		}
		vd := disk.GetVirtualDevice()
		cn, ok := ctlName[vd.ControllerKey]
		if !ok || vd.UnitNumber == nil {
			continue
		}
		n := fmt.Sprintf("%s:%d", cn, *vd.UnitNumber)
		f.Set(n+".present", "TRUE")
		if strings.HasPrefix(cn, "scsi") {
			f.Set(n+".deviceType", "scsi-hardDisk")
		}
		if fb, ok := vd.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
			f.Set(n+".fileName", relFile(fb.GetVirtualDeviceFileBackingInfo().FileName, vmDS, vmDir))
		}
		if b, ok := vd.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok && b.DiskMode != "" && b.DiskMode != "persistent" {
			f.Set(n+".mode", b.DiskMode)
		}
	}
	for _, d := range devices {
		card, ok := d.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		e := card.GetVirtualEthernetCard()
		idx := ethernetIndex(e.Key, devices)
		n := fmt.Sprintf("ethernet%d", idx)
		f.Set(n+".present", "TRUE")
		f.Set(n+".virtualDev", EthernetVirtualDev(d))
		switch b := e.Backing.(type) {
		case *types.VirtualEthernetCardNetworkBackingInfo:
			f.Set(n+".networkName", b.DeviceName)
		case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
			f.Set(n+".dvs.switchId", b.Port.SwitchUuid)
			f.Set(n+".dvs.portgroupId", b.Port.PortgroupKey)
		}
		switch e.AddressType {
		case string(types.VirtualEthernetCardMacTypeManual):
			f.Set(n+".addressType", "static")
			if e.MacAddress != "" {
				f.Set(n+".address", e.MacAddress)
			}
		case string(types.VirtualEthernetCardMacTypeAssigned):
			f.Set(n+".addressType", "vpx")
			if e.MacAddress != "" {
				f.Set(n+".generatedAddress", e.MacAddress)
			}
		default:
			f.Set(n+".addressType", "generated")
			if e.MacAddress != "" {
				f.Set(n+".generatedAddress", e.MacAddress)
			}
		}
		if e.Connectable != nil {
			f.Set(n+".startConnected", strings.ToUpper(strconv.FormatBool(e.Connectable.StartConnected)))
		}
	}
	for _, ov := range c.ExtraConfig {
		o := ov.GetOptionValue()
		if o.Key == "" || o.Value == nil {
			continue
		}
		f.Set(o.Key, fmt.Sprint(o.Value))
	}
	return f
}

// ethernetIndex numbers NICs as ESXi does: ethernetN where N is the NIC's position.
func ethernetIndex(key int32, devices []types.BaseVirtualDevice) int {
	i := 0
	for _, d := range devices {
		if _, ok := d.(types.BaseVirtualEthernetCard); !ok {
			continue
		}
		if d.GetVirtualDevice().Key == key {
			return i
		}
		i++
	}
	return i
}

func relFile(name, vmDS, vmDir string) string {
	ds, rel, ok := DatastorePath(name)
	if !ok {
		return name
	}
	if ds == vmDS && path.Dir(rel) == vmDir {
		return path.Base(rel)
	}
	return "/vmfs/volumes/" + ds + "/" + rel
}

// guestOS values in a .vmx are the guestId without the "Guest" suffix, lower-cased
// in a few well-known ways (ubuntu64Guest -> ubuntu-64, otherGuest -> other).
var guestIDRE = regexp.MustCompile(`^(.*?)(64)?Guest$`)

// GuestOSFromID maps a vSphere guestId to the .vmx guestOS value.
func GuestOSFromID(id string) string {
	m := guestIDRE.FindStringSubmatch(id)
	if m == nil {
		return id
	}
	s := strings.ToLower(m[1])
	if m[2] != "" {
		s += "-64"
	}
	return s
}

// GuestIDFromOS reverses GuestOSFromID for the common cases ("ubuntu-64" -> "ubuntu64Guest").
func GuestIDFromOS(os string) string {
	if os == "" {
		return ""
	}
	if strings.HasSuffix(os, "Guest") {
		return os
	}
	if strings.HasSuffix(os, "-64") {
		return strings.TrimSuffix(os, "-64") + "64Guest"
	}
	return os + "Guest"
}
