package catalog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tierd/tierd/segment"
)

// Catalog values (bRecords tier\x00key -> value) are a compact binary encoding of a
// Record, led by a format byte. Catalogs written before it hold the JSON encoding of
// markers (codec.go), which starts with '{'; both are read, and a record rewritten is
// written in the binary form, so an old catalog upgrades as its records change.
//
// The binary form (valueBinaryV1) leaves out what the bbolt key already says (tier and
// object key) and the relative path when the object key contains it (it nearly always
// does: keys are node/source/rel):
//
//	0x01 | flags(1) | source: uvarint len, bytes |
//	rel: uvarint off; off == 0: uvarint len, bytes; off > 0: uvarint len, rel = key[off-1:][:len] |
//	kind: uvarint len, bytes | format(1: 0 raw, 1 tix, 2 trim) |
//	size uvarint | crc32c(4) | unless raw: local size uvarint | local crc32c(4) |
//	offloaded T | if flags&1: segment mtime T | if flags&2: verified T | version uvarint
//
// where T is a time as varint Unix seconds and uvarint nanoseconds. Nothing may follow.
const valueBinaryV1 = 0x01

const (
	valueHasModTime  = 1 << 0
	valueHasVerified = 1 << 1
)

var valueFormats = []string{FormatRaw, FormatTix, FormatTrimmed}

// encodeValue encodes rec as its catalog value. rec must be valid and name its tier.
func encodeValue(rec Record) ([]byte, error) {
	if err := rec.Validate(); err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	rec = rec.normalize()
	f := -1
	for i, name := range valueFormats {
		if rec.Format == name {
			f = i
		}
	}
	var flags byte
	if !rec.SegmentModTime.IsZero() {
		flags |= valueHasModTime
	}
	if !rec.Verified.IsZero() {
		flags |= valueHasVerified
	}
	v := make([]byte, 0, 48+len(rec.Source)+len(rec.Kind))
	v = append(v, valueBinaryV1, flags)
	v = appendString(v, rec.Source)
	if off := strings.Index(string(rec.Key), rec.Rel); off >= 0 {
		v = binary.AppendUvarint(v, uint64(off)+1)
		v = binary.AppendUvarint(v, uint64(len(rec.Rel)))
	} else {
		v = binary.AppendUvarint(v, 0)
		v = appendString(v, rec.Rel)
	}
	v = appendString(v, rec.Kind)
	v = append(v, byte(f))
	v = binary.AppendUvarint(v, uint64(rec.Size))
	v = binary.BigEndian.AppendUint32(v, rec.CRC32C)
	if rec.Format != FormatRaw {
		v = binary.AppendUvarint(v, uint64(rec.LocalSize))
		v = binary.BigEndian.AppendUint32(v, rec.LocalCRC32C)
	}
	v = appendTime(v, rec.OffloadedAt)
	if flags&valueHasModTime != 0 {
		v = appendTime(v, rec.SegmentModTime)
	}
	if flags&valueHasVerified != 0 {
		v = appendTime(v, rec.Verified)
	}
	return binary.AppendUvarint(v, uint64(rec.Version)), nil
}

// decodeValue decodes the catalog value v stored under the bRecords key k, in either
// encoding. The record it returns is valid and names the tier and key of k.
func decodeValue(k, v []byte) (Record, error) {
	tier, key, ok := bytes.Cut(k, []byte{0})
	if !ok {
		return Record{}, fmt.Errorf("catalog key %q has no tier", k)
	}
	if len(v) > 0 && v[0] == '{' {
		rec, err := decodeRecord(v)
		if err != nil {
			return Record{}, err
		}
		if rec.Tier != string(tier) || string(rec.Key) != string(key) {
			return Record{}, fmt.Errorf("JSON value names %s on tier %s, its catalog key %q", rec.Key, rec.Tier, k)
		}
		return rec, nil
	}
	if len(v) == 0 || v[0] != valueBinaryV1 {
		return Record{}, fmt.Errorf("unknown value format %x (this tierd reads JSON and binary format %d)", v[:min(len(v), 1)], valueBinaryV1)
	}
	if len(v) < 2 || v[1]&^(valueHasModTime|valueHasVerified) != 0 {
		return Record{}, fmt.Errorf("binary value: missing or unknown flags")
	}
	flags, d := v[1], valueDecoder{b: v[2:]}
	rec := Record{Tier: string(tier), Key: segment.Key(key)}
	rec.Source = d.string()
	if off := d.uvarint(); off == 0 {
		rec.Rel = d.string()
	} else {
		n := d.uvarint()
		if d.err == nil && (off-1 > uint64(len(key)) || n > uint64(len(key))-(off-1)) {
			d.err = errors.New("relative path outside the key")
		}
		if d.err == nil {
			rec.Rel = string(key[off-1 : off-1+n])
		}
	}
	rec.Kind = d.string()
	if f := d.byte(); d.err == nil {
		if int(f) >= len(valueFormats) {
			d.err = fmt.Errorf("format %d", f)
		} else {
			rec.Format = valueFormats[f]
		}
	}
	rec.Size = d.int64()
	rec.CRC32C = d.uint32()
	rec.LocalSize, rec.LocalCRC32C = rec.Size, rec.CRC32C
	if rec.Format != FormatRaw {
		rec.LocalSize = d.int64()
		rec.LocalCRC32C = d.uint32()
	}
	rec.OffloadedAt = d.time()
	if flags&valueHasModTime != 0 {
		rec.SegmentModTime = d.time()
	}
	if flags&valueHasVerified != 0 {
		rec.Verified = d.time()
	}
	if ver := d.uvarint(); ver > 1<<31 {
		d.err = fmt.Errorf("version %d", ver)
	} else {
		rec.Version = int(ver)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes of trailing data", len(d.b))
	}
	if d.err != nil {
		return Record{}, fmt.Errorf("binary value: %w", d.err)
	}
	if err := rec.Validate(); err != nil {
		return Record{}, err
	}
	return rec, nil
}

func appendString(v []byte, s string) []byte {
	return append(binary.AppendUvarint(v, uint64(len(s))), s...)
}

func appendTime(v []byte, t time.Time) []byte {
	return binary.AppendUvarint(binary.AppendVarint(v, t.Unix()), uint64(t.Nanosecond()))
}

// valueDecoder reads a binary value; the first error sticks and zero values follow it.
type valueDecoder struct {
	b   []byte
	err error
}

func (d *valueDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or invalid %s", what)
	}
}

func (d *valueDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *valueDecoder) int64() int64 {
	x := d.uvarint()
	if x > 1<<63-1 {
		d.fail("size")
		return 0
	}
	return int64(x)
}

func (d *valueDecoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	x := d.b[0]
	d.b = d.b[1:]
	return x
}

func (d *valueDecoder) uint32() uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.fail("CRC-32C")
		return 0
	}
	x := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return x
}

func (d *valueDecoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail("string")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *valueDecoder) time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	sec, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("time")
		return time.Time{}
	}
	d.b = d.b[n:]
	ns := d.uvarint()
	if d.err == nil && ns >= 1e9 {
		d.fail("time")
	}
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(ns)).UTC()
}
