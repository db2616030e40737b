package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/source"
)

// scanBatchFiles is how many files' changes a scan records per catalog transaction: one
// transaction per few thousand files, never one per file, and a bounded batch in memory.
const scanBatchFiles = 4096

// scanSink receives what a scan finds, for the dry-run report; nil fields are not called.
type scanSink struct {
	pending func(source.Pending)
	skipped func(source string, sk source.Skipped)
}

// scanCounts is what one source's scan found.
type scanCounts struct {
	sealed, pending, skipped int
}

// scanSource scans one source into the catalog's local state (catalog.LocalFile): closed
// files are remembered with their size and mtime; a closed file unchanged since the
// previous scan and older than seal_grace is sealed (docs/DESIGN.md invariant 1), which makes it
// due on the tiers. Nothing about a file is kept in memory past its sequence.
//
// A sequence whose directory has not changed since its last listing (same mtime, listed
// long enough after that mtime to trust it) and that has no closed file still settling is
// not listed again: its files cannot have become closed. Every fullRescanEvery-th scan
// (and every scan with full set) lists everything, the safety net for a file rewritten
// in place.
func (d *Daemon) scanSource(ctx context.Context, s *sourceState, now time.Time, full bool, sink scanSink) (scanCounts, error) {
	w, ok := s.Layout.(source.Walker)
	if !ok {
		return d.scanWhole(ctx, s, now, sink)
	}
	root, err := filepath.Abs(s.Root)
	if err != nil {
		return scanCounts{}, err
	}
	var n scanCounts
	var names []string // the sequences listed: forgotten ones are dropped after the walk
	b := scanBatch{cat: d.cfg.Catalog}
	skipped, err := w.Sequences(ctx, root, func(sd source.SeqDir) error {
		names = append(names, sd.Name)
		st, known, err := d.cfg.Catalog.Sequence(s.Name, sd.Name)
		if err != nil {
			return err
		}
		if !full && known && !sd.Volatile && st.Settling == 0 && st.DirModTime.Equal(sd.ModTime) && st.ListedAt.Sub(sd.ModTime) > dirMtimeTrust {
			n.sealed += st.Sealed
			n.pending += st.Open
			return nil
		}
		seq, sk, err := w.ScanSequence(ctx, root, sd)
		if err != nil {
			return err
		}
		n.skipped += len(sk)
		d.noteSkipped(s, sk)
		if sink.skipped != nil {
			for _, x := range sk {
				sink.skipped(s.Name, x)
			}
		}
		up, sealed, err := d.observe(s, seq, now, sink)
		if err != nil {
			return err
		}
		up.Seq, up.State.DirModTime = sd.Name, sd.ModTime
		n.sealed += sealed
		n.pending += len(seq.Files) - sealed
		return b.add(up)
	})
	if err != nil {
		return n, err
	}
	n.skipped += len(skipped)
	d.noteSkipped(s, skipped)
	if sink.skipped != nil {
		for _, x := range skipped {
			sink.skipped(s.Name, x)
		}
	}
	if err := b.flush(); err != nil {
		return n, err
	}
	slices.Sort(names)
	return n, d.dropGone(s, names)
}

// dirMtimeTrust is how long after a directory's mtime its listing must have been made
// for an unchanged mtime to prove nothing changed since: a file created within the same
// timestamp tick as the listing would not move the mtime.
const dirMtimeTrust = time.Second

// fullRescanEvery is how often (in scans) the daemon lists every sequence directory,
// changed or not.
const fullRescanEvery = 10

// dropGone forgets the sequences of s that the last walk did not list (names, sorted).
func (d *Daemon) dropGone(s *sourceState, names []string) error {
	return d.cfg.Catalog.WalkSequences(s.Name, func(seq string, _ catalog.SeqState) error {
		if _, found := slices.BinarySearch(names, seq); found {
			return nil
		}
		return d.cfg.Catalog.DropSequence(s.Name, seq)
	})
}

