package sim

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io/ioutil"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// qemuStream converts raw to a streamOptimized VMDK with qemu-img (Debian's qemu-utils).
func qemuStream(t *testing.T, raw []byte) []byte {
	t.Helper()
	qemu, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Skip("qemu-img is not installed (apt-get install qemu-utils): cannot make streamOptimized VMDKs")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "raw.img"), filepath.Join(dir, "disk.vmdk")
	if err := ioutil.WriteFile(in, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(qemu, "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", in, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, b)
	}
	data, err := ioutil.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// testImage: random and compressible regions between holes; size need not be a multiple of
// the 64 KiB grain.
func testImage(size int, seed int64) []byte {
	rnd := rand.New(rand.NewSource(seed))
	raw := make([]byte, size)
	for off := 0; off < size; off += 256 << 10 {
		n := 40 << 10
		if off+n > size {
			n = size - off
		}
		switch (off / (256 << 10)) % 3 {
		case 0:
			rnd.Read(raw[off : off+n])
		case 1:
			copy(raw[off:off+n], bytes.Repeat([]byte("ceso test bed "), n/14+1))
		}
	}
	rnd.Read(raw[size-4096:]) // the last (partial) grain
	return raw
}

type memDisk struct{ b []byte }

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	copy(m.b[off:], p)
	return len(p), nil
}

func decodeToFile(t *testing.T, stream []byte, capacity int64, reader func([]byte) *bytes.Reader) ([]byte, streamResult, error) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "disk-flat.vmdk"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_ = f.Truncate(capacity)
	res, err := decodeStreamVMDK(iotest.HalfReader(bytes.NewReader(stream)), capacity, f, nil)
	got, _ := ioutil.ReadFile(f.Name())
	return got, res, err
}

func TestStreamDecodeQemu(t *testing.T) {
	for _, size := range []int{4<<20 + 12288, 24 << 20} {
		raw := testImage(size, int64(size))
		stream := qemuStream(t, raw)
		capacity := int64((size + 511) / 512 * 512)
		got, res, err := decodeToFile(t, stream, capacity+(1<<20), nil)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if res.Capacity != capacity || !strings.Contains(res.Descriptor, `createType="streamOptimized"`) {
			t.Fatalf("result %+v", res)
		}
		if !bytes.Equal(got[:size], raw) {
			for i := range raw {
				if got[i] != raw[i] {
					t.Fatalf("size %d: first difference at byte %d", size, i)
				}
			}
		}
		if !allZero(got[size:]) {
			t.Fatal("data past the image")
		}
		// the disk's capacity is smaller than the stream's: refused before writing
		if _, _, err := decodeToFile(t, stream, capacity-512, nil); err == nil || !strings.Contains(err.Error(), "exceeds") {
			t.Fatalf("capacity: %v", err)
		}
	}
}

func TestStreamDecodeRefusals(t *testing.T) {
	raw := testImage(2<<20, 7)
	stream := qemuStream(t, raw)
	capacity := int64(len(raw))
	check := func(name string, data []byte, want string) {
		t.Helper()
		_, err := decodeStreamVMDK(bytes.NewReader(data), capacity, &memDisk{b: make([]byte, capacity)}, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, want)
		}
		if _, ok := err.(*streamError); err != nil && !ok {
			t.Errorf("%s: %T is not a stream error", name, err)
		}
	}
	// grain marker positions (qemu-img writes the tables up front and may end without an
	// end-of-stream marker: a cut at a grain boundary is only noticed by the tables)
	hdr0, _ := parseVMDKHeader(stream)
	var marks []int
	for pos := int(hdr0.overHead) * 512; pos+12 <= len(stream); {
		size := int(binary.LittleEndian.Uint32(stream[pos+8:]))
		if size == 0 {
			break
		}
		marks = append(marks, pos)
		pos += (12 + size + 511) / 512 * 512
	}
	if len(marks) < 3 {
		t.Fatalf("only %d grains", len(marks))
	}
	last := marks[len(marks)-1]
	for _, cut := range []int{0, 100, 512, 600, int(hdr0.overHead)*512 - 512, marks[1], marks[1] + 700, last, last + 512, last + 13} {
		check("truncated", stream[:cut], "truncated")
	}
	check("random", bytes.Repeat([]byte{0x42, 0x17}, 4096), "KDMV")
	// a monolithicSparse (not stream) header: version 1, no markers
	sparse := append([]byte(nil), stream...)
	binary.LittleEndian.PutUint32(sparse[4:], 1)
	check("version", sparse, "version 1")
	flags := append([]byte(nil), stream...)
	binary.LittleEndian.PutUint32(flags[8:], 3)
	check("flags", flags, "not streamOptimized")
	// damage the first grain's compressed data
	hdr, _ := parseVMDKHeader(stream)
	g := int(hdr.overHead) * 512
	damaged := append([]byte(nil), stream...)
	for i := g + 40; i < g+80; i++ {
		damaged[i] ^= 0x5a
	}
	check("damaged", damaged, "bad compressed data")
	// a grain beyond the disk
	beyond := append([]byte(nil), stream...)
	binary.LittleEndian.PutUint64(beyond[g:], hdr.capacity+hdr.grainSize)
	check("beyond", beyond, "not a grain boundary inside the disk")
}

