package sim

// Keyed property paths in RetrieveProperties(Ex), as a real host answers them.
//
// What a real host accepts (sources, for the record):
//   - The vSphere Web Services SDK Programming Guide, "Indexed Array and Key-Based Array
//     Properties": key-based arrays (extraConfig's OptionValues, devices) are addressed by key in
//     a property path: a.b.c["xyz"] is the element of c whose key is "xyz" (a string key in
//     double quotes, an integer key bare: config.hardware.device[4000]).
//   - vCenter answers them: govc object.collect of config.hardware.device[4000].key against
//     vCenter 6.0 U3 (govmomi issue #1001; a field of the element that is not on the base type
//     is InvalidProperty there); the vCenter MOB's doPath=config.extraConfig["guestinfo.X"]
//     (AWS's RDS on VMware guide); VMware's vm-operator reads config.extraConfig["guestinfo.K"]
//     in production and learnt that the value is the OptionValue element, not its string
//     (vmware-tanzu/vm-operator PR #665).
//   - govmomi's vcsim added them in "vcsim: add PropertyCollector index support" (3b7ff25f,
//     v0.38.0): the propSet entry's name is the path exactly as requested, its val the element
//     itself (xsi:type="OptionValue", not wrapped in an ArrayOf*); a key that does not exist is
//     no error (govc's object.bats: "Key does not exist, not an error") and, like any unset
//     property, is left out of RetrievePropertiesEx's propSet (no missingSet entry); a string
//     key without quotes or a key on a non-array is InvalidProperty; path.item after the key
//     (config.extraConfig["k"].value) gives that field of the element.
//   - Debian's vcsim 0.24.2 predates that: it puts each keyed path in every object's missingSet
//     with InvalidProperty. A host that refuses a path outright answers the whole call with the
//     fault InvalidProperty (the rvc issue #48 transcript of an ESX 3.5 host).
//
// The test bed answers keyed paths itself (mode "support", the default); POST
// /testbed/keyed-paths {"mode":"refuse"} makes it answer the fault InvalidProperty instead, and
// {"mode":"legacy"} passes them to vcsim 0.24.2 (missingSet entries), so clients' fallbacks can
// be tested. vcsim 0.24.2 never pages (no token), so ContinueRetrievePropertiesEx needs nothing.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// keyedPath is a parsed property path with a key: Path[Key].Item.
type keyedPath struct {
	full string
	path string
	key  interface{} // string or int32
	item string
}

// parseKeyedPath parses P["k"], P[N], P["k"].item; ok is false for a path without a key, and
// valid is false for a malformed one (unquoted string key, text after the bracket).
func parseKeyedPath(s string) (kp keyedPath, ok bool, valid bool) {
	open := strings.Index(s, "[")
	if open < 0 {
		return kp, false, true
	}
	kp.full = s
	kp.path = s[:open]
	rest := s[open+1:]
	closing := strings.Index(rest, "]")
	if closing < 0 || kp.path == "" {
		return kp, true, false
	}
	raw, after := rest[:closing], rest[closing+1:]
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		kp.key = raw[1 : len(raw)-1]
	} else if n, err := strconv.ParseInt(raw, 10, 32); err == nil {
		kp.key = int32(n)
	} else {
		return kp, true, false
	}
	if after != "" {
		if after[0] != '.' || len(after) == 1 {
			return kp, true, false
		}
		kp.item = after[1:]
	}
	return kp, true, true
}

func (t *Testbed) keyedMode() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.keyed
}

