package cloudinit

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io/ioutil"
	"mime"
	"mime/quotedprintable"
	"regexp"
	"strconv"
	"strings"
)

// User data the way cloud-init's UserDataProcessor (cloudinit/user_data.py) and its part
// handlers see it:
//   - gzip-compressed user data is decompressed first;
//   - it is a MIME message only when "mime-version:" appears in its first 4096 bytes
//     (case-insensitive); otherwise it is one part of type text/x-not-multipart;
//   - multipart/* containers are walked depth first; each leaf part is decoded (base64,
//     quoted-printable), gunzipped for the gzip content types, and typed: text/plain,
//     text/x-not-multipart and text/x-shellscript parts are typed by how they start
//     ("#cloud-config", "#!", "#include", "#cloud-boothook", "#cloud-config-archive",
//     "## template: jinja", ...), other parts keep their Content-Type;
//   - text/cloud-config-archive parts explode into their entries; #include parts would fetch
//     URLs (the test bed is offline: they contribute nothing);
//   - the cloud-config parts (also from a jinja template, whose header line is dropped; no
//     rendering) are merged in order with their mergers (see merge.go). A part that is not a
//     YAML mapping, or whose mergers are malformed, is skipped, as cloud-init logs and skips it.

// Part is one user-data part after typing.
type Part struct {
	Type    string
	Headers map[string]string // canonical MIME header names
	Content string
}

// CloudConfig is the merged cloud-config (nil when user data has no usable cloud-config part)
// and notes on what was skipped.
type CloudConfig struct {
	Config map[string]interface{}
	Notes  []string
}

var startsWith = []struct{ prefix, ctype string }{
	// longest first, as cloud-init's INCLUSION_SRCH
	{"#cloud-config-archive", "text/cloud-config-archive"},
	{"#cloud-config-jsonp", "text/cloud-config-jsonp"},
	{"## template: jinja", "text/jinja2"},
	{"#cloud-boothook", "text/cloud-boothook"},
	{"#include-once", "text/x-include-once-url"},
	{"#part-handler", "text/part-handler"},
	{"#cloud-config", "text/cloud-config"},
	{"#upstart-job", "text/upstart-job"},
	{"#include", "text/x-include-url"},
	{"#!", "text/x-shellscript"},
}

// TypeFromStartsWith is cloud-init's handlers.type_from_starts_with; "" when unknown.
func TypeFromStartsWith(payload string) string {
	lc := strings.ToLower(strings.TrimLeft(payload, " \t\r\n\v\f"))
	for _, s := range startsWith {
		if strings.HasPrefix(lc, s.prefix) {
			return s.ctype
		}
	}
	return ""
}

var decompTypes = map[string]bool{
	"application/gzip": true, "application/gzip-compressed": true, "application/gzipped": true,
	"application/x-compress": true, "application/x-compressed": true, "application/x-gunzip": true,
	"application/x-gzip": true, "application/x-gzip-compressed": true,
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return ioutil.ReadAll(zr)
}

// message is a parsed MIME entity.
type message struct {
	headers map[string]string // canonical names; first occurrence wins (Python's msg[name])
	body    string
}

var headerLineRE = regexp.MustCompile(`^[\x21-\x39\x3b-\x7e]+:`)

// parseEntity reads headers up to a blank line (or the first line that is no header, as
// Python's feedparser does) and returns the rest as the body.
func parseEntity(text string) message {
	m := message{headers: map[string]string{}}
	lines := strings.SplitAfter(text, "\n")
	last := ""
	i := 0
	for ; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\r\n")
		if l == "" {
			i++
			break
		}
		if (l[0] == ' ' || l[0] == '\t') && last != "" {
			m.headers[last] += " " + strings.TrimSpace(l)
			continue
		}
		if !headerLineRE.MatchString(l) {
			break
		}
		c := strings.IndexByte(l, ':')
		name := canonicalHeader(strings.TrimSpace(l[:c]))
		if _, dup := m.headers[name]; !dup {
			m.headers[name] = strings.TrimSpace(l[c+1:])
			last = name
		} else {
			last = ""
		}
	}
	m.body = strings.Join(lines[i:], "")
	return m
}

func canonicalHeader(s string) string {
	parts := strings.Split(strings.ToLower(s), "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// contentType is Python's get_content_type: lower-case maintype/subtype, text/plain when
// missing or malformed.
func (m message) contentType() (string, map[string]string) {
	v, ok := m.headers["Content-Type"]
	if !ok {
		return "text/plain", nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]))
		params = map[string]string{}
		if b := regexp.MustCompile(`(?i)boundary\s*=\s*"?([^";]+)"?`).FindStringSubmatch(v); b != nil {
			params["boundary"] = b[1]
		}
	}
	if strings.Count(mt, "/") != 1 {
		return "text/plain", nil
	}
	return mt, params
}

