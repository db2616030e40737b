package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/internal/failpoint"
	"github.com/tierd/tierd/segment"
)

// Small segments (Kafka's index files, small logs, consume queues of a quiet topic) are
// copied in batches with a group commit: one journal transaction for the batch's intents,
// the objects and their markers committed through a deferred view of the tier (posix: one
// directory fsync per directory of the batch instead of two per segment), and one catalog
// transaction recording every copy of the batch. Nothing is recorded before the tier's
// Sync has made it durable, and a kill anywhere in a batch leaves journaled intents that
// the next start settles one by one (docs/DESIGN.md invariant 4).
const (
	// batchMax is how many segments one batch copies.
	batchMax = 64
	// batchSegmentMax is the largest segment copied in a batch: above it the per-segment
	// fsyncs are small next to the copy.
	batchSegmentMax = 1 << 20
)

// batchable reports whether j may go in a batch: a copy of a small local file that is
// stored as it is or trimmed (not compacted: compaction takes pool buffers of its own).
func batchable(j due) bool {
	return j.kind == jobCopy && j.seg != nil && j.from == nil && !j.seg.Kind.Compactable() && j.seg.Size <= batchSegmentMax
}

// errNotTried is the outcome of a batch member the batch did not copy because its tier
// started failing or was paused (max_used) before the member's turn: the member is
// released, not failed, and dispatched again when the tier takes jobs.
var errNotTried = errors.New("not copied: the tier stopped taking jobs during the batch")

// growBatch adds to the started job first (running already) other batchable copies due on
// its tier, each checked, marked running and counted on the tier (enter) under d.mu as
// dispatch does for one job, and returns the batch. A failing tier gets no batch: one job
// at a time probes it (tierState.probing), and every member of a batch counts as a job on
// the tier.
func (d *Daemon) growBatch(first due, now time.Time) []due {
	t := first.tier
	batch := []due{first}
	if t.isFailing() {
		return batch
	}
	from, to := d.dueWindow(t, now)
	var cands []catalog.Due
	err := d.cfg.Catalog.WalkDue(t.Name, from, to, batchMax+d.walkLimit(), func(e catalog.Due) int {
		cands = append(cands, e)
		return catalog.WalkNext
	})
	if err != nil {
		d.log.Error("plan a batch", zap.String("tier", t.Name), zap.Error(err))
		return batch
	}
	for _, e := range cands {
		if len(batch) >= batchMax || t.isFailing() {
			break
		}
		key, err := d.copyKey(e)
		if err != nil {
			continue
		}
		id := jobID{t.Name, key}
		d.mu.Lock()
		busy := d.busy(id, now)
		d.mu.Unlock()
		if busy {
			continue
		}
		j, ok, _, err := d.makeCopy(t, e, key)
		if err != nil || !ok || !batchable(j) {
			continue
		}
		d.mu.Lock()
		if !d.stopping && !d.busy(id, now) {
			if done, err := d.resultRecorded(j); err == nil && !done {
				d.running[id] = j
				t.enter(d.m)
				batch = append(batch, j)
			}
		}
		d.mu.Unlock()
	}
	return batch
}

// runBatch runs a batch of copies to one tier (dispatch and growBatch entered the tier
// once per member; each member leaves it when settled). Members the batch did not try
// (errNotTried) are released first, then the copies done are recorded, then each failed
// copy is tried on its own, as any job, unless the tier is failing and another job is on
// it: then it waits for its retry, and the tier gets one job at a time.
func (d *Daemon) runBatch(ctx context.Context, js []due) {
	t := js[0].tier
	start := time.Now()
	recs, errs := d.copyBatch(ctx, t, js)
	took := time.Since(start)
	released := 0
	for i, j := range js {
		if errors.Is(errs[i], errNotTried) {
			d.mu.Lock()
			delete(d.running, j.id())
			d.mu.Unlock()
			t.leave(d.m)
			released++
		}
	}
	if released > 0 {
		d.log.Info("batch cut short: the tier is failing or paused; its other copies wait for the tier",
			zap.String("tier", t.Name), zap.Int("batch", len(js)), zap.Int("not_copied", released))
	}
	retry := func(err error) bool {
		return err != nil && !errors.Is(err, errNotTried) && !errors.Is(err, errSkip) && ctx.Err() == nil
	}
	for _, again := range []bool{false, true} {
		for i, j := range js {
			if errors.Is(errs[i], errNotTried) || retry(errs[i]) != again {
				continue
			}
			id := j.id()
			log := d.jobLog(id, j)
			rec, err := recs[i], errs[i]
			switch {
			case err == nil:
				log.Info(doneMessage[jobCopy], zap.Int64("bytes", rec.Size), zap.Int("batch", len(js)), zap.Duration("batch_took", took))
			case again && t.isFailing() && t.othersInFlight():
				d.m.errors.WithLabelValues(id.tier).Inc()
				log.Warn("copy in a batch failed; the tier is failing with other jobs on it: retried later", zap.Error(err))
			case again:
				d.m.errors.WithLabelValues(id.tier).Inc()
				log.Warn("copy in a batch failed; trying it on its own", zap.Error(err))
				rec, err = d.attempt(ctx, id, j, log)
			default:
				d.m.errors.WithLabelValues(id.tier).Inc()
			}
			d.settleJob(ctx, id, j, rec, err, log)
			t.leave(d.m)
		}
	}
}

