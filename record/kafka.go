package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Kafka record batch constants (clients' DefaultRecordBatch).
const (
	// BatchHeaderSize is the size of a magic-2 batch header, records excluded.
	BatchHeaderSize = 61
	// BatchOverhead is the part of the header before batchLength counts: baseOffset and
	// batchLength itself.
	BatchOverhead = 12
	// DefaultMaxBatchSize is the largest batch BatchReader accepts when given no buffer
	// (Kafka's message.max.bytes defaults to about 1 MiB; topics may raise it).
	DefaultMaxBatchSize = 8 << 20

	attrCompressionMask = 0x07
	attrTimestampType   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20

	// minRecordSize is the smallest encoded record: length, attributes, timestampDelta,
	// offsetDelta, key length, value length and header count, one byte each.
	minRecordSize = 7
	// minHeaderSize is the smallest encoded header: key length and value length.
	minHeaderSize = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Compression is a batch's compression codec (attributes bits 0-2).
type Compression int8

// Kafka's compression codecs.
const (
	CompressionNone   Compression = 0
	CompressionGzip   Compression = 1
	CompressionSnappy Compression = 2
	CompressionLZ4    Compression = 3
	CompressionZstd   Compression = 4
)

func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionGzip:
		return "gzip"
	case CompressionSnappy:
		return "snappy"
	case CompressionLZ4:
		return "lz4"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Batch is a Kafka record batch, magic 2.
type Batch struct {
	BaseOffset           int64
	BatchLength          int32 // bytes after this field; computed by AppendBatch
	PartitionLeaderEpoch int32
	Magic                int8   // always 2; set by DecodeBatch, written as 2
	CRC                  uint32 // CRC-32C of attributes..end; computed by AppendBatch
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64 // ms
	MaxTimestamp         int64 // ms
	ProducerID           int64 // -1 if none
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32 // set by DecodeBatch; AppendBatch writes len(Records)
	// Records, when the batch is not compressed. DecodeBatch leaves it nil for a
	// compressed batch.
	Records []Record
	// RawRecords is the records section as stored (compressed or not), set by
	// DecodeBatch; it aliases the input. AppendBatch ignores it.
	RawRecords []byte
}

// Record is one record of an uncompressed batch (DefaultRecord).
type Record struct {
	Attributes     int8
	TimestampDelta int64  // from the batch's BaseTimestamp
	OffsetDelta    int32  // from the batch's BaseOffset
	Key            []byte // nil is a null key
	Value          []byte // nil is a null value
	Headers        []Header
}

// Header is a record header; its key is never null.
type Header struct {
	Key   string
	Value []byte // nil is a null value
}

// Compression returns the batch's compression codec.
func (b *Batch) Compression() Compression { return Compression(b.Attributes & attrCompressionMask) }

// LogAppendTime reports whether the batch's timestamps are log-append times (else create times).
func (b *Batch) LogAppendTime() bool { return b.Attributes&attrTimestampType != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (b *Batch) Transactional() bool { return b.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds control records (transaction markers).
func (b *Batch) Control() bool { return b.Attributes&attrControl != 0 }

// LastOffset returns the offset of the batch's last record.
func (b *Batch) LastOffset() int64 { return b.BaseOffset + int64(b.LastOffsetDelta) }

// Size returns the batch's size in bytes as stored (after DecodeBatch or AppendBatch).
func (b *Batch) Size() int { return BatchOverhead + int(b.BatchLength) }

// AppendBatch appends b as an uncompressed magic-2 batch to dst, computing batchLength,
// recordCount (len(b.Records)) and the CRC-32C; the caller sets every other header field
// (LastOffsetDelta is normally the last record's OffsetDelta). It refuses a compression
// codec in b.Attributes: encoding is uncompressed only.
func AppendBatch(dst []byte, b Batch) ([]byte, error) {
	if c := b.Compression(); c != CompressionNone {
		return dst, fmt.Errorf("encode batch: compression %v is not supported (uncompressed only)", c)
	}
	if len(b.Records) > math.MaxInt32 {
		return dst, fmt.Errorf("encode batch: %d records", len(b.Records))
	}
	start := len(dst)
	be := binary.BigEndian
	dst = be.AppendUint64(dst, uint64(b.BaseOffset))
	dst = be.AppendUint32(dst, 0) // batchLength, below
	dst = be.AppendUint32(dst, uint32(b.PartitionLeaderEpoch))
	dst = append(dst, 2)
	dst = be.AppendUint32(dst, 0) // crc, below
	dst = be.AppendUint16(dst, uint16(b.Attributes))
	dst = be.AppendUint32(dst, uint32(b.LastOffsetDelta))
	dst = be.AppendUint64(dst, uint64(b.BaseTimestamp))
	dst = be.AppendUint64(dst, uint64(b.MaxTimestamp))
	dst = be.AppendUint64(dst, uint64(b.ProducerID))
	dst = be.AppendUint16(dst, uint16(b.ProducerEpoch))
	dst = be.AppendUint32(dst, uint32(b.BaseSequence))
	dst = be.AppendUint32(dst, uint32(len(b.Records)))
	for i := range b.Records {
		var err error
		if dst, err = appendRecord(dst, &b.Records[i]); err != nil {
			return dst[:start], fmt.Errorf("encode batch: record %d: %w", i, err)
		}
	}
	length := len(dst) - start - BatchOverhead
	if length > math.MaxInt32 {
		return dst[:start], fmt.Errorf("encode batch: %d bytes is too long", length)
	}
	be.PutUint32(dst[start+8:], uint32(length))
	be.PutUint32(dst[start+17:], crc32.Checksum(dst[start+21:], castagnoli))
	return dst, nil
}

func appendRecord(dst []byte, r *Record) ([]byte, error) {
	if len(r.Key) > math.MaxInt32 || len(r.Value) > math.MaxInt32 || len(r.Headers) > math.MaxInt32 {
		return dst, fmt.Errorf("key, value or headers too long")
	}
	var body []byte // the record after its length; small, so built separately
	body = append(body, byte(r.Attributes))
	body = binary.AppendVarint(body, r.TimestampDelta)
	body = binary.AppendVarint(body, int64(r.OffsetDelta))
	body = appendVarBytes(body, r.Key)
	body = appendVarBytes(body, r.Value)
	body = binary.AppendVarint(body, int64(len(r.Headers)))
	for _, h := range r.Headers {
		if len(h.Key) > math.MaxInt32 {
			return dst, fmt.Errorf("header key too long")
		}
		body = binary.AppendVarint(body, int64(len(h.Key)))
		body = append(body, h.Key...)
		body = appendVarBytes(body, h.Value)
	}
	if len(body) > math.MaxInt32 {
		return dst, fmt.Errorf("record of %d bytes is too long", len(body))
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...), nil
}

// appendVarBytes appends a varint length (-1 for nil) and the bytes.
func appendVarBytes(dst, p []byte) []byte {
	if p == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(p)))
	return append(dst, p...)
}

// DecodeBatch decodes the magic-2 batch at the start of b and returns it with its size n
// (12 + batchLength). b must hold the whole batch. It checks batchLength against b, the
// magic, and the CRC-32C; an uncompressed batch's records are decoded and must fill the
// batch exactly and number recordCount. A compressed batch's records are not decoded
// (see RawRecords). Errors wrap ErrCorrupt, or io.ErrUnexpectedEOF when b ends before the
// batch does. Keys, values and RawRecords alias b.
func DecodeBatch(b []byte) (Batch, int, error) {
	var bt Batch
	if len(b) < BatchHeaderSize {
		return bt, 0, fmt.Errorf("decode batch: %d bytes, need %d for the header: %w", len(b), BatchHeaderSize, errUnexpectedEOF)
	}
	be := binary.BigEndian
	bt.BaseOffset = int64(be.Uint64(b))
	bt.BatchLength = int32(be.Uint32(b[8:]))
	if bt.BatchLength < BatchHeaderSize-BatchOverhead {
		return Batch{}, 0, fmt.Errorf("decode batch: %w: batchLength %d is below the header's %d", ErrCorrupt, bt.BatchLength, BatchHeaderSize-BatchOverhead)
	}
	bt.PartitionLeaderEpoch = int32(be.Uint32(b[12:]))
	bt.Magic = int8(b[16])
	if bt.Magic != 2 {
		return Batch{}, 0, fmt.Errorf("decode batch: %w: magic %d, only 2 is supported", ErrCorrupt, bt.Magic)
	}
	n := BatchOverhead + int(bt.BatchLength)
	if n > len(b) {
		return Batch{}, 0, fmt.Errorf("decode batch: batchLength %d but %d bytes available: %w", bt.BatchLength, len(b)-BatchOverhead, errUnexpectedEOF)
	}
	b = b[:n]
	bt.CRC = be.Uint32(b[17:])
	if got := crc32.Checksum(b[21:], castagnoli); got != bt.CRC {
		return Batch{}, 0, fmt.Errorf("decode batch: %w: crc %#08x, batch has %#08x", ErrCorrupt, bt.CRC, got)
	}
	bt.Attributes = int16(be.Uint16(b[21:]))
	bt.LastOffsetDelta = int32(be.Uint32(b[23:]))
	bt.BaseTimestamp = int64(be.Uint64(b[27:]))
	bt.MaxTimestamp = int64(be.Uint64(b[35:]))
	bt.ProducerID = int64(be.Uint64(b[43:]))
	bt.ProducerEpoch = int16(be.Uint16(b[51:]))
	bt.BaseSequence = int32(be.Uint32(b[53:]))
	bt.RecordCount = int32(be.Uint32(b[57:]))
	if bt.RecordCount < 0 {
		return Batch{}, 0, fmt.Errorf("decode batch: %w: negative record count %d", ErrCorrupt, bt.RecordCount)
	}
	bt.RawRecords = b[BatchHeaderSize:n:n]
	if bt.Compression() != CompressionNone {
		return bt, n, nil
	}
	recs, err := decodeRecords(bt.RawRecords, int(bt.RecordCount))
	if err != nil {
		return Batch{}, 0, fmt.Errorf("decode batch at offset %d: %w", bt.BaseOffset, err)
	}
	bt.Records = recs
	return bt, n, nil
}

func decodeRecords(b []byte, count int) ([]Record, error) {
	if count > len(b)/minRecordSize {
		return nil, fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrCorrupt, count, len(b))
	}
	recs := make([]Record, 0, count)
	c := varCursor{b: b}
	for i := range count {
		var r Record
		length := c.varint32("record length")
		if c.err == nil && (length < minRecordSize-1 || int(length) > len(b)-c.off) {
			c.fail("record %d: length %d does not fit in the %d bytes left", i, length, len(b)-c.off)
		}
		if c.err != nil {
			return nil, c.err
		}
		end := c.off + int(length)
		rc := varCursor{b: b[:end], off: c.off}
		r.Attributes = int8(rc.byte())
		r.TimestampDelta = rc.varint64("timestamp delta")
		r.OffsetDelta = rc.varint32("offset delta")
		r.Key = rc.varBytes("key")
		r.Value = rc.varBytes("value")
		nh := rc.varint32("header count")
		if rc.err == nil && (nh < 0 || int(nh) > (end-rc.off)/minHeaderSize) {
			rc.fail("header count %d does not fit in the %d bytes left", nh, end-rc.off)
		}
		if rc.err == nil && nh > 0 {
			r.Headers = make([]Header, 0, nh)
			for range nh {
				kl := rc.varint32("header key length")
				if rc.err == nil && kl < 0 {
					rc.fail("null header key")
				}
				k := rc.take(int(kl))
				v := rc.varBytes("header value")
				if rc.err != nil {
					break
				}
				r.Headers = append(r.Headers, Header{Key: string(k), Value: v})
			}
		}
		if rc.err == nil && rc.off != end {
			rc.fail("record length %d but fields take %d", length, rc.off-c.off)
		}
		if rc.err != nil {
			return nil, fmt.Errorf("record %d: %w", i, rc.err)
		}
		c.off = end
		recs = append(recs, r)
	}
	if c.off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the last of %d records", ErrCorrupt, len(b)-c.off, count)
	}
	return recs, nil
}