// encodeStream writes a streamOptimized VMDK the way VMware's tools do: gdOffset = GD_AT_END,
// grain tables and the directory after the grains, a footer, then end of stream.
func encodeStream(raw []byte, grainSectors int) []byte {
	le := binary.LittleEndian
	capSectors := uint64((len(raw) + 511) / 512)
	header := func(gd uint64) []byte {
		h := make([]byte, 512)
		copy(h, vmdkMagic)
		le.PutUint32(h[4:], 3)
		le.PutUint32(h[8:], 1|flagCompressed|flagMarkers)
		le.PutUint64(h[12:], capSectors)
		le.PutUint64(h[20:], uint64(grainSectors))
		le.PutUint64(h[28:], 1)
		le.PutUint64(h[36:], 1)
		le.PutUint32(h[44:], 512)
		le.PutUint64(h[56:], gd)
		le.PutUint64(h[64:], 2)
		h[73], h[74], h[75], h[76] = '\n', ' ', '\r', '\n'
		le.PutUint16(h[77:], 1)
		return h
	}
	var out bytes.Buffer
	out.Write(header(^uint64(0)))
	desc := make([]byte, 512)
	copy(desc, "# Disk DescriptorFile\nversion=1\ncreateType=\"streamOptimized\"\nRW 1 SPARSE \"x.vmdk\"\n")
	out.Write(desc)
	pad := func() {
		if r := out.Len() % 512; r != 0 {
			out.Write(make([]byte, 512-r))
		}
	}
	meta := func(sectors uint64, typ uint32) {
		m := make([]byte, 512)
		le.PutUint64(m, sectors)
		le.PutUint32(m[12:], typ)
		out.Write(m)
	}
	gb := grainSectors * 512
	// grains in reverse order: the decoder must not assume ascending lbas
	var offs []int
	for off := 0; off < len(raw); off += gb {
		offs = append([]int{off}, offs...)
	}
	for _, off := range offs {
		end := off + gb
		if end > len(raw) {
			end = len(raw)
		}
		chunk := raw[off:end]
		if allZero(chunk) {
			continue
		}
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		_, _ = zw.Write(chunk)
		_ = zw.Close()
		m := make([]byte, 12)
		le.PutUint64(m, uint64(off/512))
		le.PutUint32(m[8:], uint32(z.Len()))
		out.Write(m)
		out.Write(z.Bytes())
		pad()
	}
	meta(4, markerGT)
	out.Write(make([]byte, 4*512))
	meta(1, markerGD)
	out.Write(make([]byte, 512))
	meta(1, markerFooter)
	out.Write(header(12345))
	meta(0, markerEOS)
	return out.Bytes()
}

func TestStreamDecodeGDAtEnd(t *testing.T) {
	raw := testImage(1<<20+3*512, 3)
	stream := encodeStream(raw, 16)
	disk := &memDisk{b: make([]byte, len(raw))}
	res, err := decodeStreamVMDK(iotest.OneByteReader(bytes.NewReader(stream)), int64(len(raw)), disk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(disk.b, raw) || res.Capacity != int64(len(raw)) {
		t.Fatalf("content differs (%+v)", res)
	}
	// no end-of-stream marker: truncated
	if _, err := decodeStreamVMDK(bytes.NewReader(stream[:len(stream)-512]), int64(len(raw)), &memDisk{b: make([]byte, len(raw))}, nil); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("without EOS: %v", err)
	}
}

// qemu-img can end the stream right after the last grain (no end-of-stream marker): complete
// by its grain tables.
func TestStreamDecodeQemuNoEOS(t *testing.T) {
	raw := make([]byte, 4<<20)
	rand.New(rand.NewSource(9)).Read(raw[:1<<20])
	stream := qemuStream(t, raw)
	hdr, _ := parseVMDKHeader(stream)
	pos := int(hdr.overHead) * 512
	for pos+12 <= len(stream) && binary.LittleEndian.Uint32(stream[pos+8:]) != 0 {
		pos += (12 + int(binary.LittleEndian.Uint32(stream[pos+8:])) + 511) / 512 * 512
	}
	if pos < len(stream) {
		t.Logf("qemu-img wrote %d bytes after the last grain", len(stream)-pos)
	}
	disk := &memDisk{b: make([]byte, len(raw))}
	if _, err := decodeStreamVMDK(bytes.NewReader(stream[:pos]), int64(len(raw)), disk, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(disk.b, raw) {
		t.Fatal("content differs")
	}
}
