package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/tierd/tierd/segment"
)

// ScanReport is a dry run: what is sealed, what is not and why, what was skipped, and
// what would move to each tier now.
type ScanReport struct {
	Sources []SourceReport `json:"sources"`
	Tiers   []TierReport   `json:"tiers"`
}

// SourceReport is one source's scan.
type SourceReport struct {
	Name     string            `json:"name"`
	Root     string            `json:"path"`
	Error    string            `json:"error,omitempty"`
	Sealed   []segment.Segment `json:"sealed"`
	Unsealed []segment.Pending `json:"unsealed"`
	Skipped  []segment.Skipped `json:"skipped"`
}

// TierReport is what the policy of one tier would do with the sealed segments.
type TierReport struct {
	Name string `json:"name"`
	// Move lists the segments due now and not on the tier.
	Move []string `json:"move"`
	// Later lists sealed segments not due yet, with when they become due.
	Later []DueLater `json:"later"`
	// Present counts sealed segments already on the tier.
	Present int  `json:"present"`
	Paused  bool `json:"paused"`
}

// DueLater is a segment that offload_after holds back.
type DueLater struct {
	Path string    `json:"path"`
	Due  time.Time `json:"due"`
}

// Scan is a dry run: it scans twice (as sealing needs) and reports what each tier's policy
// would do, changing nothing.
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
	d.checkTiers()
	for _, t := range d.tiers {
		tr := TierReport{Name: t.Name, Paused: t.isPaused()}
		for _, seg := range sealed {
			key, err := d.segmentKey(seg)
			if err != nil {
				continue
			}
			if _, err := d.cfg.Catalog.Get(t.Name, key); err == nil {
				tr.Present++
				continue
			} else if !errors.Is(err, segment.ErrNotFound) {
				return rep, err
			}
			if dueAt := seg.ModTime.Add(t.OffloadAfter); now.Before(dueAt) {
				tr.Later = append(tr.Later, DueLater{Path: seg.Path, Due: dueAt})
				continue
			}
			tr.Move = append(tr.Move, seg.Path)
		}
		rep.Tiers = append(rep.Tiers, tr)
	}
	return rep, nil
}
