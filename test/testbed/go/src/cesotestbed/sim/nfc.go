package sim

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// OVF import the way a real host does it (vcsim 0.24.2 throws the uploaded bytes away, has no
// initializing state and no lease timeout, and its CreateImportSpec crashes on a descriptor
// without a VirtualSystem):
//
//   - CreateImportSpec: the descriptor is checked first (no VirtualSystem, no
//     VirtualHardwareSection, items without a ResourceType, disks without a Parent or a disk
//     reference: InvalidArgument{ovfDescriptor}, where vcsim's handler panicked); then vcsim
//     builds the spec (its refusal of unknown items such as the serial port, ResourceType 21,
//     in error[] is kept). Corrections: a disk's ovf:capacity without
//     capacityAllocationUnits is bytes (vcsim read it as KB); cisp.diskProvisioning decides
//     thin or thick (vcsim made every disk thin; unset means thick, as on a real host);
//     file items that are not disks (ISO images) have create=true (uploaded with PUT).
//   - ImportVApp: the VM is created (device checks as for CreateVM_Task: NoDiskSpace for
//     thick disks, InvalidDeviceSpec for unknown networks), its disks get a descriptor and a
//     sparse -flat extent of their capacity, its .vmx is rendered. The lease is a real managed
//     object: state initializing for ~200 ms, then ready with info (deviceUrl
//     https://*/nfc/<lease>/<file>, sslThumbprint = the host's SHA-1 thumbprint,
//     totalDiskCapacityInKB, leaseTimeout = the configured timeout, default 300 s).
//   - /nfc/<lease>/<file>: POST application/x-vnd.vmware-streamVmdk to a disk decodes the
//     streamOptimized VMDK as it arrives into the disk's -flat extent (vmdkstream.go); PUT
//     stores a non-disk file (Overwrite: f refuses an existing one). An exact Content-Length
//     is required (chunked: 411). A stream that is not streamOptimized, is truncated, or is
//     larger than the disk: 500 with a message, and the lease goes to error. 200 is success.
//     No session cookie is needed (the ticket is the URL), as with vcsim.
//   - HttpNfcLeaseProgress renews the lease; without one within leaseTimeout the lease goes
//     to error (Timedout), an upload in flight is cut off, and Progress/Complete/Abort answer
//     Timedout. Complete: done. Abort: error (the given fault, else RequestCanceled), the NFC
//     URLs stop working; a second Abort or a Complete after it: InvalidState. Neither deletes
//     the VM (what a real host does is unconfirmed: the client cleans up).
//   - Space: the allocated size of every extent written through NFC is taken from the
//     datastore's free space (until the file is deleted).

const (
	streamVmdkType         = "application/x-vnd.vmware-streamVmdk"
	defaultLeaseTimeout    = 300 * time.Second
	defaultLeaseInitialize = 200 * time.Millisecond
)

type nfcFile struct {
	Name     string `json:"name"`
	path     string // absolute: the descriptor for a disk
	Disk     bool   `json:"disk"`
	Capacity int64  `json:"capacityBytes,omitempty"`
	Received int64  `json:"bytesReceived"` // body bytes, all uploads
	Written  int64  `json:"bytesWritten"`  // data bytes written to the file (disks: non-zero grains)
	Uploads  int    `json:"uploads"`
	Status   string `json:"status"` // "", uploading, done, failed: ...
}

type nfcUpload struct {
	conn net.Conn
	cut  chan struct{}
	once sync.Once
	why  string
}

func (u *nfcUpload) stop(why string) {
	u.once.Do(func() {
		u.why = why
		close(u.cut)
		if u.conn != nil {
			_ = u.conn.SetReadDeadline(time.Now()) // unblocks a read of the body
		}
	})
}

// nfcLease is the HttpNfcLease managed object (in the global registry, so the property
// collector serves it) plus the test bed's bookkeeping.
type nfcLease struct {
	mo.HttpNfcLease // first field: the property collector reads this

	t        *Testbed
	mu       sync.Mutex // guards the fields below (never held while taking the registry's lock)
	state    types.HttpNfcLeaseState
	files    map[string]*nfcFile
	vm       types.ManagedObjectReference
	vmName   string
	timeout  time.Duration
	deadline time.Time
	progress int // HttpNfcLeaseProgress calls
	percent  int32
	timedOut bool
	closed   bool // done or aborted: the tickets are gone
	errMsg   string
	active   map[*nfcUpload]bool
	created  time.Time
}

