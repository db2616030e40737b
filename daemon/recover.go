package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/compactor"
	"github.com/tierd/tierd/localfile"
	"github.com/tierd/tierd/segment"
)

// recover reads what a crash left behind: every journaled intent is to be finished (the
// object was committed and matches the local file: its marker and catalog record are
// written) or rolled back (the object and marker are deleted, an incomplete upload is
// aborted), and after a crash (abort marker found) every tier is to be reconciled with
// the catalog. Only a catalog that cannot be read fails it: what needs a tier is left
// pending (settlePending does it, now and again until it is done), so that a tier that
// is down or fenced at start delays nothing but its own recovery.
func (d *Daemon) recover(crashed bool) error {
	intents, err := d.cfg.Catalog.Intents()
	if err != nil {
		return fmt.Errorf("read the journal: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, in := range intents {
		d.unsettled[in.ID] = in
	}
	if crashed {
		for _, t := range d.tiers {
			d.unreconciled[t.Name] = true
		}
	}
	return nil
}

// settlePending settles the journaled intents of the previous run and reconciles the
// tiers a crash left unreconciled, each as far as its tier allows now; what fails (a
// store that does not answer) or must wait (a tier whose lease is not ours) stays
// pending. It returns how many items are still pending.
func (d *Daemon) settlePending(ctx context.Context) int {
	now := d.cfg.Now()
	d.mu.Lock()
	intents := make([]catalog.Intent, 0, len(d.unsettled))
	for _, in := range d.unsettled {
		intents = append(intents, in)
	}
	d.mu.Unlock()
	slices.SortFunc(intents, func(a, b catalog.Intent) int { return cmp.Compare(a.ID, b.ID) })
	for _, in := range intents {
		if ctx.Err() != nil {
			break
		}
		if t := d.tier(in.Tier); t != nil && t.fenced(now) {
			continue // not ours to touch now
		}
		err := d.settle(ctx, in)
		d.mu.Lock()
		if err == nil {
			delete(d.unsettled, in.ID)
		}
		d.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			d.log.Warn("cannot settle an interrupted job now; retrying later (its segment waits)", zap.Uint64("intent", in.ID),
				zap.String("tier", in.Tier), zap.Stringer("key", in.Key), zap.Error(err))
		}
	}
	for _, t := range d.tiers {
		d.mu.Lock()
		pending := d.unreconciled[t.Name]
		d.mu.Unlock()
		if !pending || t.fenced(now) || ctx.Err() != nil {
			continue
		}
		if _, err := d.reconcileTier(ctx, t, &ReconcileReport{}); err != nil {
			if ctx.Err() == nil {
				d.log.Warn("cannot reconcile the tier with the catalog now (after a crash); retrying later", zap.String("tier", t.Name), zap.Error(err))
			}
			continue
		}
		d.log.Info("tier reconciled with the catalog after a crash", zap.String("tier", t.Name))
		d.mu.Lock()
		delete(d.unreconciled, t.Name)
		d.mu.Unlock()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(d.unsettled) + len(d.unreconciled)
	d.m.recoveryPending.Set(float64(n))
	return n
}

// unsettledJob reports whether an intent of the previous run on id's tier and key is
// still to be settled (d.mu held): no job may touch that object before.
func (d *Daemon) unsettledJob(id jobID) bool {
	for _, in := range d.unsettled {
		if in.Tier == id.tier && in.Key == id.key {
			return true
		}
	}
	return false
}

func (d *Daemon) tier(name string) *tierState {
	for _, t := range d.tiers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (d *Daemon) settle(ctx context.Context, in catalog.Intent) error {
	log := d.log.With(zap.Uint64("intent", in.ID), zap.String("tier", in.Tier), zap.Stringer("key", in.Key))
	t := d.tier(in.Tier)
	if t == nil {
		log.Warn("intent for a tier no longer configured: dropped")
		return d.cfg.Catalog.Finish(in.ID)
	}
	if in.Op == catalog.OpDelete {
		log.Info("interrupted expiry finished")
		if err := d.deleteObject(ctx, t, in.Key); err != nil {
			return err
		}
		return d.cfg.Catalog.Finish(in.ID)
	}
	if _, err := d.cfg.Catalog.Get(in.Tier, in.Key); err == nil {
		return d.cfg.Catalog.Finish(in.ID) // committed; only the clearing was lost
	}
	if t.AbortUpload != nil {
		if in.UploadID != "" {
			if err := t.AbortUpload(ctx, in.Key, in.UploadID); err != nil && !errors.Is(err, segment.ErrNotFound) {
				return fmt.Errorf("abort upload %s: %w", in.UploadID, err)
			}
		}
		// Whatever other upload of the key exists: one whose creation reply was lost (the
		// SDK made another, whose id was journaled), or all of them if none was journaled.
		if err := t.AbortUpload(ctx, in.Key, ""); err != nil && !errors.Is(err, segment.ErrNotFound) {
			return fmt.Errorf("abort uploads of %s: %w", in.Key, err)
		}
		// The job may have died writing the marker, which goes as a one-part multipart
		// upload when no pool buffer is free; its id is journaled nowhere.
		mk, err := catalog.MarkerKey(d.cfg.Catalog.Node(), in.Key)
		if err != nil {
			return err
		}
		if err := t.AbortUpload(ctx, mk, ""); err != nil && !errors.Is(err, segment.ErrNotFound) {
			return fmt.Errorf("abort upload of marker %s: %w", mk, err)
		}
	}
	info, err := t.Backend.Stat(ctx, in.Key)
	if errors.Is(err, segment.ErrNotFound) {
		log.Info("interrupted offload rolled back: nothing was committed")
		return d.cfg.Catalog.Finish(in.ID)
	}
	if err != nil {
		return err
	}
	rec, ok := d.matchLocal(ctx, in, info)
	if !ok {
		rec, ok = d.matchHolder(in, info)
	}
	if ok {
		if err := d.cfg.Catalog.WriteMarker(ctx, t.Backend, rec); err != nil {
			return err
		}
		log.Info("interrupted offload completed: the committed object matches the local file")
		return d.cfg.Catalog.Commit(rec, in.ID)
	}
	log.Info("interrupted offload rolled back: deleting the object it committed")
	if err := d.cfg.Catalog.DeleteMarker(ctx, t.Backend, in.Key); err != nil {
		return err
	}
	if err := t.Backend.Delete(ctx, in.Key); err != nil {
		return err
	}
	return d.cfg.Catalog.Finish(in.ID)
}

// matchLocal checks a committed raw object against the local file it was made from. An
// object of a kind that is not stored raw (a compacted IndexFile, a trimmed Kafka index)
// never matches: checking it would take as long as making it again, so settle deletes it
// and the segment is offloaded anew.
func (d *Daemon) matchLocal(ctx context.Context, in catalog.Intent, info segment.Info) (catalog.Record, bool) {
	src := d.sources[in.Source]
	_, _, _, compacted, err := segment.ParseObjectKey(in.Key)
	if src == nil || err != nil || compacted {
		return catalog.Record{}, false
	}
	if kind, err := segment.ParseKind(in.Kind); err == nil && (kind.Compactable() || compactor.Trimmable(kind)) {
		return catalog.Record{}, false
	}
	path, err := segment.LocalPath(src.Root, in.Rel)
	if err != nil {
		return catalog.Record{}, false
	}
	r, err := localfile.Open(ctx, path, localfile.ReadOptions{Direct: src.ReadDirect})
	if err != nil {
		return catalog.Record{}, false
	}
	defer r.Close()
	if r.Size() != info.Size {
		return catalog.Record{}, false
	}
	crc, err := segment.Checksum(ctx, r, r.Size(), nil)
	if err != nil || crc != info.CRC32C {
		return catalog.Record{}, false
	}
	fi, err := os.Stat(path)
	if err != nil {
		return catalog.Record{}, false
	}
	now := d.cfg.Now()
	return catalog.Record{
		Tier: in.Tier, Key: in.Key, Source: in.Source, Rel: in.Rel, Kind: in.Kind, Format: catalog.FormatRaw,
		Size: info.Size, CRC32C: crc, LocalSize: info.Size, LocalCRC32C: crc,
		SegmentModTime: fi.ModTime(), OffloadedAt: now, Verified: now,
	}, true
}

// matchHolder checks a committed object against another tier's record of the same key
// (a copy from tier to tier): same size and CRC-32C make it that record's copy.
func (d *Daemon) matchHolder(in catalog.Intent, info segment.Info) (catalog.Record, bool) {
	for _, t := range d.tiers {
		if t.Name == in.Tier {
			continue
		}
		rec, err := d.cfg.Catalog.Get(t.Name, in.Key)
		if err == nil && rec.Size == info.Size && rec.CRC32C == info.CRC32C {
			now := d.cfg.Now()
			rec.Tier, rec.OffloadedAt, rec.Verified = in.Tier, now, now
			return rec, true
		}
	}
	return catalog.Record{}, false
}

// ReconcileReport says what Reconcile found and did.
type ReconcileReport struct {
	Checked int      `json:"checked"`
	Dropped []string `json:"dropped"` // catalog records whose object was missing or wrong
}

// Reconcile checks every catalog record against its tier (size and CRC-32C by Stat):
// records whose object is missing or differs are dropped (and a wrong object deleted), so
// the segment is offloaded again. A tier that cannot be checked is reported in the error;
// the others are reconciled.
func (d *Daemon) Reconcile(ctx context.Context) (ReconcileReport, error) {
	rep := ReconcileReport{Dropped: []string{}}
	var errs []error
	for _, t := range d.tiers {
		if _, err := d.reconcileTier(ctx, t, &rep); err != nil {
			errs = append(errs, fmt.Errorf("tier %s: %w", t.Name, err))
		}
	}
	return rep, errors.Join(errs...)
}

// reconcileTier reconciles t's records into rep; it stops at the first object it cannot
// check (the store did not answer).
func (d *Daemon) reconcileTier(ctx context.Context, t *tierState, rep *ReconcileReport) (*ReconcileReport, error) {
	dropped := 0
	err := d.cfg.Catalog.WalkRecords(t.Name, func(rec catalog.Record) error {
		rep.Checked++
		info, err := t.Backend.Stat(ctx, rec.Key)
		switch {
		case errors.Is(err, segment.ErrNotFound):
			d.log.Error("catalog lists an object its tier does not have: dropping the record so it is offloaded again",
				zap.String("tier", rec.Tier), zap.Stringer("key", rec.Key))
		case err != nil:
			return fmt.Errorf("stat %s on %s: %w", rec.Key, rec.Tier, err)
		case info.Size != rec.Size || info.CRC32C != rec.CRC32C:
			d.log.Error("object differs from its catalog record: deleting it so it is offloaded again",
				zap.String("tier", rec.Tier), zap.Stringer("key", rec.Key), zap.Int64("size", info.Size), zap.Int64("want_size", rec.Size))
			if err := d.cfg.Catalog.DeleteMarker(ctx, t.Backend, rec.Key); err != nil {
				return err
			}
			if err := t.Backend.Delete(ctx, rec.Key); err != nil {
				return err
			}
		default:
			return nil
		}
		if err := d.cfg.Catalog.Delete(rec.Tier, rec.Key); err != nil {
			return err
		}
		dropped++
		rep.Dropped = append(rep.Dropped, rec.Tier+":"+string(rec.Key))
		return nil
	})
	if dropped > 0 {
		// The dropped segments are wanted again: rebuild the due index.
		if rerr := d.cfg.Catalog.ResetDue(); rerr != nil {
			return rep, errors.Join(err, rerr)
		}
		if rerr := d.indexTiers(); rerr != nil {
			return rep, errors.Join(err, rerr)
		}
	}
	if err != nil {
		return rep, err
	}
	return rep, nil
}
