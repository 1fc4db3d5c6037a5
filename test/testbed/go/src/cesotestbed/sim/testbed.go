// Package sim builds the ceso test bed on top of govmomi's vcsim: an inventory shaped like a
// standalone ESXi host (or a small vCenter), real files on disk, and an http.Handler in front of
// the simulator that corrects the places where vcsim is kinder than a real host. See
// cmd/vcsim/main.go for the list of corrections.
package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// Options configure a test bed.
type Options struct {
	Mode       string // "esx" or "vpx"
	VMs        int
	Listen     string // host:port, loopback
	User       string
	Password   string
	Dir        string
	Template   string // "" for none
	CapacityGB float64
	FreeGB     float64
}

// Testbed is a running simulator plus its corrections.
type Testbed struct {
	opts    Options
	model   *simulator.Model
	server  *simulator.Server
	client  *vim25.Client // in-process, bypasses HTTP and the corrections
	ctx     context.Context
	cert    *x509.Certificate
	DSDir   string // DIR/volumes/datastore1
	dsRefs  []types.ManagedObjectReference
	URL     string
	Host    string
	Port    int
	handler *handler

	vmxMu sync.Mutex // serializes afterChange's render-and-write

	// state guarded by mu
	mu         sync.Mutex
	capacity   int64
	free       int64
	faults     []*faultRule
	delays     map[string]time.Duration
	ipDelay    time.Duration
	readyDelay time.Duration // guest.ready: report this long after the IP shows
	sessions   map[string]bool
	rendered   map[string]map[string]bool   // vm moref -> keys written at the last render
	boots      map[string]*guestState       // vm moref -> identity computed at boot
	ciStates   map[string]*ciState          // disk datastore path -> cloud-init state on that disk
	guestKeys  map[string]map[string]string // vm moref -> extraConfig keys the guest set (runtime only)
	// OVF import (nfc.go)
	leases       map[string]*nfcLease // lease moref value -> lease
	leaseTimeout time.Duration        // for leases made from now on
	leaseInit    time.Duration        // how long a new lease stays initializing
	nfcFiles     map[string]bool      // absolute files written through NFC (their space is used)
	// property collector (keyed.go)
	keyed        string            // keyed property paths: "support", "refuse" or "legacy"
	propRequests []propertyRequest // the last RetrieveProperties(Ex) calls, oldest first
}

const datastoreName = "datastore1"
const networkName = "VM Network"

// Start builds the inventory and starts serving.
func Start(opts Options) (*Testbed, error) {
	if opts.Mode != "esx" && opts.Mode != "vpx" {
		return nil, fmt.Errorf("--mode must be esx or vpx, not %q", opts.Mode)
	}
	if opts.Dir == "" {
		return nil, fmt.Errorf("--dir is required")
	}
	if opts.User == "" || opts.Password == "" {
		return nil, fmt.Errorf("--user and --password must not be empty")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	t := &Testbed{
		opts:         opts,
		ctx:          context.Background(),
		DSDir:        filepath.Join(dir, "volumes", datastoreName),
		capacity:     int64(opts.CapacityGB * (1 << 30)),
		free:         int64(opts.FreeGB * (1 << 30)),
		delays:       map[string]time.Duration{},
		sessions:     map[string]bool{},
		rendered:     map[string]map[string]bool{},
		boots:        map[string]*guestState{},
		ciStates:     map[string]*ciState{},
		guestKeys:    map[string]map[string]string{},
		readyDelay:   defaultReadyDelay,
		leases:       map[string]*nfcLease{},
		leaseTimeout: defaultLeaseTimeout,
		leaseInit:    defaultLeaseInitialize,
		nfcFiles:     map[string]bool{},
		keyed:        "support",
	}
	if err := os.MkdirAll(t.DSDir, 0o755); err != nil {
		return nil, err
	}
	var m *simulator.Model
	if opts.Mode == "esx" {
		m = simulator.ESX()
	} else {
		m = simulator.VPX()
		m.Host = 0        // no standalone host: one cluster of 3 hosts
		m.Portgroup = 0   // only the standard "VM Network"
		m.ClusterHost = 2 // keep it small
	}
	m.Datastore = 0
	m.Machine = 0
	m.Autostart = false
	if err := m.Create(); err != nil {
		return nil, fmt.Errorf("creating the vcsim model: %w", err)
	}
	t.model = m
	t.client, err = vim25.NewClient(t.ctx, m.Service)
	if err != nil {
		return nil, err
	}
	if err := t.createDatastore(); err != nil {
		return nil, err
	}
	t.applyDatastoreSpace()
	if err := t.createVMs(); err != nil {
		return nil, err
	}

	cert, err := selfSignedCert()
	if err != nil {
		return nil, err
	}
	t.cert, _ = x509.ParseCertificate(cert.Certificate[0])
	listen := opts.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	m.Service.Listen = &url.URL{Host: listen, User: url.UserPassword(opts.User, opts.Password)}
	m.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	m.Service.ServeMux = http.NewServeMux()
	t.server = m.Service.NewServer()
	t.handler = newHandler(t, t.server.Config.Handler)
	t.server.Config.Handler = t.handler
	t.server.Config.ConnContext = nfcConnContext // lets a lease cut its uploads off
	t.server.Config.ErrorLog = log.New(quietTLS{}, "vcsim-http: ", log.LstdFlags)

	addr := t.server.Listener.Addr().(*net.TCPAddr)
	t.Host = addr.IP.String()
	t.Port = addr.Port
	t.URL = "https://" + net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) + "/sdk"
	return t, nil
}

