package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/bits"
)

// tierd's compacted index format ("tix"), byte for byte in FORMAT.md: a fixed header, the
// items grouped by bucket (newest first within a bucket), then a directory of one
// (first item, CRC-32C) entry per bucket and a closing entry. A key lookup reads two
// directory entries and then its bucket's run: two ranged reads.
const (
	// TixMagic starts every compacted index.
	TixMagic = "TDIX"
	// TixVersion is the format version this package writes and reads.
	TixVersion = 1
	// TixHeaderSize is the size of the fixed header.
	TixHeaderSize = 96
	// TixDirEntrySize is the size of one directory entry: first item uint32, CRC-32C uint32.
	TixDirEntrySize = 8
	// TixMaxBits bounds the bucket bits: at most 2^24 buckets, remainders of at least 1 byte.
	TixMaxBits = 24
	// TixMaxRecordSize is the widest item record: 4-byte remainder, 8-byte offset, 4-byte time.
	TixMaxRecordSize = 16
	// tixBucketTarget is the largest average bucket (in items) TixBits aims for: a lookup's
	// run is then a few KiB at most.
	tixBucketTarget = 256
)

// ErrCorruptTix is wrapped by every error about a compacted index whose bytes break the
// format: a bad magic, version or checksum, a size that disagrees with the header, a
// directory entry out of bounds.
var ErrCorruptTix = errors.New("corrupt compacted index")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// TixHeader is a compacted index's fixed header: the geometry that positions every byte,
// the value ranges the record widths were chosen from, and what the IndexFile it was made
// from looked like.
type TixHeader struct {
	// Bits is the number of bucket bits: the index has 2^Bits buckets.
	Bits int
	// RemWidth, OffWidth and TimeWidth are the byte widths of an item record's fields: the
	// remainder (ceil((32-Bits)/8)), PhyOffset-MinPhyOffset and TimeDiff-MinTimeDiff
	// (the fewest bytes that hold the largest value; 0 when every value is equal).
	RemWidth, OffWidth, TimeWidth int
	// Items is the number of items (the IndexFile's IndexCount-1).
	Items int
	// MinPhyOffset and MaxPhyOffset bound the items' commit-log offsets (0 without items).
	MinPhyOffset, MaxPhyOffset int64
	// MinTimeDiff and MaxTimeDiff bound the items' TimeDiff (0 without items).
	MinTimeDiff, MaxTimeDiff int32
	// SourceSlots and SourceItems are the IndexFile's hashSlotNum and indexNum.
	SourceSlots, SourceItems int
	// SourceCRC32C is the CRC-32C of the whole IndexFile.
	SourceCRC32C uint32
	// Source is the IndexFile's header, as it was.
	Source IndexHeader
}

// TixBits returns the bucket bits for n items when at most maxBits may be used: the
// smallest object among the bit counts whose average bucket holds at most 256 items
// (fewer bits make a smaller directory; more bits can make the remainder a byte shorter).
func TixBits(n, maxBits int) int {
	maxBits = min(max(maxBits, 0), TixMaxBits)
	lo := 0
	for lo < maxBits && int64(n) > int64(tixBucketTarget)<<lo {
		lo++
	}
	best, bestCost := lo, int64(math.MaxInt64)
	for b := lo; b <= min(lo+8, maxBits); b++ {
		cost := int64(n)*int64(tixRemWidth(b)) + (int64(1)<<b+1)*TixDirEntrySize
		if cost < bestCost {
			best, bestCost = b, cost
		}
	}
	return best
}

func tixRemWidth(bits int) int { return (32 - bits + 7) / 8 }

// widthFor returns the fewest bytes that hold v.
func widthFor(v uint64) int { return (bits.Len64(v) + 7) / 8 }

// WithWidths returns h with RemWidth, OffWidth and TimeWidth computed from Bits and the
// value ranges, or an error if h is not a header this package could write.
func (h TixHeader) WithWidths() (TixHeader, error) {
	if h.Bits < 0 || h.Bits > TixMaxBits {
		return h, fmt.Errorf("compacted index: %d bucket bits outside 0..%d", h.Bits, TixMaxBits)
	}
	if h.MinPhyOffset > h.MaxPhyOffset || h.MinTimeDiff > h.MaxTimeDiff || h.MinTimeDiff < 0 {
		return h, fmt.Errorf("compacted index: bad value ranges: offsets %d..%d, time diffs %d..%d", h.MinPhyOffset, h.MaxPhyOffset, h.MinTimeDiff, h.MaxTimeDiff)
	}
	h.RemWidth = tixRemWidth(h.Bits)
	h.OffWidth = widthFor(uint64(h.MaxPhyOffset) - uint64(h.MinPhyOffset))
	h.TimeWidth = widthFor(uint64(h.MaxTimeDiff - h.MinTimeDiff))
	return h, h.check()
}

