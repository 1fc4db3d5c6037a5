// Command oracle is the test bed's independent reader: a govmomi client (govmomi's own
// session, view, property and object packages) that reports what a vSphere endpoint holds, so
// tests can check what ceso reports and does. Every subcommand prints ONE JSON document.
//
//	oracle --url URL --user U --password PW (or $ORACLE_PASSWORD) [--insecure | --thumbprint AA:BB:..] CMD
//
//	list                    every VM: name, id, uuid, powerState, cpu, memoryMB, ip, guestId,
//	                        vmxPath, managed, extraConfig (guestinfo.* values as byte lengths),
//	                        annotation; sorted by name then id; one property-collector round trip
//	vm NAME | vm --id ID    one VM (null when absent): the above plus disks, nics, snapshots,
//	                        firmware, datastore, hostName, toolsRunningStatus, guestNet, full
//	                        extraConfig and guestinfo {metadata,userdata,vendordata}:
//	                        {encoding, decoded, parsed}
//	datastores              name, capacity, freeSpace, url, path, type
//	about                   the ServiceContent's about
//	clone-raw SOURCE NAME   CloneVM_Task straight to the API: {"ok":true,"id":..} or
//	                        {"ok":false,"fault":"NotSupported","message":..}
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"cesotestbed/sim/cloudinit"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

var listProps = []string{
	"name", "config.uuid", "runtime.powerState", "config.hardware.numCPU", "config.hardware.memoryMB",
	"guest.ipAddress", "config.guestId", "config.files.vmPathName", "config.extraConfig", "config.annotation",
}

type vmSummary struct {
	Name        string                 `json:"name"`
	ID          string                 `json:"id"`
	UUID        string                 `json:"uuid"`
	PowerState  string                 `json:"powerState"`
	CPU         int32                  `json:"cpu"`
	MemoryMB    int32                  `json:"memoryMB"`
	IP          *string                `json:"ip"`
	GuestID     string                 `json:"guestId"`
	VmxPath     string                 `json:"vmxPath"`
	Managed     bool                   `json:"managed"`
	ExtraConfig map[string]interface{} `json:"extraConfig"`
	Annotation  string                 `json:"annotation"`
}

type disk struct {
	File          string `json:"file"`
	CapacityKB    int64  `json:"capacityKB"`
	Thin          bool   `json:"thin"`
	ControllerKey int32  `json:"controllerKey"`
	UnitNumber    int32  `json:"unitNumber"`
	Parent        string `json:"parent,omitempty"`
}

type nic struct {
	Network     string `json:"network"`
	MAC         string `json:"mac"`
	Type        string `json:"type"`
	AddressType string `json:"addressType"`
}

type snapshot struct {
	Name        string     `json:"name"`
	ID          string     `json:"id"`
	Description string     `json:"description"`
	CreateTime  time.Time  `json:"createTime"`
	State       string     `json:"state"`
	Children    []snapshot `json:"children"`
}

type guestinfo struct {
	Encoding string      `json:"encoding"`
	Decoded  string      `json:"decoded"`
	Parsed   interface{} `json:"parsed"`
	Error    string      `json:"error,omitempty"`
}

type vmDetail struct {
	vmSummary
	Disks              []disk                `json:"disks"`
	NICs               []nic                 `json:"nics"`
	Snapshots          []snapshot            `json:"snapshots"`
	Firmware           string                `json:"firmware"`
	Datastore          string                `json:"datastore"`
	HostName           string                `json:"hostName"`
	ToolsRunningStatus string                `json:"toolsRunningStatus"`
	BootTime           *time.Time            `json:"bootTime"`
	GuestNet           []guestNIC            `json:"guestNet"`
	Template           bool                  `json:"template"`
	ExtraConfigAll     map[string]string     `json:"-"`
	Guestinfo          map[string]*guestinfo `json:"guestinfo"`
}

type guestNIC struct {
	MAC string   `json:"mac"`
	IPs []string `json:"ips"`
}