// keyedRetrieve answers RetrieveProperties(Ex) calls that ask for keyed paths (nil: none asked).
func (t *Testbed) keyedRetrieve(r *http.Request, method *simulator.Method) func() (int, http.Header, []byte) {
	var specs []types.PropertyFilterSpec
	var options types.RetrieveOptions
	switch req := method.Body.(type) {
	case *types.RetrievePropertiesEx:
		specs, options = req.SpecSet, req.Options
	case *types.RetrieveProperties:
		specs = req.SpecSet
	default:
		return nil
	}
	var asked []keyedPath // per type, in the order asked
	askedType := map[string]string{}
	var malformed string
	for _, spec := range specs {
		for _, ps := range spec.PropSet {
			for _, p := range ps.PathSet {
				kp, ok, valid := parseKeyedPath(p)
				if !ok {
					continue
				}
				if !valid && malformed == "" {
					malformed = p
				}
				asked = append(asked, kp)
				askedType[kp.full] = ps.Type
			}
		}
	}
	if len(asked) == 0 {
		return nil
	}
	mode := t.keyedMode()
	if mode == "legacy" {
		return nil
	}
	if mode == "refuse" || malformed != "" {
		name := malformed
		if name == "" {
			name = asked[0].full
		}
		return func() (int, http.Header, []byte) {
			return http.StatusInternalServerError, xmlHeader, faultXML(&types.InvalidProperty{Name: name}, "")
		}
	}
	return func() (int, http.Header, []byte) {
		// vcsim collects the objects and the other paths; each keyed path is then read from
		// the object itself. A spec left with no path gets "name" so vcsim keeps its objects.
		plain := make([]types.PropertyFilterSpec, len(specs))
		added := map[string]bool{}
		for i, spec := range specs {
			plain[i] = spec
			plain[i].PropSet = nil
			for _, ps := range spec.PropSet {
				var paths []string
				for _, p := range ps.PathSet {
					if _, ok, _ := parseKeyedPath(p); !ok {
						paths = append(paths, p)
					}
				}
				if len(paths) == 0 && !isTrueBool(ps.All) {
					paths = []string{"name"}
					added[ps.Type] = true
				}
				ps.PathSet = paths
				plain[i].PropSet = append(plain[i].PropSet, ps)
			}
		}
		var reqBody interface{}
		ex := method.Name == "RetrievePropertiesEx"
		if ex {
			reqBody = &methods.RetrievePropertiesExBody{Req: &types.RetrievePropertiesEx{This: method.This, SpecSet: plain, Options: options}}
		} else {
			reqBody = &methods.RetrievePropertiesBody{Req: &types.RetrieveProperties{This: method.This, SpecSet: plain}}
		}
		forwarded, err := xml.Marshal(soap.Envelope{Body: reqBody})
		if err != nil {
			return voidResult(method.Name, &types.SystemError{Reason: err.Error()})
		}
		status, hdr, out := t.forward(r, forwarded)
		if status != http.StatusOK {
			return status, hdr, []byte(t.scrub(string(fixFaultString(out))))
		}
		// Spliced into vcsim's answer as text: decoding and encoding it again would double the
		// test bed's share of a big list's time.
		closing := []byte("</returnval>")
		if ex {
			closing = []byte("</objects>")
		}
		var b bytes.Buffer
		b.Grow(len(out) + len(out)/4)
		rest := out
		for {
			m := objRE.FindSubmatchIndex(rest)
			if m == nil {
				break
			}
			end := bytes.Index(rest[m[1]:], closing)
			if end < 0 {
				break
			}
			end += m[1]
			content := rest[m[1]:end]
			ref := types.ManagedObjectReference{Type: string(rest[m[2]:m[3]]), Value: string(rest[m[4]:m[5]])}
			if added[ref.Type] {
				content = nameProp.ReplaceAll(content, nil)
			}
			insertAt := bytes.Index(content, []byte("<missingSet>"))
			if insertAt < 0 {
				insertAt = len(content)
			}
			b.Write(rest[:m[1]])
			b.Write(content[:insertAt])
			for _, kp := range asked {
				if askedType[kp.full] != ref.Type {
					continue
				}
				val, fault := keyedValue(ref, kp)
				if fault != nil {
					return http.StatusInternalServerError, xmlHeader, faultXML(fault, "")
				}
				if val == nil {
					continue
				}
				enc := xml.NewEncoder(&b)
				if err := enc.EncodeElement(types.DynamicProperty{Name: kp.full, Val: val}, xml.StartElement{Name: xml.Name{Local: "propSet"}}); err != nil {
					return voidResult(method.Name, &types.SystemError{Reason: err.Error()})
				}
				_ = enc.Flush()
			}
			b.Write(content[insertAt:])
			rest = rest[end:]
		}
		b.Write(rest)
		return http.StatusOK, hdr, b.Bytes()
	}
}

var nameProp = regexp.MustCompile(`<propSet><name>name</name><val[^>]*>[^<]*</val></propSet>`)

// keyedValue reads Path[Key](.Item) of the object: nil when the key is not there.
func keyedValue(ref types.ManagedObjectReference, kp keyedPath) (interface{}, types.BaseMethodFault) {
	obj := simulator.Map.Get(ref)
	if obj == nil {
		return nil, nil
	}
	var found interface{}
	var fault types.BaseMethodFault
	simulator.Map.WithLock(obj, func() { found, fault = keyedValueOf(reflect.ValueOf(obj), kp) })
	return found, fault
}

// keyedValueOf reads Path[Key](.Item) of an object the caller holds the lock of.
func keyedValueOf(rval reflect.Value, kp keyedPath) (found interface{}, fault types.BaseMethodFault) {
	invalid := &types.InvalidProperty{Name: kp.full}
	func() {
		list, ok := fieldAt(rval, kp.path)
		if !ok {
			fault = invalid
			return
		}
		if !list.IsValid() {
			return // an unset parent (e.g. no config yet): nothing to index
		}
		if list.Kind() != reflect.Slice {
			fault = invalid
			return
		}
		for i := 0; i < list.Len(); i++ {
			item := deref(list.Index(i))
			if item.Kind() != reflect.Struct {
				fault = invalid
				return
			}
			key := item.FieldByName("Key")
			if !key.IsValid() {
				fault = invalid
				return
			}
			if !reflect.DeepEqual(key.Interface(), kp.key) {
				if key.Type() != reflect.TypeOf(kp.key) {
					fault = invalid // a string key for an int-keyed array, or the reverse
					return
				}
				continue
			}
			if kp.item == "" {
				found = item.Interface()
				return
			}
			v, ok := fieldAt(item, kp.item)
			if !ok {
				fault = invalid
				return
			}
			if v.IsValid() {
				found = v.Interface()
			}
			return
		}
	}()
	return found, fault
}

