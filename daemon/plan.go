package daemon

import (
	"context"
	"time"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/source"
)

// ScanReport is a dry run: what is sealed, what is not and why, what was skipped, and
// what each policy would do now.
type ScanReport struct {
	Sources []SourceReport `json:"sources"`
	Tiers   []TierReport   `json:"tiers"`
	// DeleteLocal lists local files local.delete_after would delete now.
	DeleteLocal []string `json:"delete_local"`
}

// SourceReport is one source's scan.
type SourceReport struct {
	Name     string            `json:"name"`
	Root     string            `json:"path"`
	Error    string            `json:"error,omitempty"`
	Sealed   []segment.Segment `json:"sealed"`
	Unsealed []source.Pending  `json:"unsealed"`
	Skipped  []source.Skipped  `json:"skipped"`
	// Changed are sealed files that differ from the newest version the tiers hold: the
	// broker rewrote them after they were offloaded (Kafka's log cleaner).
	Changed []Changed `json:"changed"`
}

// TierReport is what the policy of one tier would do.
type TierReport struct {
	Name string `json:"name"`
	// Move lists the copies due now: a local path, or "<tier>:<key>" when the local file
	// is gone and the copy comes from another tier.
	Move []string `json:"move"`
	// Later lists sealed local segments not due yet, with when they become due.
	Later []DueLater `json:"later"`
	// Expire lists objects retention would delete now, with why (superseded, retain_for,
	// max_bytes).
	Expire []string `json:"expire"`
	// Present counts segments the tier holds.
	Present int  `json:"present"`
	Paused  bool `json:"paused"`
}

// DueLater is a segment that offload_after holds back.
type DueLater struct {
	Path string    `json:"path"`
	Due  time.Time `json:"due"`
}

// Scan is a dry run: it scans twice (as sealing needs) and reports what the policy would
// do now. It records what it saw of the local files in the catalog (as a scan of the
// daemon does) and changes nothing on the tiers or in the broker's directory.
func (d *Daemon) Scan(ctx context.Context) (ScanReport, error) {
	d.scan(ctx)
	select {
	case <-ctx.Done():
		return ScanReport{}, ctx.Err()
	case <-time.After(d.onceSettle()):
	}
	var rep ScanReport
	srs := map[string]*SourceReport{}
	for _, name := range sortedKeys(d.sources) {
		s := d.sources[name]
		srs[name] = &SourceReport{Name: s.Name, Root: s.Root, Sealed: []segment.Segment{}, Unsealed: []source.Pending{}, Skipped: []source.Skipped{}, Changed: []Changed{}}
	}
	d.scanWith(ctx, true, scanSink{
		pending: func(p source.Pending) { srs[p.Source].Unsealed = append(srs[p.Source].Unsealed, p) },
		skipped: func(source string, sk source.Skipped) { srs[source].Skipped = append(srs[source].Skipped, sk) },
	})
	now := d.cfg.Now()
	for _, name := range sortedKeys(d.sources) {
		s, sr := d.sources[name], srs[name]
		if s.scanErr != nil {
			sr.Error = s.scanErr.Error()
		}
		err := d.cfg.Catalog.WalkLocal(s.Name, func(f catalog.LocalFile) error {
			if !f.Sealed {
				return nil
			}
			seg, err := localSegment(s, f)
			if err == nil {
				sr.Sealed = append(sr.Sealed, seg)
			}
			if c, ok, err := d.changed(s, f); err != nil {
				return err
			} else if ok {
				sr.Changed = append(sr.Changed, c)
			}
			return nil
		})
		if err != nil {
			return rep, err
		}
		rep.Sources = append(rep.Sources, *sr)
	}
	d.checkTiers()
	for _, t := range d.tiers {
		tr, err := d.tierReport(t, now)
		if err != nil {
			return rep, err
		}
		rep.Tiers = append(rep.Tiers, tr)
	}
	err := d.walkDeletable(now, func(j due) { rep.DeleteLocal = append(rep.DeleteLocal, j.seg.Path) })
	return rep, err
}