func main() {
	var rawURL, user, password, thumb string
	var insecure bool
	var id string
	fs := flag.NewFlagSet("oracle", flag.ExitOnError)
	fs.StringVar(&rawURL, "url", "", "SDK URL, https://HOST:PORT/sdk")
	fs.StringVar(&user, "user", "root", "user")
	fs.StringVar(&password, "password", os.Getenv("ORACLE_PASSWORD"), "password (default $ORACLE_PASSWORD)")
	fs.BoolVar(&insecure, "insecure", false, "do not verify the certificate")
	fs.StringVar(&thumb, "thumbprint", "", "trusted certificate thumbprint (SHA-1 or SHA-256, AA:BB:..)")
	fs.StringVar(&id, "id", "", "vm: managed object id instead of a name")
	_ = fs.Parse(os.Args[1:])
	args := fs.Args()
	// flags may also follow the subcommand
	if len(args) > 0 {
		rest := flag.NewFlagSet("oracle", flag.ExitOnError)
		rest.StringVar(&id, "id", id, "")
		cmd := args[0]
		_ = rest.Parse(args[1:])
		args = append([]string{cmd}, rest.Args()...)
	}
	if rawURL == "" || len(args) == 0 {
		die(2, "usage: oracle --url URL --user U --password PW [--insecure|--thumbprint T] list|vm NAME|vm --id ID|datastores|about|set-extra NAME KEY=VALUE...|clone-raw SRC NAME|import OVF_FILE NAME")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	c, err := connect(ctx, rawURL, user, password, insecure, thumb)
	if err != nil {
		kind, msg := faultOf(err)
		die(1, "connect: %s: %s", kind, msg)
	}
	defer func() { _ = c.Logout(context.Background()) }()

	var out interface{}
	switch args[0] {
	case "list":
		out, err = list(ctx, c)
	case "vm":
		name := ""
		if len(args) > 1 {
			name = args[1]
		}
		if name == "" && id == "" {
			die(2, "vm needs a NAME or --id ID")
		}
		out, err = vm(ctx, c, name, id)
	case "datastores":
		out, err = datastores(ctx, c)
	case "about":
		out = c.ServiceContent.About
	case "set-extra":
		// What an operator does with `govc vm.change -e key=value`: tests use it to age a VM's expiry.
		if len(args) < 3 {
			die(2, "set-extra NAME KEY=VALUE...")
		}
		out, err = setExtra(ctx, c, args[1], args[2:])
	case "import":
		// govc import.ovf's essentials with govmomi's own upload: the benchmark's peer
		if len(args) != 3 {
			die(2, "import OVF_FILE NAME")
		}
		out, err = importOVF(ctx, c, args[1], args[2])
	case "copy-disk":
		// govc datastore.disk.cp's essentials: the benchmark's peer for a backup's disk copy
		if len(args) != 3 {
			die(2, "copy-disk '[ds] SRC.vmdk' '[ds] DST.vmdk'")
		}
		out, err = copyDisk(ctx, c, args[1], args[2])
	case "clone-raw":
		if len(args) != 3 {
			die(2, "clone-raw SOURCE NAME")
		}
		out, err = cloneRaw(ctx, c, args[1], args[2])
	default:
		die(2, "unknown command %q", args[0])
	}
	if err != nil {
		kind, msg := faultOf(err)
		die(1, "%s: %s: %s", args[0], kind, msg)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		die(1, "encoding: %v", err)
	}
}

func die(code int, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "oracle: "+format+"\n", args...)
	os.Exit(code)
}

func normThumb(s string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
}

func connect(ctx context.Context, rawURL, user, password string, insecure bool, thumb string) (*govmomi.Client, error) {
	u, err := soap.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	u.User = nil
	sha256Pin := len(strings.Split(normThumb(thumb), ":")) == 32
	sc := soap.NewClient(u, insecure || sha256Pin)
	if thumb != "" && !sha256Pin {
		sc.SetThumbprint(u.Host, normThumb(thumb))
	}
	if sha256Pin {
		want := normThumb(thumb)
		sc.DefaultTransport().TLSClientConfig = &tls.Config{
			InsecureSkipVerify: true, // replaced by the pin check below
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 {
					return errors.New("no certificate")
				}
				sum := sha256.Sum256(raw[0])
				parts := make([]string, len(sum))
				for i, b := range sum {
					parts[i] = fmt.Sprintf("%02X", b)
				}
				if strings.Join(parts, ":") != want {
					return fmt.Errorf("certificate thumbprint %s does not match", strings.Join(parts, ":"))
				}
				return nil
			},
		}
	}
	// govmomi.NewClient, on our soap client so the pin applies
	vc, err := govmomiClient(ctx, sc)
	if err != nil {
		return nil, err
	}
	if err := vc.Login(ctx, url.UserPassword(user, password)); err != nil {
		return nil, err
	}
	return vc, nil
}

func summarize(v mo.VirtualMachine, all bool) (vmSummary, map[string]string) {
	s := vmSummary{Name: v.Name, ID: v.Self.Value, PowerState: string(v.Runtime.PowerState), ExtraConfig: map[string]interface{}{}}
	ec := map[string]string{}
	if v.Config != nil {
		s.UUID = v.Config.Uuid
		s.CPU = v.Config.Hardware.NumCPU
		s.MemoryMB = v.Config.Hardware.MemoryMB
		s.GuestID = v.Config.GuestId
		s.VmxPath = v.Config.Files.VmPathName
		s.Annotation = v.Config.Annotation
		for _, ov := range v.Config.ExtraConfig {
			o := ov.GetOptionValue()
			val := fmt.Sprint(o.Value)
			ec[o.Key] = val
			if !all && strings.HasPrefix(strings.ToLower(o.Key), "guestinfo.") {
				s.ExtraConfig[o.Key] = len(val)
			} else {
				s.ExtraConfig[o.Key] = val
			}
		}
		s.Managed = ec["ceso.managed"] == "true"
	}
	if v.Guest != nil && v.Guest.IpAddress != "" {
		ip := v.Guest.IpAddress
		s.IP = &ip
	}
	return s, ec
}