type connKey struct{}

// nfcConnContext remembers each connection so an upload can be cut off.
func nfcConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

func newLeaseID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[0] = 0x52 // ESXi's lease ids look like session ids: "52xxxxxx-..."
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (t *Testbed) leaseByID(id string) *nfcLease {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.leases[id]
}

// publish applies property changes to the lease object so RetrieveProperties and
// WaitForUpdatesEx see them. Caller must not hold l.mu.
func (l *nfcLease) publish(changes []types.PropertyChange) {
	simulator.Map.WithLock(l, func() { simulator.Map.Update(l, changes) })
}

func localizedFault(f types.BaseMethodFault, msg string) *types.LocalizedMethodFault {
	if msg == "" {
		msg = faultMessage(f)
	}
	return &types.LocalizedMethodFault{Fault: f, LocalizedMessage: msg}
}

// fail moves a ready (or initializing) lease to error and cuts its uploads off.
func (l *nfcLease) fail(f types.BaseMethodFault, msg string, timedOut bool) bool {
	l.mu.Lock()
	if l.state != types.HttpNfcLeaseStateReady && l.state != types.HttpNfcLeaseStateInitializing {
		l.mu.Unlock()
		return false
	}
	l.state = types.HttpNfcLeaseStateError
	l.timedOut = timedOut
	lf := localizedFault(f, msg)
	l.errMsg = lf.LocalizedMessage
	uploads := l.uploads()
	l.mu.Unlock()
	for _, u := range uploads {
		u.stop(lf.LocalizedMessage)
	}
	l.publish([]types.PropertyChange{{Name: "error", Val: lf}, {Name: "state", Val: types.HttpNfcLeaseStateError}})
	log.Printf("nfc lease %s: error: %s", l.Self.Value, lf.LocalizedMessage)
	return true
}

func (l *nfcLease) uploads() []*nfcUpload {
	var out []*nfcUpload
	for u := range l.active {
		out = append(out, u)
	}
	return out
}

// becomeReady ends the initializing phase.
func (l *nfcLease) becomeReady(info *types.HttpNfcLeaseInfo) {
	l.mu.Lock()
	if l.state != types.HttpNfcLeaseStateInitializing {
		l.mu.Unlock()
		return
	}
	l.state = types.HttpNfcLeaseStateReady
	l.deadline = time.Now().Add(l.timeout)
	timeout := l.timeout
	l.mu.Unlock()
	l.publish([]types.PropertyChange{
		{Name: "initializeProgress", Val: int32(100)},
		{Name: "info", Val: info},
		{Name: "state", Val: types.HttpNfcLeaseStateReady},
	})
	time.AfterFunc(timeout, l.checkExpiry)
}

// checkExpiry fires at the deadline (renewed by progress calls: it re-arms).
func (l *nfcLease) checkExpiry() {
	l.mu.Lock()
	if l.state != types.HttpNfcLeaseStateReady {
		l.mu.Unlock()
		return
	}
	left := time.Until(l.deadline)
	l.mu.Unlock()
	if left > 0 {
		time.AfterFunc(left, l.checkExpiry)
		return
	}
	l.fail(new(types.Timedout), "", true)
}

// ---- CreateImportSpec ----

// checkDescriptor refuses what vcsim's CreateImportSpec would crash on.
func checkDescriptor(desc string) types.BaseMethodFault {
	bad := &types.InvalidArgument{InvalidProperty: "ovfDescriptor"}
	env, err := ovf.Unmarshal(strings.NewReader(desc))
	if err != nil || env == nil || env.VirtualSystem == nil || len(env.VirtualSystem.VirtualHardware) == 0 {
		return bad
	}
	for _, item := range env.VirtualSystem.VirtualHardware[0].Item {
		if item.ResourceType == nil {
			return bad
		}
		switch *item.ResourceType {
		case 3, 4:
			if item.VirtualQuantity == nil {
				return bad
			}
		case 15:
			if item.Parent == nil {
				return bad
			}
		case 17:
			if item.Parent == nil || len(item.HostResource) == 0 || env.Disk == nil {
				return bad
			}
			found := false
			for _, d := range env.Disk.Disks {
				if strings.HasSuffix(item.HostResource[0], d.DiskID) {
					found = d.FileRef != nil
					break
				}
			}
			if !found {
				return bad
			}
		}
	}
	return nil
}

