package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cesotestbed/esxishell"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/types"
)

const readyPartYAML = `#cloud-config
merge_how:
  - name: list
    settings:
      - append
  - name: dict
    settings:
      - no_replace
      - recurse_list
runcmd:
  - touch /var/lib/cloud/instance/ceso-ready && vmware-rpctool "info-set guestinfo.ceso.ready $(cat /var/lib/cloud/data/instance-id)"
write_files:
  - path: /var/lib/cloud/scripts/per-boot/ceso-ready
    permissions: '0755'
    owner: root:root
    content: |
      #!/bin/sh
      [ -e /var/lib/cloud/instance/ceso-ready ] || exit 0
      exec vmware-rpctool "info-set guestinfo.ceso.ready $(cat /var/lib/cloud/data/instance-id)"
`

func multipart(parts ...string) string {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=\"==BOUNDARY==\"\nMIME-Version: 1.0\n\n")
	for _, p := range parts {
		b.WriteString("--==BOUNDARY==\nContent-Type: text/cloud-config; charset=\"utf-8\"\nMIME-Version: 1.0\nContent-Transfer-Encoding: 7bit\n\n" + p + "\n")
	}
	b.WriteString("--==BOUNDARY==--\n")
	return b.String()
}

func extraConfigMap(v []types.BaseOptionValue) map[string]string {
	out := map[string]string{}
	for _, o := range v {
		out[o.GetOptionValue().Key] = fmt.Sprint(o.GetOptionValue().Value)
	}
	return out
}

