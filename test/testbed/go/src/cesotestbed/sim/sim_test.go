package sim

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"io/ioutil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"cesotestbed/vmx"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func start(t *testing.T, mode string) (*Testbed, *govmomi.Client, context.Context) {
	t.Helper()
	dir := t.TempDir()
	tb, err := Start(Options{Mode: mode, VMs: 3, Listen: "127.0.0.1:0", User: "root", Password: "pw", Dir: dir,
		Template: "ubuntu-22.04-template", CapacityGB: 1000, FreeGB: 900})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tb.Close)
	ctx := context.Background()
	u, _ := url.Parse(tb.URL)
	u.User = url.UserPassword("root", "pw")
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		t.Fatal(err)
	}
	return tb, c, ctx
}

func faultName2(err error) string {
	if err == nil {
		return ""
	}
	if soap.IsSoapFault(err) {
		t := reflect.TypeOf(soap.ToSoapFault(err).VimFault())
		if t != nil && t.Kind() == reflect.Ptr {
			t = t.Elem()
		}
		if t != nil {
			return t.Name()
		}
	}
	if te, ok := err.(task.Error); ok {
		return faultName(te.Fault())
	}
	return err.Error()
}

func gzb64(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func getVM(t *testing.T, ctx context.Context, c *govmomi.Client, ref types.ManagedObjectReference) mo.VirtualMachine {
	t.Helper()
	var v mo.VirtualMachine
	if err := property.DefaultCollector(c.Client).RetrieveOne(ctx, ref, nil, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestESX(t *testing.T) {
	tb, c, ctx := start(t, "esx")
	finder := find.NewFinder(c.Client, false)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	finder.SetDatacenter(dc)
	folders, _ := dc.Folders(ctx)
	pool, err := finder.DefaultResourcePool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := finder.VirtualMachine(ctx, "ubuntu-22.04-template")
	if err != nil {
		t.Fatal(err)
	}

	// unauthenticated RetrieveProperties
	t.Run("NotAuthenticated", func(t *testing.T) {
		u, _ := url.Parse(tb.URL)
		sc := soap.NewClient(u, true)
		req := types.RetrieveProperties{This: c.ServiceContent.PropertyCollector, SpecSet: []types.PropertyFilterSpec{{
			ObjectSet: []types.ObjectSpec{{Obj: tmpl.Reference()}}, PropSet: []types.PropertySpec{{Type: "VirtualMachine", PathSet: []string{"name"}}}}}}
		_, err := methods.RetrieveProperties(ctx, sc, &req)
		if faultName2(err) != "NotAuthenticated" {
			t.Fatalf("got %v", err)
		}
		c2, err := govmomi.NewClient(ctx, &url.URL{Scheme: "https", Host: u.Host, Path: "/sdk", User: url.UserPassword("root", "wrong")}, true)
		if c2 != nil || faultName2(err) != "InvalidLogin" {
			t.Fatalf("wrong password: %v", err)
		}
	})

	t.Run("CloneRefused", func(t *testing.T) {
		_, err := tmpl.Clone(ctx, folders.VmFolder, "x", types.VirtualMachineCloneSpec{})
		if faultName2(err) != "NotSupported" || !strings.Contains(err.Error(), "The operation is not supported on the object.") {
			t.Fatalf("got %v", err)
		}
	})

	// API clone the way ESXi tools do it: mkdir, copy disk, CreateVM, power on.
	md := `{"instance-id":"web1-1","local-hostname":"web1","network":{"version":2,"ethernets":{"nic0":{"match":{"macaddress":"00:50:56:aa:bb:cc"},"addresses":["192.168.1.100/24"]}}}}`
	var web types.ManagedObjectReference
	t.Run("CopyAndCreate", func(t *testing.T) {
		fm := object.NewFileManager(c.Client)
		if err := fm.MakeDirectory(ctx, "[datastore1] web1", dc, false); err != nil {
			t.Fatal(err)
		}
		if err := fm.MakeDirectory(ctx, "[datastore1] web1", dc, false); faultName2(err) != "FileAlreadyExists" || strings.Contains(err.Error(), tb.DSDir) {
			t.Fatalf("mkdir twice: %v", err)
		}
		vdm := object.NewVirtualDiskManager(c.Client)
		tk, err := vdm.CopyVirtualDisk(ctx, "[datastore1] ubuntu-22.04-template/ubuntu-22.04-template.vmdk", dc,
			"[datastore1] web1/web1.vmdk", dc, &types.VirtualDiskSpec{DiskType: "thin", AdapterType: "lsiLogic"}, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := tk.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		desc, _ := ioutil.ReadFile(filepath.Join(tb.DSDir, "web1/web1.vmdk"))
		if !strings.Contains(string(desc), `RW 20971520 VMFS "web1-flat.vmdk"`) || !strings.Contains(string(desc), `ddb.thinProvisioned = "1"`) {
			t.Fatalf("descriptor:\n%s", desc)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(tb.DSDir, "web1/web1-flat.vmdk"), &st); err != nil || st.Size != 10<<30 || st.Blocks > 1024 {
			t.Fatalf("flat: %+v %v", st, err)
		}
		unit := int32(0)
		spec := types.VirtualMachineConfigSpec{
			Name: "web1", GuestId: "ubuntu64Guest", NumCPUs: 2, MemoryMB: 4096, Firmware: "efi",
			Files: &types.VirtualMachineFileInfo{VmPathName: "[datastore1] web1/web1.vmx"},
			ExtraConfig: []types.BaseOptionValue{
				&types.OptionValue{Key: "guestinfo.metadata", Value: gzb64(md)},
				&types.OptionValue{Key: "guestinfo.metadata.encoding", Value: "gzip+base64"},
				&types.OptionValue{Key: "ceso.managed", Value: "true"},
			},
			DeviceChange: []types.BaseVirtualDeviceConfigSpec{
				&types.VirtualDeviceConfigSpec{Operation: "add", Device: &types.ParaVirtualSCSIController{VirtualSCSIController: types.VirtualSCSIController{VirtualController: types.VirtualController{VirtualDevice: types.VirtualDevice{Key: -100}}}}},
				&types.VirtualDeviceConfigSpec{Operation: "add", Device: &types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: -101, ControllerKey: -100, UnitNumber: &unit,
					Backing: &types.VirtualDiskFlatVer2BackingInfo{VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[datastore1] web1/web1.vmdk"}, DiskMode: "persistent", ThinProvisioned: types.NewBool(true)}},
					CapacityInKB: 10 << 20}},
				&types.VirtualDeviceConfigSpec{Operation: "add", Device: &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: types.VirtualEthernetCard{
					VirtualDevice: types.VirtualDevice{Key: -102, Backing: &types.VirtualEthernetCardNetworkBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "VM Network"}}},
					AddressType:   "manual", MacAddress: "00:50:56:aa:bb:cc"}}}},
			},
		}
		tk, err = folders.VmFolder.CreateVM(ctx, spec, pool, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := tk.WaitForResult(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		web = info.Result.(types.ManagedObjectReference)
		desc2, _ := ioutil.ReadFile(filepath.Join(tb.DSDir, "web1/web1.vmdk"))
		if !bytes.Equal(desc, desc2) {
			t.Fatalf("the attached disk was recreated:\n%s", desc2)
		}
		data, _ := ioutil.ReadFile(filepath.Join(tb.DSDir, "web1/web1.vmx"))
		f := vmx.Parse(data)
		for k, want := range map[string]string{"displayName": "web1", "numvcpus": "2", "memSize": "4096", "firmware": "efi", "ceso.managed": "true",
			"scsi0:0.fileName": "web1.vmdk", "ethernet0.address": "00:50:56:aa:bb:cc", "guestinfo.metadata.encoding": "gzip+base64"} {
			if got, _ := f.Get(k); got != want {
				t.Errorf(".vmx %s = %q, want %q\n%s", k, got, want, data)
			}
		}
		if _, ok := f.Get("govcsim"); ok {
			t.Error("govcsim key in the .vmx")
		}
		vm := object.NewVirtualMachine(c.Client, web)
		tk, _ = vm.PowerOn(ctx)
		if err := tk.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		v := getVM(t, ctx, c, web)
		if v.Guest.IpAddress != "192.168.1.100" || v.Guest.HostName != "web1" || v.Guest.ToolsRunningStatus != "guestToolsRunning" ||
			len(v.Guest.Net) != 1 || v.Guest.Net[0].MacAddress != "00:50:56:aa:bb:cc" {
			t.Fatalf("guest: %+v", v.Guest)
		}
	})

	t.Run("ReIP", func(t *testing.T) {
		vm := object.NewVirtualMachine(c.Client, web)
		md2 := strings.Replace(md, "192.168.1.100", "192.168.1.101", 1)
		tk, _ := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
			&types.OptionValue{Key: "guestinfo.metadata", Value: gzb64(md2)}, &types.OptionValue{Key: "ceso.managed", Value: ""}}})
		if err := tk.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if err := vm.RebootGuest(ctx); err != nil {
			t.Fatal(err)
		}
		v := getVM(t, ctx, c, web)
		if v.Guest.IpAddress != "192.168.1.100" {
			t.Fatalf("same instance-id must keep the old address, got %q", v.Guest.IpAddress)
		}
		n := 0
		for _, o := range v.Config.ExtraConfig {
			switch o.GetOptionValue().Key {
			case "guestinfo.metadata":
				n++
			case "ceso.managed":
				t.Error("ceso.managed set to \"\" must be removed")
			}
		}
		if n != 1 {
			t.Fatalf("guestinfo.metadata appears %d times", n)
		}
		md3 := strings.Replace(md2, "web1-1", "web1-2", 1)
		tk, _ = vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: "guestinfo.metadata", Value: gzb64(md3)}}})
		_ = tk.Wait(ctx)
		tk, _ = vm.Reset(ctx)
		_ = tk.Wait(ctx)
		if v := getVM(t, ctx, c, web); v.Guest.IpAddress != "192.168.1.101" {
			t.Fatalf("new instance-id: got %q", v.Guest.IpAddress)
		}
		data, _ := ioutil.ReadFile(filepath.Join(tb.DSDir, "web1/web1.vmx"))
		if strings.Contains(string(data), "ceso.managed") {
			t.Fatalf("removed key still in the .vmx:\n%s", data)
		}
	})

	t.Run("FaultsAndDelay", func(t *testing.T) {
		tb.mu.Lock()
		tb.faults = append(tb.faults, &faultRule{Method: "PowerOffVM_Task", Fault: "InvalidState", Times: 1},
			&faultRule{Method: "PowerOffVM_Task", Fault: "TaskInProgress", Times: 1, Immediate: true})
		tb.delays["PowerOffVM_Task"] = 400 * time.Millisecond
		tb.mu.Unlock()
		vm := object.NewVirtualMachine(c.Client, web)
		tk, err := vm.PowerOff(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tk.Wait(ctx); faultName2(err) != "InvalidState" {
			t.Fatalf("task: %v", err)
		}
		if _, err := vm.PowerOff(ctx); faultName2(err) != "TaskInProgress" {
			t.Fatalf("immediate: %v", err)
		}
		begin := time.Now()
		tk, err = vm.PowerOff(ctx)
		if err != nil || time.Since(begin) > 300*time.Millisecond {
			t.Fatalf("delayed call must return at once: %v %s", err, time.Since(begin))
		}
		if err := tk.Wait(ctx); err != nil || time.Since(begin) < 400*time.Millisecond {
			t.Fatalf("delayed task: %v %s", err, time.Since(begin))
		}
		if v := getVM(t, ctx, c, web); v.Runtime.PowerState != "poweredOff" || v.Guest.IpAddress != "" || len(v.Guest.Net) != 0 {
			t.Fatalf("after power off: %s %+v", v.Runtime.PowerState, v.Guest)
		}
		tb.mu.Lock()
		tb.delays = map[string]time.Duration{}
		tb.mu.Unlock()
	})

	t.Run("RegisterFromVMX", func(t *testing.T) {
		src, _ := ioutil.ReadFile(filepath.Join(tb.DSDir, "ubuntu-22.04-template/ubuntu-22.04-template.vmx"))
		f := vmx.Parse(src)
		f.Set("displayName", "db1")
		f.Set("scsi0:0.fileName", "/vmfs/volumes/datastore1/ubuntu-22.04-template/ubuntu-22.04-template.vmdk")
		f.Delete("uuid.bios")
		f.Set("uuid.action", "create")
		f.Set("guestinfo.userdata", "#cloud-config\n")
		f.Set("foreign.key", "kept")
		_ = os.MkdirAll(filepath.Join(tb.DSDir, "db1"), 0o755)
		_ = ioutil.WriteFile(filepath.Join(tb.DSDir, "db1/db1.vmx"), f.Bytes(), 0o644)
		tk, err := folders.VmFolder.RegisterVM(ctx, "[datastore1] db1/db1.vmx", "", false, pool, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := tk.WaitForResult(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		v := getVM(t, ctx, c, info.Result.(types.ManagedObjectReference))
		if v.Name != "db1" || v.Config.Hardware.NumCPU != 2 || v.Config.Hardware.MemoryMB != 2048 || v.Config.Firmware != "efi" || v.Config.GuestId != "ubuntu64Guest" {
			t.Fatalf("registered: %s %d %d %s %s", v.Name, v.Config.Hardware.NumCPU, v.Config.Hardware.MemoryMB, v.Config.Firmware, v.Config.GuestId)
		}
		var disks, nics int
		for _, d := range v.Config.Hardware.Device {
			switch x := d.(type) {
			case *types.VirtualDisk:
				disks++
				if x.CapacityInKB != 10<<20 || x.Backing.(*types.VirtualDiskFlatVer2BackingInfo).FileName != "[datastore1] ubuntu-22.04-template/ubuntu-22.04-template.vmdk" {
					t.Errorf("disk %+v", x)
				}
			case types.BaseVirtualEthernetCard:
				nics++
			}
		}
		if disks != 1 || nics != 1 {
			t.Fatalf("disks %d nics %d", disks, nics)
		}
		ec := map[string]string{}
		for _, o := range v.Config.ExtraConfig {
			ec[o.GetOptionValue().Key] = o.GetOptionValue().Value.(string)
		}
		if ec["guestinfo.userdata"] != "#cloud-config\n" || ec["foreign.key"] != "kept" {
			t.Fatalf("extraConfig %v", ec)
		}
		if exists(filepath.Join(tb.DSDir, "db1/db1.nvram")) || exists(filepath.Join(tb.DSDir, "db1/vmware.log")) {
			t.Error("placeholders left behind")
		}
		data, _ := ioutil.ReadFile(filepath.Join(tb.DSDir, "db1/db1.vmx"))
		if g := vmx.Parse(data); get(g, "foreign.key") != "kept" || get(g, "scsi0:0.fileName") != "/vmfs/volumes/datastore1/ubuntu-22.04-template/ubuntu-22.04-template.vmdk" {
			t.Fatalf(".vmx after register:\n%s", data)
		}
		// Reload re-reads an edited .vmx
		g := vmx.Parse(data)
		g.Set("numvcpus", "4")
		g.Set("guestinfo.userdata", "#cloud-config\nhostname: x\n")
		_ = ioutil.WriteFile(filepath.Join(tb.DSDir, "db1/db1.vmx"), g.Bytes(), 0o644)
		if _, err := methods.Reload(ctx, c.Client, &types.Reload{This: v.Self}); err != nil {
			t.Fatal(err)
		}
		v2 := getVM(t, ctx, c, v.Self)
		ec2 := map[string]string{}
		for _, o := range v2.Config.ExtraConfig {
			ec2[o.GetOptionValue().Key] = o.GetOptionValue().Value.(string)
		}
		if v2.Config.Hardware.NumCPU != 4 || ec2["guestinfo.userdata"] != "#cloud-config\nhostname: x\n" || len(v2.Config.Hardware.Device) != len(v.Config.Hardware.Device) {
			t.Fatalf("reload: %d cpus, %v, %d devices (was %d)", v2.Config.Hardware.NumCPU, ec2, len(v2.Config.Hardware.Device), len(v.Config.Hardware.Device))
		}
		// unregister keeps files, re-register works
		if err := object.NewVirtualMachine(c.Client, v.Self).Unregister(ctx); err != nil {
			t.Fatal(err)
		}
		if !exists(filepath.Join(tb.DSDir, "db1/db1.vmx")) {
			t.Fatal("unregister deleted the .vmx")
		}
	})

	t.Run("SearchAndDestroy", func(t *testing.T) {
		ds, _ := finder.Datastore(ctx, "datastore1")
		b, _ := ds.Browser(ctx)
		tk, err := b.SearchDatastoreSubFolders(ctx, "[datastore1]", &types.HostDatastoreBrowserSearchSpec{
			Query:   []types.BaseFileQuery{&types.VmDiskFileQuery{Details: &types.VmDiskFileQueryFlags{CapacityKb: true, Thin: types.NewBool(true)}}},
			Details: &types.FileQueryFlags{FileSize: true, FileType: true}})
		if err != nil {
			t.Fatal(err)
		}
		info, err := tk.WaitForResult(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range info.Result.(types.ArrayOfHostDatastoreBrowserSearchResults).HostDatastoreBrowserSearchResults {
			if r.FolderPath == "[datastore1] web1" {
				for _, f := range r.File {
					d, ok := f.(*types.VmDiskFileInfo)
					if !ok || d.Path != "web1.vmdk" || d.CapacityKb != 10<<20 || !isTrue(d.Thin) {
						t.Errorf("file %#v", f)
					}
					found = true
				}
			}
			if strings.Contains(r.FolderPath, "]/") {
				t.Errorf("folder path %q", r.FolderPath)
			}
		}
		if !found {
			t.Fatal("web1.vmdk not found")
		}
		vm := object.NewVirtualMachine(c.Client, web)
		tk, _ = vm.Destroy(ctx)
		if err := tk.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if exists(filepath.Join(tb.DSDir, "web1")) {
			t.Fatal("destroy left the folder")
		}
		if !exists(filepath.Join(tb.DSDir, "ubuntu-22.04-template/ubuntu-22.04-template-flat.vmdk")) {
			t.Fatal("destroy deleted the template's disk")
		}
	})

	t.Run("LinkedClone", func(t *testing.T) {
		unit := int32(0)
		spec := types.VirtualMachineConfigSpec{
			Name: "lc1", GuestId: "ubuntu64Guest", Files: &types.VirtualMachineFileInfo{VmPathName: "[datastore1]"},
			DeviceChange: []types.BaseVirtualDeviceConfigSpec{
				&types.VirtualDeviceConfigSpec{Operation: "add", Device: &types.ParaVirtualSCSIController{VirtualSCSIController: types.VirtualSCSIController{VirtualController: types.VirtualController{VirtualDevice: types.VirtualDevice{Key: -100}}}}},
				&types.VirtualDeviceConfigSpec{Operation: "add", FileOperation: "create", Device: &types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: -101, ControllerKey: -100, UnitNumber: &unit,
					Backing: &types.VirtualDiskFlatVer2BackingInfo{VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[datastore1]"}, DiskMode: "persistent",
						Parent: &types.VirtualDiskFlatVer2BackingInfo{VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[datastore1] ubuntu-22.04-template/ubuntu-22.04-template.vmdk"}}}},
					CapacityInKB: 10 << 20}},
			},
		}
		tk, err := folders.VmFolder.CreateVM(ctx, spec, pool, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := tk.WaitForResult(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		ref := info.Result.(types.ManagedObjectReference)
		desc, _ := ioutil.ReadFile(filepath.Join(tb.DSDir, "lc1/lc1.vmdk"))
		if !strings.Contains(string(desc), `parentFileNameHint="/vmfs/volumes/datastore1/ubuntu-22.04-template/ubuntu-22.04-template.vmdk"`) ||
			!exists(filepath.Join(tb.DSDir, "lc1/lc1-sesparse.vmdk")) || exists(filepath.Join(tb.DSDir, "lc1/lc1-flat.vmdk")) {
			t.Fatalf("child disk:\n%s", desc)
		}
		v := getVM(t, ctx, c, ref)
		var disk *types.VirtualDisk
		for _, d := range v.Config.Hardware.Device {
			if x, ok := d.(*types.VirtualDisk); ok {
				disk = x
			}
		}
		vm := object.NewVirtualMachine(c.Client, ref)
		grown := *disk
		grown.CapacityInKB = 12 << 20
		grown.CapacityInBytes = 12 << 30
		tk, _ = vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
			&types.VirtualDeviceConfigSpec{Operation: "edit", Device: &grown}}})
		if err := tk.Wait(ctx); faultName2(err) != "NotSupported" || !strings.Contains(err.Error(), "Disks with parents cannot be expanded") {
			t.Fatalf("grow a child disk: %v", err) // as on a host (vcsim grew it)
		}
		tk, _ = vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{MemoryMB: 1024, DeviceChange: []types.BaseVirtualDeviceConfigSpec{
			&types.VirtualDeviceConfigSpec{Operation: "edit", Device: disk}}})
		if err := tk.Wait(ctx); err != nil {
			t.Fatalf("edit a child disk: %v", err)
		}
		if exists(filepath.Join(tb.DSDir, "lc1/lc1-flat.vmdk")) {
			t.Fatal("placeholder left behind")
		}
		tk, _ = vm.Destroy(ctx)
		if err := tk.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if exists(filepath.Join(tb.DSDir, "lc1")) || !exists(filepath.Join(tb.DSDir, "ubuntu-22.04-template/ubuntu-22.04-template.vmdk")) {
			t.Fatal("destroy of a linked clone")
		}
	})

	t.Run("Extend", func(t *testing.T) {
		vdm := object.NewVirtualDiskManager(c.Client)
		dcRef := dc.Reference()
		res, err := methods.ExtendVirtualDisk_Task(ctx, c.Client, &types.ExtendVirtualDisk_Task{This: *c.ServiceContent.VirtualDiskManager,
			Name: "[datastore1] ubuntu-22.04-template/ubuntu-22.04-template.vmdk", Datacenter: &dcRef, NewCapacityKb: 12 << 20})
		_ = vdm
		if err == nil {
			err = object.NewTask(c.Client, res.Returnval).Wait(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(filepath.Join(tb.DSDir, "ubuntu-22.04-template/ubuntu-22.04-template-flat.vmdk"))
		if fi.Size() != 12<<30 {
			t.Fatalf("size %d", fi.Size())
		}
	})
}

func TestVPXClone(t *testing.T) {
	_, c, ctx := start(t, "vpx")
	finder := find.NewFinder(c.Client, false)
	dc, _ := finder.DefaultDatacenter(ctx)
	finder.SetDatacenter(dc)
	folders, _ := dc.Folders(ctx)
	src, err := finder.VirtualMachine(ctx, "ubuntu-22.04-template")
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := src.Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: "guestinfo.metadata", Value: "{}"}}})
	_ = tk.Wait(ctx)
	tk, err = src.Clone(ctx, folders.VmFolder, "c1", types.VirtualMachineCloneSpec{PowerOn: true,
		Config: &types.VirtualMachineConfigSpec{NumCPUs: 4, ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: "ceso.managed", Value: "true"}}}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := tk.WaitForResult(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := getVM(t, ctx, c, info.Result.(types.ManagedObjectReference))
	ec := map[string]string{}
	for _, o := range v.Config.ExtraConfig {
		ec[o.GetOptionValue().Key] = o.GetOptionValue().Value.(string)
	}
	if v.Config.Firmware != "efi" || v.Config.Hardware.NumCPU != 4 || ec["guestinfo.metadata"] != "{}" || ec["ceso.managed"] != "true" || v.Runtime.PowerState != "poweredOn" {
		t.Fatalf("clone: %s %d %v %s", v.Config.Firmware, v.Config.Hardware.NumCPU, ec, v.Runtime.PowerState)
	}
	if v.Guest.IpAddress == "" {
		t.Fatal("no IP")
	}
}
