package sim

// Keyed property paths in property-collector filters (CreateFilter + WaitForUpdatesEx), with
// data versions, as a real host answers them.
//
// What a real host does (vSphere API reference: WaitForUpdatesExRequestType, WaitOptions,
// InvalidCollectorVersion on developer.broadcom.com):
//   - version "" is the initial data version: the answer holds every object of every filter
//     of the collector (kind "enter", each property "assign").
//   - Any other version must be a (non-truncated) version returned by the same collector on the
//     same session; the answer then holds only what changed since: "enter" for objects that
//     came into a filter, "leave" for objects that left, "modify" with the changed properties
//     (op "assign", or "remove" for a property that became unset). A version "out of date or
//     invalid" is the fault InvalidCollectorVersion.
//   - maxWaitSeconds 0 does "one update calculation and returns any results" (like
//     CheckForUpdates): nothing changed is an empty answer (null returnval) and the client keeps
//     its version.
//   - Collectors and filters belong to the session, not the connection: a later connection with
//     the same session cookie finds them; a new session does not (ManagedObjectNotFound).
//
// Debian's vcsim 0.24.2 gets these wrong: every version but "" answers "-" and waits for a
// 250 ms tick even with maxWaitSeconds 0, it keeps no versions (a stale version is accepted),
// and keyed paths (config.extraConfig["k"]) in a filter are silently dropped. So the test bed
// answers filters that ask for keyed paths itself (mode "support"): vcsim makes the collector
// and a filter over the spec's plain paths (so the collector and the session are checked as
// vcsim does), the test bed keeps the filter's spec and, per issued version, the property
// values it last reported, and answers WaitForUpdatesEx by comparing them with the objects'
// current values. Mode "refuse" answers CreateFilter with InvalidProperty; "legacy" passes
// everything to vcsim. Filters without keyed paths are vcsim's, as before.
//
// Limits, for the test bed's own clients: an objectSet entry with a selectSet stands for every
// object of the propSet's type in the inventory (ceso's traversal from the root folder reaches
// them all); a plain path whose value is an array is answered NotSupported; only the latest
// version is kept: an older one is InvalidCollectorVersion here, where a real host may still
// answer it (ceso always passes the latest it was given, and handles both).

