package cloudinit

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ParseYAML parses the subset of YAML that cloud-init metadata and netplan use: block
// mappings and sequences, flow collections ([..], {..}, so JSON too), quoted and plain
// scalars, comments and literal/folded block scalars. Mappings decode to
// map[string]interface{}, sequences to []interface{}, scalars to string/bool/int64/float64/nil.
func ParseYAML(text string) (interface{}, error) {
	p := &yparser{}
	for _, raw := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		trimmed := strings.TrimLeft(raw, " ")
		indent := len(raw) - len(trimmed)
		p.raw = append(p.raw, yline{indent: indent, text: raw})
		content := strings.TrimRight(stripComment(trimmed), " \t")
		if content == "" || content == "---" || content == "..." || strings.HasPrefix(content, "%") {
			continue
		}
		if strings.Contains(trimmed, "\t") && strings.HasPrefix(raw, "\t") {
			return nil, fmt.Errorf("yaml: tab indentation on line %d", len(p.raw))
		}
		p.lines = append(p.lines, yline{indent: indent, text: content, rawIndex: len(p.raw) - 1})
	}
	if len(p.lines) == 0 {
		return nil, nil
	}
	v, err := p.node(p.lines[0].indent)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.lines) {
		return nil, fmt.Errorf("yaml: unexpected content %q", p.lines[p.i].text)
	}
	return v, nil
}

type yline struct {
	indent   int
	text     string
	rawIndex int
}

type yparser struct {
	raw   []yline
	lines []yline
	i     int
}

func stripComment(s string) string {
	inS, inD := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' && !inD:
			inS = !inS
		case c == '"' && !inS:
			if i == 0 || s[i-1] != '\\' {
				inD = !inD
			}
		case c == '#' && !inS && !inD && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		}
	}
	return s
}

func isSeqItem(s string) bool { return s == "-" || strings.HasPrefix(s, "- ") }

// splitKey finds "key: rest" (or "key:") outside quotes and brackets.
func splitKey(s string) (key, rest string, ok bool) {
	if s == "" || s[0] == '[' || s[0] == '{' {
		return "", "", false
	}
	inS, inD := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' && !inD:
			inS = !inS
		case c == '"' && !inS:
			if i == 0 || s[i-1] != '\\' {
				inD = !inD
			}
		case c == ':' && !inS && !inD && (i == len(s)-1 || s[i+1] == ' ' || s[i+1] == '\t'):
			k := strings.TrimSpace(s[:i])
			if len(k) >= 2 && (k[0] == '"' || k[0] == '\'') {
				v, err := scalar(k)
				if err != nil {
					return "", "", false
				}
				k = fmt.Sprint(v)
			}
			return k, strings.TrimSpace(s[i+1:]), true
		}
	}
	return "", "", false
}

func (p *yparser) node(indent int) (interface{}, error) {
	if p.i >= len(p.lines) {
		return nil, nil
	}
	l := p.lines[p.i]
	if l.indent < indent {
		return nil, nil
	}
	if isSeqItem(l.text) {
		return p.seq(l.indent)
	}
	if _, _, ok := splitKey(l.text); ok {
		return p.mapping(l.indent)
	}
	p.i++
	if strings.HasPrefix(l.text, "|") || strings.HasPrefix(l.text, ">") {
		// a block scalar as a sequence item: its content is indented past the dash
		return p.blockScalar(l.text, p.raw[l.rawIndex].indent), nil
	}
	return p.inline(l.text, l.indent)
}

// inline parses a scalar or flow collection, continuing onto following lines while
// brackets or quotes are open.
func (p *yparser) inline(text string, indent int) (interface{}, error) {
	if strings.HasPrefix(text, "|") || strings.HasPrefix(text, ">") {
		return p.blockScalar(text, indent), nil
	}
	if strings.HasPrefix(text, "[") || strings.HasPrefix(text, "{") {
		for !balanced(text) && p.i < len(p.lines) {
			text += " " + p.lines[p.i].text
			p.i++
		}
		return flow(text)
	}
	// plain multi-line scalars: fold continuation lines that are more indented
	for p.i < len(p.lines) && p.lines[p.i].indent > indent && !isSeqItem(p.lines[p.i].text) {
		if _, _, ok := splitKey(p.lines[p.i].text); ok {
			break
		}
		text += " " + p.lines[p.i].text
		p.i++
	}
	return scalar(text)
}