func list(ctx context.Context, c *govmomi.Client) ([]vmSummary, error) {
	m := view.NewManager(c.Client)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(context.Background()) }()
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, listProps, &vms); err != nil {
		return nil, err
	}
	out := make([]vmSummary, 0, len(vms))
	for _, x := range vms {
		s, _ := summarize(x, false)
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func findVM(ctx context.Context, c *govmomi.Client, name, id string) (*mo.VirtualMachine, error) {
	m := view.NewManager(c.Client)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(context.Background()) }()
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name"}, &vms); err != nil {
		return nil, err
	}
	var match []types.ManagedObjectReference
	for _, x := range vms {
		if (id != "" && x.Self.Value == id) || (id == "" && x.Name == name) {
			match = append(match, x.Self)
		}
	}
	if len(match) == 0 {
		return nil, nil
	}
	if len(match) > 1 {
		return nil, fmt.Errorf("%d VMs are named %q: use --id", len(match), name)
	}
	var out mo.VirtualMachine
	pc := property.DefaultCollector(c.Client)
	if err := pc.RetrieveOne(ctx, match[0], nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func vm(ctx context.Context, c *govmomi.Client, name, id string) (interface{}, error) {
	v, err := findVM(ctx, c, name, id)
	if err != nil || v == nil {
		return nil, err
	}
	s, ec := summarize(*v, true)
	d := vmDetail{vmSummary: s, Disks: []disk{}, NICs: []nic{}, Snapshots: []snapshot{}, GuestNet: []guestNIC{},
		Guestinfo: map[string]*guestinfo{"metadata": nil, "userdata": nil, "vendordata": nil}}
	if v.Config != nil {
		d.Firmware = v.Config.Firmware
		d.Template = v.Config.Template
		for _, dev := range v.Config.Hardware.Device {
			switch x := dev.(type) {
			case *types.VirtualDisk:
				dk := disk{CapacityKB: x.CapacityInKB, ControllerKey: x.ControllerKey}
				if x.UnitNumber != nil {
					dk.UnitNumber = *x.UnitNumber
				}
				if b, ok := x.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
					dk.File = b.FileName
					dk.Thin = b.ThinProvisioned != nil && *b.ThinProvisioned
					if b.Parent != nil {
						dk.Parent = b.Parent.FileName
					}
				} else if b, ok := x.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					dk.File = b.GetVirtualDeviceFileBackingInfo().FileName
				}
				d.Disks = append(d.Disks, dk)
			case types.BaseVirtualEthernetCard:
				e := x.GetVirtualEthernetCard()
				n := nic{MAC: e.MacAddress, AddressType: e.AddressType, Type: strings.ToLower(strings.TrimPrefix(reflect.TypeOf(x).Elem().Name(), "Virtual"))}
				switch b := e.Backing.(type) {
				case *types.VirtualEthernetCardNetworkBackingInfo:
					n.Network = b.DeviceName
				case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
					n.Network = b.Port.PortgroupKey
				}
				d.NICs = append(d.NICs, n)
			}
		}
		for _, key := range []string{"metadata", "userdata", "vendordata"} {
			raw, ok := ec["guestinfo."+key]
			if !ok {
				continue
			}
			g := &guestinfo{Encoding: ec["guestinfo."+key+".encoding"]}
			dec, err := cloudinit.Decode(raw, g.Encoding)
			if err != nil {
				g.Error = err.Error()
			} else {
				g.Decoded = dec
				text := dec
				if strings.HasPrefix(text, "#cloud-config") {
					text = strings.SplitN(text, "\n", 2)[len(strings.SplitN(text, "\n", 2))-1]
				}
				if p, err := cloudinit.ParseDoc(text); err == nil {
					g.Parsed = p
				} else {
					g.Error = err.Error()
				}
			}
			d.Guestinfo[key] = g
		}
	}
	d.BootTime = v.Runtime.BootTime
	if v.Guest != nil {
		d.HostName = v.Guest.HostName
		d.ToolsRunningStatus = v.Guest.ToolsRunningStatus
		for _, n := range v.Guest.Net {
			d.GuestNet = append(d.GuestNet, guestNIC{MAC: n.MacAddress, IPs: append([]string{}, n.IpAddress...)})
		}
	}
	if len(v.Datastore) > 0 {
		var ds mo.Datastore
		if err := property.DefaultCollector(c.Client).RetrieveOne(ctx, v.Datastore[0], []string{"name"}, &ds); err == nil {
			d.Datastore = ds.Name
		}
	}
	if v.Snapshot != nil {
		d.Snapshots = snapshots(v.Snapshot.RootSnapshotList)
	}
	return d, nil
}