var thinProvisioning = map[string]bool{
	"thin": true, "seSparse": true, "sparse": true, "monolithicSparse": true, "twoGbMaxExtentSparse": true,
	"flat": false, "monolithicFlat": false, "twoGbMaxExtentFlat": false, "thick": false, "eagerZeroedThick": false, "": false,
}

func (t *Testbed) createImportSpec(req *types.CreateImportSpec) (*types.OvfCreateImportSpecResult, types.BaseMethodFault) {
	if f := checkDescriptor(req.OvfDescriptor); f != nil {
		return nil, f
	}
	if _, ok := simulator.Map.Get(req.Datastore).(*simulator.Datastore); !ok {
		return nil, &types.ManagedObjectNotFound{Obj: req.Datastore}
	}
	if _, ok := simulator.Map.Get(req.ResourcePool).(mo.Entity); !ok {
		return nil, &types.ManagedObjectNotFound{Obj: req.ResourcePool}
	}
	thin, ok := thinProvisioning[req.Cisp.DiskProvisioning]
	if !ok {
		return nil, &types.InvalidArgument{InvalidProperty: "cisp.diskProvisioning"}
	}
	var res *types.CreateImportSpecResponse
	var fault types.BaseMethodFault
	func() {
		defer func() {
			if p := recover(); p != nil {
				log.Printf("CreateImportSpec: vcsim panicked on the descriptor: %v", p)
				fault = &types.InvalidArgument{InvalidProperty: "ovfDescriptor"}
			}
		}()
		r, err := methods.CreateImportSpec(t.ctx, t.client, req)
		if err != nil {
			fault = faultFromError(err)
			return
		}
		res = r
	}()
	if fault != nil {
		return nil, fault
	}
	result := res.Returnval
	env, _ := ovf.Unmarshal(strings.NewReader(req.OvfDescriptor))
	if spec, ok := result.ImportSpec.(*types.VirtualMachineImportSpec); ok {
		// disks in descriptor order: vcsim numbers them disk-0, disk-1, ...
		var diskDescs []*ovf.VirtualDiskDesc
		for _, item := range env.VirtualSystem.VirtualHardware[0].Item {
			if *item.ResourceType != 17 {
				continue
			}
			if req.Cisp.DeploymentOption != "" && item.Configuration != nil && *item.Configuration != req.Cisp.DeploymentOption {
				continue
			}
			for i := range env.Disk.Disks {
				if strings.HasSuffix(item.HostResource[0], env.Disk.Disks[i].DiskID) {
					diskDescs = append(diskDescs, &env.Disk.Disks[i])
					break
				}
			}
		}
		n := 0
		for _, c := range spec.ConfigSpec.DeviceChange {
			d, ok := c.GetVirtualDeviceConfigSpec().Device.(*types.VirtualDisk)
			if !ok {
				continue
			}
			if n < len(diskDescs) && diskDescs[n].CapacityAllocationUnits == nil {
				var b int64
				_, _ = fmt.Sscan(diskDescs[n].Capacity, &b)
				d.CapacityInKB = b / 1024 // OVF's default unit is the byte
			}
			n++
			if b, ok := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
				b.ThinProvisioned = types.NewBool(thin)
				if req.Cisp.DiskProvisioning == "eagerZeroedThick" {
					b.EagerlyScrub = types.NewBool(true)
				}
			}
		}
	}
	for i := range result.FileItem {
		if result.FileItem[i].CimType != 17 {
			result.FileItem[i].Create = true
		}
	}
	return &result, nil
}

// ---- ImportVApp ----

