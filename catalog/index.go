package catalog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tierd/tierd/segment"
)

// Indexes kept on disk next to the records, so that the daemon's memory and the cost of
// dispatching one job do not grow with the number of records (docs/DESIGN.md invariant 9).
// Every index is written in the same transaction as the record or local state it
// follows.
//
//	bAge   tier\x00 T(segment mtime) key                 -> nil     every record of a tier, oldest segment first (retention)
//	bStats tier                                          -> count(8) bytes(8)   records and bytes a tier holds
//	bDue   tier\x00 T(segment mtime) source\x00rel       -> kind    a sealed segment the tier does not hold yet (copies)
//	bLAge  T(mtime) source\x00rel                        -> nil     every sealed local file, oldest first (local deletion)
//
// T(t) is t as 8 bytes that sort like the times (nanoseconds since 1970, sign bit
// flipped). A due entry is keyed by the segment's mtime, not by when it becomes due, so a
// change of offload_after needs no rewrite: a tier's copies due now are the entries up to
// now - offload_after. A segment whose file changes (a new version, docs/DESIGN.md invariant
// 10) gets a new mtime and so new entries.
var (
	bAge   = []byte("age")
	bStats = []byte("stats")
	bDue   = []byte("due")
	bLAge  = []byte("lage")

	metaDueTiers = []byte("due_tiers")
)

// timeBytes encodes t so that byte order is time order.
func timeBytes(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(t.UnixNano())^(1<<63))
}

func bytesTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)^(1<<63))).UTC()
}

func ageKey(tier string, mtime time.Time, key segment.Key) []byte {
	k := make([]byte, 0, len(tier)+9+len(key))
	k = append(append(k, tier...), 0)
	return append(append(k, timeBytes(mtime)...), key...)
}

func dueKey(tier string, mtime time.Time, source, rel string) []byte {
	k := make([]byte, 0, len(tier)+10+len(source)+len(rel))
	k = append(append(k, tier...), 0)
	k = append(k, timeBytes(mtime)...)
	return append(append(append(k, source...), 0), rel...)
}

func lageKey(mtime time.Time, source, rel string) []byte {
	k := append(timeBytes(mtime), source...)
	return append(append(k, 0), rel...)
}

// indexRecordTx adds (sign 1) or removes (sign -1) rec's entries in the age index and the
// tier's counters.
func indexRecordTx(tx *bolt.Tx, rec Record, sign int64) error {
	ak := ageKey(rec.Tier, rec.SegmentModTime, rec.Key)
	var err error
	if sign > 0 {
		err = tx.Bucket(bAge).Put(ak, nil)
	} else {
		err = tx.Bucket(bAge).Delete(ak)
	}
	if err != nil {
		return fmt.Errorf("index record %s on tier %s: %w", rec.Key, rec.Tier, err)
	}
	st := tx.Bucket(bStats)
	v := make([]byte, 16)
	copy(v, st.Get([]byte(rec.Tier)))
	n := int64(binary.BigEndian.Uint64(v)) + sign
	b := int64(binary.BigEndian.Uint64(v[8:])) + sign*rec.Size
	binary.BigEndian.PutUint64(v, uint64(max(n, 0)))
	binary.BigEndian.PutUint64(v[8:], uint64(max(b, 0)))
	if err := st.Put([]byte(rec.Tier), v); err != nil {
		return fmt.Errorf("count record %s on tier %s: %w", rec.Key, rec.Tier, err)
	}
	if sign > 0 {
		// The tier holds the segment now: it is no longer due there.
		return tx.Bucket(bDue).Delete(dueKey(rec.Tier, rec.SegmentModTime, rec.Source, rec.Rel))
	}
	return nil
}

// TierStats is what a tier holds according to the catalog.
type TierStats struct {
	Records int64 // objects
	Bytes   int64 // their bytes on the tier
}

// Stats returns the counters of tier, kept with every record put or deleted (O(1)).
func (c *Catalog) Stats(tier string) (TierStats, error) {
	var st TierStats
	err := c.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bStats).Get([]byte(tier)); len(v) == 16 {
			st.Records = int64(binary.BigEndian.Uint64(v))
			st.Bytes = int64(binary.BigEndian.Uint64(v[8:]))
		}
		return nil
	})
	return st, err
}

// Due is a sealed segment a tier does not hold yet.
type Due struct {
	Tier    string
	Source  string
	Rel     string
	Kind    string
	ModTime time.Time // the segment's mtime: it is due on the tier once offload_after has passed
}