// Close stops the server and removes the simulator's own temporary files.
func (t *Testbed) Close() {
	t.closeLeases()
	if t.server != nil {
		t.server.Close()
	}
	if t.model != nil {
		t.model.Remove()
	}
}

// Info is the JSON line printed on start.
func (t *Testbed) Info() map[string]interface{} {
	api := "HostAgent"
	if t.opts.Mode == "vpx" {
		api = "VirtualCenter"
	}
	var tmpl interface{}
	if t.opts.Template != "" {
		tmpl = t.opts.Template
	}
	return map[string]interface{}{
		"url":              t.URL,
		"host":             t.Host,
		"port":             t.Port,
		"user":             t.opts.User,
		"mode":             t.opts.Mode,
		"apiType":          api,
		"thumbprintSha1":   thumbprint(sha1Sum(t.cert.Raw)),
		"thumbprintSha256": thumbprint(sha256Sum(t.cert.Raw)),
		"datastores":       map[string]string{datastoreName: t.DSDir},
		"template":         tmpl,
		"vms":              t.opts.VMs,
	}
}

// quietTLS drops the handshake errors of clients that pin a thumbprint (govmomi first tries a
// verified handshake, which fails against the self-signed certificate, then pins).
type quietTLS struct{}

func (quietTLS) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "TLS handshake error") {
		return len(p), nil
	}
	return os.Stderr.Write(p)
}

func sha1Sum(b []byte) []byte   { s := sha1.Sum(b); return s[:] }
func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func thumbprint(sum []byte) string {
	parts := make([]string, len(sum))
	for i, c := range sum {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}

func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         "localhost.localdomain",
			Organization:       []string{"VMware, Inc"},
			OrganizationalUnit: []string{"VMware ESX Server Default Certificate"},
		},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// hosts returns every HostSystem in the inventory.
func (t *Testbed) hosts() []*simulator.HostSystem {
	var out []*simulator.HostSystem
	for _, e := range simulator.Map.All("HostSystem") {
		out = append(out, e.(*simulator.HostSystem))
	}
	return out
}

// createDatastore mounts DIR/volumes/datastore1 as "datastore1" on every host.
func (t *Testbed) createDatastore() error {
	for _, h := range t.hosts() {
		host := object.NewHostSystem(t.client, h.Self)
		dss, err := host.ConfigManager().DatastoreSystem(t.ctx)
		if err != nil {
			return err
		}
		ds, err := dss.CreateLocalDatastore(t.ctx, datastoreName, t.DSDir)
		if err != nil {
			return fmt.Errorf("creating %s: %w", datastoreName, err)
		}
		t.dsRefs = appendUnique(t.dsRefs, ds.Reference())
	}
	return nil
}