func (t *Testbed) importVApp(req *types.ImportVApp) (types.ManagedObjectReference, types.BaseMethodFault) {
	var none types.ManagedObjectReference
	spec, ok := req.Spec.(*types.VirtualMachineImportSpec)
	if !ok {
		return none, &types.InvalidArgument{InvalidProperty: "spec"}
	}
	if _, ok := simulator.Map.Get(req.This).(*simulator.ResourcePool); !ok {
		return none, &types.ManagedObjectNotFound{Obj: req.This}
	}
	dcs := simulator.Map.All("Datacenter")
	if len(dcs) == 0 {
		return none, &types.InvalidState{}
	}
	folderRef := dcs[0].(*simulator.Datacenter).VmFolder
	if req.Folder != nil {
		if _, ok := simulator.Map.Get(*req.Folder).(*simulator.Folder); !ok {
			return none, &types.ManagedObjectNotFound{Obj: *req.Folder}
		}
		folderRef = *req.Folder
	}
	if f := t.validateDevices(spec.ConfigSpec.DeviceChange); f != nil {
		return none, f
	}
	var host *object.HostSystem
	if req.Host != nil {
		host = object.NewHostSystem(t.client, *req.Host)
	}
	task, err := object.NewFolder(t.client, folderRef).CreateVM(t.ctx, spec.ConfigSpec, object.NewResourcePool(t.client, req.This), host)
	if err != nil {
		return none, faultFromError(err)
	}
	info, err := task.WaitForResult(t.ctx, nil)
	if err != nil {
		f := faultFromError(err)
		if ff, ok := f.(types.BaseFileFault); ok {
			ff.GetFileFault().File = t.scrub(ff.GetFileFault().File)
		}
		return none, f
	}
	vmRef := info.Result.(types.ManagedObjectReference)
	t.afterChange([]types.ManagedObjectReference{vmRef}) // real disk files and the .vmx
	vm := vmByRef(vmRef)
	if vm == nil {
		return none, &types.ManagedObjectNotFound{Obj: vmRef}
	}

	t.mu.Lock()
	timeout, initDelay := t.leaseTimeout, t.leaseInit
	t.mu.Unlock()
	l := &nfcLease{t: t, state: types.HttpNfcLeaseStateInitializing, files: map[string]*nfcFile{}, vm: vmRef,
		timeout: timeout, active: map[*nfcUpload]bool{}, created: time.Now()}
	l.Self = types.ManagedObjectReference{Type: "HttpNfcLease", Value: newLeaseID()}
	l.HttpNfcLease.State = types.HttpNfcLeaseStateInitializing
	l.Mode = string(types.HttpNfcLeaseModePushOrGet)
	linfo := &types.HttpNfcLeaseInfo{Lease: l.Self, Entity: vmRef, LeaseTimeout: int32(timeout / time.Second)}
	thumb := thumbprint(sha1Sum(t.cert.Raw))
	simulator.Map.WithLock(vm, func() {
		l.vmName = vm.Name
		devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
		counts := map[string]int{}
		for _, d := range devices {
			fb, ok := d.GetVirtualDevice().Backing.(types.BaseVirtualDeviceFileBackingInfo)
			if !ok {
				continue
			}
			name := fb.GetVirtualDeviceFileBackingInfo().FileName
			file, fault := t.resolve(name)
			if fault != nil {
				continue
			}
			base := path.Base(filepath.ToSlash(file))
			disk, isDisk := d.(*types.VirtualDisk)
			f := &nfcFile{Name: base, path: file, Disk: isDisk}
			if isDisk {
				f.Capacity = diskCapacity(disk)
				linfo.TotalDiskCapacityInKB += f.Capacity / 1024
			}
			l.files[base] = f
			kind := devices.Type(d)
			n := counts[kind]
			counts[kind]++
			linfo.DeviceUrl = append(linfo.DeviceUrl, types.HttpNfcLeaseDeviceUrl{
				Key:           fmt.Sprintf("/%s/%s:%d", vm.Self.Value, kind, n),
				ImportKey:     fmt.Sprintf("/%s/%s:%d", vm.Name, kind, n),
				Url:           (&url.URL{Scheme: "https", Host: "*", Path: "/nfc/" + l.Self.Value + "/" + base}).String(),
				SslThumbprint: thumb,
				Disk:          types.NewBool(isDisk),
				TargetId:      base,
				FileSize:      0,
			})
		}
	})
	t.mu.Lock()
	t.leases[l.Self.Value] = l
	t.mu.Unlock()
	simulator.Map.Put(l)
	log.Printf("nfc lease %s for %s: initializing (%d files, timeout %s)", l.Self.Value, l.vmName, len(l.files), timeout)
	time.AfterFunc(initDelay, func() { l.becomeReady(linfo) })
	return l.Self, nil
}

