package sim

import (
	"bytes"
	"context"
	"io/ioutil"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// handler sits in front of vcsim's own HTTP handler.
type handler struct {
	t     *Testbed
	inner http.Handler
}

func newHandler(t *Testbed, inner http.Handler) *handler {
	return &handler{t: t, inner: inner}
}

func typeFunc(name string) (reflect.Type, bool) {
	fn := types.TypeFunc()
	if t, ok := fn(name); ok {
		return t, ok
	}
	if i := strings.Index(name, ":"); i >= 0 {
		return fn(name[i+1:])
	}
	return nil, false
}

// methods a client may call without a session (vcsim also lets RetrieveProperties through).
var anonymous = map[string]bool{
	"RetrieveServiceContent": true, "Login": true, "LoginByToken": true, "CloneSession": true,
	"LoginExtensionByCertificate": true, "LoginExtensionBySubjectName": true,
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/testbed/") {
		h.t.control(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/nfc/") && h.t.serveNFC(w, r) {
		return
	}
	if r.Method != http.MethodPost || (r.URL.Path != "/sdk" && r.URL.Path != "/sdk/vimService") {
		h.inner.ServeHTTP(w, r)
		return
	}
	body, err := ioutil.ReadAll(http.MaxBytesReader(w, r.Body, 64<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	method, err := simulator.UnmarshalBody(typeFunc, body)
	if err != nil {
		status, hdr, out := h.t.forward(r, body)
		writeRaw(w, status, hdr, out)
		return
	}
	h.t.serveSOAP(w, r, body, method)
}

func writeRaw(w http.ResponseWriter, status int, hdr http.Header, out []byte) {
	for k, v := range hdr {
		if strings.EqualFold(k, "Content-Length") {
			continue
		}
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

func sessionCookie(r *http.Request) string {
	if c, err := r.Cookie(soap.SessionCookieName); err == nil {
		return strings.Trim(c.Value, `"`)
	}
	return ""
}

func (t *Testbed) serveSOAP(w http.ResponseWriter, r *http.Request, body []byte, method *simulator.Method) {
	name := method.Name
	cookie := sessionCookie(r)
	t.mu.Lock()
	authed := cookie != "" && t.sessions[cookie]
	t.mu.Unlock()
	if cookie != "" && !authed {
		r.Header.Del("Cookie") // an expired session is no session at all
	}
	if !authed && !anonymous[name] {
		writeFault(w, &types.NotAuthenticated{NoPermission: types.NoPermission{Object: method.This, PrivilegeId: "System.View"}}, "")
		return
	}
	if rule := t.takeFault(name, method.This); rule != nil {
		t.inject(w, method, rule)
		return
	}
	if t.opts.Mode == "esx" && name == "CloneVM_Task" {
		// a standalone host has no CloneVM_Task, whatever the license
		writeFault(w, new(types.NotSupported), "")
		return
	}
	if d := t.delayFor(name); d > 0 {
		if strings.HasSuffix(name, "_Task") {
			t.delayedTask(w, r, body, method, d)
			return
		}
		time.Sleep(d)
	}
	var status int
	var hdr http.Header
	var out []byte
	if fn := t.keyedFilterCall(r, method); fn != nil { // keyedfilter.go
		status, hdr, out = fn()
	} else if fn := t.keyedRetrieve(r, method); fn != nil { // keyed.go
		status, hdr, out = fn()
	} else {
		status, hdr, out = t.execute(r, body, method)
	}
	t.recordPropertyRequest(method, len(out))
	writeRaw(w, status, hdr, out)
}

// forward runs the request through vcsim's handler and captures the response.
func (t *Testbed) forward(r *http.Request, body []byte) (int, http.Header, []byte) {
	rec := httptest.NewRecorder()
	r2 := r.Clone(context.Background())
	r2.Body = ioutil.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	t.handler.inner.ServeHTTP(rec, r2)
	return rec.Code, rec.Header(), rec.Body.Bytes()
}

var xmlHeader = http.Header{"Content-Type": []string{"text/xml; charset=utf-8"}}

func taskName(method string) string {
	n := strings.TrimSuffix(method, "_Task")
	if n == "" {
		return "task"
	}
	return strings.ToLower(n[:1]) + n[1:] + "Task"
}

// ownTask runs fn as a Task on the object the method was called on.
func (t *Testbed) ownTask(method *simulator.Method, fn func() (types.AnyType, types.BaseMethodFault)) (int, http.Header, []byte) {
	task := simulator.CreateTask(method.This, taskName(method.Name), func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return fn()
	})
	ref := task.Run()
	t.fixTaskError(ref, "")
	return http.StatusOK, xmlHeader, taskResponseXML(method.Name, ref)
}

func voidResult(method string, fault types.BaseMethodFault) (int, http.Header, []byte) {
	if fault != nil {
		return http.StatusInternalServerError, xmlHeader, faultXML(fault, "")
	}
	return http.StatusOK, xmlHeader, voidResponseXML(method)
}

// own handles the methods the test bed implements itself (vcsim lacks them or gets them wrong).
func (t *Testbed) own(method *simulator.Method) func() (int, http.Header, []byte) {
	if fn := t.ownNFC(method); fn != nil { // nfc.go: CreateImportSpec, ImportVApp, HttpNfcLease*
		return fn
	}
	if fn := t.ownSnapshot(method); fn != nil { // snapshots.go: Create/Revert*/Remove*Snapshot(s), ConsolidateVMDisks
		return fn
	}
	switch req := method.Body.(type) {
	case *types.CopyVirtualDisk_Task:
		return func() (int, http.Header, []byte) {
			return t.ownTask(method, func() (types.AnyType, types.BaseMethodFault) { return t.copyVirtualDisk(req) })
		}
	case *types.ExtendVirtualDisk_Task:
		return func() (int, http.Header, []byte) {
			return t.ownTask(method, func() (types.AnyType, types.BaseMethodFault) { return t.extendVirtualDisk(req) })
		}
	case *types.DeleteVirtualDisk_Task:
		return func() (int, http.Header, []byte) {
			return t.ownTask(method, func() (types.AnyType, types.BaseMethodFault) { return nil, t.deleteVirtualDisk(req.Name) })
		}
	case *types.MakeDirectory:
		return func() (int, http.Header, []byte) { return voidResult(method.Name, t.makeDirectory(req)) }
	case *types.DeleteDatastoreFile_Task:
		return func() (int, http.Header, []byte) {
			return t.ownTask(method, func() (types.AnyType, types.BaseMethodFault) { return nil, t.deleteDatastoreFile(req.Name) })
		}
	case *types.CopyDatastoreFile_Task:
		return func() (int, http.Header, []byte) {
			return t.ownTask(method, func() (types.AnyType, types.BaseMethodFault) { return nil, t.copyDatastoreFile(req) })
		}
	case *types.MoveDatastoreFile_Task:
		return func() (int, http.Header, []byte) {
			return t.ownTask(method, func() (types.AnyType, types.BaseMethodFault) { return nil, t.moveDatastoreFile(req) })
		}
	case *types.SearchDatastore_Task:
		return func() (int, http.Header, []byte) {
			return t.ownTask(method, func() (types.AnyType, types.BaseMethodFault) {
				return t.searchDatastore(req.DatastorePath, req.SearchSpec, false)
			})
		}
	case *types.SearchDatastoreSubFolders_Task:
		return func() (int, http.Header, []byte) {
			return t.ownTask(method, func() (types.AnyType, types.BaseMethodFault) {
				return t.searchDatastore(req.DatastorePath, req.SearchSpec, true)
			})
		}
	case *types.Destroy_Task:
		if method.This.Type != "VirtualMachine" {
			return nil
		}
		return func() (int, http.Header, []byte) {
			return t.ownTask(method, func() (types.AnyType, types.BaseMethodFault) { return nil, t.destroyVMWithSnapshots(method.This) })
		}
	case *types.RebootGuest:
		return func() (int, http.Header, []byte) {
			fault := t.rebootGuest(method.This)
			t.afterChange([]types.ManagedObjectReference{method.This})
			return voidResult(method.Name, fault)
		}
	case *types.Reload:
		if method.This.Type != "VirtualMachine" {
			return nil
		}
		return func() (int, http.Header, []byte) {
			if vmByRef(method.This) == nil {
				return voidResult(method.Name, &types.ManagedObjectNotFound{Obj: method.This})
			}
			if err := t.importVMX(method.This, true, true); err != nil {
				log.Printf("reload %s: %v", method.This.Value, err)
				return voidResult(method.Name, &types.InvalidState{})
			}
			t.afterChange([]types.ManagedObjectReference{method.This})
			return voidResult(method.Name, nil)
		}
	}
	return nil
}

type preResult struct {
	fault   types.BaseMethodFault
	msg     string // the fault's localized message ("": the usual one)
	body    []byte // the request to forward instead of the client's (nil: the client's)
	cleanup func()
	after   func(taskInfo *types.TaskInfo)
}

// pre validates what vcsim accepts but a real host refuses, and prepares files vcsim needs.
func (t *Testbed) pre(method *simulator.Method) preResult {
	res := preResult{cleanup: func() {}}
	switch req := method.Body.(type) {
	case *types.CreateVM_Task:
		if res.fault = t.validateDevices(req.Config.DeviceChange); res.fault != nil {
			return res
		}
		res.cleanup = t.placeholdFlats(req.Config.DeviceChange)
	case *types.ReconfigVM_Task:
		if res.fault, res.msg = t.checkReconfig(method.This, &req.Spec); res.fault != nil { // reconfig.go
			return res
		}
		if res.fault = t.validateDevices(req.Spec.DeviceChange); res.fault != nil {
			return res
		}
		res.body = t.reconfigBody(method.This, req)
		res.cleanup = t.placeholdFlats(req.Spec.DeviceChange)
		ref := method.This
		res.after = func(*types.TaskInfo) { t.repairChains(ref) }
	case *types.RegisterVM_Task:
		res.cleanup = t.registerNeeds(req)
		setName := req.Name == ""
		res.after = func(info *types.TaskInfo) {
			if info == nil || info.State != types.TaskInfoStateSuccess {
				return
			}
			if ref, ok := info.Result.(types.ManagedObjectReference); ok {
				if err := t.importVMX(ref, setName, false); err != nil {
					log.Printf("register %s: reading the .vmx: %v", req.Path, err)
				}
			}
		}
	case *types.CloneVM_Task:
		src := method.This
		res.after = func(info *types.TaskInfo) {
			if info == nil || info.State != types.TaskInfoStateSuccess {
				return
			}
			if ref, ok := info.Result.(types.ManagedObjectReference); ok {
				t.fixClone(src, ref, req)
			}
		}
	case *types.UnregisterVM:
		ref := method.This
		res.after = func(*types.TaskInfo) {
			if vmByRef(ref) == nil {
				t.forget(ref)
				t.forgetSnapshots(ref)
			}
		}
	}
	return res
}

// validateDevices refuses device specs a real host refuses: NICs on networks that do not
// exist (vcsim panics), child disks whose parent is missing, thick disks larger than the
// datastore's free space.
func (t *Testbed) validateDevices(changes []types.BaseVirtualDeviceConfigSpec) types.BaseMethodFault {
	var thick int64
	for i, c := range changes {
		spec := c.GetVirtualDeviceConfigSpec()
		if spec.Operation == types.VirtualDeviceConfigSpecOperationRemove {
			continue
		}
		switch d := spec.Device.(type) {
		case types.BaseVirtualEthernetCard:
			if b, ok := d.GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardNetworkBackingInfo); ok {
				if !t.networkExists(b.DeviceName) {
					return &types.InvalidDeviceSpec{InvalidVmConfig: types.InvalidVmConfig{Property: "virtualDeviceSpec.device.backing"}, DeviceIndex: int32(i)}
				}
			}
		case *types.VirtualDisk:
			b, ok := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !ok {
				continue
			}
			if b.Parent != nil && spec.FileOperation == types.VirtualDeviceConfigSpecFileOperationCreate {
				pf, fault := t.resolve(b.Parent.FileName)
				if fault != nil {
					return fault
				}
				if !exists(pf) {
					return &types.FileNotFound{FileFault: types.FileFault{File: b.Parent.FileName}}
				}
			}
			if spec.FileOperation == types.VirtualDeviceConfigSpecFileOperationCreate && b.Parent == nil && !isTrue(b.ThinProvisioned) {
				thick += diskCapacity(d)
			}
			if spec.FileOperation == "" && spec.Operation == types.VirtualDeviceConfigSpecOperationAdd && b.FileName != "" {
				if f, fault := t.resolve(b.FileName); fault == nil && strings.HasSuffix(f, ".vmdk") && !exists(f) {
					return &types.FileNotFound{FileFault: types.FileFault{File: b.FileName}}
				}
			}
		}
	}
	if thick > t.freeBytes() {
		return &types.NoDiskSpace{FileFault: types.FileFault{File: "[" + datastoreName + "]"}, Datastore: datastoreName}
	}
	return nil
}

// execute runs one SOAP call: the test bed's own implementation or vcsim's, with corrections.
func (t *Testbed) execute(r *http.Request, body []byte, method *simulator.Method) (int, http.Header, []byte) {
	if fn := t.own(method); fn != nil {
		return fn()
	}
	isTask := strings.HasSuffix(method.Name, "_Task")
	pre := t.pre(method)
	if pre.fault != nil {
		pre.cleanup()
		if isTask {
			return t.faultTask(method, pre.fault, pre.msg)
		}
		return voidResult(method.Name, pre.fault)
	}
	if pre.body != nil {
		body = pre.body
	}
	status, hdr, out := t.forward(r, body)
	pre.cleanup()

	cookie := sessionCookie(r)
	if status == http.StatusOK {
		resp := http.Response{Header: hdr}
		for _, c := range resp.Cookies() {
			if c.Name == soap.SessionCookieName && c.Value != "" {
				t.mu.Lock()
				t.sessions[strings.Trim(c.Value, `"`)] = true
				t.mu.Unlock()
			}
		}
		if method.Name == "Logout" && cookie != "" {
			t.mu.Lock()
			delete(t.sessions, cookie)
			t.mu.Unlock()
		}
	} else {
		out = []byte(t.scrub(string(fixFaultString(out))))
	}

	var touched []types.ManagedObjectReference
	if method.This.Type == "VirtualMachine" {
		touched = append(touched, method.This)
	}
	var info *types.TaskInfo
	if m := taskReturnRE.FindSubmatch(out); m != nil && status == http.StatusOK {
		ref := types.ManagedObjectReference{Type: "Task", Value: string(m[1])}
		if task, ok := simulator.Map.Get(ref).(*simulator.Task); ok {
			simulator.Map.WithLock(task, func() {
				i := task.Info
				info = &i
			})
			if res, ok := info.Result.(types.ManagedObjectReference); ok && res.Type == "VirtualMachine" {
				touched = append(touched, res)
			}
			if info.Entity != nil && info.Entity.Type == "VirtualMachine" {
				touched = append(touched, *info.Entity)
			}
		}
		defer t.fixTaskError(ref, "")
	}
	if pre.after != nil {
		pre.after(info)
	}
	if len(touched) > 0 {
		t.afterChange(touched)
	} else if isTask {
		t.applyDatastoreSpace()
	}
	return status, hdr, out
}

// fixTaskError gives a failed task the message a real host sends and datastore paths instead
// of the simulator's directories.
func (t *Testbed) fixTaskError(ref types.ManagedObjectReference, msg string) {
	task, ok := simulator.Map.Get(ref).(*simulator.Task)
	if !ok {
		return
	}
	simulator.Map.WithLock(task, func() {
		e := task.Info.Error
		if e == nil || e.Fault == nil {
			return
		}
		if ff, ok := e.Fault.(types.BaseFileFault); ok {
			ff.GetFileFault().File = t.scrub(ff.GetFileFault().File)
		}
		if msg != "" {
			e.LocalizedMessage = msg
		} else if e.LocalizedMessage == "" || strings.HasPrefix(e.LocalizedMessage, "*types.") {
			e.LocalizedMessage = faultMessage(e.Fault)
		}
	})
}

// fixClone: vcsim's CloneVM_Task keeps only name, guestId, CPU, memory and the spec's
// extraConfig. vCenter copies the source's configuration (firmware, annotation, every
// extraConfig key, guestinfo included), applies the whole spec.config, and powers the clone on
// when spec.powerOn is set. The clone's disk carries the source disk's guest state.
func (t *Testbed) fixClone(src, clone types.ManagedObjectReference, req *types.CloneVM_Task) {
	svm := vmByRef(src)
	if svm == nil {
		return
	}
	var spec types.VirtualMachineConfigSpec
	var srcDisk string
	simulator.Map.WithLock(svm, func() {
		spec.Firmware = svm.Config.Firmware
		spec.Annotation = svm.Config.Annotation
		for _, ov := range svm.Config.ExtraConfig {
			o := ov.GetOptionValue()
			if o.Key == "govcsim" || t.isGuestKey(src, o.Key, o.Value) {
				continue // guest-set keys are runtime state: a clone does not get them
			}
			spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: o.Key, Value: o.Value})
		}
		srcDisk = canon(firstDisk(svm))
	})
	if c := req.Spec.Config; c != nil {
		x := *c
		x.DeviceChange = nil
		x.ExtraConfig = append(spec.ExtraConfig, c.ExtraConfig...)
		if x.Firmware == "" {
			x.Firmware = spec.Firmware
		}
		if x.Annotation == "" {
			x.Annotation = spec.Annotation
		}
		x.Name = ""
		x.Files = nil
		spec = x
	}
	if err := t.reconfigure(clone, spec); err != nil {
		log.Printf("clone %s: applying the configuration: %v", clone.Value, err)
	}
	if cvm := vmByRef(clone); cvm != nil {
		var dst string
		simulator.Map.WithLock(cvm, func() { dst = canon(firstDisk(cvm)) })
		t.mu.Lock()
		if st, ok := t.ciStates[srcDisk]; ok && dst != "" {
			c := *st
			t.ciStates[dst] = &c
		}
		t.mu.Unlock()
	}
	t.afterChange([]types.ManagedObjectReference{clone})
	if req.Spec.PowerOn {
		if err := t.powerOn(clone); err != nil {
			log.Printf("clone %s: power on: %v", clone.Value, err)
		}
	}
}

// inject answers a call with an injected fault: a failed Task for *_Task methods (as a real
// host reports most failures), the SOAP fault itself otherwise or when rule.Immediate.
func (t *Testbed) inject(w http.ResponseWriter, method *simulator.Method, rule *faultRule) {
	fault, err := newFault(rule.Fault, rule.Props)
	if err != nil {
		fault = &types.SystemError{Reason: err.Error()}
	}
	log.Printf("injecting %s into %s", rule.Fault, method.Name)
	if strings.HasSuffix(method.Name, "_Task") && !rule.Immediate {
		task := simulator.CreateTask(method.This, taskName(method.Name), func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
			return nil, fault
		})
		ref := task.Run()
		t.fixTaskError(ref, rule.Message)
		writeXML(w, http.StatusOK, taskResponseXML(method.Name, ref))
		return
	}
	writeFault(w, fault, rule.Message)
}

