package esxishell

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Datastore is one datastore with the local directory that holds its files.
type Datastore struct {
	Name    string
	Ref     types.ManagedObjectReference
	Dir     string // local directory (volumesRoot/NAME, or the simulator's url)
	Summary types.DatastoreSummary
}

// Inventory is the standalone host's fixed objects.
type Inventory struct {
	Datacenter *object.Datacenter
	VMFolder   *object.Folder
	Host       *object.HostSystem
	Pool       *object.ResourcePool
}

// Inventory finds the (single) datacenter, host, root pool and VM folder.
func (s *Session) Inventory() (*Inventory, error) {
	if s.inv != nil {
		return s.inv, nil
	}
	f := find.NewFinder(s.Client, false)
	dc, err := f.DefaultDatacenter(s.Ctx)
	if err != nil {
		return nil, err
	}
	f.SetDatacenter(dc)
	folders, err := dc.Folders(s.Ctx)
	if err != nil {
		return nil, err
	}
	host, err := f.DefaultHostSystem(s.Ctx)
	if err != nil {
		return nil, err
	}
	pool, err := host.ResourcePool(s.Ctx)
	if err != nil {
		return nil, err
	}
	s.inv = &Inventory{Datacenter: dc, VMFolder: folders.VmFolder, Host: host, Pool: pool}
	return s.inv, nil
}

// Datastores lists the datastores with their local directories, sorted by name.
func (s *Session) Datastores() ([]Datastore, error) {
	m := view.NewManager(s.Client)
	v, err := m.CreateContainerView(s.Ctx, s.Client.ServiceContent.RootFolder, []string{"Datastore"}, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(s.Ctx) }()
	var dss []mo.Datastore
	if err := v.Retrieve(s.Ctx, []string{"Datastore"}, []string{"name", "summary"}, &dss); err != nil {
		return nil, err
	}
	out := make([]Datastore, 0, len(dss))
	for _, d := range dss {
		dir := filepath.Join(s.Config.VolumesRoot, d.Name)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			// Fall back on where the simulator keeps the files (vcsim's url is a local path).
			if filepath.IsAbs(d.Summary.Url) {
				dir = d.Summary.Url
			}
		}
		out = append(out, Datastore{Name: d.Name, Ref: d.Self, Dir: filepath.Clean(dir), Summary: d.Summary})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// VMListProps are the properties getallvms needs.
var VMListProps = []string{"name", "config.files.vmPathName", "config.guestId", "config.version", "config.annotation", "summary.config"}

// ListVMs returns every VM with the given properties.
func (s *Session) ListVMs(props []string) ([]mo.VirtualMachine, error) {
	m := view.NewManager(s.Client)
	v, err := m.CreateContainerView(s.Ctx, s.Client.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(s.Ctx) }()
	var vms []mo.VirtualMachine
	if err := v.Retrieve(s.Ctx, []string{"VirtualMachine"}, props, &vms); err != nil {
		return nil, err
	}
	return vms, nil
}

func (s *Session) propertyOne(ref types.ManagedObjectReference, props []string, dst interface{}) error {
	return property.DefaultCollector(s.Client).RetrieveOne(s.Ctx, ref, props, dst)
}

// VMRef is the managed-object reference a vmid names (the vmid IS the moref value).
func VMRef(vmid string) types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "VirtualMachine", Value: vmid}
}

// ErrVMNotFound is returned (wrapped in a *Fault) when a vmid names no VM.
var ErrVMNotFound = errors.New("vm not found")

// VM fetches one VM by vmid. A vmid that names no VM gives the NotFound fault vim-cmd
// prints: msg = "Unable to find a VM corresponding to "16"".
func (s *Session) VM(vmid string, props ...string) (*mo.VirtualMachine, error) {
	if vmid == "" {
		return nil, VMNotFoundFault(vmid)
	}
	if len(props) == 0 {
		props = []string{"name"}
	}
	var vm mo.VirtualMachine
	pc := property.DefaultCollector(s.Client)
	err := pc.RetrieveOne(s.Ctx, VMRef(vmid), props, &vm)
	if err != nil {
		if isNotFound(err) {
			return nil, VMNotFoundFault(vmid)
		}
		return nil, err
	}
	if vm.Self.Value == "" {
		return nil, VMNotFoundFault(vmid)
	}
	return &vm, nil
}

func isNotFound(err error) bool {
	if soap.IsSoapFault(err) {
		switch soap.ToSoapFault(err).VimFault().(type) {
		case types.ManagedObjectNotFound, *types.ManagedObjectNotFound:
			return true
		}
	}
	if soap.IsVimFault(err) {
		switch soap.ToVimFault(err).(type) {
		case *types.ManagedObjectNotFound:
			return true
		}
	}
	return false
}

// VMNotFoundFault is the fault for a vmid that names no VM.
func VMNotFoundFault(vmid string) *Fault {
	return &Fault{Fault: &types.NotFound{}, Msg: fmt.Sprintf("Unable to find a VM corresponding to \"%s\"", vmid)}
}