// ---- lease methods ----

func (t *Testbed) leaseProgress(l *nfcLease, percent int32) types.BaseMethodFault {
	l.mu.Lock()
	switch {
	case l.timedOut:
		l.mu.Unlock()
		return new(types.Timedout)
	case l.state != types.HttpNfcLeaseStateReady && l.state != types.HttpNfcLeaseStateInitializing:
		l.mu.Unlock()
		return new(types.InvalidState)
	case percent < 0 || percent > 100:
		l.mu.Unlock()
		return &types.InvalidArgument{InvalidProperty: "percent"}
	}
	l.progress++
	l.percent = percent
	if l.state == types.HttpNfcLeaseStateReady {
		l.deadline = time.Now().Add(l.timeout)
	}
	l.mu.Unlock()
	l.publish([]types.PropertyChange{{Name: "transferProgress", Val: percent}})
	return nil
}

func (t *Testbed) leaseComplete(l *nfcLease) types.BaseMethodFault {
	l.mu.Lock()
	switch {
	case l.timedOut:
		l.mu.Unlock()
		return new(types.Timedout)
	case l.state != types.HttpNfcLeaseStateReady:
		l.mu.Unlock()
		return new(types.InvalidState)
	}
	l.state = types.HttpNfcLeaseStateDone
	l.closed = true
	uploads := l.uploads()
	l.mu.Unlock()
	for _, u := range uploads {
		u.stop("the lease was completed during the upload")
	}
	l.publish([]types.PropertyChange{{Name: "transferProgress", Val: int32(100)}, {Name: "state", Val: types.HttpNfcLeaseStateDone}})
	log.Printf("nfc lease %s: done", l.Self.Value)
	return nil
}

func (t *Testbed) leaseAbort(l *nfcLease, cause types.BaseMethodFault) types.BaseMethodFault {
	l.mu.Lock()
	switch {
	case l.timedOut:
		l.mu.Unlock()
		return new(types.Timedout)
	case l.closed:
		l.mu.Unlock()
		return new(types.InvalidState)
	}
	wasActive := l.state == types.HttpNfcLeaseStateReady || l.state == types.HttpNfcLeaseStateInitializing
	l.closed = true
	l.mu.Unlock()
	if cause == nil {
		cause = new(types.RequestCanceled)
	}
	if wasActive {
		l.fail(cause, "", false)
	}
	log.Printf("nfc lease %s: aborted (the VM %s is kept)", l.Self.Value, l.vmName)
	return nil
}

// closeLeases cuts every upload off (the server is stopping).
func (t *Testbed) closeLeases() {
	t.mu.Lock()
	var ls []*nfcLease
	for _, l := range t.leases {
		ls = append(ls, l)
	}
	t.mu.Unlock()
	for _, l := range ls {
		l.mu.Lock()
		uploads := l.uploads()
		l.mu.Unlock()
		for _, u := range uploads {
			u.stop("the host is shutting down")
		}
	}
}

// ---- the NFC endpoint ----

func nfcError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

// countingReader counts the body bytes as they are read and stops when the upload is cut.
type countingReader struct {
	r io.Reader
	n *int64
	u *nfcUpload
}

func (c *countingReader) Read(p []byte) (int, error) {
	select {
	case <-c.u.cut:
		return 0, fmt.Errorf("upload cut off: %s", c.u.why)
	default:
	}
	n, err := c.r.Read(p)
	atomic.AddInt64(c.n, int64(n))
	if err != nil {
		select {
		case <-c.u.cut:
			return n, fmt.Errorf("upload cut off: %s", c.u.why)
		default:
		}
	}
	return n, err
}

