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

// ScanOutput receives a dry run's findings as they are made, so that a report over a
// million files is never held whole (docs/DESIGN.md invariant 9). Calls come in this order:
// for each source, BeginSource, then Unsealed and Skipped as the scan finds them, then
// Sealed for each sealed file, then Changed for each sealed file the broker rewrote after
// it was offloaded, then EndSource; for each tier, BeginTier, Move, Later,
// Expire, EndTier; then DeleteLocal. An error returned stops the report.
type ScanOutput interface {
	BeginSource(name, root string) error
	Unsealed(source.Pending) error
	Skipped(source.Skipped) error
	Sealed(segment.Segment) error
	Changed(Changed) error
	EndSource(scanErr string) error
	BeginTier(name string, paused bool, present int) error
	Move(string) error
	Later(DueLater) error
	Expire(string) error
	EndTier() error
	DeleteLocal(string) error
}

// Scan is a dry run that returns the whole report (ScanTo without holding it is what the
// CLI uses).
func (d *Daemon) Scan(ctx context.Context) (ScanReport, error) {
	var b reportBuilder
	err := d.ScanTo(ctx, &b)
	return b.rep, err
}

// ScanTo is a dry run: it scans twice (as sealing needs) and reports to out what is
// sealed, what is not and why, and what the policy would do now. It records what it saw
// of the local files in the catalog (as a scan of the daemon does) and changes nothing on
// the tiers or in the broker's directory. The second scan lists every sequence.
func (d *Daemon) ScanTo(ctx context.Context, out ScanOutput) error {
	d.scan(ctx)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d.onceSettle()):
	}
	now := d.cfg.Now()
	var outErr error
	keep := func(err error) {
		if outErr == nil {
			outErr = err
		}
	}
	for _, name := range sortedKeys(d.sources) {
		s := d.sources[name]
		if err := out.BeginSource(s.Name, s.Root); err != nil {
			return err
		}
		n, err := d.scanSource(ctx, s, now, true, scanSink{
			pending: func(p source.Pending) { keep(out.Unsealed(p)) },
			skipped: func(_ string, sk source.Skipped) { keep(out.Skipped(sk)) },
		})
		if outErr != nil {
			return outErr
		}
		d.noteScan(s, now, n, err)
		scanErr := ""
		if err != nil {
			scanErr = err.Error()
		}
		// Changed files are held until the sealed ones are reported: they are the few the
		// broker rewrote since they were offloaded.
		var changed []Changed
		err = d.cfg.Catalog.WalkLocal(s.Name, func(f catalog.LocalFile) error {
			if !f.Sealed {
				return nil
			}
			seg, err := localSegment(s, f)
			if err != nil {
				return nil
			}
			if c, ok, err := d.changed(s, f); err != nil {
				return err
			} else if ok {
				changed = append(changed, c)
			}
			return out.Sealed(seg)
		})
		if err != nil {
			return err
		}
		for _, c := range changed {
			if err := out.Changed(c); err != nil {
				return err
			}
		}
		if err := out.EndSource(scanErr); err != nil {
			return err
		}
	}
	d.checkTiers()
	for _, t := range d.tiers {
		if err := d.tierReport(t, now, out); err != nil {
			return err
		}
	}
	return d.walkDeletable(now, func(j due) error { return out.DeleteLocal(j.seg.Path) })
}

// reportBuilder is a ScanOutput that builds a ScanReport.
type reportBuilder struct {
	rep ScanReport
}

func (b *reportBuilder) src() *SourceReport { return &b.rep.Sources[len(b.rep.Sources)-1] }
func (b *reportBuilder) tier() *TierReport  { return &b.rep.Tiers[len(b.rep.Tiers)-1] }

func (b *reportBuilder) BeginSource(name, root string) error {
	b.rep.Sources = append(b.rep.Sources, SourceReport{Name: name, Root: root, Sealed: []segment.Segment{}, Unsealed: []source.Pending{}, Skipped: []source.Skipped{}, Changed: []Changed{}})
	return nil
}
func (b *reportBuilder) Unsealed(p source.Pending) error {
	b.src().Unsealed = append(b.src().Unsealed, p)
	return nil
}
func (b *reportBuilder) Skipped(sk source.Skipped) error {
	b.src().Skipped = append(b.src().Skipped, sk)
	return nil
}
func (b *reportBuilder) Sealed(s segment.Segment) error {
	b.src().Sealed = append(b.src().Sealed, s)
	return nil
}
func (b *reportBuilder) Changed(c Changed) error {
	b.src().Changed = append(b.src().Changed, c)
	return nil
}
func (b *reportBuilder) EndSource(scanErr string) error {
	b.src().Error = scanErr
	return nil
}
func (b *reportBuilder) BeginTier(name string, paused bool, present int) error {
	b.rep.Tiers = append(b.rep.Tiers, TierReport{Name: name, Paused: paused, Present: present})
	return nil
}
func (b *reportBuilder) Move(m string) error { b.tier().Move = append(b.tier().Move, m); return nil }
func (b *reportBuilder) Later(l DueLater) error {
	b.tier().Later = append(b.tier().Later, l)
	return nil
}
func (b *reportBuilder) Expire(e string) error {
	b.tier().Expire = append(b.tier().Expire, e)
	return nil
}
func (b *reportBuilder) EndTier() error { return nil }
func (b *reportBuilder) DeleteLocal(p string) error {
	b.rep.DeleteLocal = append(b.rep.DeleteLocal, p)
	return nil
}

