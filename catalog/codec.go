package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tierd/tierd/segment"
)

// MarkerVersion is the "v" field of the record encoding this package writes for a
// segment's first version: exactly the encoding of tierd before segment versions, so
// tiers written then stay readable and are still written the same way.
const MarkerVersion = 1

// MarkerVersionSegmentVersions is the "v" of a record of a segment's version 2 or later
// (Record.Version, docs/DESIGN.md invariant 10), which adds the field "ver". Both are read.
const MarkerVersionSegmentVersions = 2

// MaxMarkerSize bounds an encoded record. Real ones are well under 4 KiB (two keys of at
// most segment.MaxKeyLen bytes plus a few fields); anything larger is not a marker.
const MaxMarkerSize = 16 << 10

// wireRecord is the JSON form of a Record, shared by catalog values, marker objects and
// Dump lines. Example (one line in practice):
//
//	{"v":1,"tier":"hdd","key":"broker-a/rmq/commitlog/00000000000000000000","src":"rmq",
//	 "rel":"commitlog/00000000000000000000","kind":"commitlog","fmt":"raw",
//	 "size":1073741824,"crc":305419896,"lsize":1073741824,"lcrc":305419896,
//	 "mtime":"2026-01-02T03:04:05.123456789Z","offloaded":"...","verified":"..."}
//
// A later version of a segment (Record.Version >= 2) is written with "v":2 and its
// version in "ver", e.g. "key":"broker-a/k/t-0/00000000000000000000.log@v2",...,"ver":2.
//
// "tier" is absent from markers (the tier holding a marker is its tier). Numbers are
// pointers so that a missing field is an error rather than a silent zero.
type wireRecord struct {
	V         *int      `json:"v"`
	Tier      string    `json:"tier,omitempty"`
	Key       string    `json:"key"`
	Source    string    `json:"src"`
	Rel       string    `json:"rel"`
	Kind      string    `json:"kind"`
	Format    string    `json:"fmt"`
	Size      *int64    `json:"size"`
	CRC       *uint32   `json:"crc"`
	LocalSize *int64    `json:"lsize"`
	LocalCRC  *uint32   `json:"lcrc"`
	ModTime   time.Time `json:"mtime,omitzero"`
	Offloaded time.Time `json:"offloaded,omitzero"`
	Verified  time.Time `json:"verified,omitzero"`
	Ver       int       `json:"ver,omitempty"` // v2 only: the segment's version, >= 2
}

// EncodeMarker encodes rec as the content of its marker object: versioned JSON holding
// every field but Tier. It fails if rec is not valid.
func EncodeMarker(rec Record) ([]byte, error) {
	rec.Tier = ""
	return encodeRecord(rec)
}

// DecodeMarker decodes a marker object (or a catalog value, or a Dump line, which also
// name their tier). It rejects anything that is not exactly one valid version-1 record:
// unknown or missing fields, trailing data, invalid names, keys or sizes. Times come back
// in UTC.
func DecodeMarker(data []byte) (Record, error) {
	rec, err := decodeRecord(data)
	if err != nil {
		return Record{}, fmt.Errorf("decode marker: %w", err)
	}
	return rec, nil
}

func encodeRecord(rec Record) ([]byte, error) {
	if err := rec.Validate(); err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	rec = rec.normalize()
	v := MarkerVersion
	w := wireRecord{
		V: &v, Tier: rec.Tier, Key: string(rec.Key), Source: rec.Source, Rel: rec.Rel,
		Kind: rec.Kind, Format: rec.Format,
		Size: &rec.Size, CRC: &rec.CRC32C, LocalSize: &rec.LocalSize, LocalCRC: &rec.LocalCRC32C,
		ModTime: rec.SegmentModTime, Offloaded: rec.OffloadedAt, Verified: rec.Verified,
	}
	if rec.Version >= 2 {
		v = MarkerVersionSegmentVersions
		w.Ver = rec.Version
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encode record %s: %w", rec.Key, err)
	}
	return b, nil
}

func decodeRecord(data []byte) (Record, error) {
	if len(data) > MaxMarkerSize {
		return Record{}, fmt.Errorf("%d bytes, more than the %d a record may have", len(data), MaxMarkerSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w wireRecord
	if err := dec.Decode(&w); err != nil {
		return Record{}, fmt.Errorf("not a JSON record: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Record{}, fmt.Errorf("trailing data after the JSON record")
	}
	switch {
	case w.V == nil:
		return Record{}, fmt.Errorf("no version field \"v\"")
	case *w.V != MarkerVersion && *w.V != MarkerVersionSegmentVersions:
		return Record{}, fmt.Errorf("version %d; this tierd reads versions %d and %d", *w.V, MarkerVersion, MarkerVersionSegmentVersions)
	case *w.V == MarkerVersion && w.Ver != 0:
		return Record{}, fmt.Errorf("field \"ver\" in a version %d record", MarkerVersion)
	case *w.V == MarkerVersionSegmentVersions && w.Ver < 2:
		return Record{}, fmt.Errorf("version %d record without a segment version \"ver\" >= 2", MarkerVersionSegmentVersions)
	case w.Size == nil || w.CRC == nil || w.LocalSize == nil || w.LocalCRC == nil:
		return Record{}, fmt.Errorf("missing one of the fields size, crc, lsize, lcrc")
	}
	rec := Record{
		Tier: w.Tier, Key: segment.Key(w.Key), Source: w.Source, Rel: w.Rel,
		Kind: w.Kind, Format: w.Format,
		Size: *w.Size, CRC32C: *w.CRC, LocalSize: *w.LocalSize, LocalCRC32C: *w.LocalCRC,
		SegmentModTime: w.ModTime, OffloadedAt: w.Offloaded, Verified: w.Verified, Version: w.Ver,
	}
	if err := rec.Validate(); err != nil {
		return Record{}, err
	}
	return rec.normalize(), nil
}
