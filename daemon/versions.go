package daemon

import (
	"errors"
	"fmt"
	"time"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/segment"
)

// Segment versions (docs/DESIGN.md invariant 10). Kafka's log cleaner rewrites sealed segments
// of compacted topics in place: it writes <base>.log.cleaned, renames it to .swap, renames
// the old segment's files to .deleted and the .swap files to the segment's names, under
// the same base offset, and it may merge several segments into the first one. It gives
// the result the mtime of the last segment it cleaned (Kafka's
// LogCleaner.cleanSegments), so a rewrite of one segment keeps its mtime and only its
// size and bytes change. The layout never offers .cleaned, .swap or .deleted files; the
// scan sees the new file settle (its size changed) and seal again; the catalog then says
// its version (catalog.VersionKey): the next one when its size or mtime is not what the
// newest version on the tiers was made from. The new version goes to the tiers under its
// own key, beside the old one, which expires from each tier superseded_retain_for after
// that tier holds a verified copy of the new one. A segment merged away is simply gone
// locally: the tiers keep its last version as retention says.

// segmentKey returns the key seg (as a scan saw it: size and mtime) is stored under on
// every tier, and its version: a compactable index file under its CompactedKey (it is
// stored compacted), everything else under its plain key, with the version's suffix.
func (d *Daemon) segmentKey(seg segment.Segment) (segment.Key, int, error) {
	return d.cfg.Catalog.VersionKey(seg.Source, seg.Rel, string(seg.Kind), seg.Size, seg.ModTime)
}

// localKey is the key of the sealed local file f (its version).
func (d *Daemon) localKey(f catalog.LocalFile) (segment.Key, error) {
	k, _, err := d.cfg.Catalog.VersionKey(f.Source, f.Rel, f.Kind, f.Size, f.ModTime)
	return k, err
}

// copyKey is the key a copy for due entry e writes: the version of the local file while
// it is sealed with the entry's mtime, else the newest version the tiers hold (older
// versions are never copied on).
func (d *Daemon) copyKey(e catalog.Due) (segment.Key, error) {
	base, err := catalog.SegmentKey(d.cfg.Node, e.Source, e.Rel, e.Kind)
	if err != nil {
		return "", err
	}
	f, ok, err := d.cfg.Catalog.Local(e.Source, e.Rel)
	if err != nil {
		return "", err
	}
	if ok && f.Sealed && f.ModTime.Equal(e.ModTime) {
		return d.localKey(f)
	}
	recs, err := d.cfg.Catalog.Newest(e.Source, e.Rel)
	if err != nil || len(recs) == 0 {
		return base, err
	}
	return segment.WithVersion(base, recs[0].Ver()), nil
}

// Changed is a sealed local file that differs from the newest version the tiers hold of
// it: the broker rewrote it after it was offloaded.
type Changed struct {
	Path string `json:"path"`
	Rel  string `json:"rel"`
	// Version is the newest version the tiers hold; the file goes there as Version+1.
	Version int    `json:"version"`
	Why     string `json:"why"`
}

// changed reports whether the sealed local file f of s differs from the newest version
// the tiers hold (false when they hold none).
func (d *Daemon) changed(s *sourceState, f catalog.LocalFile) (Changed, bool, error) {
	recs, err := d.cfg.Catalog.Newest(f.Source, f.Rel)
	if err != nil || len(recs) == 0 {
		return Changed{}, false, err
	}
	r := recs[0]
	for _, x := range recs {
		if x.LocalSize == f.Size && x.SegmentModTime.Equal(f.ModTime) {
			return Changed{}, false, nil
		}
	}
	path, err := segment.LocalPath(s.Root, f.Rel)
	if err != nil {
		return Changed{}, false, nil
	}
	why := fmt.Sprintf("size %d -> %d bytes since v%d was offloaded", r.LocalSize, f.Size, r.Ver())
	if r.LocalSize == f.Size {
		why = fmt.Sprintf("mtime %s -> %s since v%d was offloaded", r.SegmentModTime.Format(time.RFC3339Nano), f.ModTime.Format(time.RFC3339Nano), r.Ver())
	}
	return Changed{Path: path, Rel: f.Rel, Version: r.Ver(), Why: why + fmt.Sprintf(": goes to the tiers as v%d, v%d stays until then", r.Ver()+1, r.Ver())}, true, nil
}

// nextSuperseded returns an expiry of an object of t whose file has had a newer version
// on t for at least superseded_retain_for; entries whose record is gone are dropped.
func (d *Daemon) nextSuperseded(t *tierState, now time.Time, limit int) (due, bool, error) {
	var cands []catalog.Superseded
	err := d.walkSuperseded(t, now, limit, func(s catalog.Superseded) { cands = append(cands, s) })
	if err != nil {
		return due{}, false, err
	}
	for _, s := range cands {
		d.mu.Lock()
		busy := d.busy(jobID{t.Name, s.Key}, now) || d.readFrom(t, s.Key)
		d.mu.Unlock()
		if busy {
			continue
		}
		rec, err := d.cfg.Catalog.Get(t.Name, s.Key)
		if errors.Is(err, segment.ErrNotFound) {
			if err := d.cfg.Catalog.DropSuperseded(s); err != nil {
				return due{}, false, err
			}
			continue
		}
		if err != nil {
			return due{}, false, err
		}
		return due{kind: jobExpire, tier: t, key: s.Key, rec: rec, mtime: rec.SegmentModTime, why: "superseded"}, true, nil
	}
	return due{}, false, nil
}

// walkSuperseded calls fn for the superseded entries of t whose retention has passed
// (none while superseded_retain_for is never).
func (d *Daemon) walkSuperseded(t *tierState, now time.Time, limit int, fn func(catalog.Superseded)) error {
	if t.SupersededRetainFor < 0 {
		return nil
	}
	return d.cfg.Catalog.WalkSuperseded(t.Name, now.Add(-t.SupersededRetainFor), limit, func(s catalog.Superseded) int {
		fn(s)
		return catalog.WalkNext
	})
}
