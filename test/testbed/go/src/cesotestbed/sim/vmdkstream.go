package sim

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A streamOptimized VMDK (VMware's "Virtual Disk Format 5.0", the format OVAs carry and ESXi's
// NFC endpoint takes as application/x-vnd.vmware-streamVmdk), decoded while it streams in:
//
//	sector 0       SparseExtentHeader: magic "KDMV", version 3, flags with compressed grains
//	               (bit 16) and markers (bit 17), capacity and grainSize in sectors, the
//	               embedded descriptor's offset/size, overHead (first sector after the
//	               metadata), gdOffset (-1 = GD_AT_END: the grain directory follows the
//	               grains, located by the footer), compressAlgorithm 1 (deflate)
//	1..overHead-1  the embedded descriptor (createType="streamOptimized"), padding
//	then markers, each starting on a sector boundary:
//	  grain        uint64 lba (in sectors, grain aligned), uint32 size > 0, size bytes of zlib
//	               data inflating to one grain (the last may be short), padded to 512
//	  metadata     uint64 numSectors, uint32 0, uint32 type, padded to 512, then numSectors
//	               sectors: type 0 end of stream (0 sectors), 1 grain table, 2 grain
//	               directory, 3 footer (a copy of the header with the real gdOffset)
//
// The stream is complete at its end-of-stream marker. qemu-img writes none: its grain
// directory and tables sit in the metadata before the first marker (gdOffset set); such a
// stream is complete when it ends after every grain its tables list. Anything else that ends
// early is truncated.
//
// Only one grain is held in memory at a time; grains are written with WriteAt, all-zero ones
// skipped, so the extent stays sparse.

const (
	sectorSize        = 512
	vmdkMagic         = "KDMV"
	flagCompressed    = 1 << 16
	flagMarkers       = 1 << 17
	markerEOS         = 0
	markerGT          = 1
	markerGD          = 2
	markerFooter      = 3
	maxDescriptorSecs = 2048 // 1 MiB of embedded descriptor is plenty
	maxOverheadBytes  = 64 << 20
	gdAtEnd           = ^uint64(0)
)

// streamError is a decoding failure: the body is not a (complete) streamOptimized VMDK.
type streamError struct{ msg string }

func (e *streamError) Error() string { return e.msg }

func badStream(format string, args ...interface{}) error {
	return &streamError{msg: fmt.Sprintf(format, args...)}
}

// vmdkHeader is the part of the SparseExtentHeader the decoder uses.
type vmdkHeader struct {
	version           uint32
	flags             uint32
	capacity          uint64 // sectors
	grainSize         uint64 // sectors
	descriptorOffset  uint64
	descriptorSize    uint64
	numGTEsPerGT      uint32
	gdOffset          uint64
	overHead          uint64
	compressAlgorithm uint16
}

func parseVMDKHeader(b []byte) (vmdkHeader, error) {
	var h vmdkHeader
	if len(b) < sectorSize || string(b[0:4]) != vmdkMagic {
		return h, badStream("not a VMDK sparse extent (no KDMV magic)")
	}
	le := binary.LittleEndian
	h.version = le.Uint32(b[4:])
	h.flags = le.Uint32(b[8:])
	h.capacity = le.Uint64(b[12:])
	h.grainSize = le.Uint64(b[20:])
	h.descriptorOffset = le.Uint64(b[28:])
	h.descriptorSize = le.Uint64(b[36:])
	h.numGTEsPerGT = le.Uint32(b[44:])
	h.gdOffset = le.Uint64(b[56:])
	h.overHead = le.Uint64(b[64:])
	h.compressAlgorithm = le.Uint16(b[77:])
	return h, nil
}

// streamResult summarizes a decoded stream.
type streamResult struct {
	Capacity   int64 // bytes, from the header
	Grains     int   // grain markers read
	DataBytes  int64 // inflated bytes written (non-zero grains)
	Descriptor string
}

// decodeStreamVMDK reads a streamOptimized VMDK from r and writes its data into w at the
// disk's byte offsets. maxCapacity is the target disk's size: a stream whose capacity exceeds
// it is refused before any data is written. onWrite (optional) runs before each write with the
// number of bytes about to be written; an error it returns stops the decoding.
func decodeStreamVMDK(r io.Reader, maxCapacity int64, w io.WriterAt, onWrite func(n int64) error) (streamResult, error) {
	var res streamResult
	br := bufio.NewReaderSize(r, 256<<10)
	sector := make([]byte, sectorSize)
	cleanEOF := false // the last read found the end of the body on a sector boundary
	readSector := func(what string) error {
		if _, err := io.ReadFull(br, sector); err != nil {
			cleanEOF = errors.Is(err, io.EOF)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return badStream("the stream ends early (truncated) while reading %s", what)
			}
			return err
		}
		return nil
	}
	if err := readSector("the header"); err != nil {
		return res, err
	}
	h, err := parseVMDKHeader(sector)
	if err != nil {
		return res, err
	}
	if h.version != 3 {
		return res, badStream("VMDK version %d is not a streamOptimized disk (version 3)", h.version)
	}
	if h.flags&flagCompressed == 0 || h.flags&flagMarkers == 0 {
		return res, badStream("the VMDK header has no compressed grains with markers (flags %#x): not streamOptimized", h.flags)
	}
	if h.compressAlgorithm != 1 {
		return res, badStream("unknown VMDK compression algorithm %d", h.compressAlgorithm)
	}
	if h.grainSize < 8 || h.grainSize > 2048 || h.grainSize&(h.grainSize-1) != 0 {
		return res, badStream("bad VMDK grain size %d sectors", h.grainSize)
	}
	if h.capacity > uint64(1)<<47 {
		return res, badStream("bad VMDK capacity %d sectors", h.capacity)
	}
	res.Capacity = int64(h.capacity) * sectorSize
	if res.Capacity > maxCapacity {
		return res, badStream("the stream's capacity (%d bytes) exceeds the disk's (%d bytes)", res.Capacity, maxCapacity)
	}
	if h.overHead < 1 || h.overHead > 1<<24 {
		return res, badStream("bad VMDK overHead %d sectors", h.overHead)
	}
	if h.descriptorSize > maxDescriptorSecs || (h.descriptorSize > 0 && (h.descriptorOffset < 1 || h.descriptorOffset+h.descriptorSize > h.overHead)) {
		return res, badStream("bad embedded descriptor at sector %d (+%d)", h.descriptorOffset, h.descriptorSize)
	}
	// the metadata before the first marker: the descriptor, maybe the grain directory and
	// tables (kept when small enough to check the stream's completeness), padding
	var desc bytes.Buffer
	var meta []byte
	keepMeta := h.gdOffset != gdAtEnd && h.overHead*sectorSize <= maxOverheadBytes
	if keepMeta {
		meta = make([]byte, sectorSize, h.overHead*sectorSize)
	}
	for s := uint64(1); s < h.overHead; s++ {
		if err := readSector("the metadata before the grains"); err != nil {
			return res, err
		}
		if h.descriptorSize > 0 && s >= h.descriptorOffset && s < h.descriptorOffset+h.descriptorSize {
			desc.Write(sector)
		}
		if keepMeta {
			meta = append(meta, sector...)
		}
	}
	grains := (h.capacity + h.grainSize - 1) / h.grainSize
	expected := int64(-1) // allocated grains the tables list; -1: unknown (an end marker is needed)
	if keepMeta {
		expected = countTableGrains(meta, h, grains)
	}
	seen := make([]byte, (grains+7)/8)
	distinct := int64(0)
	res.Descriptor = strings.TrimRight(desc.String(), "\x00")
	for _, l := range strings.Split(res.Descriptor, "\n") {
		if m := kvRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil && m[1] == "createType" && m[2] != "streamOptimized" {
			return res, badStream("the embedded descriptor says createType=%q, not streamOptimized", m[2])
		}
	}

	grainBytes := int(h.grainSize) * sectorSize
	maxCompressed := 2*grainBytes + 4096
	buf := make([]byte, 0, grainBytes+sectorSize)
	out := make([]byte, grainBytes+1)
	var zr io.ReadCloser
	le := binary.LittleEndian
	for {
		if err := readSector("a marker"); err != nil {
			if cleanEOF && expected >= 0 && distinct >= expected {
				return res, nil // a qemu-img stream: every grain its tables list has arrived
			}
			return res, err
		}
		val := le.Uint64(sector[0:])
		size := le.Uint32(sector[8:])
		if size == 0 {
			typ := le.Uint32(sector[12:])
			switch typ {
			case markerEOS:
				// the end: whatever follows is discarded (the body must still be read whole)
				if _, err := io.Copy(io.Discard, br); err != nil {
					return res, err
				}
				return res, nil
			case markerGT, markerGD, markerFooter:
				if val > 1<<24 {
					return res, badStream("metadata marker (type %d) of %d sectors", typ, val)
				}
				for i := uint64(0); i < val; i++ {
					if err := readSector("metadata"); err != nil {
						return res, err
					}
					if typ == markerFooter && i == 0 && string(sector[0:4]) != vmdkMagic {
						return res, badStream("the footer has no KDMV magic")
					}
				}
				continue
			default:
				return res, badStream("unknown metadata marker type %d", typ)
			}
		}
		// a grain
		if int(size) > maxCompressed {
			return res, badStream("grain at sector %d: compressed size %d is too large", val, size)
		}
		lba := val
		if lba%h.grainSize != 0 || lba >= h.capacity {
			return res, badStream("grain at sector %d: not a grain boundary inside the disk (capacity %d sectors)", lba, h.capacity)
		}
		total := 12 + int(size)
		padded := (total + sectorSize - 1) / sectorSize * sectorSize
		buf = append(buf[:0], sector...)
		for len(buf) < padded {
			if err := readSector("grain data"); err != nil {
				return res, err
			}
			buf = append(buf, sector...)
		}
		data := buf[12:total]
		if zr == nil {
			zr, err = zlib.NewReader(bytes.NewReader(data))
		} else {
			err = zr.(zlib.Resetter).Reset(bytes.NewReader(data), nil)
		}
		if err != nil {
			return res, badStream("grain at sector %d: bad compressed data: %v", lba, err)
		}
		n, err := io.ReadFull(zr, out)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return res, badStream("grain at sector %d: bad compressed data: %v", lba, err)
		}
		if n > grainBytes {
			return res, badStream("grain at sector %d inflates to more than one grain", lba)
		}
		// (ReadFull ran into the end of the zlib stream: its checksum was verified)
		if n == 0 || n%sectorSize != 0 {
			return res, badStream("grain at sector %d inflates to %d bytes (not whole sectors)", lba, n)
		}
		off := int64(lba) * sectorSize
		if off+int64(n) > res.Capacity {
			return res, badStream("grain at sector %d runs past the end of the disk", lba)
		}
		res.Grains++
		if gi := lba / h.grainSize; seen[gi/8]&(1<<(gi%8)) == 0 {
			seen[gi/8] |= 1 << (gi % 8)
			distinct++
		}
		if allZero(out[:n]) {
			continue
		}
		if onWrite != nil {
			if err := onWrite(int64(n)); err != nil {
				return res, err
			}
		}
		if _, err := w.WriteAt(out[:n], off); err != nil {
			return res, err
		}
		res.DataBytes += int64(n)
	}
}

// countTableGrains counts the allocated grains in a grain directory and tables that lie in the
// metadata before the grains (meta holds sectors 0..overHead-1); -1 when they do not.
func countTableGrains(meta []byte, h vmdkHeader, grains uint64) int64 {
	le := binary.LittleEndian
	per := uint64(h.numGTEsPerGT)
	if per == 0 || per > 1<<16 {
		return -1
	}
	numGDEs := (grains + per - 1) / per
	sectorAt := func(sec, bytes uint64) []byte {
		start := sec * sectorSize
		if sec == 0 || start+bytes > uint64(len(meta)) {
			return nil
		}
		return meta[start : start+bytes]
	}
	gd := sectorAt(h.gdOffset, numGDEs*4)
	if gd == nil {
		return -1
	}
	var n int64
	for i := uint64(0); i < numGDEs; i++ {
		gtSec := uint64(le.Uint32(gd[i*4:]))
		if gtSec == 0 {
			continue
		}
		gt := sectorAt(gtSec, per*4)
		if gt == nil {
			return -1
		}
		for j := uint64(0); j < per && i*per+j < grains; j++ {
			if le.Uint32(gt[j*4:]) > 1 { // 0: not allocated, 1: a zeroed grain
				n++
			}
		}
	}
	return n
}
