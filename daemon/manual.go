package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/segment"
)

// Resolve finds the segment a local path names: the file must lie in a configured
// source, be a segment its layout recognises, and be closed (the broker has moved past
// it). Sealing's stability and grace checks are not applied: this is for an operator's
// explicit choice.
func (d *Daemon) Resolve(ctx context.Context, path string) (segment.Segment, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return segment.Segment{}, err
	}
	for _, name := range sortedKeys(d.sources) {
		s := d.sources[name]
		rel, err := filepath.Rel(s.Root, abs)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			continue
		}
		res, err := s.Layout.Scan(ctx, s.Root)
		if err != nil {
			return segment.Segment{}, fmt.Errorf("scan source %s: %w", s.Name, err)
		}
		for _, sk := range res.Skipped {
			if sk.Path == abs {
				return segment.Segment{}, fmt.Errorf("%s is not a segment tierd can vouch for: %s", path, sk.Reason)
			}
		}
		for _, c := range res.Candidates() {
			if c.Path != abs {
				continue
			}
			if !c.Closed {
				return segment.Segment{}, fmt.Errorf("%s is still being written by the broker (%s)", path, c.Why)
			}
			return c.Segment, nil
		}
		return segment.Segment{}, fmt.Errorf("%s is not a segment of source %s (%s layout)", path, s.Name, s.Layout.Name())
	}
	return segment.Segment{}, fmt.Errorf("%s is not inside any configured source", path)
}

// ErrAlreadyThere is returned by Migrate for a segment the tier already holds.
var ErrAlreadyThere = errors.New("already on the tier")

// Migrate offloads one segment to one tier now, as a daemon job would (journaled,
// verified, recorded), reporting bytes read to progress (may be nil). It does not start
// or finish a run: call Begin first and End after.
func (d *Daemon) Migrate(ctx context.Context, seg segment.Segment, tier string, progress func(int64)) (catalog.Record, error) {
	t := d.tier(tier)
	if t == nil {
		return catalog.Record{}, fmt.Errorf("no tier %q", tier)
	}
	key, _, err := d.segmentKey(seg)
	if err != nil {
		return catalog.Record{}, err
	}
	if rec, err := d.cfg.Catalog.Get(tier, key); err == nil {
		return rec, ErrAlreadyThere
	}
	var rec catalog.Record
	for attempt := 1; attempt <= d.cfg.Attempts; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return rec, ctx.Err()
			case <-time.After(d.cfg.Backoff.Delay(attempt - 1)):
			}
		}
		rec, err = d.offload(ctx, seg, t, progress)
		if err == nil || errors.Is(err, errSkip) || ctx.Err() != nil {
			break
		}
	}
	if err == nil {
		t.noteSuccess(rec.Size)
	}
	return rec, err
}

// Begin starts a run for one-off commands (migrate, reconcile): abort marker, recovery of
// a crashed run's intents, cleanup of interrupted writes. End records the clean exit.
func (d *Daemon) Begin(ctx context.Context) error {
	if err := d.acquireFences(ctx); err != nil {
		return err
	}
	return d.start(ctx)
}

// End records a clean exit of a run started with Begin.
func (d *Daemon) End() error { return d.finish() }
