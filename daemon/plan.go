package daemon

import (
	"context"
	"time"

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
}

// TierReport is what the policy of one tier would do.
type TierReport struct {
	Name string `json:"name"`
	// Move lists the copies due now: a local path, or "<tier>:<key>" when the local file
	// is gone and the copy comes from another tier.
	Move []string `json:"move"`
	// Later lists sealed local segments not due yet, with when they become due.
	Later []DueLater `json:"later"`
	// Expire lists objects retention would delete now, with why (retain_for, max_bytes).
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
// do, changing nothing.
func (d *Daemon) Scan(ctx context.Context) (ScanReport, error) {
	d.scan(ctx)
	select {
	case <-ctx.Done():
		return ScanReport{}, ctx.Err()
	case <-time.After(d.onceSettle()):
	}
	now := d.cfg.Now()
	var rep ScanReport
	var sealed []segment.Segment
	for _, name := range sortedKeys(d.sources) {
		s := d.sources[name]
		res, err := s.Layout.Scan(ctx, s.Root)
		sr := SourceReport{Name: s.Name, Root: s.Root}
		if err != nil {
			sr.Error = err.Error()
		} else {
			sr.Sealed, sr.Unsealed = s.sealer.Observe(res, now)
			sr.Skipped = res.Skipped
			sealed = append(sealed, sr.Sealed...)
		}
		rep.Sources = append(rep.Sources, sr)
	}
	d.mu.Lock()
	d.sealed = sealed
	d.mu.Unlock()
	d.checkTiers()
	p, err := d.policy(now)
	if err != nil {
		return rep, err
	}
	for _, t := range d.tiers {
		tr := TierReport{Name: t.Name, Paused: t.isPaused(), Present: p.present[t.Name], Later: p.later[t.Name]}
		for _, j := range p.jobs {
			switch {
			case j.tier != t:
			case j.kind == jobCopy && j.seg != nil:
				tr.Move = append(tr.Move, j.seg.Path)
			case j.kind == jobCopy:
				tr.Move = append(tr.Move, j.from.Name+":"+string(j.key))
			case j.kind == jobExpire:
				tr.Expire = append(tr.Expire, string(j.key)+" ("+j.why+")")
			}
		}
		rep.Tiers = append(rep.Tiers, tr)
	}
	for _, j := range p.jobs {
		if j.kind == jobDeleteLocal {
			rep.DeleteLocal = append(rep.DeleteLocal, j.seg.Path)
		}
	}
	return rep, nil
}