// serveNFC handles /nfc/<lease>/<file> for the test bed's leases (others go to vcsim).
func (t *Testbed) serveNFC(w http.ResponseWriter, r *http.Request) bool {
	rest := strings.TrimPrefix(r.URL.Path, "/nfc/")
	parts := strings.Split(rest, "/")
	if len(parts) != 2 {
		return false
	}
	l := t.leaseByID(parts[0])
	if l == nil {
		return false // not ours (vcsim's own leases, or a 404 from vcsim)
	}
	l.mu.Lock()
	f := l.files[parts[1]]
	state, closed := l.state, l.closed
	l.mu.Unlock()
	if f == nil || closed {
		http.NotFound(w, r)
		return true
	}
	if state != types.HttpNfcLeaseStateReady {
		nfcError(w, http.StatusInternalServerError, fmt.Sprintf("The lease is not ready (state %s).", state))
		return true
	}
	switch r.Method {
	case http.MethodGet:
		http.ServeFile(w, r, f.path)
		return true
	case http.MethodPut, http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, PUT, POST")
		nfcError(w, http.StatusMethodNotAllowed, "Method not allowed.")
		return true
	}
	if r.ContentLength < 0 || len(r.TransferEncoding) > 0 {
		nfcError(w, http.StatusLengthRequired, "Content-Length is required.")
		return true
	}
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case r.Method == http.MethodPost && !strings.EqualFold(ctype, streamVmdkType):
		nfcError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("POST needs Content-Type %s, not %q.", streamVmdkType, r.Header.Get("Content-Type")))
		return true
	case r.Method == http.MethodPost && !f.Disk:
		nfcError(w, http.StatusInternalServerError, fmt.Sprintf("%s is not a disk: upload it with PUT.", f.Name))
		return true
	case r.Method == http.MethodPut && f.Disk:
		nfcError(w, http.StatusInternalServerError, fmt.Sprintf("%s is a disk: POST it as %s.", f.Name, streamVmdkType))
		return true
	case r.Method == http.MethodPut && strings.EqualFold(r.Header.Get("Overwrite"), "f") && exists(f.path):
		nfcError(w, http.StatusPreconditionFailed, fmt.Sprintf("%s exists (Overwrite: F).", f.Name))
		return true
	}

	u := &nfcUpload{cut: make(chan struct{})}
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		u.conn = c
	}
	l.mu.Lock()
	if l.state != types.HttpNfcLeaseStateReady {
		l.mu.Unlock()
		nfcError(w, http.StatusInternalServerError, "The lease is not ready.")
		return true
	}
	l.active[u] = true
	f.Uploads++
	f.Status = "uploading"
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.active, u)
		l.mu.Unlock()
	}()
	body := &countingReader{r: r.Body, n: &f.Received, u: u}

	var written int64
	var err error
	var res streamResult
	if f.Disk {
		res, written, err = t.receiveDisk(f, body, u, r.ContentLength)
	} else {
		written, err = t.receiveFile(f, body, r.ContentLength)
	}
	atomic.AddInt64(&f.Written, written)
	t.applyDatastoreSpace()

	if err != nil {
		msg := err.Error()
		select {
		case <-u.cut:
			msg = "The upload was cut off: " + u.why
		default:
		}
		l.mu.Lock()
		f.Status = "failed: " + msg
		l.mu.Unlock()
		var fault types.BaseMethodFault = &types.SystemError{Reason: msg}
		if nds, ok := err.(*noSpaceError); ok {
			fault = &types.NoDiskSpace{FileFault: types.FileFault{File: t.dsPath(nds.file)}, Datastore: datastoreName}
			msg = faultMessage(fault)
		}
		l.fail(fault, fmt.Sprintf("Uploading %s failed: %s", f.Name, msg), false)
		log.Printf("nfc %s %s: %s", r.Method, f.Name, msg)
		nfcError(w, http.StatusInternalServerError, msg)
		return true
	}
	l.mu.Lock()
	f.Status = "done"
	l.mu.Unlock()
	if f.Disk {
		log.Printf("nfc %s %s: %d bytes received, %d grains, %d bytes of data (capacity %d)", r.Method, f.Name, atomic.LoadInt64(&f.Received), res.Grains, written, res.Capacity)
	} else {
		log.Printf("nfc %s %s: %d bytes stored", r.Method, f.Name, written)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return true
}

type noSpaceError struct{ file string }

func (e *noSpaceError) Error() string { return "there is not enough space on the datastore" }

