package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/internal/throttle"
	"github.com/tierd/tierd/localfile"
	"github.com/tierd/tierd/segment"
)

// Scrub configures the daemon's periodic scrub (off when Every is 0).
type Scrub struct {
	// Every is the time between the starts of two scrub passes; 0 = no scrub.
	Every time.Duration
	// Rate caps the bytes a pass reads back from the tiers per second (0 = unlimited).
	Rate int64
}

// ScrubReport counts what one scrub pass found and did.
type ScrubReport struct {
	Checked, Unreadable, MarkersRewritten, Repaired, NoGoodCopy int
}

// scrubLoop runs a scrub pass every Scrub.Every until ctx ends.
func (d *Daemon) scrubLoop(ctx context.Context) {
	if d.cfg.Scrub.Every <= 0 {
		return
	}
	lim := throttle.NewRateLimiter(d.cfg.Scrub.Rate)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.cfg.Scrub.Every):
		}
		start := time.Now()
		rep, err := d.ScrubPass(ctx, lim)
		if ctx.Err() != nil {
			return
		}
		log := d.log.Info
		if err != nil || rep.NoGoodCopy > 0 {
			log = d.log.Error
		}
		log("scrub pass done", zap.Int("checked", rep.Checked), zap.Int("unreadable", rep.Unreadable), zap.Int("markers_rewritten", rep.MarkersRewritten),
			zap.Int("repaired", rep.Repaired), zap.Int("no_good_copy", rep.NoGoodCopy), zap.Duration("took", time.Since(start)), zap.Error(err))
	}
}

// ScrubPass checks every catalog record against its tier: the object is read back (at
// most lim's rate) and must have the recorded size and CRC-32C, and its marker must be
// there and equal to the record (a missing or different marker is rewritten). An object
// whose bytes differ, or that is missing, is repaired when a good copy is left (the local
// file with the bytes the record was made from, or another tier's copy that matches): the
// bad object, its marker and its record are removed and the segment is offloaded again
// from the nearest holder. With no good copy left the record is kept and the scrub says
// so loudly (log, tierd_scrub_no_good_copy_total). Objects of a tier whose lease is not
// ours, or that a job works on, are left for the next pass; an object the store does not
// let it read is counted as unreadable, not repaired.
func (d *Daemon) ScrubPass(ctx context.Context, lim *throttle.RateLimiter) (ScrubReport, error) {
	var rep ScrubReport
	err := d.cfg.Catalog.WalkRecords("", func(rec catalog.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := d.tier(rec.Tier)
		if t == nil || t.fenced(d.cfg.Now()) {
			return nil
		}
		d.mu.Lock()
		_, busy := d.running[jobID{rec.Tier, rec.Key}]
		d.mu.Unlock()
		if busy {
			return nil
		}
		return d.scrubOne(ctx, t, rec, lim, &rep)
	})
	if rep.Repaired > 0 {
		// The removed copies are wanted again: rebuild the due index (as reconcile does).
		err = errors.Join(err, d.cfg.Catalog.ResetDue(), d.indexTiers())
		d.wakeUp()
	}
	return rep, err
}