// tierReport reports what the policy of t would do now, walking the indexes a page at a
// time.
func (d *Daemon) tierReport(t *tierState, now time.Time, out ScanOutput) error {
	st, err := d.cfg.Catalog.Stats(t.Name)
	if err != nil {
		return err
	}
	if err := out.BeginTier(t.Name, t.isPaused(), int(st.Records)); err != nil {
		return err
	}
	from, to := d.dueWindow(t, now)
	err = d.pageDue(t, from, to, func(e catalog.Due) error {
		key, err := d.copyKey(e)
		if err != nil {
			return nil
		}
		j, ok, _, err := d.makeCopy(t, e, key)
		switch {
		case err != nil:
			return err
		case !ok:
			return nil
		case j.seg != nil:
			return out.Move(j.seg.Path)
		}
		return out.Move(j.from.Name + ":" + string(j.key))
	})
	if err != nil {
		return err
	}
	err = d.pageDue(t, to.Add(time.Nanosecond), farFuture(now), func(e catalog.Due) error {
		if s := d.sources[e.Source]; s != nil {
			if path, err := segment.LocalPath(s.Root, e.Rel); err == nil {
				return out.Later(DueLater{Path: path, Due: e.ModTime.Add(t.OffloadAfter)})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := d.walkExpirable(t, now, func(j due) error { return out.Expire(string(j.key) + " (" + j.why + ")") }); err != nil {
		return err
	}
	return out.EndTier()
}

// pageDue calls fn for the due entries of t with an mtime in [from, to], a page at a time
// (no read transaction is held while fn runs).
func (d *Daemon) pageDue(t *tierState, from, to time.Time, fn func(catalog.Due) error) error {
	skip := 0 // entries of mtime from already seen (a page may end inside a run of equal mtimes)
	for {
		var page []catalog.Due
		n := 0
		err := d.cfg.Catalog.WalkDue(t.Name, from, to, reportPage+skip, func(e catalog.Due) int {
			if n++; n > skip {
				page = append(page, e)
			}
			return catalog.WalkNext
		})
		if err != nil {
			return err
		}
		for _, e := range page {
			if err := fn(e); err != nil {
				return err
			}
		}
		if n < reportPage+skip || len(page) == 0 {
			return nil
		}
		last := page[len(page)-1].ModTime
		same := 0
		for i := len(page) - 1; i >= 0 && page[i].ModTime.Equal(last); i-- {
			same++
		}
		if last.Equal(from) {
			skip += same
		} else {
			from, skip = last, same
		}
	}
}

// reportPage is how many index entries a report reads per transaction.
const reportPage = 4096

// walkExpirable calls fn for every expiry the policy of t wants now (dry run).
func (d *Daemon) walkExpirable(t *tierState, now time.Time, fn func(due) error) error {
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
	var sup []due // superseded versions due to expire: few (files the broker rewrote)
	err := d.cfg.Catalog.WalkAged(t.Name, farFuture(now), 0, func(a catalog.Aged) int { ages = append(ages, a); return catalog.WalkNext })
	if err != nil {
		return err
	}
	err = d.walkSuperseded(t, now, 0, func(s catalog.Superseded) {
		if rec, err := d.cfg.Catalog.Get(t.Name, s.Key); err == nil && !seen[s.Key] {
			seen[s.Key] = true
			held -= rec.Size
			sup = append(sup, due{kind: jobExpire, tier: t, key: s.Key, rec: rec, mtime: rec.SegmentModTime, why: "superseded"})
		}
	})
	if err != nil {
		return err
	}
	for _, j := range sup {
		if err := fn(j); err != nil {
			return err
		}
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
				if err := fn(due{kind: jobExpire, tier: t, key: a.Key, rec: rec, mtime: a.ModTime, why: pass}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// walkDeletable calls fn for every local file local.delete_after would delete now (dry run).
func (d *Daemon) walkDeletable(now time.Time, fn func(due) error) error {
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
		if !ok || seen[j.key] {
			continue
		}
		seen[j.key] = true
		for _, m := range j.group {
			if err := fn(due{kind: jobDeleteLocal, key: m.key, seg: m.seg, why: j.why}); err != nil {
				return err
			}
		}
	}
	return nil
}