// check reports a header no writer of this version produces.
func (h TixHeader) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: header: "+format, append([]any{ErrCorruptTix}, args...)...)
	}
	switch {
	case h.Bits < 0 || h.Bits > TixMaxBits:
		return bad("%d bucket bits outside 0..%d", h.Bits, TixMaxBits)
	case h.RemWidth != tixRemWidth(h.Bits):
		return bad("remainder width %d, %d bucket bits need %d", h.RemWidth, h.Bits, tixRemWidth(h.Bits))
	case h.Items < 0 || h.Items > math.MaxInt32:
		return bad("item count %d", h.Items)
	case h.SourceSlots <= 0 || h.SourceItems <= 0 || h.SourceSlots > math.MaxInt32 || h.SourceItems > math.MaxInt32:
		return bad("source geometry %d slots, %d items", h.SourceSlots, h.SourceItems)
	case h.Items >= h.SourceItems:
		return bad("%d items, but the source holds at most %d", h.Items, h.SourceItems-1)
	case h.Items != max(int(h.Source.IndexCount)-1, 0):
		return bad("%d items, but the source's indexCount is %d", h.Items, h.Source.IndexCount)
	case h.MinPhyOffset > h.MaxPhyOffset || h.MinTimeDiff < 0 || h.MinTimeDiff > h.MaxTimeDiff:
		return bad("value ranges: offsets %d..%d, time diffs %d..%d", h.MinPhyOffset, h.MaxPhyOffset, h.MinTimeDiff, h.MaxTimeDiff)
	case h.Items == 0 && (h.MinPhyOffset != 0 || h.MaxPhyOffset != 0 || h.MinTimeDiff != 0 || h.MaxTimeDiff != 0):
		return bad("value ranges without items")
	case h.OffWidth != widthFor(uint64(h.MaxPhyOffset)-uint64(h.MinPhyOffset)):
		return bad("offset width %d for offsets %d..%d", h.OffWidth, h.MinPhyOffset, h.MaxPhyOffset)
	case h.TimeWidth != widthFor(uint64(h.MaxTimeDiff-h.MinTimeDiff)):
		return bad("time width %d for time diffs %d..%d", h.TimeWidth, h.MinTimeDiff, h.MaxTimeDiff)
	}
	return nil
}

// RecordSize returns the size of one item record.
func (h TixHeader) RecordSize() int { return h.RemWidth + h.OffWidth + h.TimeWidth }

// Buckets returns the number of buckets, 2^Bits.
func (h TixHeader) Buckets() int { return 1 << h.Bits }

// DirOffset returns where the directory starts: right after the items.
func (h TixHeader) DirOffset() int64 {
	return TixHeaderSize + int64(h.Items)*int64(h.RecordSize())
}

// Size returns the size of the whole compacted index.
func (h TixHeader) Size() int64 {
	return h.DirOffset() + (int64(h.Buckets())+1)*TixDirEntrySize
}

// ItemTime returns the store time (ms) of an item with TimeDiff td, as the IndexFile
// computes it: the source's BeginTimestamp + td seconds.
func (h TixHeader) ItemTime(td int32) int64 { return h.Source.BeginTimestamp + int64(td)*1000 }

// Overlaps reports whether an item of the index can lie in [begin, end] (ms): a query
// skips an index without reading further when it cannot.
func (h TixHeader) Overlaps(begin, end int64) bool {
	return h.Items > 0 && h.ItemTime(h.MinTimeDiff) <= end && h.ItemTime(h.MaxTimeDiff) >= begin
}

