package esxishell

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// SectorSize is the unit of extent sizes in a .vmdk descriptor.
const SectorSize = 512

// Extent is one extent line of a descriptor: `RW 20971520 VMFS "web-flat.vmdk"`.
type Extent struct {
	Line    int // index in Descriptor.Lines
	Access  string
	Sectors int64
	Type    string // VMFS, SPARSE, FLAT, VMFSSPARSE, ...
	File    string
	Offset  string
}

// Descriptor is a parsed text .vmdk descriptor; unknown lines are kept verbatim.
type Descriptor struct {
	Lines   []string
	Extents []Extent
}

var extentRE = regexp.MustCompile(`^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Za-z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$`)

// ErrNotDescriptor is returned for binary (monolithic sparse) disks.
var ErrNotDescriptor = errors.New("not a text disk descriptor")

// ParseDescriptor parses a descriptor file's contents.
func ParseDescriptor(data []byte) (*Descriptor, error) {
	if bytes.HasPrefix(data, []byte("KDMV")) || bytes.IndexByte(data, 0) >= 0 {
		return nil, ErrNotDescriptor
	}
	d := &Descriptor{Lines: strings.Split(strings.TrimRight(string(data), "\n"), "\n")}
	if len(data) == 0 {
		d.Lines = nil
	}
	for i, l := range d.Lines {
		m := extentRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		d.Extents = append(d.Extents, Extent{Line: i, Access: m[1], Sectors: n, Type: m[3], File: m[4], Offset: m[5]})
	}
	return d, nil
}

// CapacityBytes is the disk's size: the sum of its extents.
func (d *Descriptor) CapacityBytes() int64 {
	var n int64
	for _, e := range d.Extents {
		n += e.Sectors * SectorSize
	}
	return n
}

// Get returns a `key = "value"` / `key=value` entry.
func (d *Descriptor) Get(key string) (string, bool) {
	for _, l := range d.Lines {
		k, v, ok := splitKV(l)
		if ok && k == key {
			return v, true
		}
	}
	return "", false
}

func splitKV(l string) (string, string, bool) {
	i := strings.Index(l, "=")
	if i < 0 || strings.HasPrefix(strings.TrimSpace(l), "#") {
		return "", "", false
	}
	k := strings.TrimSpace(l[:i])
	v := strings.TrimSpace(l[i+1:])
	v = strings.Trim(v, `"`)
	return k, v, true
}

// Set replaces an entry, keeping the file's spelling (ddb.* quoted, header unquoted);
// a missing ddb.* key is appended at the end.
func (d *Descriptor) Set(key, value string) {
	quoted := strings.HasPrefix(key, "ddb.") || key == "encoding" || key == "createType"
	line := key + "=" + value
	if quoted {
		line = key + ` = "` + value + `"`
		if !strings.HasPrefix(key, "ddb.") {
			line = key + `="` + value + `"`
		}
	}
	for i, l := range d.Lines {
		if k, _, ok := splitKV(l); ok && k == key {
			d.Lines[i] = line
			return
		}
	}
	d.Lines = append(d.Lines, line)
}

// SetExtent rewrites extent i.
func (d *Descriptor) SetExtent(i int, e Extent) {
	e.Line = d.Extents[i].Line
	d.Extents[i] = e
	l := fmt.Sprintf("%s %d %s", e.Access, e.Sectors, e.Type)
	if e.File != "" {
		l += ` "` + e.File + `"`
	}
	if e.Offset != "" {
		l += " " + e.Offset
	}
	d.Lines[e.Line] = l
}

// Bytes renders the descriptor.
func (d *Descriptor) Bytes() []byte {
	return []byte(strings.Join(d.Lines, "\n") + "\n")
}