// delayedTask answers a *_Task call at once with a running Task that completes after d (the
// real host's behaviour for a slow operation): a client that gives up meanwhile leaves the
// operation to finish, as on a real host.
func (t *Testbed) delayedTask(w http.ResponseWriter, r *http.Request, body []byte, method *simulator.Method, d time.Duration) {
	r2 := r.Clone(context.Background())
	outer := simulator.CreateTask(method.This, taskName(method.Name), func(task *simulator.Task) (types.AnyType, types.BaseMethodFault) {
		const steps = 10
		for i := 1; i < steps; i++ {
			time.Sleep(d / steps)
			simulator.Map.WithLock(task, func() {
				simulator.Map.Update(task, []types.PropertyChange{{Name: "info.progress", Val: int32(i * 100 / steps)}})
			})
		}
		time.Sleep(d / steps)
		status, _, out := t.execute(r2, body, method)
		if status != http.StatusOK {
			if m := faultTypeRE.FindSubmatch(out); m != nil {
				if f, err := newFault(string(m[2]), nil); err == nil {
					return nil, f
				}
			}
			return nil, &types.SystemError{Reason: "failed"}
		}
		m := taskReturnRE.FindSubmatch(out)
		if m == nil {
			return nil, nil
		}
		inner, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "Task", Value: string(m[1])}).(*simulator.Task)
		if !ok {
			return nil, nil
		}
		var info types.TaskInfo
		simulator.Map.WithLock(inner, func() { info = inner.Info })
		if info.Error != nil {
			return nil, info.Error.Fault
		}
		return info.Result, nil
	})
	simulator.Map.Update(outer, []types.PropertyChange{{Name: "info.state", Val: types.TaskInfoStateRunning}, {Name: "info.progress", Val: int32(0)}})
	go func() {
		ref := outer.Run()
		t.fixTaskError(ref, "")
	}()
	writeXML(w, http.StatusOK, taskResponseXML(method.Name, outer.Self))
}