func appendUnique(refs []types.ManagedObjectReference, ref types.ManagedObjectReference) []types.ManagedObjectReference {
	for _, r := range refs {
		if r == ref {
			return refs
		}
	}
	return append(refs, ref)
}

// applyDatastoreSpace makes the datastore report the configured capacity and free space
// (vcsim reports the real file system's numbers and drifts as disks are added).
func (t *Testbed) applyDatastoreSpace() {
	used := t.nfcUsed()
	t.mu.Lock()
	capacity, free := t.capacity, t.free-used
	t.mu.Unlock()
	if free < 0 {
		free = 0
	}
	for _, ref := range t.dsRefs {
		ds, ok := simulator.Map.Get(ref).(*simulator.Datastore)
		if !ok {
			continue
		}
		simulator.Map.WithLock(ds, func() {
			if ds.Summary.Capacity == capacity && ds.Summary.FreeSpace == free {
				return
			}
			info := ds.Info.GetDatastoreInfo()
			info.FreeSpace = free
			info.MaxFileSize = 62 << 40
			info.MaxVirtualDiskCapacity = 62 << 40
			ds.Summary.Capacity = capacity
			ds.Summary.FreeSpace = free
			ds.Summary.Type = "VMFS"
			simulator.Map.Update(ds, []types.PropertyChange{
				{Name: "summary.capacity", Val: capacity},
				{Name: "summary.freeSpace", Val: free},
			})
		})
	}
}

// inventory helpers for VM creation
type placement struct {
	folder *object.Folder
	pool   *object.ResourcePool
	host   *object.HostSystem
}

func (t *Testbed) placement() (*placement, error) {
	dcs := simulator.Map.All("Datacenter")
	if len(dcs) == 0 {
		return nil, fmt.Errorf("no datacenter")
	}
	dc := dcs[0].(*simulator.Datacenter)
	p := &placement{folder: object.NewFolder(t.client, dc.VmFolder)}
	hosts := t.hosts()
	if len(hosts) == 0 {
		return nil, fmt.Errorf("no host")
	}
	h := hosts[0]
	for _, x := range hosts {
		if x.Self.Value < h.Self.Value {
			h = x
		}
	}
	p.host = object.NewHostSystem(t.client, h.Self)
	pool, err := p.host.ResourcePool(t.ctx)
	if err != nil {
		return nil, err
	}
	p.pool = pool
	if t.opts.Mode == "vpx" {
		p.host = nil // let the cluster place it
	}
	return p, nil
}

type vmSpec struct {
	name     string
	guestID  string
	cpus     int32
	memMB    int64
	firmware string
	diskGB   int64
	mac      string
	powerOn  bool
}

func (t *Testbed) createVMs() error {
	p, err := t.placement()
	if err != nil {
		return err
	}
	guests := []string{"ubuntu64Guest", "ubuntu64Guest", "ubuntu64Guest", "debian10_64Guest", "centos7_64Guest"}
	var specs []vmSpec
	if t.opts.Template != "" {
		specs = append(specs, vmSpec{name: t.opts.Template, guestID: "ubuntu64Guest", cpus: 2, memMB: 2048,
			firmware: "efi", diskGB: 10, mac: macFor(t.opts.Template)})
	}
	for i := 1; i <= t.opts.VMs; i++ {
		name := fmt.Sprintf("vm-%04d", i)
		specs = append(specs, vmSpec{name: name, guestID: guests[(i-1)%len(guests)], cpus: int32(1 + (i-1)%2),
			memMB: int64(1024 * (1 + (i-1)%4)), firmware: []string{"bios", "efi"}[i%2], diskGB: 16,
			mac: macFor(name), powerOn: i%2 == 1})
	}
	start := time.Now()
	for _, s := range specs {
		ref, err := t.createVM(p, s)
		if err != nil {
			return fmt.Errorf("creating %s: %w", s.name, err)
		}
		if s.powerOn {
			vm := object.NewVirtualMachine(t.client, ref)
			task, err := vm.PowerOn(t.ctx)
			if err == nil {
				err = task.Wait(t.ctx)
			}
			if err != nil {
				return fmt.Errorf("powering on %s: %w", s.name, err)
			}
		}
		t.afterChange([]types.ManagedObjectReference{ref})
	}
	log.Printf("created %d VMs in %s", len(specs), time.Since(start).Round(time.Millisecond))
	return nil
}