// readyValue polls RetrieveProperties until the key has a value or d passes.
func readyValue(t *testing.T, ctx context.Context, c *govmomi.Client, ref types.ManagedObjectReference, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v := getVM(t, ctx, c, ref)
		if s := extraConfigMap(v.Config.ExtraConfig)[readyKey]; s != "" || time.Now().After(deadline) {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestGuestReady(t *testing.T) {
	tb, c, ctx := start(t, "esx")
	tb.mu.Lock()
	tb.readyDelay = 300 * time.Millisecond
	tb.mu.Unlock()
	finder := find.NewFinder(c.Client, false)
	dc, _ := finder.DefaultDatacenter(ctx)
	finder.SetDatacenter(dc)
	folders, _ := dc.Folders(ctx)
	pool, _ := finder.DefaultResourcePool(ctx)

	create := func(name string, extra map[string]string) *object.VirtualMachine {
		t.Helper()
		unit := int32(0)
		spec := types.VirtualMachineConfigSpec{
			Name: name, GuestId: "ubuntu64Guest", NumCPUs: 1, MemoryMB: 1024,
			Files: &types.VirtualMachineFileInfo{VmPathName: "[datastore1]"},
			DeviceChange: []types.BaseVirtualDeviceConfigSpec{
				&types.VirtualDeviceConfigSpec{Operation: "add", Device: &types.ParaVirtualSCSIController{VirtualSCSIController: types.VirtualSCSIController{VirtualController: types.VirtualController{VirtualDevice: types.VirtualDevice{Key: -100}}}}},
				&types.VirtualDeviceConfigSpec{Operation: "add", FileOperation: "create", Device: &types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: -101, ControllerKey: -100, UnitNumber: &unit,
					Backing: &types.VirtualDiskFlatVer2BackingInfo{VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[datastore1]"}, DiskMode: "persistent", ThinProvisioned: types.NewBool(true)}},
					CapacityInKB: 1 << 20}},
				&types.VirtualDeviceConfigSpec{Operation: "add", Device: &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: types.VirtualEthernetCard{
					VirtualDevice: types.VirtualDevice{Key: -102, Backing: &types.VirtualEthernetCardNetworkBackingInfo{VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: "VM Network"}}},
					AddressType:   "generated"}}}},
			},
		}
		for k, v := range extra {
			spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: v})
		}
		tk, err := folders.VmFolder.CreateVM(ctx, spec, pool, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := tk.WaitForResult(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return object.NewVirtualMachine(c.Client, info.Result.(types.ManagedObjectReference))
	}
	power := func(vm *object.VirtualMachine, op string) {
		t.Helper()
		var tk *object.Task
		var err error
		switch op {
		case "on":
			tk, err = vm.PowerOn(ctx)
		case "off":
			tk, err = vm.PowerOff(ctx)
		case "reset":
			tk, err = vm.Reset(ctx)
		}
		if err == nil {
			err = tk.Wait(ctx)
		}
		if err != nil {
			t.Fatalf("power %s: %v", op, err)
		}
	}
	vmxKeys := func(name string) string {
		data, _ := ioutil.ReadFile(filepath.Join(tb.DSDir, name, name+".vmx"))
		return string(data)
	}

	user := "#cloud-config\nhostname: r1\nruncmd:\n  - echo user\n"
	web := create("r1", map[string]string{
		"guestinfo.metadata":          gzb64(`{"instance-id":"r1-a","local-hostname":"r1"}`),
		"guestinfo.metadata.encoding": "gzip+base64",
		"guestinfo.userdata":          gzb64(multipart(user, readyPartYAML)),
		"guestinfo.userdata.encoding": "gzip+base64",
	})
	// a later part with the default merge replaces the runcmd that had the entry
	plain := create("r2", map[string]string{
		"guestinfo.metadata": `{"instance-id":"r2-a"}`,
		"guestinfo.userdata": multipart(readyPartYAML, user),
	})

	t.Run("FirstBoot", func(t *testing.T) {
		// watch the key through the property collector (WaitForUpdatesEx) while booting
		seen := make(chan string, 1)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		go func() {
			err := property.Wait(wctx, property.DefaultCollector(c.Client), web.Reference(), []string{"config.extraConfig"}, func(pc []types.PropertyChange) bool {
				for _, ch := range pc {
					if ov, ok := ch.Val.(types.ArrayOfOptionValue); ok {
						if v := extraConfigMap(ov.OptionValue)[readyKey]; v != "" {
							seen <- v
							return true
						}
					}
				}
				return false
			})
			if err != nil {
				seen <- "error: " + err.Error()
			}
		}()
		begin := time.Now()
		power(web, "on")
		power(plain, "on")
		if v := getVM(t, ctx, c, web.Reference()); v.Guest.IpAddress == "" || extraConfigMap(v.Config.ExtraConfig)[readyKey] != "" {
			t.Fatalf("right after power on: ip %q, ready %q", v.Guest.IpAddress, extraConfigMap(v.Config.ExtraConfig)[readyKey])
		}
		select {
		case v := <-seen:
			if v != "r1-a" {
				t.Fatalf("WaitForUpdatesEx saw %q", v)
			}
		case <-wctx.Done():
			t.Fatal("WaitForUpdatesEx never saw the key")
		}
		if el := time.Since(begin); el < 250*time.Millisecond {
			t.Fatalf("reported after %s, before the ready delay", el)
		}
		if v := readyValue(t, ctx, c, web.Reference(), time.Second); v != "r1-a" {
			t.Fatalf("RetrieveProperties: %q", v)
		}
		// the .vmx never holds it, even after a reconfigure re-renders the file
		tk, _ := web.Reconfigure(ctx, types.VirtualMachineConfigSpec{Annotation: "x"})
		_ = tk.Wait(ctx)
		if s := vmxKeys("r1"); strings.Contains(s, readyKey) || !strings.Contains(s, "guestinfo.userdata") {
			t.Fatalf(".vmx:\n%s", s)
		}
		if v := readyValue(t, ctx, c, web.Reference(), 0); v != "r1-a" {
			t.Fatalf("after reconfigure: %q", v)
		}
		// vim-cmd vmsvc/get.config shows it (the shell emulator reads the simulator)
		cfg := filepath.Join(t.TempDir(), "esxi.json")
		data, _ := json.Marshal(esxishell.Config{URL: tb.URL, User: "root", Password: "pw", Insecure: true, VolumesRoot: filepath.Dir(tb.DSDir)})
		_ = ioutil.WriteFile(cfg, data, 0o600)
		os.Setenv(esxishell.ConfigEnv, cfg)
		defer os.Unsetenv(esxishell.ConfigEnv)
		s, err := esxishell.Connect()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		mv, err := s.VM(web.Reference().Value, "config")
		if err != nil {
			t.Fatal(err)
		}
		if dump := esxishell.Dump(mv.Config); !strings.Contains(dump, `key = "guestinfo.ceso.ready"`) || !strings.Contains(dump, `"r1-a"`) {
			t.Fatalf("get.config does not show the key:\n%s", dump)
		}
		if v := readyValue(t, ctx, c, plain.Reference(), 800*time.Millisecond); v != "" {
			t.Fatalf("replaced runcmd still reported %q", v)
		}
	})

	t.Run("PowerOffAndLaterBoot", func(t *testing.T) {
		power(web, "off")
		if v := readyValue(t, ctx, c, web.Reference(), 0); v != "" {
			t.Fatalf("after power off: %q", v)
		}
		// a later boot of the same instance: the per-boot script reports
		power(web, "on")
		if v := readyValue(t, ctx, c, web.Reference(), 0); v != "" {
			t.Fatalf("stale key at boot: %q", v)
		}
		if v := readyValue(t, ctx, c, web.Reference(), 3*time.Second); v != "r1-a" {
			t.Fatalf("later boot: %q", v)
		}
		power(web, "reset")
		if v := readyValue(t, ctx, c, web.Reference(), 0); v != "" {
			t.Fatalf("after reset, before the new report: %q", v)
		}
		if v := readyValue(t, ctx, c, web.Reference(), 3*time.Second); v != "r1-a" {
			t.Fatalf("after reset: %q", v)
		}
		// later boots of r2 (no entry at its first boot) never report
		power(plain, "off")
		power(plain, "on")
		if v := readyValue(t, ctx, c, plain.Reference(), 800*time.Millisecond); v != "" {
			t.Fatalf("r2 later boot: %q", v)
		}
	})

	t.Run("NewInstanceAndNoPerBoot", func(t *testing.T) {
		// new instance-id + user data without the per-boot file: first boot reports, later not
		power(web, "off")
		tk, _ := web.Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
			&types.OptionValue{Key: "guestinfo.metadata", Value: `{"instance-id":"r1-b"}`},
			&types.OptionValue{Key: "guestinfo.metadata.encoding", Value: ""},
			&types.OptionValue{Key: "guestinfo.userdata", Value: "#cloud-config\nruncmd:\n  - '" + strings.ReplaceAll(readyRunCmd, "'", "''") + "'\n"},
			&types.OptionValue{Key: "guestinfo.userdata.encoding", Value: ""},
		}})
		if err := tk.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		power(web, "on")
		if v := readyValue(t, ctx, c, web.Reference(), 3*time.Second); v != "r1-b" {
			t.Fatalf("new instance: %q", v)
		}
		// the per-boot script from r1-a's first boot is still on the disk: it reports for r1-b too
		power(web, "reset")
		if v := readyValue(t, ctx, c, web.Reference(), 3*time.Second); v != "r1-b" {
			t.Fatalf("later boot with the old per-boot script: %q", v)
		}
		// no metadata: the instance-id is the VM's UUID; a script that is not executable never runs
		x := create("r3", map[string]string{"guestinfo.userdata": "#cloud-config\nruncmd:\n  - '" + strings.ReplaceAll(readyRunCmd, "'", "''") + "'\nwrite_files:\n  - path: " + readyPerBootPath + "\n    content: x\n"})
		power(x, "on")
		uuid := getVM(t, ctx, c, x.Reference()).Config.Uuid
		if v := readyValue(t, ctx, c, x.Reference(), 3*time.Second); v != uuid || v == "" {
			t.Fatalf("uuid instance: %q (uuid %s)", v, uuid)
		}
		power(x, "reset")
		if v := readyValue(t, ctx, c, x.Reference(), 900*time.Millisecond); v != "" {
			t.Fatalf("non-executable per-boot script reported %q", v)
		}
	})
}