func (p *yparser) blockScalar(header string, indent int) string {
	literal := header[0] == '|'
	chomp := "clip"
	explicit := 0
	for _, c := range header[1:] {
		switch {
		case c == '-':
			chomp = "strip"
		case c == '+':
			chomp = "keep"
		case c >= '1' && c <= '9':
			explicit = int(c - '0')
		}
	}
	start := p.lines[p.i-1].rawIndex + 1 // content must be indented past indent (the key's column)
	var body []string
	blockIndent := -1
	if explicit > 0 {
		blockIndent = indent + explicit
	}
	r := start
	for ; r < len(p.raw); r++ {
		raw := p.raw[r].text
		if strings.TrimSpace(raw) == "" {
			body = append(body, "")
			continue
		}
		if p.raw[r].indent <= indent {
			break
		}
		if blockIndent < 0 {
			blockIndent = p.raw[r].indent
		}
		if len(raw) >= blockIndent && strings.TrimSpace(raw[:blockIndent]) == "" {
			body = append(body, raw[blockIndent:])
		} else {
			body = append(body, strings.TrimLeft(raw, " "))
		}
	}
	for p.i < len(p.lines) && p.lines[p.i].rawIndex < r {
		p.i++
	}
	trailing := 0
	for len(body) > 0 && body[len(body)-1] == "" {
		body = body[:len(body)-1]
		trailing++
	}
	if len(body) == 0 {
		if chomp == "keep" {
			return strings.Repeat("\n", trailing)
		}
		return ""
	}
	var s string
	if literal {
		s = strings.Join(body, "\n")
	} else {
		s = foldLines(body)
	}
	switch chomp {
	case "clip":
		s += "\n"
	case "keep":
		s += strings.Repeat("\n", trailing+1)
	}
	return s
}

// foldLines joins the lines of a folded block scalar: a single line break becomes a space,
// blank lines stay line breaks, more-indented lines keep their breaks.
func foldLines(body []string) string {
	var b strings.Builder
	for i, l := range body {
		if i > 0 {
			prev := body[i-1]
			switch {
			case l == "" || prev == "":
				b.WriteString("\n")
			case strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") || strings.HasPrefix(prev, " ") || strings.HasPrefix(prev, "\t"):
				b.WriteString("\n")
			default:
				b.WriteString(" ")
			}
		}
		b.WriteString(l)
	}
	// a blank line between two text lines stands for one line break: drop the joiner doubling
	return strings.ReplaceAll(b.String(), "\n\n", "\n")
}

func (p *yparser) seq(indent int) (interface{}, error) {
	out := []interface{}{}
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		if l.indent != indent || !isSeqItem(l.text) {
			break
		}
		rest := strings.TrimLeft(l.text[1:], " ")
		if rest == "" {
			p.i++
			v, err := p.node(indent + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			continue
		}
		col := indent + (len(l.text) - len(rest))
		p.lines[p.i] = yline{indent: col, text: rest, rawIndex: l.rawIndex}
		v, err := p.node(col)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (p *yparser) mapping(indent int) (interface{}, error) {
	out := map[string]interface{}{}
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		if l.indent != indent {
			if l.indent > indent {
				return nil, fmt.Errorf("yaml: bad indentation at %q", l.text)
			}
			break
		}
		key, rest, ok := splitKey(l.text)
		if !ok {
			return nil, fmt.Errorf("yaml: expected a key at %q", l.text)
		}
		p.i++
		var v interface{}
		var err error
		if rest == "" {
			if p.i < len(p.lines) {
				next := p.lines[p.i]
				if next.indent > indent || (next.indent == indent && isSeqItem(next.text)) {
					v, err = p.node(next.indent)
				}
			}
		} else {
			v, err = p.inline(rest, indent)
		}
		if err != nil {
			return nil, err
		}
		out[key] = v
	}
	return out, nil
}

func balanced(s string) bool {
	depth := 0
	inS, inD := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' && !inD:
			inS = !inS
		case c == '"' && !inS && (i == 0 || s[i-1] != '\\'):
			inD = !inD
		case inS || inD:
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		}
	}
	return depth <= 0 && !inS && !inD
}

var (
	intRE   = regexp.MustCompile(`^[-+]?(0|[1-9][0-9]*)$`)
	floatRE = regexp.MustCompile(`^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$`)
)

func scalar(s string) (interface{}, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	switch s[0] {
	case '"':
		v, err := unquoteDouble(s)
		if err != nil {
			return nil, err
		}
		return v, nil
	case '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return nil, fmt.Errorf("yaml: bad single-quoted string %s", s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	}
	switch s {
	case "~", "null", "Null", "NULL":
		return nil, nil
	case "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE":
		return false, nil
	}
	if intRE.MatchString(s) {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
	}
	if floatRE.MatchString(s) {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f, nil
		}
	}
	return s, nil
}

// flow parses a flow collection ([a, b], {k: v}); JSON is a subset.
func flow(s string) (interface{}, error) {
	f := &flowParser{s: s}
	v, err := f.value()
	if err != nil {
		return nil, err
	}
	f.ws()
	if f.pos != len(f.s) {
		return nil, fmt.Errorf("yaml: trailing content in %q", s)
	}
	return v, nil
}

type flowParser struct {
	s   string
	pos int
}

func (f *flowParser) ws() {
	for f.pos < len(f.s) && (f.s[f.pos] == ' ' || f.s[f.pos] == '\t' || f.s[f.pos] == '\n') {
		f.pos++
	}
}