// scanWhole scans a source whose layout is not a Walker: one whole Scan.
func (d *Daemon) scanWhole(ctx context.Context, s *sourceState, now time.Time, sink scanSink) (scanCounts, error) {
	var n scanCounts
	res, err := s.Layout.Scan(ctx, s.Root)
	if err != nil {
		return n, err
	}
	n.skipped = len(res.Skipped)
	d.noteSkipped(s, res.Skipped)
	if sink.skipped != nil {
		for _, sk := range res.Skipped {
			sink.skipped(s.Name, sk)
		}
	}
	b := scanBatch{cat: d.cfg.Catalog}
	names := make([]string, 0, len(res.Sequences))
	for _, seq := range res.Sequences {
		names = append(names, seq.Name)
		up, sealed, err := d.observe(s, seq, now, sink)
		if err != nil {
			return n, err
		}
		n.sealed += sealed
		n.pending += len(seq.Files) - sealed
		if err := b.add(up); err != nil {
			return n, err
		}
	}
	if err := b.flush(); err != nil {
		return n, err
	}
	slices.Sort(names)
	return n, d.dropGone(s, names)
}

// scanBatch gathers sequence updates into transactions of about scanBatchFiles files.
type scanBatch struct {
	cat   *catalog.Catalog
	ups   []catalog.SeqUpdate
	files int
}

func (b *scanBatch) add(u catalog.SeqUpdate) error {
	b.ups = append(b.ups, u)
	b.files += len(u.Put) + len(u.Drop) + 1
	if b.files >= scanBatchFiles {
		return b.flush()
	}
	return nil
}

func (b *scanBatch) flush() error {
	if len(b.ups) == 0 {
		return nil
	}
	err := b.cat.UpdateSequences(b.ups)
	b.ups, b.files = b.ups[:0], 0
	return err
}

// observe compares one listed sequence with what the catalog remembers of it and returns
// the update to record and how many of its files are sealed.
func (d *Daemon) observe(s *sourceState, seq source.Sequence, now time.Time, sink scanSink) (catalog.SeqUpdate, int, error) {
	prev, err := d.cfg.Catalog.LocalFiles(s.Name, seq.Name)
	if err != nil {
		return catalog.SeqUpdate{}, 0, err
	}
	known := make(map[string]catalog.LocalFile, len(prev))
	for _, f := range prev {
		known[f.Rel] = f
	}
	// ListedAt is the wall clock, not the daemon's (tests move that): it is compared with
	// the directory's mtime.
	up := catalog.SeqUpdate{Source: s.Name, Seq: seq.Name, State: catalog.SeqState{ListedAt: time.Now()}}
	sealed := 0
	for _, c := range seq.Files {
		p, had := known[c.Rel]
		delete(known, c.Rel)
		if !c.Closed {
			up.State.Open++
			if had {
				up.Drop = append(up.Drop, p)
			}
			if sink.pending != nil {
				why := c.Why
				if why == "" {
					why = "not closed"
				}
				sink.pending(source.Pending{Segment: c.Segment, Why: why})
			}
			continue
		}
		why := sealWhy(c, p, had, now, s.SealGrace)
		f := catalog.LocalFile{Source: s.Name, Rel: c.Rel, Kind: string(c.Kind), Size: c.Size, ModTime: c.ModTime, Sealed: why == ""}
		if !had || p.Size != f.Size || !p.ModTime.Equal(f.ModTime) || p.Sealed != f.Sealed {
			up.Put = append(up.Put, f)
		}
		if f.Sealed {
			sealed++
			up.State.Sealed++
			continue
		}
		up.State.Settling++
		if sink.pending != nil {
			sink.pending(source.Pending{Segment: c.Segment, Why: why})
		}
	}
	for _, f := range known {
		up.Drop = append(up.Drop, f) // no longer listed: deleted by the broker
	}
	return up, sealed, nil
}