// fieldAt follows a dotted property path by Go field names (ok false: no such field; an
// invalid Value: a nil pointer or interface on the way).
func fieldAt(rval reflect.Value, path string) (reflect.Value, bool) {
	for _, name := range strings.Split(path, ".") {
		rval = deref(rval)
		if !rval.IsValid() {
			return rval, true
		}
		if rval.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		index, ok := fieldIndex(rval.Type(), strings.ToUpper(name[:1])+name[1:])
		if !ok {
			return reflect.Value{}, false
		}
		for n, i := range index {
			if n > 0 {
				if rval = deref(rval); !rval.IsValid() {
					return rval, true // a nil embedded pointer
				}
			}
			rval = rval.Field(i)
		}
	}
	return deref(rval), true
}

type fieldKey struct {
	t    reflect.Type
	name string
}

var fieldIndexes sync.Map // fieldKey -> []int (nil: no such field)

// fieldIndex is reflect's FieldByName (a search through embedded structs), remembered per type:
// a big list reads the same fields of a thousand objects.
func fieldIndex(t reflect.Type, name string) ([]int, bool) {
	key := fieldKey{t, name}
	if index, ok := fieldIndexes.Load(key); ok {
		return index.([]int), index.([]int) != nil
	}
	f, ok := t.FieldByName(name)
	var index []int
	if ok {
		index = f.Index
	}
	fieldIndexes.Store(key, index)
	return index, ok
}

func deref(v reflect.Value) reflect.Value {
	for v.IsValid() && (v.Kind() == reflect.Ptr || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	return v
}

func isTrueBool(b *bool) bool { return b != nil && *b }

// propertyRequest is what one RetrieveProperties(Ex) call asked for and how big its answer was.
type propertyRequest struct {
	Method        string              `json:"method"`
	Paths         map[string][]string `json:"paths"` // type -> pathSet (all:true as "*")
	ResponseBytes int                 `json:"responseBytes"`
}

const keptPropertyRequests = 200

func (t *Testbed) recordPropertyRequest(method *simulator.Method, responseBytes int) {
	var specs []types.PropertyFilterSpec
	switch req := method.Body.(type) {
	case *types.RetrievePropertiesEx:
		specs = req.SpecSet
	case *types.RetrieveProperties:
		specs = req.SpecSet
	default:
		return
	}
	rec := propertyRequest{Method: method.Name, Paths: map[string][]string{}, ResponseBytes: responseBytes}
	for _, spec := range specs {
		for _, ps := range spec.PropSet {
			if isTrueBool(ps.All) {
				rec.Paths[ps.Type] = append(rec.Paths[ps.Type], "*")
			}
			rec.Paths[ps.Type] = append(rec.Paths[ps.Type], ps.PathSet...)
		}
	}
	t.mu.Lock()
	t.propRequests = append(t.propRequests, rec)
	if n := len(t.propRequests); n > keptPropertyRequests {
		t.propRequests = append([]propertyRequest(nil), t.propRequests[n-keptPropertyRequests:]...)
	}
	t.mu.Unlock()
}

func (t *Testbed) propertyRequests() []propertyRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]propertyRequest{}, t.propRequests...)
}

// setExtraConfig sets extraConfig keys on the named VMs (none named: every VM) as a
// ReconfigVM_Task would (a key set to "" is removed), plus, per VM, random base64 text of the
// given lengths (incompressible, like gzip+base64 cloud-init data), then renders their .vmx.
func (t *Testbed) setExtraConfig(names []string, set map[string]string, random map[string]int) (int, error) {
	wanted := map[string]bool{}
	for _, n := range names {
		wanted[n] = true
	}
	var refs []types.ManagedObjectReference
	for _, obj := range simulator.Map.All("VirtualMachine") {
		vm, ok := obj.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		var err error
		simulator.Map.WithLock(vm, func() {
			if vm.Config == nil || (len(wanted) > 0 && !wanted[vm.Name]) {
				return
			}
			values := map[string]string{}
			for k, v := range set {
				values[k] = v
			}
			for k, n := range random {
				raw := make([]byte, n*3/4+3)
				if _, err = rand.Read(raw); err != nil {
					return
				}
				values[k] = base64.StdEncoding.EncodeToString(raw)[:n]
			}
			var ec []types.BaseOptionValue
			for _, ov := range vm.Config.ExtraConfig {
				o := ov.GetOptionValue()
				if _, replaced := values[o.Key]; !replaced {
					ec = append(ec, ov)
				}
			}
			keys := make([]string, 0, len(values))
			for k := range values {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if values[k] != "" {
					ec = append(ec, &types.OptionValue{Key: k, Value: values[k]})
				}
			}
			simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.extraConfig", Val: ec}})
			refs = append(refs, vm.Self)
		})
		if err != nil {
			return 0, err
		}
	}
	if len(wanted) > 0 && len(refs) != len(wanted) {
		return 0, fmt.Errorf("%d of the %d VMs named exist", len(refs), len(wanted))
	}
	t.afterChange(refs)
	return len(refs), nil
}