// tierReport is what the policy of t would do now.
func (d *Daemon) tierReport(t *tierState, now time.Time) (TierReport, error) {
	st, err := d.cfg.Catalog.Stats(t.Name)
	if err != nil {
		return TierReport{}, err
	}
	tr := TierReport{Name: t.Name, Paused: t.isPaused(), Present: int(st.Records)}
	from, to := d.dueWindow(t, now)
	var ents []catalog.Due
	collect := func(e catalog.Due) int { ents = append(ents, e); return catalog.WalkNext }
	if err := d.cfg.Catalog.WalkDue(t.Name, from, to, 0, collect); err != nil {
		return tr, err
	}
	for _, e := range ents {
		key, err := d.copyKey(e)
		if err != nil {
			continue
		}
		j, ok, _, err := d.makeCopy(t, e, key)
		switch {
		case err != nil:
			return tr, err
		case !ok:
		case j.seg != nil:
			tr.Move = append(tr.Move, j.seg.Path)
		default:
			tr.Move = append(tr.Move, j.from.Name+":"+string(j.key))
		}
	}
	ents = ents[:0]
	if err := d.cfg.Catalog.WalkDue(t.Name, to.Add(time.Nanosecond), farFuture(now), 0, collect); err != nil {
		return tr, err
	}
	for _, e := range ents {
		if s := d.sources[e.Source]; s != nil {
			if path, err := segment.LocalPath(s.Root, e.Rel); err == nil {
				tr.Later = append(tr.Later, DueLater{Path: path, Due: e.ModTime.Add(t.OffloadAfter)})
			}
		}
	}
	err = d.walkExpirable(t, now, func(j due) { tr.Expire = append(tr.Expire, string(j.key)+" ("+j.why+")") })
	return tr, err
}

// walkExpirable calls fn for every expiry the policy of t wants now (dry run).
func (d *Daemon) walkExpirable(t *tierState, now time.Time, fn func(due)) error {
	seen := map[segment.Key]bool{}
	var held int64
	if t.MaxBytes > 0 {
		st, err := d.cfg.Catalog.Stats(t.Name)
		if err != nil {
			return err
		}
		held = st.Bytes
	}
	var ages []catalog.Aged
	err := d.cfg.Catalog.WalkAged(t.Name, farFuture(now), 0, func(a catalog.Aged) int { ages = append(ages, a); return catalog.WalkNext })
	if err != nil {
		return err
	}
	err = d.walkSuperseded(t, now, 0, func(s catalog.Superseded) {
		if rec, err := d.cfg.Catalog.Get(t.Name, s.Key); err == nil && !seen[s.Key] {
			seen[s.Key] = true
			held -= rec.Size
			fn(due{kind: jobExpire, tier: t, key: s.Key, rec: rec, mtime: rec.SegmentModTime, why: "superseded"})
		}
	})
	if err != nil {
		return err
	}
	for _, pass := range []string{"retain_for", "max_bytes"} {
		for _, a := range ages {
			if seen[a.Key] {
				continue
			}
			if pass == "retain_for" && (t.RetainFor <= 0 || now.Sub(a.ModTime) < t.RetainFor) {
				continue
			}
			if pass == "max_bytes" && (t.MaxBytes <= 0 || held <= t.MaxBytes) {
				break
			}
			rec, err := d.cfg.Catalog.Get(t.Name, a.Key)
			if err != nil {
				continue
			}
			if ok, err := d.canDrop(t, rec, now); err != nil {
				return err
			} else if ok {
				seen[a.Key] = true
				held -= rec.Size
				fn(due{kind: jobExpire, tier: t, key: a.Key, rec: rec, mtime: a.ModTime, why: pass})
			}
		}
	}
	return nil
}

// walkDeletable calls fn for every local file local.delete_after would delete now (dry run).
func (d *Daemon) walkDeletable(now time.Time, fn func(due)) error {
	if !d.cfg.LocalDelete {
		return nil
	}
	var stale []catalog.Stale
	err := d.cfg.Catalog.WalkStale(now.Add(-d.cfg.LocalDeleteAfter), 0, func(e catalog.Stale) int { stale = append(stale, e); return catalog.WalkNext })
	if err != nil {
		return err
	}
	seen := map[segment.Key]bool{}
	for _, e := range stale {
		j, ok, err := d.deleteJob(e, now)
		if err != nil {
			return err
		}
		if ok && !seen[j.key] {
			seen[j.key] = true
			for _, m := range j.group {
				fn(due{kind: jobDeleteLocal, key: m.key, seg: m.seg, why: j.why})
			}
		}
	}
	return nil
}