// Aged is a record in the age index: an object on a tier and its segment's mtime.
type Aged struct {
	Tier    string
	Key     segment.Key
	ModTime time.Time
}

// Stale is a sealed local file in the local-age index.
type Stale struct {
	Source  string
	Rel     string
	ModTime time.Time
}

// Walk results: what a walk function returns for each entry.
const (
	WalkNext = iota // go on with the next entry
	WalkStop        // stop here
)

// WalkDue calls fn for the due entries of tier whose segment mtime is in [from, to] (a
// zero from: from the oldest), oldest first, until fn returns WalkStop or limit entries were seen (limit <= 0: no
// limit). It holds a read transaction while it runs: fn must not write to the catalog.
func (c *Catalog) WalkDue(tier string, from, to time.Time, limit int, fn func(Due) int) error {
	prefix := append([]byte(tier), 0)
	end := append(slices.Clone(prefix), timeBytes(to)...)
	return c.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bDue).Cursor()
		seen := 0
		start := slices.Clone(prefix)
		if !from.IsZero() {
			start = append(start, timeBytes(from)...)
		}
		for k, v := cur.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			if bytes.Compare(k[:len(end)], end) > 0 {
				return nil
			}
			rest := k[len(prefix)+8:]
			source, rel, ok := bytes.Cut(rest, []byte{0})
			if !ok {
				return fmt.Errorf("due entry %q is corrupt", k)
			}
			seen++
			if fn(Due{Tier: tier, Source: string(source), Rel: string(rel), Kind: string(v), ModTime: bytesTime(k[len(prefix):])}) == WalkStop || (limit > 0 && seen >= limit) {
				return nil
			}
		}
		return nil
	})
}

// DropDue removes a due entry (the tier holds the segment, or it can no longer be had).
func (c *Catalog) DropDue(d Due) error {
	return c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bDue).Delete(dueKey(d.Tier, d.ModTime, d.Source, d.Rel))
	})
}

// WalkAged calls fn for the records of tier in the age index with a segment mtime up to
// to, oldest first, as WalkDue does.
func (c *Catalog) WalkAged(tier string, to time.Time, limit int, fn func(Aged) int) error {
	return c.walkTierTimes(bAge, tier, to, limit, func(at time.Time, key segment.Key) int {
		return fn(Aged{Tier: tier, ModTime: at, Key: key})
	})
}

// walkTierTimes walks an index of bucket keyed tier\x00 T(time) key, for tier, times up
// to to, oldest first, until fn returns WalkStop or limit entries were seen (limit <= 0:
// no limit), in one read transaction.
func (c *Catalog) walkTierTimes(bucket []byte, tier string, to time.Time, limit int, fn func(time.Time, segment.Key) int) error {
	prefix := append([]byte(tier), 0)
	end := append(slices.Clone(prefix), timeBytes(to)...)
	return c.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucket).Cursor()
		seen := 0
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			if len(k) < len(end) || bytes.Compare(k[:len(end)], end) > 0 {
				return nil
			}
			seen++
			if fn(bytesTime(k[len(prefix):]), segment.Key(k[len(prefix)+8:])) == WalkStop || (limit > 0 && seen >= limit) {
				return nil
			}
		}
		return nil
	})
}

// WalkStale calls fn for sealed local files with an mtime up to to, oldest first, as
// WalkDue does.
func (c *Catalog) WalkStale(to time.Time, limit int, fn func(Stale) int) error {
	end := timeBytes(to)
	return c.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bLAge).Cursor()
		seen := 0
		for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
			if len(k) < 9 || bytes.Compare(k[:8], end) > 0 {
				return nil
			}
			source, rel, ok := bytes.Cut(k[8:], []byte{0})
			if !ok {
				return fmt.Errorf("local age entry %q is corrupt", k)
			}
			seen++
			if fn(Stale{Source: string(source), Rel: string(rel), ModTime: bytesTime(k[:8])}) == WalkStop || (limit > 0 && seen >= limit) {
				return nil
			}
		}
		return nil
	})
}

// SegmentKey is the key a local segment of kind is stored under on node's tiers: its
// compacted key for compactable kinds (RocketMQ IndexFiles), its plain key otherwise.
func SegmentKey(node, source, rel, kind string) (segment.Key, error) {
	k, err := segment.ParseKind(kind)
	if err == nil && k.Compactable() {
		return segment.CompactedKey(node, source, rel)
	}
	return segment.ObjectKey(node, source, rel)
}