// copyBatch copies every segment of js to t with one journal transaction, one Sync of
// the tier and one catalog transaction, and returns each copy's record or error.
func (d *Daemon) copyBatch(ctx context.Context, t *tierState, js []due) ([]catalog.Record, []error) {
	recs, errs := make([]catalog.Record, len(js)), make([]error, len(js))
	fail := func(err error) ([]catalog.Record, []error) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return recs, errs
	}
	ins := make([]catalog.Intent, len(js))
	for i, j := range js {
		ins[i] = catalog.Intent{Tier: t.Name, Key: j.key, Source: j.seg.Source, Rel: j.seg.Rel, Kind: string(j.seg.Kind), Op: catalog.OpOffload}
	}
	intents, err := d.cfg.Catalog.BeginAll(ins)
	if err != nil {
		return fail(fmt.Errorf("journal intents: %w", err))
	}
	d.mu.Lock()
	for i, j := range js {
		d.intents[j.id()] = intents[i].ID
	}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		for _, j := range js {
			delete(d.intents, j.id())
		}
		d.mu.Unlock()
	}()
	failpoint.Hit("daemon.batch_journaled")
	var b segment.Backend = t.Backend
	sync := func(context.Context) error { return nil }
	if gs, ok := t.Backend.(segment.GroupSyncer); ok {
		v := gs.Deferred()
		b, sync = v, v.Sync
	}
	for i, j := range js {
		if err := ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		// Before each write, as dispatch does before each job: a failing tier gets no
		// more of the batch (one job at a time probes it), a tier at max_used is paused
		// (the batch may hold more than the space left under the guard).
		if t.isFailing() || d.checkTier(t) {
			errs[i] = fmt.Errorf("%s: %w", t.Name, errNotTried)
			continue
		}
		rec, err := d.copyOut(ctx, *j.seg, t, b, j.key, nil)
		if err == nil {
			if err = d.cfg.Catalog.WriteMarker(ctx, b, rec); err != nil {
				d.discard(t, j.key)
			}
		}
		if err != nil && !errors.Is(err, errSkip) && ctx.Err() == nil {
			t.noteError(err, d.cfg.Now()) // the tier fails: the rest of the batch is not tried
		}
		recs[i], errs[i] = rec, err
		failpoint.Hit("daemon.batch_item") // objects and markers visible, not yet durable or recorded
	}
	serr := sync(ctx)
	failpoint.Hit("daemon.batch_synced")
	var done []catalog.Record
	var doneIDs, finish []uint64
	for i, j := range js {
		if errs[i] == nil && serr != nil {
			d.discard(t, j.key)
			errs[i] = fmt.Errorf("make the batch durable on %s: %w", t.Name, serr)
		}
		if errs[i] == nil {
			done, doneIDs = append(done, recs[i]), append(doneIDs, intents[i].ID)
		} else {
			finish = append(finish, intents[i].ID)
		}
	}
	if err := d.cfg.Catalog.CommitAll(done, doneIDs, finish); err != nil {
		// Nothing of the batch is recorded: undo its objects. An intent left behind (the
		// catalog cannot be written) is settled by the next start.
		for i, j := range js {
			if errs[i] == nil {
				d.discard(t, j.key)
			}
			if ferr := d.cfg.Catalog.Finish(intents[i].ID); ferr != nil {
				d.log.Error("clear intent", zap.Uint64("intent", intents[i].ID), zap.Error(ferr))
			}
		}
		return fail(fmt.Errorf("record the batch in the catalog: %w", err))
	}
	failpoint.Hit("daemon.batch_recorded")
	return recs, errs
}