// sealWhy says why the closed candidate c is not sealed, or "" if it is: it must have the
// size and mtime the previous scan saw (prev, if had) and be at least grace old.
func sealWhy(c source.Candidate, prev catalog.LocalFile, had bool, now time.Time, grace time.Duration) string {
	switch age := now.Sub(c.ModTime); {
	case age < 0:
		return fmt.Sprintf("mtime %s is in the future (clock skew?)", c.ModTime.Format(time.RFC3339Nano))
	case !had:
		return "first seen in this scan: sealed once unchanged at the next scan"
	case prev.Size != c.Size:
		return fmt.Sprintf("size changed since the last scan (%d -> %d bytes)", prev.Size, c.Size)
	case !prev.ModTime.Equal(c.ModTime):
		return fmt.Sprintf("modified since the last scan (mtime %s -> %s)",
			prev.ModTime.Format(time.RFC3339Nano), c.ModTime.Format(time.RFC3339Nano))
	case age < grace:
		return fmt.Sprintf("modified %v ago, less than seal_grace %v", age.Truncate(time.Millisecond), grace)
	}
	return ""
}

// localSegment is the sealed local file f of source s as a Segment.
func localSegment(s *sourceState, f catalog.LocalFile) (segment.Segment, error) {
	kind, err := segment.ParseKind(f.Kind)
	if err != nil {
		return segment.Segment{}, err
	}
	path, err := segment.LocalPath(s.Root, f.Rel)
	if err != nil {
		return segment.Segment{}, err
	}
	return segment.Segment{
		Source: s.Name, Kind: kind, Path: path, Rel: f.Rel, Seq: filepath.ToSlash(filepath.Dir(f.Rel)),
		Size: f.Size, ModTime: f.ModTime,
	}, nil
}

// scan scans every source into the catalog and publishes the lag of every tier.
func (d *Daemon) scan(ctx context.Context) {
	d.scans++
	d.scanWith(ctx, d.scans%fullRescanEvery == 1, scanSink{})
}

// scanWith scans every source (every sequence directory if full), telling sink what it
// finds.
func (d *Daemon) scanWith(ctx context.Context, full bool, sink scanSink) {
	start := time.Now()
	now := d.cfg.Now()
	for _, name := range sortedKeys(d.sources) {
		s := d.sources[name]
		n, err := d.scanSource(ctx, s, now, full, sink)
		d.noteScan(s, now, n, err)
	}
	d.noteLag(now, true)
	d.m.scanSeconds.Observe(time.Since(start).Seconds())
}

// noteScan keeps what the scan of s at now found, for status and metrics.
func (d *Daemon) noteScan(s *sourceState, now time.Time, n scanCounts, err error) {
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			d.log.Error("scan source", zap.String("source", s.Name), zap.String("path", s.Root), zap.Error(err))
		}
		d.mu.Lock()
		s.scanErr = err
		d.mu.Unlock()
		if !errors.Is(err, context.Canceled) {
			d.m.scanErrors.WithLabelValues(s.Name).Inc()
			d.m.scanFailing.WithLabelValues(s.Name).Set(1)
		}
		return
	}
	d.m.scanFailing.WithLabelValues(s.Name).Set(0)
	d.mu.Lock()
	s.scanErr, s.lastScan, s.sealed, s.pending, s.skipped = nil, now, n.sealed, n.pending, n.skipped
	d.mu.Unlock()
	d.m.sealed.WithLabelValues(s.Name).Set(float64(n.sealed))
	d.m.skippedFiles.WithLabelValues(s.Name).Set(float64(n.skipped))
}

// noteLag keeps each tier's lag: how many copies are due and how old the oldest is (the
// metrics read it at scrape time, so the age moves whatever the tier's state).
// Counting walks the due entries, so it is done once per scan (count); between scans the
// oldest is looked up (O(log n)) and the count goes down as copies are recorded.
func (d *Daemon) noteLag(now time.Time, count bool) {
	for _, t := range d.tiers {
		n, oldest := 0, time.Time{}
		from, to := d.dueWindow(t, now)
		limit := 1
		if count {
			limit = 0
		}
		err := d.cfg.Catalog.WalkDue(t.Name, from, to, limit, func(e catalog.Due) int {
			if oldest.IsZero() {
				oldest = e.ModTime
			}
			n++
			return catalog.WalkNext
		})
		if err != nil {
			d.log.Error("count due segments", zap.String("tier", t.Name), zap.Error(err))
			continue
		}
		t.mu.Lock()
		if count || oldest.IsZero() {
			t.due = n
		}
		t.oldestDue = oldest
		t.mu.Unlock()
	}
}