func (d *Daemon) scrubOne(ctx context.Context, t *tierState, rec catalog.Record, lim *throttle.RateLimiter, rep *ScrubReport) error {
	log := d.log.With(zap.String("tier", rec.Tier), zap.Stringer("key", rec.Key))
	bad, err := d.readBack(ctx, t, rec, lim)
	if err != nil {
		rep.Unreadable++
		d.m.scrub.WithLabelValues(rec.Tier, "unreadable").Inc()
		log.Warn("scrub: cannot read the object now; next pass", zap.Error(err))
		return nil
	}
	rep.Checked++
	d.m.scrub.WithLabelValues(rec.Tier, "checked").Inc()
	if bad != "" {
		from := d.goodCopy(ctx, rec)
		if from == "" {
			rep.NoGoodCopy++
			d.m.scrub.WithLabelValues(rec.Tier, "no_good_copy").Inc()
			log.Error("scrub: NO GOOD COPY left: the tier's object does not match its record and neither the local file nor another tier has the recorded bytes; record kept",
				zap.String("problem", bad), zap.String("source", rec.Source), zap.String("rel", rec.Rel))
			return nil
		}
		if err := d.deleteObject(ctx, t, rec.Key); err != nil {
			return fmt.Errorf("scrub: remove bad copy %s on %s: %w", rec.Key, rec.Tier, err)
		}
		rep.Repaired++
		d.m.scrub.WithLabelValues(rec.Tier, "repaired").Inc()
		log.Error("scrub: the tier's object does not match its record: removed, to be offloaded again", zap.String("problem", bad), zap.String("from", from))
		return nil
	}
	why, err := catalog.CheckMarker(ctx, d.cfg.Node, t.Backend, rec)
	if err != nil || why == "" {
		return nil // an unreadable marker is looked at again next pass
	}
	if err := d.cfg.Catalog.WriteMarker(ctx, t.Backend, rec); err != nil {
		log.Warn("scrub: rewrite marker", zap.Error(err))
		return nil
	}
	rep.MarkersRewritten++
	d.m.scrub.WithLabelValues(rec.Tier, "marker_rewritten").Inc()
	log.Warn("scrub: the object's marker was "+why+": rewritten from the record", zap.String("problem", why))
	return nil
}

// readBack checks rec's object on t: it returns what is wrong with it ("" if nothing), or
// an error if the store did not let it read.
func (d *Daemon) readBack(ctx context.Context, t *tierState, rec catalog.Record, lim *throttle.RateLimiter) (string, error) {
	info, err := t.Backend.Stat(ctx, rec.Key)
	switch {
	case errors.Is(err, segment.ErrNotFound):
		return "missing", nil
	case err != nil:
		return "", err
	case info.Size != rec.Size || info.CRC32C != rec.CRC32C:
		return fmt.Sprintf("size %d and CRC-32C %08x, recorded %d and %08x", info.Size, info.CRC32C, rec.Size, rec.CRC32C), nil
	}
	r, err := t.Backend.Open(ctx, rec.Key)
	if err != nil {
		return "", err
	}
	defer r.Close()
	crc, err := segment.Checksum(ctx, pacedReader{ctx: ctx, r: r, p: lim}, rec.Size, d.cfg.Pool)
	if err != nil {
		return "", err
	}
	if crc != rec.CRC32C {
		return fmt.Sprintf("bytes read back have CRC-32C %08x, recorded %08x", crc, rec.CRC32C), nil
	}
	return "", nil
}

// goodCopy names a good copy of rec's segment: the local file with the size and CRC-32C
// rec was made from, or another tier's record of the same key from the same local bytes
// whose object matches it (by Stat). "" when there is none.
func (d *Daemon) goodCopy(ctx context.Context, rec catalog.Record) string {
	if src := d.sources[rec.Source]; src != nil {
		if path, err := segment.LocalPath(src.Root, rec.Rel); err == nil {
			if r, err := localfile.Open(ctx, path, localfile.ReadOptions{Direct: src.ReadDirect}); err == nil {
				crc, err := segment.Checksum(ctx, d.paced(ctx, r), r.Size(), nil)
				ok := err == nil && r.Size() == rec.LocalSize && crc == rec.LocalCRC32C
				r.Close()
				if ok {
					return "local file " + path
				}
			}
		}
	}
	for _, t := range d.tiers {
		other, err := d.cfg.Catalog.Get(t.Name, rec.Key)
		if t.Name == rec.Tier || err != nil || other.LocalSize != rec.LocalSize || other.LocalCRC32C != rec.LocalCRC32C {
			continue
		}
		if info, err := t.Backend.Stat(ctx, rec.Key); err == nil && info.Size == other.Size && info.CRC32C == other.CRC32C {
			return "tier " + t.Name
		}
	}
	return ""
}
