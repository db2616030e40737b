package catalog

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tierd/tierd/segment"
)

// Formats of an object on a tier.
const (
	// FormatRaw is a byte-for-byte copy of the local file: Size and CRC32C equal LocalSize
	// and LocalCRC32C.
	FormatRaw = "raw"
	// FormatTix is a compacted index (index/FORMAT.md), stored under a key ending in
	// ".tix"; its size and CRC differ from the local file's.
	FormatTix = "tix"
	// FormatTrimmed is a prefix of the local file: a Kafka offset or time index without the
	// zero-filled tail its broker preallocated. Size is at most LocalSize; the CRC32C
	// covers the prefix, LocalCRC32C the whole local file.
	FormatTrimmed = "trim"
)

// reservedSource is the key component under a node that holds tierd's own objects
// (markers); no source may be named so.
const reservedSource = "_tierd"

// Record says that one object on one tier is a verified copy of one local segment.
//
// Times come back from the catalog in UTC, without a monotonic clock reading, and are
// stored with nanosecond precision.
type Record struct {
	Tier   string      // tier name (config tiers[].name)
	Key    segment.Key // object key on the tier
	Source string      // source name (config sources[].name)
	Rel    string      // path of the local file relative to the source dir, slash-separated
	Kind   string      // segment kind, as the source's layout names it
	Format string      // FormatRaw, FormatTix or FormatTrimmed

	Size   int64  // size of the object on the tier
	CRC32C uint32 // CRC-32C of the object on the tier

	LocalSize   int64  // size of the local file the object was made from
	LocalCRC32C uint32 // CRC-32C of that local file

	SegmentModTime time.Time // modification time of the local file
	OffloadedAt    time.Time // when the object was committed to the tier
	Verified       time.Time // last successful verify of the object (size + CRC via Stat)

	// Version is which version of the local file the object holds (docs/DESIGN.md invariant
	// 10): the broker rewrote the file after an earlier version was offloaded. 0 means
	// the first version (records and markers made before versions existed); a version
	// >= 2 is stored under segment.WithVersion of the first version's key.
	Version int
}

// Ver is r's version: 1 for the first version, whether Version says 0 or 1.
func (r Record) Ver() int { return max(r.Version, 1) }

// Validate reports what is wrong with r, or nil. Every Record the catalog stores, and
// every marker it encodes or decodes, is valid. Tier may be empty only in markers.
func (r Record) Validate() error {
	if r.Tier != "" {
		if err := checkName("tier", r.Tier); err != nil {
			return err
		}
	}
	if err := r.Key.Valid(); err != nil {
		return fmt.Errorf("object key: %w", err)
	}
	if err := checkSource(r.Source); err != nil {
		return err
	}
	if err := checkRel(r.Rel); err != nil {
		return err
	}
	if r.Version < 0 {
		return fmt.Errorf("object %s: version %d is negative", r.Key, r.Version)
	}
	if v := segment.KeyVersion(r.Key); v != r.Ver() {
		return fmt.Errorf("object %s: the key names version %d, the record says %d", r.Key, v, r.Ver())
	}
	if r.Kind == "" || !utf8.ValidString(r.Kind) || len(r.Kind) > 64 {
		return fmt.Errorf("kind %q: want 1 to 64 bytes of UTF-8", r.Kind)
	}
	switch r.Format {
	case FormatRaw:
		if r.Size != r.LocalSize || r.CRC32C != r.LocalCRC32C {
			return fmt.Errorf("raw object %s: size %d / CRC-32C %08x differ from local file's %d / %08x",
				r.Key, r.Size, r.CRC32C, r.LocalSize, r.LocalCRC32C)
		}
	case FormatTix:
		if !strings.HasSuffix(string(r.Key), ".tix") {
			return fmt.Errorf("compacted index object %s: key does not end in .tix", r.Key)
		}
	case FormatTrimmed:
		if r.Size > r.LocalSize {
			return fmt.Errorf("trimmed object %s: %d bytes, more than the local file's %d", r.Key, r.Size, r.LocalSize)
		}
		if r.Size == r.LocalSize && r.CRC32C != r.LocalCRC32C {
			return fmt.Errorf("trimmed object %s: as long as the local file but CRC-32C %08x differs from its %08x", r.Key, r.CRC32C, r.LocalCRC32C)
		}
		if strings.HasSuffix(string(r.Key), ".tix") {
			return fmt.Errorf("trimmed object %s: key ends in .tix", r.Key)
		}
	default:
		return fmt.Errorf("format %q: want %q, %q or %q", r.Format, FormatRaw, FormatTix, FormatTrimmed)
	}
	if r.Size < 0 || r.LocalSize < 0 {
		return fmt.Errorf("object %s: negative size (object %d, local %d)", r.Key, r.Size, r.LocalSize)
	}
	if r.OffloadedAt.IsZero() {
		return fmt.Errorf("object %s: offload time missing", r.Key)
	}
	for _, t := range []time.Time{r.SegmentModTime, r.OffloadedAt, r.Verified} {
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return fmt.Errorf("object %s: time %s out of range", r.Key, t)
		}
	}
	return nil
}

// normalize returns r with its times in UTC and without monotonic readings, as the
// catalog stores and returns them.
func (r Record) normalize() Record {
	r.SegmentModTime = r.SegmentModTime.UTC()
	r.OffloadedAt = r.OffloadedAt.UTC()
	r.Verified = r.Verified.UTC()
	return r
}

// checkName checks a tier name: one key component (non-empty, at most 255 bytes of
// UTF-8, no '/', '\\' or control character, not "." or "..").
func checkName(what, s string) error {
	switch {
	case s == "" || len(s) > 255:
		return fmt.Errorf("%s name %q: want 1 to 255 bytes", what, s)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s name %q: not UTF-8", what, s)
	case s == "." || s == "..":
		return fmt.Errorf("%s name %q: not a name", what, s)
	}
	for _, r := range s {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s name %q: contains %q", what, s, r)
		}
	}
	return nil
}

// checkNodeOrSource checks a node or source name: a tier name (checkName) that does not
// start with '.' (hidden on posix tiers) or '_' (reserved for tierd's own objects, such as
// the "_tierd" marker directory). These are the rules of segment's key scheme.
func checkNodeOrSource(what, s string) error {
	if err := checkName(what, s); err != nil {
		return err
	}
	if s[0] == '.' || s[0] == '_' {
		return fmt.Errorf("%s name %q: starts with '.' or '_' (reserved for tierd)", what, s)
	}
	return nil
}

func checkSource(s string) error { return checkNodeOrSource("source", s) }

// checkRel checks a path relative to a source dir: the same rules as a Key.
func checkRel(rel string) error {
	if _, err := segment.ParseKey(rel); err != nil {
		return fmt.Errorf("relative path: %w", err)
	}
	return nil
}

// recordKey is the bRecords key of (tier, key).
func recordKey(tier string, key segment.Key) []byte {
	return []byte(tier + "\x00" + string(key))
}

// holderPrefix is the bHolders prefix of every tier holding (source, rel).
func holderPrefix(source, rel string) []byte {
	return []byte(source + "\x00" + rel + "\x00")
}

// holderKey is the bHolders key of r.
func holderKey(r Record) []byte {
	return append(holderPrefix(r.Source, r.Rel), recordKey(r.Tier, r.Key)...)
}