// leaves walks a message depth first and returns its non-multipart entities.
func leaves(m message, depth int) []message {
	ct, params := m.contentType()
	if !strings.HasPrefix(ct, "multipart/") {
		return []message{m}
	}
	boundary := params["boundary"]
	if boundary == "" || depth > 16 {
		return nil // a multipart without a boundary has no parts Python can find
	}
	var out []message
	for _, p := range splitMultipart(m.body, boundary) {
		out = append(out, leaves(parseEntity(p), depth+1)...)
	}
	return out
}

// splitMultipart returns the parts between "--boundary" lines (the preamble and epilogue are
// dropped; the line break before a boundary belongs to the boundary). A missing closing
// boundary keeps the last part, as Python's parser does (with a defect).
func splitMultipart(body, boundary string) []string {
	sep := "--" + boundary
	lines := strings.SplitAfter(body, "\n")
	var parts []string
	var cur *strings.Builder
	flush := func() {
		if cur != nil {
			s := cur.String()
			s = strings.TrimSuffix(s, "\n")
			s = strings.TrimSuffix(s, "\r")
			parts = append(parts, s)
		}
	}
	for _, raw := range lines {
		l := strings.TrimRight(raw, "\r\n")
		if strings.HasPrefix(l, sep) {
			rest := strings.TrimRight(l[len(sep):], " \t")
			if rest == "" || rest == "--" {
				flush()
				if rest == "--" {
					return parts
				}
				cur = &strings.Builder{}
				continue
			}
		}
		if cur != nil {
			cur.WriteString(raw)
		}
	}
	flush()
	return parts
}

func (m message) payload() (string, error) {
	enc := strings.ToLower(strings.TrimSpace(m.headers["Content-Transfer-Encoding"]))
	switch enc {
	case "base64":
		clean := strings.Map(func(r rune) rune {
			if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, m.body)
		b, err := base64.StdEncoding.DecodeString(clean)
		if err != nil {
			// Python decodes what it can; padding errors are common in hand-made parts
			b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(clean, "="))
			if err != nil {
				return "", fmt.Errorf("base64: %w", err)
			}
		}
		return string(b), nil
	case "quoted-printable":
		b, err := ioutil.ReadAll(quotedprintable.NewReader(strings.NewReader(m.body)))
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	return m.body, nil
}

// SplitUserData types every part of user data as cloud-init's UserDataProcessor does.
func SplitUserData(raw []byte) ([]Part, []string) {
	var notes []string
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		if b, err := gunzip(raw); err == nil {
			raw = b
		}
	}
	probe := raw
	if len(probe) > 4096 {
		probe = probe[:4096]
	}
	var msgs []message
	if bytes.Contains(bytes.ToLower(probe), []byte("mime-version:")) {
		msgs = leaves(parseEntity(string(raw)), 0)
	} else {
		msgs = []message{{headers: map[string]string{"Content-Type": "text/x-not-multipart"}, body: string(raw)}}
	}
	var parts []Part
	for _, m := range msgs {
		ctypeOrig, _ := m.contentType()
		payload, err := m.payload()
		if err != nil {
			notes = append(notes, fmt.Sprintf("a %s part could not be decoded: %v", ctypeOrig, err))
			continue
		}
		if decompTypes[ctypeOrig] {
			b, err := gunzip([]byte(payload))
			if err != nil {
				notes = append(notes, fmt.Sprintf("a %s part could not be decompressed: %v", ctypeOrig, err))
				continue
			}
			payload = string(b)
			ctypeOrig = ""
		}
		if ctypeOrig == "" {
			ctypeOrig = "text/plain"
		}
		ctype := ""
		switch ctypeOrig {
		case "text/plain", "text/x-not-multipart", "text/x-shellscript":
			ctype = TypeFromStartsWith(payload)
		}
		if ctype == "" {
			ctype = ctypeOrig
		}
		switch ctype {
		case "text/x-include-url", "text/x-include-once-url":
			notes = append(notes, "an #include part was not fetched (offline)")
			continue
		case "text/cloud-config-archive":
			ps, n := explodeArchive(payload)
			parts = append(parts, ps...)
			notes = append(notes, n...)
			continue
		}
		parts = append(parts, Part{Type: ctype, Headers: m.headers, Content: payload})
	}
	return parts, notes
}