// receiveDisk decodes a streamOptimized VMDK into the disk's -flat extent.
func (t *Testbed) receiveDisk(f *nfcFile, body io.Reader, u *nfcUpload, length int64) (streamResult, int64, error) {
	desc, err := readDescriptor(f.path)
	if err != nil || !desc.flat() {
		return streamResult{}, 0, fmt.Errorf("the disk %s has no flat extent to write to", f.Name)
	}
	extent := extentFiles(f.path, desc)[0]
	capacity := desc.sectors() * sectorSize
	out, err := os.OpenFile(extent, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return streamResult{}, 0, err
	}
	defer out.Close()
	// a new upload replaces what an earlier one wrote
	if err := out.Truncate(0); err != nil {
		return streamResult{}, 0, err
	}
	if err := out.Truncate(capacity); err != nil {
		return streamResult{}, 0, err
	}
	t.trackNFCExtent(extent)
	avail := t.freeBytes()
	var written int64
	res, err := decodeStreamVMDK(body, capacity, out, func(n int64) error {
		select {
		case <-u.cut:
			return fmt.Errorf("upload cut off: %s", u.why)
		default:
		}
		if written+n > avail {
			return &noSpaceError{file: extent}
		}
		written += n
		return nil
	})
	if err == nil && atomic.LoadInt64(body.(*countingReader).n) < length {
		err = badStream("the body is shorter than its Content-Length")
	}
	return res, written, err
}

// receiveFile stores a non-disk file (an ISO image) as it is.
func (t *Testbed) receiveFile(f *nfcFile, body io.Reader, length int64) (int64, error) {
	if !exists(filepath.Dir(f.path)) {
		return 0, fmt.Errorf("the folder of %s does not exist", f.Name)
	}
	tmp := fmt.Sprintf("%s.%s.testbed-tmp", f.path, randHex(4))
	out, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, body)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != length {
		err = fmt.Errorf("received %d of %d bytes", n, length)
	}
	if err == nil && n > t.freeBytes() {
		err = &noSpaceError{file: f.path}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return 0, err
	}
	if err := os.Rename(tmp, f.path); err != nil {
		_ = os.Remove(tmp)
		return 0, err
	}
	t.trackNFCExtent(f.path)
	return n, nil
}

// ---- space accounting ----

func (t *Testbed) trackNFCExtent(file string) {
	t.mu.Lock()
	t.nfcFiles[file] = true
	t.mu.Unlock()
}

// nfcUsed is the allocated size of the files written through NFC that still exist.
func (t *Testbed) nfcUsed() int64 {
	t.mu.Lock()
	files := make([]string, 0, len(t.nfcFiles))
	for f := range t.nfcFiles {
		files = append(files, f)
	}
	t.mu.Unlock()
	var used int64
	var gone []string
	for _, f := range files {
		var st syscall.Stat_t
		if err := syscall.Stat(f, &st); err != nil {
			gone = append(gone, f)
			continue
		}
		used += st.Blocks * 512
	}
	if len(gone) > 0 {
		t.mu.Lock()
		for _, f := range gone {
			delete(t.nfcFiles, f)
		}
		t.mu.Unlock()
	}
	return used
}

// ---- control API ----

type leaseReport struct {
	ID              string     `json:"id"`
	State           string     `json:"state"`
	VM              string     `json:"vm"`
	VMName          string     `json:"vmName"`
	Error           string     `json:"error,omitempty"`
	TimedOut        bool       `json:"timedOut"`
	LeaseTimeoutSec int64      `json:"leaseTimeoutSeconds"`
	ProgressCalls   int        `json:"progressCalls"`
	Percent         int32      `json:"percent"`
	Uploading       int        `json:"uploadsInFlight"`
	Files           []*nfcFile `json:"files"`
}

func (t *Testbed) leaseReports() []leaseReport {
	t.mu.Lock()
	var ls []*nfcLease
	for _, l := range t.leases {
		ls = append(ls, l)
	}
	t.mu.Unlock()
	sort.Slice(ls, func(i, j int) bool { return ls[i].created.Before(ls[j].created) })
	var out []leaseReport
	for _, l := range ls {
		l.mu.Lock()
		rep := leaseReport{ID: l.Self.Value, State: string(l.state), VM: l.vm.Value, VMName: l.vmName, Error: l.errMsg,
			TimedOut: l.timedOut, LeaseTimeoutSec: int64(l.timeout / time.Second), ProgressCalls: l.progress,
			Percent: l.percent, Uploading: len(l.active)}
		var names []string
		for n := range l.files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			c := *l.files[n]
			c.Received = atomic.LoadInt64(&l.files[n].Received)
			c.Written = atomic.LoadInt64(&l.files[n].Written)
			rep.Files = append(rep.Files, &c)
		}
		l.mu.Unlock()
		out = append(out, rep)
	}
	if out == nil {
		out = []leaseReport{}
	}
	return out
}