// varCursor reads Kafka's zig-zag varints (the same encoding as encoding/binary's Varint).
type varCursor struct {
	b   []byte
	off int
	err error
}

func (c *varCursor) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
}

func (c *varCursor) varint64(what string) int64 {
	if c.err != nil {
		return 0
	}
	v, n := binary.Varint(c.b[c.off:])
	if n <= 0 {
		c.fail("bad varint for %s at %d", what, c.off)
		return 0
	}
	c.off += n
	return v
}

func (c *varCursor) varint32(what string) int32 {
	v := c.varint64(what)
	if v < math.MinInt32 || v > math.MaxInt32 {
		c.fail("%s %d out of int32 range", what, v)
		return 0
	}
	return int32(v)
}

func (c *varCursor) byte() byte {
	if c.err != nil {
		return 0
	}
	if c.off >= len(c.b) {
		c.fail("record ends at %d", c.off)
		return 0
	}
	c.off++
	return c.b[c.off-1]
}

func (c *varCursor) take(n int) []byte {
	if c.err != nil {
		return nil
	}
	if n < 0 || n > len(c.b)-c.off {
		c.fail("field of %d bytes at %d runs past the record end", n, c.off)
		return nil
	}
	p := c.b[c.off : c.off+n : c.off+n]
	c.off += n
	return p
}

// varBytes reads a varint length (-1 = null) and the bytes.
func (c *varCursor) varBytes(what string) []byte {
	n := c.varint32(what + " length")
	if c.err != nil {
		return nil
	}
	if n == -1 {
		return nil
	}
	if n < -1 {
		c.fail("%s length %d", what, n)
		return nil
	}
	p := c.take(int(n))
	if p == nil && c.err == nil {
		return []byte{}
	}
	return p
}
