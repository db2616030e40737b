package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/internal/failpoint"
	"github.com/tierd/tierd/localfile"
	"github.com/tierd/tierd/segment"
)

// copyFromTier copies an object from the tier that holds it (j.from) to j.tier, for a
// segment whose local file is gone (multi-hop). The bytes must match the holder's record
// (size and CRC-32C), and the new record carries the holder's local size and CRC.
func (d *Daemon) copyFromTier(ctx context.Context, j due) (catalog.Record, error) {
	t, src := j.tier, j.rec
	intent, err := d.cfg.Catalog.Begin(catalog.Intent{Tier: t.Name, Key: j.key, Source: src.Source, Rel: src.Rel, Kind: src.Kind, Op: catalog.OpOffload})
	if err != nil {
		return catalog.Record{}, fmt.Errorf("journal intent: %w", err)
	}
	rec, err := d.tierToTier(ctx, j, intent.ID)
	if err != nil {
		if ferr := d.cfg.Catalog.Finish(intent.ID); ferr != nil {
			d.log.Error("clear intent", zap.Uint64("intent", intent.ID), zap.Error(ferr))
		}
	}
	return rec, err
}

func (d *Daemon) tierToTier(ctx context.Context, j due, intentID uint64) (catalog.Record, error) {
	t, from, src := j.tier, j.from, j.rec
	id := jobID{t.Name, j.key}
	d.mu.Lock()
	d.intents[id] = intentID
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.intents, id)
		d.mu.Unlock()
	}()
	r, err := from.Backend.Open(ctx, j.key)
	if err != nil {
		return catalog.Record{}, fmt.Errorf("open %s on %s: %w", j.key, from.Name, err)
	}
	defer r.Close()
	if r.Size() != src.Size {
		return catalog.Record{}, fmt.Errorf("%s on %s has %d bytes, its record says %d: run tierd reconcile", j.key, from.Name, r.Size(), src.Size)
	}
	w, err := t.Backend.Create(ctx, j.key, src.Size)
	if err != nil {
		return catalog.Record{}, fmt.Errorf("create %s: %w", j.key, err)
	}
	crc, err := segment.Copy(ctx, w, r, src.Size, d.cfg.Pool)
	if err == nil && crc != src.CRC32C {
		err = fmt.Errorf("%s read from %s has CRC-32C %08x, its record says %08x: not copied", j.key, from.Name, crc, src.CRC32C)
	}
	if err == nil {
		err = w.Commit(ctx)
	}
	if err != nil {
		if aerr := w.Abort(); aerr != nil {
			d.log.Warn("abort write", zap.Stringer("key", j.key), zap.Error(aerr))
		}
		return catalog.Record{}, fmt.Errorf("copy %s from %s to %s: %w", j.key, from.Name, t.Name, err)
	}
	failpoint.Hit("daemon.tier_copy_committed")
	rec := src
	rec.Tier = t.Name
	rec.OffloadedAt = d.cfg.Now()
	rec.Verified = rec.OffloadedAt
	if err := d.verify(ctx, t, rec); err != nil {
		d.discard(t, j.key)
		return catalog.Record{}, err
	}
	if err := d.cfg.Catalog.WriteMarker(ctx, t.Backend, rec); err != nil {
		d.discard(t, j.key)
		return catalog.Record{}, err
	}
	failpoint.Hit("daemon.tier_copy_marked")
	if err := d.cfg.Catalog.Commit(rec, intentID); err != nil {
		d.discard(t, j.key)
		return catalog.Record{}, fmt.Errorf("record %s in catalog: %w", j.key, err)
	}
	return rec, nil
}