func (f *flowParser) value() (interface{}, error) {
	f.ws()
	if f.pos >= len(f.s) {
		return nil, fmt.Errorf("yaml: unexpected end of flow collection")
	}
	switch f.s[f.pos] {
	case '[':
		f.pos++
		out := []interface{}{}
		for {
			f.ws()
			if f.pos < len(f.s) && f.s[f.pos] == ']' {
				f.pos++
				return out, nil
			}
			v, err := f.value()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			f.ws()
			if f.pos < len(f.s) && f.s[f.pos] == ',' {
				f.pos++
				continue
			}
			if f.pos < len(f.s) && f.s[f.pos] == ']' {
				f.pos++
				return out, nil
			}
			return nil, fmt.Errorf("yaml: expected , or ] in %q", f.s)
		}
	case '{':
		f.pos++
		out := map[string]interface{}{}
		for {
			f.ws()
			if f.pos < len(f.s) && f.s[f.pos] == '}' {
				f.pos++
				return out, nil
			}
			k, err := f.value()
			if err != nil {
				return nil, err
			}
			f.ws()
			if f.pos >= len(f.s) || f.s[f.pos] != ':' {
				return nil, fmt.Errorf("yaml: expected : in %q", f.s)
			}
			f.pos++
			v, err := f.value()
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = v
			f.ws()
			if f.pos < len(f.s) && f.s[f.pos] == ',' {
				f.pos++
				continue
			}
			if f.pos < len(f.s) && f.s[f.pos] == '}' {
				f.pos++
				return out, nil
			}
			return nil, fmt.Errorf("yaml: expected , or } in %q", f.s)
		}
	case '"':
		start := f.pos
		f.pos++
		for f.pos < len(f.s) && f.s[f.pos] != '"' {
			if f.s[f.pos] == '\\' {
				f.pos++
			}
			f.pos++
		}
		f.pos++
		if f.pos > len(f.s) {
			return nil, fmt.Errorf("yaml: unterminated string")
		}
		return scalar(f.s[start:f.pos])
	case '\'':
		start := f.pos
		f.pos++
		for f.pos < len(f.s) {
			if f.s[f.pos] == '\'' {
				if f.pos+1 < len(f.s) && f.s[f.pos+1] == '\'' {
					f.pos += 2
					continue
				}
				break
			}
			f.pos++
		}
		f.pos++
		if f.pos > len(f.s) {
			return nil, fmt.Errorf("yaml: unterminated string")
		}
		return scalar(f.s[start:f.pos])
	default:
		start := f.pos
		for f.pos < len(f.s) {
			c := f.s[f.pos]
			if c == ',' || c == ']' || c == '}' {
				break
			}
			if c == ':' && (f.pos+1 == len(f.s) || f.s[f.pos+1] == ' ') {
				break
			}
			f.pos++
		}
		return scalar(f.s[start:f.pos])
	}
}

// unquoteDouble decodes a YAML double-quoted scalar (JSON's escapes plus \0 \a \v \e \xXX
// \UXXXXXXXX \N \_ \L \P, "\ " and "\/"); line breaks inside fold to spaces.
func unquoteDouble(s string) (string, error) {
	if len(s) < 2 || s[len(s)-1] != '"' {
		return "", fmt.Errorf("yaml: bad double-quoted string %s", s)
	}
	in := s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c == '"' {
			return "", fmt.Errorf("yaml: bad double-quoted string %s", s)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(in) {
			return "", fmt.Errorf("yaml: bad escape in %s", s)
		}
		hex := 0
		switch in[i] {
		case '0':
			b.WriteByte(0)
		case 'a':
			b.WriteByte(7)
		case 'b':
			b.WriteByte(8)
		case 't', '\t':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'v':
			b.WriteByte(11)
		case 'f':
			b.WriteByte(12)
		case 'r':
			b.WriteByte('\r')
		case 'e':
			b.WriteByte(27)
		case ' ':
			b.WriteByte(' ')
		case '"', '/', '\\':
			b.WriteByte(in[i])
		case 'N':
			b.WriteString("\u0085")
		case '_':
			b.WriteString("\u00a0")
		case 'L':
			b.WriteString("\u2028")
		case 'P':
			b.WriteString("\u2029")
		case 'x':
			hex = 2
		case 'u':
			hex = 4
		case 'U':
			hex = 8
		default:
			return "", fmt.Errorf("yaml: unknown escape \\%c in %s", in[i], s)
		}
		if hex > 0 {
			if i+1+hex > len(in) {
				return "", fmt.Errorf("yaml: short escape in %s", s)
			}
			n, err := strconv.ParseUint(in[i+1:i+1+hex], 16, 32)
			if err != nil {
				return "", fmt.Errorf("yaml: bad escape in %s", s)
			}
			b.WriteRune(rune(n))
			i += hex
		}
	}
	return b.String(), nil
}
