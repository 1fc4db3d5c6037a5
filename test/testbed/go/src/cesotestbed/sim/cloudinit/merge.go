package cloudinit

import (
	"fmt"
	"regexp"
	"strings"
)

// cloud-init's mergers (cloudinit/mergers/{__init__,m_dict,m_list,m_str}.py), which combine the
// cloud-config parts of user data. A part's mergers come from its merge_how (or merge_type) key,
// a list of {name, settings} / [name, setting...] or the string form "list(append)+dict(...)",
// plus its Merge-Type (X-Merge-Type) MIME header; without any, the cloud-config handler's
// default "dict(replace)+list()+str()" applies, so a later part's runcmd REPLACES an earlier one.
//
// Merging dispatches on the type of the value merged into (the earlier one): a mapping goes to
// the first "dict" merger, a list to the first "list" merger, a string to the first "str" one;
// with no such merger (or another type) the earlier value is kept unchanged.

type mergerSpec struct {
	name string
	opts mergeOpts
}

// mergeOpts mimics Python's `x in opts` on the settings: a list (membership) or, when a user
// wrote a plain string, substring search.
type mergeOpts struct {
	list []string
	str  *string
}

func (o mergeOpts) has(name string) bool {
	if o.str != nil {
		return strings.Contains(*o.str, name)
	}
	for _, s := range o.list {
		if s == name {
			return true
		}
	}
	return false
}

var mergerNameRE = regexp.MustCompile(`^([a-zA-Z_][A-Za-z0-9_]*)\((.*?)\)$`)

// stringMergers parses "dict(replace)+list()+str()".
func stringMergers(s string) ([]mergerSpec, error) {
	var out []mergerSpec
	for _, m := range strings.Split(s, "+") {
		m = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(m)), "-", "_")
		if m == "" {
			continue
		}
		g := mergerNameRE.FindStringSubmatch(m)
		if g == nil {
			return nil, fmt.Errorf("merger identifier %q is not in the right format", m)
		}
		var opts []string
		for _, o := range strings.Split(strings.TrimSpace(g[2]), ",") {
			if o = strings.ToLower(strings.TrimSpace(o)); o != "" {
				opts = append(opts, o)
			}
		}
		out = append(out, mergerSpec{name: g[1], opts: mergeOpts{list: opts}})
	}
	return out, nil
}

func toOpts(v interface{}) (mergeOpts, error) {
	switch x := v.(type) {
	case nil:
		return mergeOpts{}, fmt.Errorf("merger settings are missing")
	case string:
		return mergeOpts{str: &x}, nil
	case []interface{}:
		var o mergeOpts
		for _, e := range x {
			o.list = append(o.list, fmt.Sprint(e))
		}
		return o, nil
	}
	return mergeOpts{}, fmt.Errorf("merger settings %v are not a list", v)
}