func (t *Testbed) nfcState() map[string]interface{} {
	t.mu.Lock()
	timeout, init := t.leaseTimeout, t.leaseInit
	t.mu.Unlock()
	return map[string]interface{}{
		"leaseTimeoutSeconds": int64(timeout / time.Second), "initializingMs": init.Milliseconds(),
		"usedBytes": t.nfcUsed(), "leases": t.leaseReports(),
	}
}

// ---- SOAP plumbing ----

type soapEnvelope struct {
	XMLName xml.Name    `xml:"soapenv:Envelope"`
	Enc     string      `xml:"xmlns:soapenc,attr"`
	Env     string      `xml:"xmlns:soapenv,attr"`
	XSD     string      `xml:"xmlns:xsd,attr"`
	XSI     string      `xml:"xmlns:xsi,attr"`
	Body    interface{} `xml:"soapenv:Body"`
}

type soapResponse struct{ res interface{} }

func (r soapResponse) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	name := reflect.TypeOf(r.res).Elem().Name()
	if err := e.EncodeElement(r.res, xml.StartElement{Name: xml.Name{Space: "urn:vim25", Local: name}}); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

// responseXML encodes a method's response (e.g. *types.ImportVAppResponse) as vcsim does.
func responseXML(res interface{}) []byte {
	var out bytes.Buffer
	out.WriteString(xml.Header)
	e := xml.NewEncoder(&out)
	err := e.Encode(&soapEnvelope{
		Enc: "http://schemas.xmlsoap.org/soap/encoding/", Env: "http://schemas.xmlsoap.org/soap/envelope/",
		XSD: "http://www.w3.org/2001/XMLSchema", XSI: "http://www.w3.org/2001/XMLSchema-instance",
		Body: soapResponse{res},
	})
	if err == nil {
		err = e.Flush()
	}
	if err != nil {
		log.Printf("encoding %T: %v", res, err)
		return faultXML(&types.SystemError{Reason: err.Error()}, "")
	}
	return out.Bytes()
}

func typedResult(res interface{}, fault types.BaseMethodFault) (int, http.Header, []byte) {
	if fault != nil {
		return http.StatusInternalServerError, xmlHeader, faultXML(fault, "")
	}
	return http.StatusOK, xmlHeader, responseXML(res)
}

// ownNFC handles the import methods (nil: not ours, vcsim answers).
func (t *Testbed) ownNFC(method *simulator.Method) func() (int, http.Header, []byte) {
	switch req := method.Body.(type) {
	case *types.CreateImportSpec:
		return func() (int, http.Header, []byte) {
			res, fault := t.createImportSpec(req)
			if fault != nil {
				return typedResult(nil, fault)
			}
			return typedResult(&types.CreateImportSpecResponse{Returnval: *res}, nil)
		}
	case *types.ImportVApp:
		if req.This.Type != "ResourcePool" {
			return nil
		}
		return func() (int, http.Header, []byte) {
			ref, fault := t.importVApp(req)
			return typedResult(&types.ImportVAppResponse{Returnval: ref}, fault)
		}
	case *types.HttpNfcLeaseProgress:
		if l := t.leaseByID(req.This.Value); l != nil {
			return func() (int, http.Header, []byte) { return voidResult(method.Name, t.leaseProgress(l, req.Percent)) }
		}
	case *types.HttpNfcLeaseComplete:
		if l := t.leaseByID(req.This.Value); l != nil {
			return func() (int, http.Header, []byte) { return voidResult(method.Name, t.leaseComplete(l)) }
		}
	case *types.HttpNfcLeaseAbort:
		if l := t.leaseByID(req.This.Value); l != nil {
			return func() (int, http.Header, []byte) {
				var cause types.BaseMethodFault
				if req.Fault != nil {
					cause = req.Fault.Fault
				}
				return voidResult(method.Name, t.leaseAbort(l, cause))
			}
		}
	}
	return nil
}
