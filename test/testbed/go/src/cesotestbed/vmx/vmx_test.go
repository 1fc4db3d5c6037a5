package vmx

import (
	"strings"
	"testing"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func TestRoundTrip(t *testing.T) {
	in := ".encoding = \"UTF-8\"\ndisplayName = \"web |22one|22\"\n# comment\nguestinfo.x=\"a|7Cb|0Ac\"\nDisplayName = \"dup\"\n"
	f := Parse([]byte(in))
	if v, _ := f.Get("displayname"); v != "dup" {
		t.Fatalf("got %q", v)
	}
	if v, _ := f.Get("GUESTINFO.X"); v != "a|b\nc" {
		t.Fatalf("got %q", v)
	}
	f.Set("displayName", `say "hi"`)
	f.Set("new.key", "v")
	f.Delete(".encoding")
	want := "displayName = \"say |22hi|22\"\nguestinfo.x = \"a|7Cb|0Ac\"\nnew.key = \"v\"\n"
	if got := string(f.Bytes()); got != want {
		t.Fatalf("got %q", got)
	}
	if k := f.Keys(); len(k) != 3 || k[2] != "new.key" {
		t.Fatalf("keys %v", k)
	}
	if Decode("a|2") != "a|2" || Decode("|zz") != "|zz" {
		t.Fatal("partial escapes must be kept")
	}
}

func TestFromVM(t *testing.T) {
	unit := int32(0)
	vm := &mo.VirtualMachine{Config: &types.VirtualMachineConfigInfo{
		Name: "web1", GuestId: "ubuntu64Guest", Version: "vmx-13", Firmware: "efi",
		Uuid:  "421d3b5c-8e8e-9d1a-4b2e-957c2c063d1b",
		Files: types.VirtualMachineFileInfo{VmPathName: "[datastore1] web1/web1.vmx"},
		Hardware: types.VirtualHardware{NumCPU: 2, MemoryMB: 2048, Device: []types.BaseVirtualDevice{
			&types.ParaVirtualSCSIController{VirtualSCSIController: types.VirtualSCSIController{VirtualController: types.VirtualController{VirtualDevice: types.VirtualDevice{Key: 1000}, BusNumber: 0}}},
			&types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: 2000, ControllerKey: 1000, UnitNumber: &unit, Backing: &types.VirtualDiskFlatVer2BackingInfo{VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[datastore1] web1/web1.vmdk"}}}},
			&types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: types.VirtualEthernetCard{VirtualDevice: types.VirtualDevice{Key: 4000, Backing: &types.VirtualEthernetCardNetworkBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "VM Network"}}}, AddressType: "generated", MacAddress: "00:0c:29:aa:bb:cc"}}},
		}},
		ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: "guestinfo.metadata", Value: `{"a":"b"}`}},
	}}
	s := FromVM(vm).String()
	for _, w := range []string{`guestOS = "ubuntu-64"`, `scsi0.virtualDev = "pvscsi"`, `scsi0:0.fileName = "web1.vmdk"`,
		`ethernet0.networkName = "VM Network"`, `ethernet0.generatedAddress = "00:0c:29:aa:bb:cc"`, `firmware = "efi"`,
		`uuid.bios = "42 1d 3b 5c 8e 8e 9d 1a-4b 2e 95 7c 2c 06 3d 1b"`, `guestinfo.metadata = "{|22a|22:|22b|22}"`, `numvcpus = "2"`, `memSize = "2048"`} {
		if !strings.Contains(s, w) {
			t.Errorf("missing %s in\n%s", w, s)
		}
	}
	if ParseUUID("42 1d 3b 5c 8e 8e 9d 1a-4b 2e 95 7c 2c 06 3d 1b") != "421d3b5c-8e8e-9d1a-4b2e-957c2c063d1b" {
		t.Error("ParseUUID")
	}
	if GuestIDFromOS("ubuntu-64") != "ubuntu64Guest" || GuestOSFromID("otherGuest") != "other" {
		t.Error("guest os mapping")
	}
}
