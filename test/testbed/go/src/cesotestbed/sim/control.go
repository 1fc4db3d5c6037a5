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
//	POST /testbed/delay      {"method":"CreateVM_Task","ms":3000}   ("guest.ipAddress": IPs appear ms after boot)
//	POST /testbed/datastore  {"capacityGB":1000,"freeGB":900}
//	POST /testbed/expire-sessions   every session becomes invalid (NotAuthenticated)
//	POST /testbed/reset      clears faults and delays, restores the datastore's space
//	GET  /testbed/state      the current rules
func (t *Testbed) control(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.URL.Path, "/testbed/")
	if r.Method == http.MethodGet && op == "state" {
		t.mu.Lock()
		state := map[string]interface{}{
			"faults": t.faults, "delays": msMap(t.delays), "ipDelayMs": t.ipDelay.Milliseconds(),
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
		t.mu.Lock()
		if req.CapacityGB != nil {
			t.capacity = int64(*req.CapacityGB * (1 << 30))
		}
		if req.FreeGB != nil {
			t.free = int64(*req.FreeGB * (1 << 30))
		}
		if t.free > t.capacity {
			t.free = t.capacity
		}
		t.mu.Unlock()
		t.applyDatastoreSpace()
	case "expire-sessions":
		t.mu.Lock()
		t.sessions = map[string]bool{}
		t.mu.Unlock()
	case "reset":
		t.mu.Lock()
		t.faults = nil
		t.delays = map[string]time.Duration{}
		t.ipDelay = 0
		t.capacity = int64(t.opts.CapacityGB * (1 << 30))
		t.free = int64(t.opts.FreeGB * (1 << 30))
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
