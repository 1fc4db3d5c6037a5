package sim

import (
	"encoding/json"
	"io/ioutil"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// faultRule makes the next Times calls of Method fail with Fault.
type faultRule struct {
	Method    string          `json:"method"`
	Fault     string          `json:"fault"`
	Times     int             `json:"times"`     // default 1; -1 for every call
	Immediate bool            `json:"immediate"` // *_Task: fault the call itself, not the task
	VM        string          `json:"vm,omitempty"`
	Message   string          `json:"message,omitempty"`
	Props     json.RawMessage `json:"props,omitempty"` // fault fields, e.g. {"file": "[datastore1] x"}
}

func (t *Testbed) takeFault(method string, this types.ManagedObjectReference) *faultRule {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, r := range t.faults {
		if r.Method != method && r.Method != "*" {
			continue
		}
		if r.VM != "" {
			vm := vmByRef(this)
			if vm == nil || vm.Name != r.VM {
				continue
			}
		}
		c := *r
		if r.Times > 0 {
			r.Times--
			if r.Times == 0 {
				t.faults = append(t.faults[:i], t.faults[i+1:]...)
			}
		}
		return &c
	}
	return nil
}

func (t *Testbed) delayFor(method string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.delays[method]
}

func (t *Testbed) powerOn(ref types.ManagedObjectReference) error {
	task, err := object.NewVirtualMachine(t.client, ref).PowerOn(t.ctx)
	if err == nil {
		err = task.Wait(t.ctx)
	}
	t.afterChange([]types.ManagedObjectReference{ref})
	return err
}

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func badRequest(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
}

// control serves the test bed's control API under /testbed/ (no authentication):
//
//	POST /testbed/fail       {"method":"ReconfigVM_Task","fault":"InvalidState","times":1,"immediate":false,"vm":"name","message":"...","props":{...}}
//	POST /testbed/delay      {"method":"CreateVM_Task","ms":3000}   ("guest.ipAddress": IPs appear ms after boot;
//	                         "guest.ready": guestinfo.ceso.ready is reported ms after the IP, default 500)
//	POST /testbed/datastore  {"capacityGB":1000,"freeGB":900}   (free space now; NFC uploads use it up)
//	POST /testbed/nfc        {"leaseTimeoutSeconds":300,"initializingMs":200}   for leases made afterwards
//	GET  /testbed/nfc        leases: id, state, vm, error, progress calls, bytes received/written per file
//	POST /testbed/expire-sessions   every session becomes invalid (NotAuthenticated)
//	POST /testbed/keyed-paths {"mode":"support"|"refuse"|"legacy"}   keyed property paths such as
//	                         config.extraConfig["k"] (keyed.go): answered as a real host does (default),
//	                         the fault InvalidProperty, or vcsim 0.24.2's missingSet entries; also in
//	                         CreateFilter/WaitForUpdatesEx with data versions (keyedfilter.go)
//	POST /testbed/extra-config {"vms":["name"],"set":{"k":"v"},"random":{"guestinfo.userdata":2048}}
//	                         sets extraConfig keys on the VMs named (none: all), random = base64 text of that length per VM
//	GET  /testbed/property-requests   the last 200 RetrieveProperties(Ex) calls: method, paths per type, responseBytes
//	POST /testbed/property-requests   forgets them
//	POST /testbed/reset      clears faults and delays (guest.ready back to 500 ms), restores the datastore's space,
//	                         keyed paths back to "support", forgets the property requests
//	GET  /testbed/state      the current rules, delays, guest-set keys per VM moref
func (t *Testbed) control(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.URL.Path, "/testbed/")
	if r.Method == http.MethodGet && op == "nfc" {
		writeJSON(w, http.StatusOK, t.nfcState())
		return
	}
	if r.Method == http.MethodGet && op == "property-requests" {
		writeJSON(w, http.StatusOK, t.propertyRequests())
		return
	}
	if r.Method == http.MethodGet && op == "state" {
		nfc := t.nfcState()
		t.mu.Lock()
		state := map[string]interface{}{
			"faults": t.faults, "delays": msMap(t.delays), "ipDelayMs": t.ipDelay.Milliseconds(),
			"readyDelayMs": t.readyDelay.Milliseconds(), "guestKeys": copyGuestKeys(t.guestKeys), "nfc": nfc,
			"capacityBytes": t.capacity, "freeBytes": t.free, "sessions": len(t.sessions),
		}
		t.mu.Unlock()
		writeJSON(w, http.StatusOK, state)
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use POST"})
		return
	}
	body, _ := ioutil.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	switch op {
	case "fail":
		rule := &faultRule{Times: 1}
		if err := json.Unmarshal(body, rule); err != nil {
			badRequest(w, err.Error())
			return
		}
		if rule.Method == "" || rule.Fault == "" {
			badRequest(w, "method and fault are required")
			return
		}
		if _, err := newFault(rule.Fault, rule.Props); err != nil {
			badRequest(w, err.Error())
			return
		}
		if rule.Times == 0 {
			rule.Times = 1
		}
		t.mu.Lock()
		t.faults = append(t.faults, rule)
		t.mu.Unlock()
		log.Printf("control: %s will fail with %s (%d times)", rule.Method, rule.Fault, rule.Times)
	case "delay":
		var req struct {
			Method string `json:"method"`
			Ms     int64  `json:"ms"`
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Method == "" || req.Ms < 0 {
			badRequest(w, "need {\"method\": \"...\", \"ms\": N}")
			return
		}
		d := time.Duration(req.Ms) * time.Millisecond
		t.mu.Lock()
		if req.Method == "guest.ipAddress" {
			t.ipDelay = d
		} else if req.Method == "guest.ready" {
			t.readyDelay = d
		} else if d == 0 {
			delete(t.delays, req.Method)
		} else {
			t.delays[req.Method] = d
		}
		t.mu.Unlock()
	case "datastore":
		var req struct {
			CapacityGB *float64 `json:"capacityGB"`
			FreeGB     *float64 `json:"freeGB"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			badRequest(w, err.Error())
			return
		}
		used := t.nfcUsed() // the free space set is what the datastore reports now
		t.mu.Lock()
		if req.CapacityGB != nil {
			t.capacity = int64(*req.CapacityGB * (1 << 30))
		}
		if req.FreeGB != nil {
			t.free = int64(*req.FreeGB*(1<<30)) + used
		}
		if t.free-used > t.capacity {
			t.free = t.capacity + used
		}
		t.mu.Unlock()
		t.applyDatastoreSpace()
	case "nfc":
		var req struct {
			LeaseTimeoutSeconds *float64 `json:"leaseTimeoutSeconds"`
			InitializingMs      *int64   `json:"initializingMs"`
		}
		if err := json.Unmarshal(body, &req); err != nil || (req.LeaseTimeoutSeconds != nil && *req.LeaseTimeoutSeconds <= 0) || (req.InitializingMs != nil && *req.InitializingMs < 0) {
			badRequest(w, "need {\"leaseTimeoutSeconds\": N > 0, \"initializingMs\": M >= 0}")
			return
		}
		t.mu.Lock()
		if req.LeaseTimeoutSeconds != nil {
			t.leaseTimeout = time.Duration(*req.LeaseTimeoutSeconds * float64(time.Second))
		}
		if req.InitializingMs != nil {
			t.leaseInit = time.Duration(*req.InitializingMs) * time.Millisecond
		}
		t.mu.Unlock()
	case "keyed-paths":
		var req struct {
			Mode string `json:"mode"`
		}
		if err := json.Unmarshal(body, &req); err != nil || (req.Mode != "support" && req.Mode != "refuse" && req.Mode != "legacy") {
			badRequest(w, "need {\"mode\": \"support\" | \"refuse\" | \"legacy\"}")
			return
		}
		t.mu.Lock()
		t.keyed = req.Mode
		t.mu.Unlock()
		log.Printf("control: keyed property paths: %s", req.Mode)
	case "property-requests":
		t.mu.Lock()
		t.propRequests = nil
		t.mu.Unlock()
	case "extra-config":
		var req struct {
			VMs    []string          `json:"vms"`
			Set    map[string]string `json:"set"`
			Random map[string]int    `json:"random"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			badRequest(w, err.Error())
			return
		}
		for k, n := range req.Random {
			if n < 0 || n > 1<<20 || k == "" {
				badRequest(w, "random: {\"key\": length in characters, 0..1048576}")
				return
			}
		}
		n, err := t.setExtraConfig(req.VMs, req.Set, req.Random)
		if err != nil {
			badRequest(w, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]interface{}{"ok": true, "vms": n})
		return
	case "expire-sessions":
		t.mu.Lock()
		t.sessions = map[string]bool{}
		t.mu.Unlock()
	case "reset":
		t.mu.Lock()
		t.faults = nil
		t.delays = map[string]time.Duration{}
		t.ipDelay = 0
		t.readyDelay = defaultReadyDelay
		t.leaseTimeout = defaultLeaseTimeout
		t.leaseInit = defaultLeaseInitialize
		t.keyed = "support"
		t.propRequests = nil
		t.mu.Unlock()
		used := t.nfcUsed()
		t.mu.Lock()
		t.capacity = int64(t.opts.CapacityGB * (1 << 30))
		t.free = int64(t.opts.FreeGB*(1<<30)) + used
		t.mu.Unlock()
		t.applyDatastoreSpace()
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown control " + op})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func msMap(m map[string]time.Duration) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		out[k] = v.Milliseconds()
	}
	return out
}

func copyGuestKeys(m map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for vm, keys := range m {
		c := map[string]string{}
		for k, v := range keys {
			c[k] = v
		}
		out[vm] = c
	}
	return out
}