// deleteLocal deletes a sealed local segment group (a Kafka segment's files together;
// any other file alone) once every required tier holds each of its files: each tier's
// object is checked by Stat against its record, and each local file is read again and
// must have the size and CRC-32C the records were made from. Every file is checked
// before the first is deleted: nothing is deleted on any doubt about any of them. A
// Kafka .log goes last, so that an interruption leaves the .log (which the broker can
// still serve, and the next pass deletes) rather than index files without their log.
func (d *Daemon) deleteLocal(ctx context.Context, j due) (catalog.Record, error) {
	var first catalog.Record
	for i, m := range j.group {
		rec, err := d.checkLocalCopies(ctx, m)
		if err != nil {
			if len(j.group) > 1 {
				err = fmt.Errorf("not deleting any file of segment %s: %w", m.seg.Seq+"/"+strings.TrimSuffix(filepath.Base(j.seg.Rel), filepath.Ext(j.seg.Rel)), err)
			}
			return catalog.Record{}, err
		}
		if i == 0 {
			first = rec
		}
	}
	order := slices.Clone(j.group)
	slices.SortStableFunc(order, func(a, b member) int {
		return cmp.Compare(b2i(a.seg.Kind == segment.KindKafkaLog), b2i(b.seg.Kind == segment.KindKafkaLog))
	})
	dirs := map[string]bool{}
	for _, m := range order {
		if err := os.Remove(m.seg.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return catalog.Record{}, fmt.Errorf("delete %s: %w", m.seg.Path, err)
		}
		failpoint.Hit("daemon.local_deleted")
		dirs[filepath.Dir(m.seg.Path)] = true
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			return catalog.Record{}, err
		}
	}
	for _, m := range order {
		if err := d.cfg.Catalog.DropLocal(m.seg.Source, m.seg.Rel); err != nil {
			return catalog.Record{}, err
		}
	}
	return first, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkLocalCopies checks that every required tier holds a verified copy of the local
// file m and that the file is still what those copies were made from, and returns the
// first tier's record. A file the broker deleted meanwhile passes.
func (d *Daemon) checkLocalCopies(ctx context.Context, m member) (catalog.Record, error) {
	seg := m.seg
	var want catalog.Record
	for _, t := range d.requiredTiers() {
		rec, err := d.cfg.Catalog.Get(t.Name, m.key)
		if err != nil {
			return catalog.Record{}, fmt.Errorf("%w: %s is not on required tier %s: %v", errSkip, seg.Path, t.Name, err)
		}
		if err := d.verify(ctx, t, rec); err != nil {
			return catalog.Record{}, fmt.Errorf("not deleting %s: copy on %s: %w", seg.Path, t.Name, err)
		}
		if want.Key == "" {
			want = rec
		} else if rec.LocalSize != want.LocalSize || rec.LocalCRC32C != want.LocalCRC32C {
			return catalog.Record{}, fmt.Errorf("%w: not deleting %s: tiers %s and %s hold copies of different local files", errSkip, seg.Path, want.Tier, t.Name)
		}
	}
	r, err := localfile.Open(ctx, seg.Path, localfile.ReadOptions{Direct: d.sources[seg.Source].ReadDirect})
	if errors.Is(err, os.ErrNotExist) {
		return want, nil // the broker deleted it first
	}
	if err != nil {
		return catalog.Record{}, err
	}
	defer r.Close()
	if r.Size() != want.LocalSize {
		return catalog.Record{}, fmt.Errorf("%w: not deleting %s: %d bytes, the tiers' copies were made from %d", errSkip, seg.Path, r.Size(), want.LocalSize)
	}
	crc, err := segment.Checksum(ctx, d.paced(ctx, r), r.Size(), d.cfg.Pool)
	if err != nil {
		return catalog.Record{}, fmt.Errorf("not deleting %s: read it back: %w", seg.Path, err)
	}
	if crc != want.LocalCRC32C {
		return catalog.Record{}, fmt.Errorf("%w: not deleting %s: CRC-32C %08x, the tiers' copies were made from %08x (it changed in place: tierd verify reports it)", errSkip, seg.Path, crc, want.LocalCRC32C)
	}
	return want, nil
}

// expire deletes an object from a tier (retention), journaled: marker first (so a
// rebuild never finds a marker without its object), then the object, then the record.
func (d *Daemon) expire(ctx context.Context, j due) (catalog.Record, error) {
	t := j.tier
	intent, err := d.cfg.Catalog.Begin(catalog.Intent{Tier: t.Name, Key: j.key, Source: j.rec.Source, Rel: j.rec.Rel, Kind: j.rec.Kind, Op: catalog.OpDelete})
	if err != nil {
		return catalog.Record{}, fmt.Errorf("journal intent: %w", err)
	}
	if err := d.deleteObject(ctx, t, j.key); err != nil {
		return catalog.Record{}, err // the intent stays: the next start finishes the delete
	}
	return j.rec, d.cfg.Catalog.Finish(intent.ID)
}

// deleteObject removes an object, its marker and its record; every step is idempotent.
func (d *Daemon) deleteObject(ctx context.Context, t *tierState, key segment.Key) error {
	if err := d.cfg.Catalog.DeleteMarker(ctx, t.Backend, key); err != nil {
		return err
	}
	failpoint.Hit("daemon.expire_unmarked")
	if err := t.Backend.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete %s from %s: %w", key, t.Name, err)
	}
	failpoint.Hit("daemon.expire_deleted")
	return d.cfg.Catalog.Delete(t.Name, key)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