func macFor(name string) string {
	s := sha1.Sum([]byte(name))
	return fmt.Sprintf("00:0c:29:%02x:%02x:%02x", s[0], s[1], s[2])
}

func (t *Testbed) createVM(p *placement, s vmSpec) (types.ManagedObjectReference, error) {
	unit := int32(0)
	scsi := &types.ParaVirtualSCSIController{VirtualSCSIController: types.VirtualSCSIController{
		VirtualController: types.VirtualController{VirtualDevice: types.VirtualDevice{Key: 1000}, BusNumber: 0},
		SharedBus:         types.VirtualSCSISharingNoSharing, ScsiCtlrUnitNumber: 7,
	}}
	disk := &types.VirtualDisk{
		VirtualDevice: types.VirtualDevice{
			Key: 2000, ControllerKey: 1000, UnitNumber: &unit,
			Backing: &types.VirtualDiskFlatVer2BackingInfo{
				VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{
					FileName: fmt.Sprintf("[%s] %s/%s.vmdk", datastoreName, s.name, s.name),
				},
				DiskMode:        string(types.VirtualDiskModePersistent),
				ThinProvisioned: types.NewBool(true),
			},
		},
		CapacityInKB:    s.diskGB << 20,
		CapacityInBytes: s.diskGB << 30,
	}
	nic := &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: types.VirtualEthernetCard{
		VirtualDevice: types.VirtualDevice{
			Key: 4000,
			Backing: &types.VirtualEthernetCardNetworkBackingInfo{
				VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: networkName},
			},
			Connectable: &types.VirtualDeviceConnectInfo{StartConnected: true, AllowGuestControl: true, Connected: true},
		},
		AddressType: string(types.VirtualEthernetCardMacTypeGenerated),
		MacAddress:  s.mac,
	}}}
	spec := types.VirtualMachineConfigSpec{
		Name:     s.name,
		GuestId:  s.guestID,
		NumCPUs:  s.cpus,
		MemoryMB: s.memMB,
		Firmware: s.firmware,
		Version:  "vmx-19",
		Files:    &types.VirtualMachineFileInfo{VmPathName: fmt.Sprintf("[%s]", datastoreName)},
		DeviceChange: []types.BaseVirtualDeviceConfigSpec{
			&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: scsi},
			&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd,
				FileOperation: types.VirtualDeviceConfigSpecFileOperationCreate, Device: disk},
			&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: nic},
		},
	}
	task, err := p.folder.CreateVM(t.ctx, spec, p.pool, p.host)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	info, err := task.WaitForResult(t.ctx, nil)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	return info.Result.(types.ManagedObjectReference), nil
}

// vmByRef returns the simulator's VM object, or nil.
func vmByRef(ref types.ManagedObjectReference) *simulator.VirtualMachine {
	if ref.Type != "VirtualMachine" {
		return nil
	}
	vm, _ := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	return vm
}

// reconfigure runs ReconfigVM_Task in process (no corrections, no fault injection).
func (t *Testbed) reconfigure(ref types.ManagedObjectReference, spec types.VirtualMachineConfigSpec) error {
	req := types.ReconfigVM_Task{This: ref, Spec: spec}
	res, err := methods.ReconfigVM_Task(t.ctx, t.client, &req)
	if err != nil {
		return err
	}
	return object.NewTask(t.client, res.Returnval).Wait(t.ctx)
}