func explodeArchive(payload string) ([]Part, []string) {
	v, err := ParseYAML(payload)
	if err != nil {
		return nil, []string{"cloud-config-archive: " + err.Error()}
	}
	list, ok := v.([]interface{})
	if !ok {
		return nil, []string{"cloud-config-archive is not a list"}
	}
	var out []Part
	for _, ent := range list {
		var e map[string]interface{}
		switch x := ent.(type) {
		case string:
			e = map[string]interface{}{"content": x}
		case map[string]interface{}:
			e = x
		default:
			continue
		}
		content := ""
		if c, ok := e["content"]; ok && c != nil {
			content = fmt.Sprint(c)
		}
		mtype, _ := e["type"].(string)
		if mtype == "" {
			mtype = TypeFromStartsWith(content)
			if mtype == "" {
				mtype = "text/cloud-config"
			}
		}
		h := map[string]string{"Content-Type": mtype}
		for k, val := range e {
			switch strings.ToLower(k) {
			case "content", "filename", "type", "launch-index", "content-disposition", "number-attachments", "content-type":
				continue
			}
			h[canonicalHeader(k)] = fmt.Sprint(val)
		}
		out = append(out, Part{Type: strings.ToLower(mtype), Headers: h, Content: content})
	}
	return out, nil
}

// MergeCloudConfig merges the cloud-config parts of user data in order, as cloud-init's
// CloudConfigPartHandler does.
func MergeCloudConfig(raw []byte) CloudConfig {
	parts, notes := SplitUserData(raw)
	res := CloudConfig{Notes: notes}
	var buf map[string]interface{}
	merged := 0
	for i, p := range parts {
		content := p.Content
		ctype := p.Type
		if ctype == "text/jinja2" {
			// the jinja handler renders the template (not done here) without its header line
			if nl := strings.IndexByte(content, '\n'); nl >= 0 {
				content = content[nl+1:]
			} else {
				content = ""
			}
			ctype = TypeFromStartsWith(content)
		}
		if ctype == "text/cloud-config-jsonp" {
			res.Notes = append(res.Notes, fmt.Sprintf("part %d: #cloud-config-jsonp is not modelled", i+1))
			continue
		}
		if ctype != "text/cloud-config" {
			continue
		}
		if buf == nil || merged == 0 {
			buf = map[string]interface{}{}
		}
		next, err := mergePart(buf, content, p.Headers)
		if err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("part %d (cloud-config) skipped: %v", i+1, err))
			continue
		}
		buf = next
		merged++
	}
	if merged > 0 {
		res.Config = buf
	}
	return res
}

func mergePart(buf map[string]interface{}, payload string, headers map[string]string) (map[string]interface{}, error) {
	v, err := ParseYAML(payload)
	if err != nil {
		return nil, err
	}
	cfg, ok := v.(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("not a YAML mapping")
	}
	specs, err := dictMergers(cfg)
	if err != nil {
		return nil, err
	}
	header := headers["Merge-Type"]
	if header == "" {
		header = headers["X-Merge-Type"]
	}
	hs, err := stringMergers(header)
	if err != nil {
		return nil, err
	}
	specs = append(specs, hs...)
	if len(specs) == 0 {
		specs, _ = stringMergers(DefaultMergers)
	}
	root, err := construct(specs)
	if err != nil {
		return nil, err
	}
	out, ok := root.merge(buf, cfg).(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("merge gave no mapping")
	}
	return out, nil
}

// RunCmdHas reports whether the merged runcmd list has entry as one of its (string) commands.
func (c CloudConfig) RunCmdHas(entry string) bool {
	list, ok := c.Config["runcmd"].([]interface{})
	if !ok {
		return false
	}
	for _, e := range list {
		if s, ok := e.(string); ok && s == entry {
			return true
		}
	}
	return false
}

// WritesExecutable reports whether the merged write_files installs path with an execute bit
// (cloud-init's default permissions are 0644, and run-parts skips files that are not
// executable).
func (c CloudConfig) WritesExecutable(path string) bool {
	list, ok := c.Config["write_files"].([]interface{})
	if !ok {
		return false
	}
	found := false
	for _, e := range list {
		m, ok := e.(map[string]interface{})
		if !ok {
			continue
		}
		if p, _ := m["path"].(string); p != path {
			continue
		}
		found = decodePerms(m["permissions"], 0o644)&0o111 != 0 // a later entry for the same path wins
	}
	return found
}

// decodePerms is cloud-init's util.decode_perms.
func decodePerms(v interface{}, def int64) int64 {
	switch x := v.(type) {
	case nil:
		return def
	case int64:
		return x
	case float64:
		return int64(x)
	case bool:
		if x {
			return 1
		}
		return 0
	}
	t := strings.TrimSpace(fmt.Sprint(v))
	if len(t) > 2 && (t[:2] == "0o" || t[:2] == "0O") {
		t = t[2:]
	}
	n, err := strconv.ParseInt(t, 8, 64)
	if err != nil {
		return def
	}
	return n
}