// AppendTixHeader appends h's TixHeaderSize bytes, CRC included, to dst. h must come from
// WithWidths (or DecodeTixHeader).
func AppendTixHeader(dst []byte, h TixHeader) []byte {
	be := binary.BigEndian
	start := len(dst)
	dst = append(dst, TixMagic...)
	dst = be.AppendUint16(dst, TixVersion)
	dst = append(dst, byte(h.Bits), byte(h.RemWidth), byte(h.OffWidth), byte(h.TimeWidth), 0, 0)
	dst = be.AppendUint32(dst, uint32(h.Items))
	dst = be.AppendUint64(dst, uint64(h.MinPhyOffset))
	dst = be.AppendUint64(dst, uint64(h.MaxPhyOffset))
	dst = be.AppendUint32(dst, uint32(h.MinTimeDiff))
	dst = be.AppendUint32(dst, uint32(h.MaxTimeDiff))
	dst = be.AppendUint32(dst, uint32(h.SourceSlots))
	dst = be.AppendUint32(dst, uint32(h.SourceItems))
	dst = be.AppendUint32(dst, h.SourceCRC32C)
	dst = AppendIndexHeader(dst, h.Source)
	return be.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// DecodeTixHeader decodes and checks the header in the first TixHeaderSize bytes of b.
func DecodeTixHeader(b []byte) (TixHeader, error) {
	if len(b) < TixHeaderSize {
		return TixHeader{}, fmt.Errorf("%w: header of %d bytes, need %d", ErrCorruptTix, len(b), TixHeaderSize)
	}
	b = b[:TixHeaderSize]
	be := binary.BigEndian
	if string(b[:4]) != TixMagic {
		return TixHeader{}, fmt.Errorf("%w: magic %q, want %q", ErrCorruptTix, b[:4], TixMagic)
	}
	if v := be.Uint16(b[4:]); v != TixVersion {
		return TixHeader{}, fmt.Errorf("%w: version %d, this tierd reads version %d", ErrCorruptTix, v, TixVersion)
	}
	if got, want := be.Uint32(b[92:]), crc32.Checksum(b[:92], castagnoli); got != want {
		return TixHeader{}, fmt.Errorf("%w: header CRC-32C %08x, computed %08x", ErrCorruptTix, got, want)
	}
	if b[10] != 0 || b[11] != 0 {
		return TixHeader{}, fmt.Errorf("%w: reserved header bytes are not zero", ErrCorruptTix)
	}
	src, _ := DecodeIndexHeader(b[52:])
	h := TixHeader{
		Bits: int(b[6]), RemWidth: int(b[7]), OffWidth: int(b[8]), TimeWidth: int(b[9]),
		Items:        int(be.Uint32(b[12:])),
		MinPhyOffset: int64(be.Uint64(b[16:])),
		MaxPhyOffset: int64(be.Uint64(b[24:])),
		MinTimeDiff:  int32(be.Uint32(b[32:])),
		MaxTimeDiff:  int32(be.Uint32(b[36:])),
		SourceSlots:  int(be.Uint32(b[40:])),
		SourceItems:  int(be.Uint32(b[44:])),
		SourceCRC32C: be.Uint32(b[48:]),
		Source:       src,
	}
	if err := h.check(); err != nil {
		return TixHeader{}, err
	}
	return h, nil
}

// Fmix32 is MurmurHash3's 32-bit finalizer: a bijection that spreads every input bit over
// the whole output, so its top bits pick a bucket evenly even for similar key hashes.
func Fmix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// fmix32Inverse undoes fmix32.
func fmix32Inverse(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x7ed1b41d // inverse of 0xc2b2ae35 mod 2^32
	h ^= h>>13 ^ h>>26
	h *= 0xa5cb9243 // inverse of 0x85ebca6b mod 2^32
	h ^= h >> 16
	return h
}

// TixBucket returns the bucket and remainder of keyHash in an index with the given bucket
// bits: m = Fmix32(keyHash), bucket = m's top bits, remainder = the rest. Since fmix32 is
// a bijection, (bucket, remainder) identifies keyHash exactly.
func TixBucket(keyHash int32, bits int) (bucket, rem uint32) {
	m := Fmix32(uint32(keyHash))
	shift := uint(32 - bits)
	return uint32(uint64(m) >> shift), m & uint32(uint64(1)<<shift-1)
}

// TixKeyHash is the inverse of TixBucket.
func TixKeyHash(bucket, rem uint32, bits int) int32 {
	return int32(fmix32Inverse(uint32(uint64(bucket)<<uint(32-bits)) | rem))
}

// TixCodec encodes and decodes the item records of one header's widths: remainder,
// PhyOffset-MinPhyOffset and TimeDiff-MinTimeDiff, each big-endian in its width, back to
// back.
type TixCodec struct {
	size               int
	remShift, offShift uint // bit positions in the 128-bit big-endian record
	offMask            uint64
	timeMask           uint32
	remMask            uint32
	minPhy             int64
	minTD              int32
}

// Codec returns the record codec of h.
func (h TixHeader) Codec() TixCodec {
	return TixCodec{
		size:     h.RecordSize(),
		remShift: uint(8 * (h.OffWidth + h.TimeWidth)),
		offShift: uint(8 * h.TimeWidth),
		offMask:  uint64(1)<<(8*h.OffWidth) - 1, // all ones for 8 bytes: the shift yields 0
		timeMask: uint32(uint64(1)<<(8*h.TimeWidth) - 1),
		remMask:  uint32(uint64(1)<<(8*h.RemWidth) - 1),
		minPhy:   h.MinPhyOffset,
		minTD:    h.MinTimeDiff,
	}
}

// Size returns the record size.
func (c *TixCodec) Size() int { return c.size }

// Encode encodes one item into tmp and returns the record (the last Size bytes of tmp).
// The caller guarantees that rem fits the remainder width and that phyOffset and timeDiff
// lie in the header's ranges.
func (c *TixCodec) Encode(tmp *[TixMaxRecordSize]byte, rem uint32, phyOffset int64, timeDiff int32) []byte {
	hi, lo := c.Pack(rem, phyOffset, timeDiff)
	binary.BigEndian.PutUint64(tmp[:8], hi)
	binary.BigEndian.PutUint64(tmp[8:], lo)
	return tmp[TixMaxRecordSize-c.size:]
}

// Pack returns the record of one item as a 128-bit number hi:lo, whose last Size bytes,
// big-endian, are the record (Encode writes them).
func (c *TixCodec) Pack(rem uint32, phyOffset int64, timeDiff int32) (hi, lo uint64) {
	or128(&hi, &lo, uint64(rem), c.remShift)
	or128(&hi, &lo, uint64(phyOffset-c.minPhy), c.offShift)
	lo |= uint64(uint32(timeDiff - c.minTD))
	return hi, lo
}

// Decode decodes the record at the start of b (at least Size bytes).
func (c *TixCodec) Decode(b []byte) (rem uint32, phyOffset int64, timeDiff int32) {
	var tmp [TixMaxRecordSize]byte
	copy(tmp[TixMaxRecordSize-c.size:], b[:c.size])
	hi := binary.BigEndian.Uint64(tmp[:8])
	lo := binary.BigEndian.Uint64(tmp[8:])
	timeDiff = int32(uint32(lo)&c.timeMask) + c.minTD
	phyOffset = int64(shr128(hi, lo, c.offShift)&c.offMask) + c.minPhy
	rem = uint32(shr128(hi, lo, c.remShift)) & c.remMask
	return rem, phyOffset, timeDiff
}

// or128 ors v<<s into the 128-bit number hi:lo.
func or128(hi, lo *uint64, v uint64, s uint) {
	if s < 64 {
		*lo |= v << s
		if s > 0 {
			*hi |= v >> (64 - s)
		}
		return
	}
	*hi |= v << (s - 64)
}

// shr128 returns the low 64 bits of hi:lo >> s.
func shr128(hi, lo uint64, s uint) uint64 {
	if s == 0 {
		return lo
	}
	if s < 64 {
		return lo>>s | hi<<(64-s)
	}
	return hi >> (s - 64)
}

// TixDirEntry is one directory entry: the index of the bucket's first item and the
// CRC-32C of the bucket's records. The closing entry holds the item count and the CRC-32C
// of all the entries before it.
type TixDirEntry struct {
	First  uint32
	CRC32C uint32
}

// AppendTixDirEntry appends e's 8 bytes to dst.
func AppendTixDirEntry(dst []byte, e TixDirEntry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, e.First)
	return binary.BigEndian.AppendUint32(dst, e.CRC32C)
}

func decodeTixDirEntry(b []byte) TixDirEntry {
	return TixDirEntry{First: binary.BigEndian.Uint32(b), CRC32C: binary.BigEndian.Uint32(b[4:])}
}

// readFullAt reads len(p) bytes at off, treating a short read as corruption (the header
// promised those bytes).
func readFullAt(r io.ReaderAt, p []byte, off int64, what string) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s at %d: object ends after %d of %d bytes", ErrCorruptTix, what, off, n, len(p))
	}
	return fmt.Errorf("read %s at %d: %w", what, off, err)
}