// dueTiers returns the tiers the due index is kept for.
func dueTiers(tx *bolt.Tx) []string {
	v := tx.Bucket(bMeta).Get(metaDueTiers)
	if len(v) == 0 {
		return nil
	}
	return strings.Split(string(v), "\x00")
}

// addDueTx makes (source, rel) due on every indexed tier that has no record of its
// version of size and mtime (VersionKey).
func (c *Catalog) addDueTx(tx *bolt.Tx, tiers []string, source, rel, kind string, size int64, mtime time.Time) error {
	key, _, err := c.versionKeyTx(tx, source, rel, kind, size, mtime)
	if err != nil {
		return nil // not a valid key: the daemon reports it when it looks at the file
	}
	for _, t := range tiers {
		if tx.Bucket(bRecords).Get(recordKey(t, key)) != nil {
			continue
		}
		if err := tx.Bucket(bDue).Put(dueKey(t, mtime, source, rel), []byte(kind)); err != nil {
			return fmt.Errorf("index due segment %s/%s: %w", source, rel, err)
		}
	}
	return nil
}

// IndexTiers says which tiers are configured, hot to cold. If they are not the tiers the
// due index was built for (first start, a tier added or removed, records rebuilt from
// markers), the due index is rebuilt from the local state and the records: one walk over
// them. It reports whether it rebuilt.
func (c *Catalog) IndexTiers(tiers []string) (bool, error) {
	want := strings.Join(tiers, "\x00")
	rebuilt := false
	err := c.db.Update(func(tx *bolt.Tx) error {
		if string(tx.Bucket(bMeta).Get(metaDueTiers)) == want && tx.Bucket(bMeta).Get(metaDueTiers) != nil {
			return nil
		}
		rebuilt = true
		if err := tx.DeleteBucket(bDue); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bDue); err != nil {
			return err
		}
		lb := tx.Bucket(bLocal).Cursor()
		for k, v := lb.First(); k != nil; k, v = lb.Next() {
			source, rel, lf, err := decodeLocalKV(k, v)
			if err != nil {
				return err
			}
			if lf.Sealed {
				if err := c.addDueTx(tx, tiers, string(source), string(rel), lf.Kind, lf.Size, lf.ModTime); err != nil {
					return err
				}
			}
		}
		// Segments only tiers hold (their local file is gone): due where they are not.
		hc := tx.Bucket(bHolders).Cursor()
		var last []byte
		for k, _ := hc.First(); k != nil; k, _ = hc.Next() {
			parts := bytes.SplitN(k, []byte{0}, 4)
			if len(parts) != 4 {
				return fmt.Errorf("holders entry %q is corrupt", k)
			}
			sr := k[:len(parts[0])+1+len(parts[1])]
			if bytes.Equal(sr, last) {
				continue
			}
			last = slices.Clone(sr)
			if tx.Bucket(bLocal).Get(sr) != nil {
				continue
			}
			// The newest version is the one other tiers want.
			recs, err := holdersTx(tx, string(parts[0]), string(parts[1]))
			if err != nil {
				return err
			}
			rec := recs[0]
			for _, r := range recs {
				if r.Ver() > rec.Ver() {
					rec = r
				}
			}
			if err := c.addDueTx(tx, tiers, rec.Source, rec.Rel, rec.Kind, rec.LocalSize, rec.SegmentModTime); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put(metaDueTiers, []byte(want))
	})
	if err != nil {
		return false, fmt.Errorf("index tiers %q: %w", tiers, err)
	}
	return rebuilt, nil
}

// forgetDueTiersTx makes the next IndexTiers rebuild the due index (records were added
// from outside the daemon's pipeline, e.g. rebuilt from markers).
func forgetDueTiersTx(tx *bolt.Tx) error {
	return tx.Bucket(bMeta).Delete(metaDueTiers)
}

// ResetDue makes the next IndexTiers rebuild the due index: for records dropped outside
// the pipeline (reconcile), whose segments are wanted again.
func (c *Catalog) ResetDue() error {
	if err := c.db.Update(forgetDueTiersTx); err != nil {
		return fmt.Errorf("reset the due index: %w", err)
	}
	return nil
}

// migrateV1 builds schema 2's indexes from the records of a schema 1 catalog.
func migrateV1(tx *bolt.Tx) error {
	cur := tx.Bucket(bRecords).Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		rec, err := decodeValue(k, v)
		if err != nil {
			return fmt.Errorf("catalog value %q is corrupt: %w", k, err)
		}
		if err := indexRecordTx(tx, rec, 1); err != nil {
			return err
		}
	}
	return nil
}
