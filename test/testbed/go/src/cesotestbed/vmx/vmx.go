// Package vmx parses and renders VMware .vmx files.
//
// A .vmx holds one `key = "value"` pair per line (regexp ^(.+?)\s*=\s*"(.*)"\s*$).
// Inside a value, bytes that cannot stand in a quoted single-line value are written
// as |XX (two upper-case hex digits): `"` is |22, `|` is |7C and control characters
// (newline |0A, tab |09, ...) likewise. Get returns decoded values; Bytes encodes them.
// Keys keep their order of first appearance; lookups ignore case, as ESXi does.
// Lines that are not key/value pairs (comments, blanks) are dropped on parse.
package vmx

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

var lineRE = regexp.MustCompile(`^(.+?)\s*=\s*"(.*)"\s*$`)

type entry struct {
	key   string
	value string // decoded
}

// File is a parsed .vmx: ordered, case-insensitive key/value pairs.
type File struct {
	entries []entry
	index   map[string]int // lower-case key -> position in entries
}

// New returns an empty File.
func New() *File {
	return &File{index: map[string]int{}}
}

// Parse reads a .vmx. It never fails: lines that do not match are ignored.
// When a key appears twice the last value wins and the first position is kept.
func Parse(data []byte) *File {
	f := New()
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key := strings.TrimSpace(m[1])
		if key == "" || strings.HasPrefix(key, "#") {
			continue
		}
		f.Set(key, Decode(m[2]))
	}
	return f
}

// Get returns the decoded value of key (case-insensitive).
func (f *File) Get(key string) (string, bool) {
	if f == nil {
		return "", false
	}
	i, ok := f.index[strings.ToLower(key)]
	if !ok {
		return "", false
	}
	return f.entries[i].value, true
}

// Set stores value under key. An existing key (any case) keeps its position and spelling.
func (f *File) Set(key, value string) {
	lk := strings.ToLower(key)
	if i, ok := f.index[lk]; ok {
		f.entries[i].value = value
		return
	}
	f.index[lk] = len(f.entries)
	f.entries = append(f.entries, entry{key: key, value: value})
}

// Delete removes key (case-insensitive); a missing key is not an error.
func (f *File) Delete(key string) {
	lk := strings.ToLower(key)
	i, ok := f.index[lk]
	if !ok {
		return
	}
	f.entries = append(f.entries[:i], f.entries[i+1:]...)
	delete(f.index, lk)
	for j := i; j < len(f.entries); j++ {
		f.index[strings.ToLower(f.entries[j].key)] = j
	}
}

// Keys returns the keys in file order, spelled as stored.
func (f *File) Keys() []string {
	out := make([]string, len(f.entries))
	for i, e := range f.entries {
		out[i] = e.key
	}
	return out
}

// Len is the number of keys.
func (f *File) Len() int { return len(f.entries) }

// Clone returns an independent copy.
func (f *File) Clone() *File {
	c := New()
	for _, e := range f.entries {
		c.Set(e.key, e.value)
	}
	return c
}

// Bytes renders the file: one `key = "value"` line per key, values encoded.
func (f *File) Bytes() []byte {
	var b bytes.Buffer
	for _, e := range f.entries {
		b.WriteString(e.key)
		b.WriteString(` = "`)
		b.WriteString(Encode(e.value))
		b.WriteString("\"\n")
	}
	return b.Bytes()
}

// String is Bytes as a string.
func (f *File) String() string { return string(f.Bytes()) }

// Encode escapes a value for a .vmx line: `"`, `|` and control bytes become |XX.
func Encode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '|' || c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, "|%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Decode reverses Encode: every |XX with two hex digits becomes that byte; anything else is kept.
func Decode(s string) string {
	if !strings.Contains(s, "|") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '|' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// KeysWithPrefix returns the keys starting with prefix (case-insensitive), in file order.
func (f *File) KeysWithPrefix(prefix string) []string {
	lp := strings.ToLower(prefix)
	var out []string
	for _, e := range f.entries {
		if strings.HasPrefix(strings.ToLower(e.key), lp) {
			out = append(out, e.key)
		}
	}
	return out
}

// Map returns a copy of all pairs keyed as stored (for JSON output and tests).
func (f *File) Map() map[string]string {
	m := make(map[string]string, len(f.entries))
	for _, e := range f.entries {
		m[e.key] = e.value
	}
	return m
}

// SortedKeys returns the keys sorted case-insensitively (handy for stable diffs).
func (f *File) SortedKeys() []string {
	k := f.Keys()
	sort.Slice(k, func(i, j int) bool { return strings.ToLower(k[i]) < strings.ToLower(k[j]) })
	return k
}