func snapshots(list []types.VirtualMachineSnapshotTree) []snapshot {
	out := []snapshot{}
	for _, s := range list {
		out = append(out, snapshot{Name: s.Name, ID: s.Snapshot.Value, Description: s.Description, CreateTime: s.CreateTime,
			State: string(s.State), Children: snapshots(s.ChildSnapshotList)})
	}
	return out
}

func datastores(ctx context.Context, c *govmomi.Client) (interface{}, error) {
	m := view.NewManager(c.Client)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"Datastore"}, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(context.Background()) }()
	var dss []mo.Datastore
	if err := v.Retrieve(ctx, []string{"Datastore"}, []string{"name", "summary", "info"}, &dss); err != nil {
		return nil, err
	}
	type dsOut struct {
		Name      string `json:"name"`
		Capacity  int64  `json:"capacity"`
		FreeSpace int64  `json:"freeSpace"`
		URL       string `json:"url"`
		Path      string `json:"path"`
		Type      string `json:"type"`
	}
	out := []dsOut{}
	for _, ds := range dss {
		o := dsOut{Name: ds.Name, Capacity: ds.Summary.Capacity, FreeSpace: ds.Summary.FreeSpace, URL: ds.Summary.Url, Type: ds.Summary.Type}
		if li, ok := ds.Info.(*types.LocalDatastoreInfo); ok {
			o.Path = li.Path
		} else if ds.Info != nil {
			o.Path = ds.Info.GetDatastoreInfo().Url
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func cloneRaw(ctx context.Context, c *govmomi.Client, source, name string) (interface{}, error) {
	src, err := findVM(ctx, c, source, "")
	if err != nil {
		return nil, err
	}
	if src == nil {
		return nil, fmt.Errorf("no VM named %q", source)
	}
	folder := src.Parent
	if folder == nil {
		return nil, fmt.Errorf("%s has no parent folder", source)
	}
	spec := types.VirtualMachineCloneSpec{Location: types.VirtualMachineRelocateSpec{Pool: src.ResourcePool}}
	obj := object.NewVirtualMachine(c.Client, src.Self)
	t, err := obj.Clone(ctx, object.NewFolder(c.Client, *folder), name, spec)
	if err == nil {
		var info *types.TaskInfo
		info, err = t.WaitForResult(ctx, nil)
		if err == nil {
			ref, _ := info.Result.(types.ManagedObjectReference)
			return map[string]interface{}{"ok": true, "id": ref.Value, "fault": nil}, nil
		}
	}
	kind, msg := faultOf(err)
	return map[string]interface{}{"ok": false, "fault": kind, "message": msg, "id": nil}, nil
}

func setExtra(ctx context.Context, c *govmomi.Client, name string, pairs []string) (interface{}, error) {
	target, err := findVM(ctx, c, name, "")
	if err != nil {
		return nil, err
	}
	if target == nil {
		return nil, fmt.Errorf("no VM named %q", name)
	}
	var extra []types.BaseOptionValue
	for _, pair := range pairs {
		i := strings.Index(pair, "=")
		if i < 1 {
			return nil, fmt.Errorf("expected KEY=VALUE, got %q", pair)
		}
		extra = append(extra, &types.OptionValue{Key: pair[:i], Value: pair[i+1:]})
	}
	t, err := object.NewVirtualMachine(c.Client, target.Self).Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: extra})
	if err != nil {
		return nil, err
	}
	if err := t.Wait(ctx); err != nil {
		return nil, err
	}
	return map[string]interface{}{"ok": true}, nil
}

func faultOf(err error) (string, string) {
	var f types.BaseMethodFault
	switch {
	case soap.IsSoapFault(err):
		sf := soap.ToSoapFault(err)
		t := reflect.TypeOf(sf.VimFault()) // decoded faults are values, not pointers
		if t != nil && t.Kind() == reflect.Ptr {
			t = t.Elem()
		}
		if t != nil {
			return t.Name(), sf.String
		}
		return "SoapFault", sf.String
	case soap.IsVimFault(err):
		f = soap.ToVimFault(err)
	default:
		if te, ok := err.(task.Error); ok {
			f = te.Fault()
			if f != nil {
				return reflect.TypeOf(f).Elem().Name(), te.LocalizedMethodFault.LocalizedMessage
			}
		}
	}
	if f != nil {
		return reflect.TypeOf(f).Elem().Name(), err.Error()
	}
	return "Error", err.Error()
}