// A clone of a running VM does not get the source's guest-set keys (vCenter copies the
// configuration, not the VM process's runtime state).
func TestGuestReadyClone(t *testing.T) {
	tb, c, ctx := start(t, "vpx")
	tb.mu.Lock()
	tb.readyDelay = 100 * time.Millisecond
	tb.mu.Unlock()
	finder := find.NewFinder(c.Client, false)
	dc, _ := finder.DefaultDatacenter(ctx)
	finder.SetDatacenter(dc)
	folders, _ := dc.Folders(ctx)
	src, err := finder.VirtualMachine(ctx, "vm-0001") // powered on
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := src.Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
		&types.OptionValue{Key: "guestinfo.userdata", Value: readyPartYAML},
	}})
	if err := tk.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	tk, _ = src.Reset(ctx)
	if err := tk.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	uuid := getVM(t, ctx, c, src.Reference()).Config.Uuid
	if v := readyValue(t, ctx, c, src.Reference(), 3*time.Second); v != uuid {
		t.Fatalf("source: %q", v)
	}
	tk, err = src.Clone(ctx, folders.VmFolder, "c-ready", types.VirtualMachineCloneSpec{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := tk.WaitForResult(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	clone := getVM(t, ctx, c, info.Result.(types.ManagedObjectReference))
	ec := extraConfigMap(clone.Config.ExtraConfig)
	if _, ok := ec[readyKey]; ok || ec["guestinfo.userdata"] == "" {
		t.Fatalf("clone extraConfig: %v", ec)
	}
}
