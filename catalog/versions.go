package catalog

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tierd/tierd/segment"
)

// Segment versions (docs/DESIGN.md invariant 10). A local file whose size or mtime is not the
// one the newest records of it were made from is a new version: it is stored under
// segment.WithVersion(key, n+1) beside the older versions, which stay until the tier holds
// the new one and its superseded_retain_for has passed.
//
//	bSuper tier\x00 T(superseded at) key -> nil   an object of tier whose file has a newer
//	                                              version on the same tier, since when
//
// An entry is made when the newer version's record is put (or an older version's record
// is put after a newer one, as a rebuild from markers may do), in the same transaction.
// Entries whose record is gone are dropped by whoever walks them.
var bSuper = []byte("super")

// Superseded is an entry of the superseded index.
type Superseded struct {
	Tier string
	Key  segment.Key
	At   time.Time // when the tier got a verified copy of a newer version
}

func superKey(tier string, at time.Time, key segment.Key) []byte {
	k := make([]byte, 0, len(tier)+9+len(key))
	k = append(append(k, tier...), 0)
	return append(append(k, timeBytes(at)...), key...)
}

// holdersTx returns every record of the local file rel of source, on every tier.
func holdersTx(tx *bolt.Tx, source, rel string) ([]Record, error) {
	prefix := holderPrefix(source, rel)
	var recs []Record
	cur := tx.Bucket(bHolders).Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		tier, key, ok := bytes.Cut(k[len(prefix):], []byte{0})
		if !ok {
			return nil, fmt.Errorf("holders entry %q is corrupt: no record key", k)
		}
		rec, err := getTx(tx, string(tier), segment.Key(key))
		if err != nil {
			return nil, fmt.Errorf("holders index of %s/%s: %w", source, rel, err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// newest returns the highest version among recs and whether a record of that version
// was made from a local file of size and mtime.
func newest(recs []Record, size int64, mtime time.Time) (version int, matches bool) {
	for _, r := range recs {
		switch v := r.Ver(); {
		case v > version:
			version, matches = v, r.LocalSize == size && r.SegmentModTime.Equal(mtime)
		case v == version && r.LocalSize == size && r.SegmentModTime.Equal(mtime):
			matches = true
		}
	}
	return version, matches
}

// versionKeyTx is VersionKey in tx.
func (c *Catalog) versionKeyTx(tx *bolt.Tx, source, rel, kind string, size int64, mtime time.Time) (segment.Key, int, error) {
	base, err := SegmentKey(c.node, source, rel, kind)
	if err != nil {
		return "", 0, err
	}
	recs, err := holdersTx(tx, source, rel)
	if err != nil {
		return "", 0, err
	}
	v, matches := newest(recs, size, mtime)
	switch {
	case v == 0:
		return base, 1, nil
	case matches:
		return segment.WithVersion(base, v), v, nil
	}
	return segment.WithVersion(base, v+1), v + 1, nil
}

// VersionKey returns the key, and the version, that the local file rel of source (of
// kind, with size and mtime as a scan saw it) is stored under: the newest version the
// tiers hold if that was made from a file of this size and mtime, else the next version
// (version 1, today's key, when no tier holds any).
func (c *Catalog) VersionKey(source, rel, kind string, size int64, mtime time.Time) (key segment.Key, version int, err error) {
	err = c.db.View(func(tx *bolt.Tx) error {
		key, version, err = c.versionKeyTx(tx, source, rel, kind, size, mtime)
		return err
	})
	if err != nil {
		return "", 0, fmt.Errorf("version of %s/%s: %w", source, rel, err)
	}
	return key, version, nil
}

// Newest returns the records of the newest version of the file rel of source the tiers
// hold (none if they hold none).
func (c *Catalog) Newest(source, rel string) ([]Record, error) {
	recs, err := c.Holders(source, rel)
	if err != nil {
		return nil, err
	}
	v, _ := newest(recs, -1, time.Time{})
	return slices.DeleteFunc(recs, func(r Record) bool { return r.Ver() != v }), nil
}

// indexSupersededTx adds the superseded entries rec's arrival makes: every record of
// an older version of the same file on the same tier is superseded from rec.OffloadedAt;
// rec itself is, if the tier already holds a newer version.
func indexSupersededTx(tx *bolt.Tx, rec Record) error {
	recs, err := holdersTx(tx, rec.Source, rec.Rel)
	if err != nil {
		return err
	}
	b := tx.Bucket(bSuper)
	var newer *Record
	for i, r := range recs {
		switch {
		case r.Tier != rec.Tier:
		case r.Ver() < rec.Ver():
			if err := b.Put(superKey(r.Tier, rec.OffloadedAt, r.Key), nil); err != nil {
				return fmt.Errorf("index superseded %s on tier %s: %w", r.Key, r.Tier, err)
			}
		case r.Ver() > rec.Ver() && (newer == nil || r.OffloadedAt.Before(newer.OffloadedAt)):
			newer = &recs[i]
		}
	}
	if newer != nil {
		if err := b.Put(superKey(rec.Tier, newer.OffloadedAt, rec.Key), nil); err != nil {
			return fmt.Errorf("index superseded %s on tier %s: %w", rec.Key, rec.Tier, err)
		}
	}
	return nil
}

// WalkSuperseded calls fn for the superseded entries of tier up to to (superseded at or
// before it), oldest first, until fn returns WalkStop or limit entries were seen (limit <=
// 0: no limit). It holds a read transaction while it runs: fn must not write to the
// catalog.
func (c *Catalog) WalkSuperseded(tier string, to time.Time, limit int, fn func(Superseded) int) error {
	return c.walkTierTimes(bSuper, tier, to, limit, func(at time.Time, key segment.Key) int {
		return fn(Superseded{Tier: tier, At: at, Key: key})
	})
}

// DropSuperseded removes a superseded entry (its object expired, or its record is gone).
func (c *Catalog) DropSuperseded(s Superseded) error {
	return c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bSuper).Delete(superKey(s.Tier, s.At, s.Key))
	})
}