// NewDescriptor builds a VMFS descriptor for a flat disk (what vmkfstools writes).
func NewDescriptor(flatName string, sectors int64, thin bool, adapter string) *Descriptor {
	if adapter == "" {
		adapter = "lsilogic"
	}
	lines := []string{
		"# Disk DescriptorFile",
		"version=1",
		`encoding="UTF-8"`,
		"CID=" + randomHex(4),
		"parentCID=ffffffff",
		`createType="vmfs"`,
		"",
		"# Extent description",
		fmt.Sprintf(`RW %d VMFS "%s"`, sectors, flatName),
		"",
		"# The Disk Data Base",
		"#DDB",
		"",
		`ddb.adapterType = "` + adapter + `"`,
		`ddb.geometry.cylinders = "` + strconv.FormatInt(cylinders(sectors), 10) + `"`,
		`ddb.geometry.heads = "255"`,
		`ddb.geometry.sectors = "63"`,
		`ddb.longContentID = "` + randomHex(16) + `"`,
	}
	if thin {
		lines = append(lines, `ddb.thinProvisioned = "1"`)
	}
	lines = append(lines, `ddb.uuid = "`+uuidVMDK()+`"`, `ddb.virtualHWVersion = "13"`)
	d, _ := ParseDescriptor([]byte(strings.Join(lines, "\n")))
	return d
}

func cylinders(sectors int64) int64 {
	c := sectors / (255 * 63)
	if c < 1 {
		c = 1
	}
	return c
}

// Resized updates the geometry after the extent size changed.
func (d *Descriptor) Resized() {
	if _, ok := d.Get("ddb.geometry.cylinders"); ok {
		d.Set("ddb.geometry.cylinders", strconv.FormatInt(cylinders(d.CapacityBytes()/SectorSize), 10))
	}
}

// Fresh gives the copy a new identity (CID, content id, uuid), as a clone gets.
func (d *Descriptor) Fresh() {
	if _, ok := d.Get("CID"); ok {
		d.Set("CID", randomHex(4))
	}
	if _, ok := d.Get("ddb.longContentID"); ok {
		d.Set("ddb.longContentID", randomHex(16))
	}
	if _, ok := d.Get("ddb.uuid"); ok {
		d.Set("ddb.uuid", uuidVMDK())
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func uuidVMDK() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	parts := make([]string, 16)
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02x", c)
	}
	return strings.Join(parts[:8], " ") + "-" + strings.Join(parts[8:], " ")
}

// FlatName is the extent file name vmkfstools gives a descriptor: web.vmdk -> web-flat.vmdk.
func FlatName(descriptor string) string {
	base := filepath.Base(descriptor)
	return strings.TrimSuffix(base, ".vmdk") + "-flat.vmdk"
}

// ReadDescriptorFile reads and parses a descriptor; a vcsim-made disk has an EMPTY
// descriptor next to an (empty) -flat file: it is read as one flat extent of the flat
// file's size, so such disks can still be cloned and grown.
func ReadDescriptorFile(name string) (*Descriptor, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	d, err := ParseDescriptor(data)
	if err != nil {
		return nil, err
	}
	if len(d.Extents) == 0 && len(bytes.TrimSpace(data)) == 0 {
		flat := filepath.Join(filepath.Dir(name), FlatName(name))
		var size int64
		if st, err := os.Stat(flat); err == nil {
			size = st.Size()
		}
		d = NewDescriptor(FlatName(name), size/SectorSize, true, "")
	}
	return d, nil
}

// CopySparse copies src to dst (which must not exist) keeping holes, so a 10 GB thin
// template with little data copies in moments; dst ends up exactly size bytes long.
func CopySparse(src, dst string, size int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	st, err := in.Stat()
	if err != nil {
		out.Close()
		return err
	}
	end := st.Size()
	if end > size {
		end = size
	}
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	var off int64
	for off < end {
		// Skip holes where the kernel can tell us (SEEK_DATA = 3).
		if next, err := in.Seek(off, 3); err == nil {
			if next >= end {
				break
			}
			off = next
		} else if !errors.Is(err, os.ErrInvalid) {
			break // ENXIO: no data past off
		}
		if _, err := in.Seek(off, io.SeekStart); err != nil {
			out.Close()
			return err
		}
		want := int64(len(buf))
		if end-off < want {
			want = end - off
		}
		n, err := io.ReadFull(in, buf[:want])
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := out.WriteAt(buf[:n], off); werr != nil {
				out.Close()
				return werr
			}
		}
		off += int64(n)
		if err != nil {
			break
		}
	}
	if err := out.Truncate(size); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