import (
	"context"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

type keyedFilter struct {
	ref     types.ManagedObjectReference
	spec    types.PropertyFilterSpec
	partial bool
	// reported holds, per object, the values last reported at the collector's version.
	reported map[types.ManagedObjectReference]*objectValues
}

type keyedCollector struct {
	mu      sync.Mutex // one WaitForUpdatesEx at a time
	filters []*keyedFilter
	version int // 0: no version issued yet
	cancel  context.CancelFunc
}

type keyedCollectors struct {
	mu sync.Mutex
	m  map[string]*keyedCollector // session cookie + collector moref -> collector
}

var collectors = keyedCollectors{m: map[string]*keyedCollector{}}

func collectorKey(r *http.Request, ref types.ManagedObjectReference) string {
	return sessionCookie(r) + "\x00" + ref.Value
}

func (c *keyedCollectors) get(key string) *keyedCollector {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

var filterRefRE = regexp.MustCompile(`<returnval type="PropertyFilter">([^<]+)</returnval>`)

// keyedFilterCall answers the property-collector calls of filters with keyed paths (nil: vcsim's).
func (t *Testbed) keyedFilterCall(r *http.Request, method *simulator.Method) func() (int, http.Header, []byte) {
	switch req := method.Body.(type) {
	case *types.CreateFilter:
		if !specHasKeyedPath(req.Spec) {
			return nil
		}
		mode := t.keyedMode()
		if mode == "legacy" {
			return nil
		}
		return func() (int, http.Header, []byte) { return t.createKeyedFilter(r, method, req, mode) }
	case *types.WaitForUpdatesEx:
		c := collectors.get(collectorKey(r, req.This))
		if c == nil {
			return nil
		}
		if mode := t.keyedMode(); mode != "support" {
			// the host was switched to refusing keyed paths: its keyed filters are refused too
			name := req.This.Value
			return func() (int, http.Header, []byte) {
				return http.StatusInternalServerError, xmlHeader, faultXML(&types.InvalidProperty{Name: name}, "")
			}
		}
		return func() (int, http.Header, []byte) { return c.waitForUpdates(r, req.Version, req.Options) }
	case *types.CancelWaitForUpdates:
		c := collectors.get(collectorKey(r, req.This))
		if c == nil {
			return nil
		}
		return func() (int, http.Header, []byte) {
			c.mu.Lock()
			cancel := c.cancel
			c.mu.Unlock()
			if cancel != nil {
				cancel()
			}
			return voidResult(method.Name, nil)
		}
	case *types.DestroyPropertyCollector:
		key := collectorKey(r, req.This)
		if collectors.get(key) == nil {
			return nil
		}
		return func() (int, http.Header, []byte) {
			status, hdr, out := t.forward(r, mustEnvelope(&methods.DestroyPropertyCollectorBody{Req: req}))
			if status == http.StatusOK {
				collectors.mu.Lock()
				delete(collectors.m, key)
				collectors.mu.Unlock()
			}
			return status, hdr, out
		}
	}
	return nil
}

func mustEnvelope(body interface{}) []byte {
	out, err := xml.Marshal(soap.Envelope{Body: body})
	if err != nil {
		panic(err)
	}
	return out
}

func specHasKeyedPath(spec types.PropertyFilterSpec) bool {
	for _, ps := range spec.PropSet {
		for _, p := range ps.PathSet {
			if _, ok, _ := parseKeyedPath(p); ok {
				return true
			}
		}
	}
	return false
}

func (t *Testbed) createKeyedFilter(r *http.Request, method *simulator.Method, req *types.CreateFilter, mode string) (int, http.Header, []byte) {
	for _, ps := range req.Spec.PropSet {
		for _, p := range ps.PathSet {
			if _, ok, valid := parseKeyedPath(p); ok && (!valid || mode == "refuse") {
				return http.StatusInternalServerError, xmlHeader, faultXML(&types.InvalidProperty{Name: p}, "")
			}
		}
	}
	// vcsim makes a filter over the plain paths: it checks the collector and the session.
	plain := *req
	plain.Spec.PropSet = nil
	for _, ps := range req.Spec.PropSet {
		var paths []string
		for _, p := range ps.PathSet {
			if _, ok, _ := parseKeyedPath(p); !ok {
				paths = append(paths, p)
			}
		}
		ps.PathSet = paths
		plain.Spec.PropSet = append(plain.Spec.PropSet, ps)
	}
	status, hdr, out := t.forward(r, mustEnvelope(&methods.CreateFilterBody{Req: &plain}))
	if status != http.StatusOK {
		return status, hdr, []byte(t.scrub(string(fixFaultString(out))))
	}
	m := filterRefRE.FindSubmatch(out)
	if m == nil {
		return voidResult(method.Name, &types.SystemError{Reason: "vcsim's CreateFilter answered no filter"})
	}
	filter := &keyedFilter{
		ref:      types.ManagedObjectReference{Type: "PropertyFilter", Value: string(m[1])},
		spec:     req.Spec,
		partial:  req.PartialUpdates,
		reported: map[types.ManagedObjectReference]*objectValues{},
	}
	key := collectorKey(r, req.This)
	collectors.mu.Lock()
	c := collectors.m[key]
	if c == nil {
		c = &keyedCollector{}
		collectors.m[key] = c
	}
	collectors.mu.Unlock()
	c.mu.Lock()
	c.filters = append(c.filters, filter)
	c.mu.Unlock()
	return status, hdr, out
}

// waitForUpdates answers WaitForUpdatesEx on a collector with keyed filters.
func (c *keyedCollector) waitForUpdates(r *http.Request, version string, options *types.WaitOptions) (int, http.Header, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != "" && version != strconv.Itoa(c.version) {
		return http.StatusInternalServerError, xmlHeader, faultXML(&types.InvalidCollectorVersion{}, "")
	}
	wait := time.Duration(-1) // no maxWaitSeconds: until something changes
	if options != nil && options.MaxWaitSeconds != nil {
		wait = time.Duration(*options.MaxWaitSeconds) * time.Second
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c.cancel = cancel
	deadline := time.Now().Add(wait)
	for {
		set, fault := c.updates(version == "")
		if fault != nil {
			return http.StatusInternalServerError, xmlHeader, faultXML(fault, "")
		}
		if len(set.FilterSet) > 0 || version == "" {
			c.version++
			set.Version = strconv.Itoa(c.version)
			return http.StatusOK, xmlHeader, responseXML(&types.WaitForUpdatesExResponse{Returnval: set})
		}
		if wait >= 0 && !time.Now().Before(deadline) {
			return http.StatusOK, xmlHeader, responseXML(&types.WaitForUpdatesExResponse{})
		}
		select {
		case <-ctx.Done():
			return http.StatusInternalServerError, xmlHeader, faultXML(new(types.RequestCanceled), "")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// updates compares every filter's objects with what was last reported (all: report everything)
// and records the current values as reported.
func (c *keyedCollector) updates(all bool) (*types.UpdateSet, types.BaseMethodFault) {
	set := &types.UpdateSet{}
	for _, f := range c.filters {
		current, fault := f.current()
		if fault != nil {
			return nil, fault
		}
		fu := types.PropertyFilterUpdate{Filter: f.ref}
		refs := make([]types.ManagedObjectReference, 0, len(current))
		for ref := range current {
			refs = append(refs, ref)
		}
		sort.Slice(refs, func(i, j int) bool { return refs[i].Value < refs[j].Value })
		for _, ref := range refs {
			now := current[ref]
			before, known := f.reported[ref]
			if all || !known {
				fu.ObjectSet = append(fu.ObjectSet, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindEnter, ChangeSet: now.changes(nil)})
				continue
			}
			if cs := now.changes(before); len(cs) > 0 {
				fu.ObjectSet = append(fu.ObjectSet, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindModify, ChangeSet: cs})
			}
		}
		var gone []types.ManagedObjectReference
		for ref := range f.reported {
			if _, ok := current[ref]; !ok {
				gone = append(gone, ref)
			}
		}
		sort.Slice(gone, func(i, j int) bool { return gone[i].Value < gone[j].Value })
		for _, ref := range gone {
			fu.ObjectSet = append(fu.ObjectSet, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindLeave})
		}
		f.reported = current
		if len(fu.ObjectSet) > 0 {
			set.FilterSet = append(set.FilterSet, fu)
		}
	}
	return set, nil
}

// objectValues are one object's values of a propSet's paths (nil: unset).
type objectValues struct {
	paths  []string
	values []interface{}
}

// changes lists what differs from before (nil: nothing reported yet), in the paths' order.
func (now objectValues) changes(before *objectValues) []types.PropertyChange {
	var out []types.PropertyChange
	for i, name := range now.paths {
		val := now.values[i]
		var old interface{}
		if before != nil {
			old = before.values[i]
		}
		switch {
		case val == nil && old != nil:
			out = append(out, types.PropertyChange{Name: name, Op: types.PropertyChangeOpRemove})
		case val != nil && (old == nil || !reflect.DeepEqual(old, val)):
			out = append(out, types.PropertyChange{Name: name, Op: types.PropertyChangeOpAssign, Val: val})
		}
	}
	return out
}

// current reads the filter's paths of each of its objects (an unset property is nil).
func (f *keyedFilter) current() (map[types.ManagedObjectReference]*objectValues, types.BaseMethodFault) {
	out := map[types.ManagedObjectReference]*objectValues{}
	for _, ps := range f.spec.PropSet {
		var objs []types.ManagedObjectReference
		for _, os := range f.spec.ObjectSet {
			if len(os.SelectSet) > 0 {
				for _, o := range simulator.Map.All(ps.Type) {
					objs = append(objs, o.Reference())
				}
			}
			if os.Obj.Type == ps.Type && !isTrueBool(os.Skip) {
				objs = append(objs, os.Obj)
			}
		}
		// string keys into OptionValue arrays (extraConfig) are read in one pass over the array
		parsed := make([]keyedPath, len(ps.PathSet))
		keyed := make([]bool, len(ps.PathSet))
		options := map[string]map[string]int{} // array path -> key -> path index
		for i, p := range ps.PathSet {
			parsed[i], keyed[i], _ = parseKeyedPath(p)
			if key, ok := parsed[i].key.(string); keyed[i] && ok && parsed[i].item == "" {
				if options[parsed[i].path] == nil {
					options[parsed[i].path] = map[string]int{}
				}
				options[parsed[i].path][key] = i
			}
		}
		for _, ref := range objs {
			obj := simulator.Map.Get(ref)
			if obj == nil {
				continue
			}
			values := make([]interface{}, len(ps.PathSet))
			var fault types.BaseMethodFault
			simulator.Map.WithLock(obj, func() {
				rval := reflect.ValueOf(obj)
				done := make([]bool, len(ps.PathSet))
				for path, wanted := range options {
					list, ok := fieldAt(rval, path)
					if !ok || !list.IsValid() {
						continue // keyedValueOf below says what is wrong
					}
					if items, isOptions := list.Interface().([]types.BaseOptionValue); isOptions {
						for _, i := range wanted {
							done[i] = true
						}
						for _, item := range items {
							ov := item.GetOptionValue()
							if i, ok := wanted[ov.Key]; ok && values[i] == nil {
								values[i] = *ov
							}
						}
					}
				}
				for i, p := range ps.PathSet {
					if done[i] {
						continue
					}
					if keyed[i] {
						if values[i], fault = keyedValueOf(rval, parsed[i]); fault != nil {
							return
						}
						continue
					}
					v, ok := fieldAt(rval, p)
					if !ok {
						fault = &types.InvalidProperty{Name: p}
						return
					}
					if !v.IsValid() || (v.Kind() == reflect.String && v.Len() == 0) {
						continue // unset, as vcsim leaves it out
					}
					if v.Kind() == reflect.Slice {
						fault = &types.NotSupported{}
						return
					}
					values[i] = v.Interface()
				}
			})
			if fault != nil {
				return nil, fault
			}
			out[ref] = &objectValues{paths: ps.PathSet, values: values}
		}
	}
	return out, nil
}