// dictMergers pops merge_how (else merge_type) from a part's mapping and parses it.
func dictMergers(cfg map[string]interface{}) ([]mergerSpec, error) {
	raw, ok := cfg["merge_how"]
	delete(cfg, "merge_how")
	if !ok || raw == nil {
		raw, ok = cfg["merge_type"]
		delete(cfg, "merge_type") // popped only when merge_how is absent, as in Python
	}
	if !ok || raw == nil {
		return nil, nil
	}
	switch x := raw.(type) {
	case string:
		return stringMergers(x)
	case []interface{}:
		var out []mergerSpec
		for _, m := range x {
			var name string
			var opts mergeOpts
			switch e := m.(type) {
			case map[string]interface{}:
				n, ok := e["name"].(string)
				if !ok {
					return nil, fmt.Errorf("merger without a name: %v", e)
				}
				name = strings.TrimSpace(strings.ReplaceAll(n, "-", "_"))
				o, err := toOpts(e["settings"])
				if err != nil {
					return nil, err
				}
				opts = o
			case []interface{}:
				if len(e) == 0 {
					return nil, fmt.Errorf("empty merger entry")
				}
				name = fmt.Sprint(e[0])
				opts, _ = toOpts(append([]interface{}{}, e[1:]...))
			case string:
				if e == "" {
					return nil, fmt.Errorf("empty merger entry")
				}
				name = e[:1] // Python: m[0] of a string
				rest := e[1:]
				opts = mergeOpts{str: &rest}
			default:
				return nil, fmt.Errorf("bad merger entry %v", m)
			}
			if name != "" {
				out = append(out, mergerSpec{name: name, opts: opts})
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("merge_how %v is neither a string nor a list", raw)
}

// DefaultMergers is the cloud-config handler's default.
const DefaultMergers = "dict(replace)+list()+str()"

type mergerImpl struct {
	kind string // dict, list, str
	// dict
	replace      bool
	recurseStr   bool
	recurseArray bool
	allowDelete  bool
	// list
	method      string // append, prepend, replace, no_replace
	recurseDict bool
	// str
	appendStr bool
}

type lookupMerger struct {
	mergers []*mergerImpl
}

// construct builds the merger chain; an unknown merger name fails as cloud-init's import does.
func construct(specs []mergerSpec) (*lookupMerger, error) {
	root := &lookupMerger{}
	for _, s := range specs {
		name := strings.TrimPrefix(s.name, "m_")
		m := &mergerImpl{kind: name}
		switch name {
		case "dict":
			m.replace = s.opts.has("replace") // "replace" wins over the default no_replace
			m.recurseStr = s.opts.has("recurse_str")
			m.recurseArray = s.opts.has("recurse_array") || s.opts.has("recurse_list")
			m.allowDelete = s.opts.has("allow_delete")
		case "list":
			m.method = "replace"
			for _, x := range []string{"append", "prepend", "replace", "no_replace"} {
				if s.opts.has(x) {
					m.method = x
					break
				}
			}
			m.recurseStr = s.opts.has("recurse_str")
			m.recurseDict = s.opts.has("recurse_dict")
			m.recurseArray = s.opts.has("recurse_array") || s.opts.has("recurse_list")
		case "str":
			m.appendStr = s.opts.has("append")
		default:
			return nil, fmt.Errorf("could not find merger module named 'm_%s'", name)
		}
		root.mergers = append(root.mergers, m)
	}
	return root, nil
}

func (l *lookupMerger) find(kind string) *mergerImpl {
	for _, m := range l.mergers {
		if m.kind == kind {
			return m
		}
	}
	return nil
}

func (l *lookupMerger) merge(source, with interface{}) interface{} {
	switch s := source.(type) {
	case map[string]interface{}:
		if m := l.find("dict"); m != nil {
			return l.onDict(m, s, with)
		}
	case []interface{}:
		if m := l.find("list"); m != nil {
			return l.onList(m, s, with)
		}
	case string:
		if m := l.find("str"); m != nil {
			return onStr(m, s, with)
		}
	}
	return source
}

func (l *lookupMerger) onDict(m *mergerImpl, value map[string]interface{}, with interface{}) interface{} {
	w, ok := with.(map[string]interface{})
	if !ok {
		return value
	}
	out := make(map[string]interface{}, len(value)+len(w))
	for k, v := range value {
		out[k] = v
	}
	for k, nv := range w {
		old, exists := out[k]
		if !exists {
			out[k] = nv
			continue
		}
		if nv == nil && m.allowDelete {
			delete(out, k)
			continue
		}
		if m.replace {
			out[k] = nv
			continue
		}
		switch nv.(type) {
		case []interface{}:
			if m.recurseArray {
				out[k] = l.merge(old, nv)
			}
		case string:
			if m.recurseStr {
				out[k] = l.merge(old, nv)
			}
		case map[string]interface{}:
			out[k] = l.merge(old, nv) // recurse_dict is always on
		}
	}
	return out
}

func (l *lookupMerger) onList(m *mergerImpl, value []interface{}, with interface{}) interface{} {
	w, ok := with.([]interface{})
	if !ok {
		if m.method == "replace" {
			return with
		}
		// Python iterates whatever it got; a non-list here only comes from odd user data
		return value
	}
	switch m.method {
	case "prepend":
		return append(append([]interface{}{}, w...), value...)
	case "append":
		return append(append([]interface{}{}, value...), w...)
	}
	out := append([]interface{}{}, value...)
	for i := 0; i < len(out) && i < len(w); i++ {
		if m.method == "no_replace" {
			continue
		}
		nv := w[i]
		switch nv.(type) {
		case []interface{}:
			if m.recurseArray {
				out[i] = l.merge(out[i], nv)
				continue
			}
		case string:
			if m.recurseStr {
				out[i] = l.merge(out[i], nv)
				continue
			}
		case map[string]interface{}:
			if m.recurseDict {
				out[i] = l.merge(out[i], nv)
				continue
			}
		}
		out[i] = nv
	}
	return out
}

func onStr(m *mergerImpl, value string, with interface{}) interface{} {
	if !m.appendStr {
		return with
	}
	if s, ok := with.(string); ok {
		return value + s
	}
	return with
}
