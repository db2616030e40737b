package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/segment"
)

// dispatch starts the jobs the policy wants while workers and tier slots are free, and
// returns how many it started. Each job comes from the catalog's indexes (nextJob: a
// bounded look, whatever the number of records). A job starts only if, under d.mu, it is
// neither running (a job stays running until its result is recorded) nor waiting for a
// retry, and the catalog does not already hold its result: a job that finished while
// dispatch waited for a worker is never started again (issue 15).
func (d *Daemon) dispatch(ctx, jobCtx context.Context, jobs *sync.WaitGroup) int {
	started, rejected := 0, 0
	d.checkTiers()
	d.noteLag(d.cfg.Now(), false)
	for ctx.Err() == nil && rejected < maxRejected {
		now := d.cfg.Now()
		j, ok, err := d.nextJob(now)
		if err != nil {
			d.log.Error("plan", zap.Error(err))
			return started
		}
		if !ok {
			return started
		}
		if j.tier != nil {
			select {
			case j.tier.slots <- struct{}{}:
			default:
				return started // cannot happen: nextJob offers only tiers with a free slot
			}
		}
		select {
		case d.workers <- struct{}{}:
		case <-ctx.Done():
			if j.tier != nil {
				<-j.tier.slots
			}
			return started
		}
		id := j.id()
		d.mu.Lock()
		// The tier may have started failing, or been fenced, while dispatch waited for a
		// worker: a failing tier gets one job at a time (probing).
		start := !d.stopping && !d.busy(id, now) && (j.tier == nil || (!j.tier.fenced(now) && !(j.kind == jobCopy && j.tier.probing())))
		if start {
			done, err := d.resultRecorded(j)
			if err != nil {
				d.log.Error("plan", zap.Error(err))
			}
			start = err == nil && !done
		}
		if start {
			d.running[id] = j
		}
		d.mu.Unlock()
		if !start {
			<-d.workers
			if j.tier != nil {
				<-j.tier.slots
			}
			rejected++
			continue
		}
		if j.tier != nil {
			j.tier.enter(d.m)
		}
		batch := []due{j}
		if batchable(j) {
			batch = d.growBatch(j, now)
		}
		started += len(batch)
		jobs.Add(1)
		go func() {
			defer jobs.Done()
			if len(batch) > 1 {
				d.runBatch(jobCtx, batch)
			} else {
				d.runJob(jobCtx, id, j)
			}
			<-d.workers
			if j.tier != nil {
				<-j.tier.slots
			}
			select {
			case d.wake <- struct{}{}:
			default:
			}
		}()
	}
	return started
}

// maxRejected bounds how many jobs one dispatch may find already done or running after it
// picked them (each is then passed over by the next look at the indexes).
const maxRejected = 64

// resultRecorded reports whether the catalog already holds what job j would do: the copy
// recorded, the expired record gone, the deleted local file forgotten (d.mu held; the
// catalog is only read).
func (d *Daemon) resultRecorded(j due) (bool, error) {
	switch j.kind {
	case jobCopy:
		_, err := d.cfg.Catalog.Get(j.tier.Name, j.key)
		if errors.Is(err, segment.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	case jobExpire:
		_, err := d.cfg.Catalog.Get(j.tier.Name, j.key)
		if errors.Is(err, segment.ErrNotFound) {
			return true, nil
		}
		return false, err
	case jobDeleteLocal:
		f, ok, err := d.cfg.Catalog.Local(j.seg.Source, j.seg.Rel)
		return err == nil && (!ok || !f.Sealed || !f.ModTime.Equal(j.seg.ModTime)), err
	}
	return false, nil
}

// readingLocal reports whether a copy job is reading one of j's local files now (d.mu
// held).
func (d *Daemon) readingLocal(j due) bool {
	for _, m := range j.group {
		for _, t := range d.tiers {
			if _, ok := d.running[jobID{t.Name, m.key}]; ok {
				return true
			}
		}
	}
	return false
}

// runJob runs one job with up to Attempts tries and records the outcome.
func (d *Daemon) runJob(ctx context.Context, id jobID, j due) {
	t := j.tier
	if t != nil {
		defer t.leave(d.m) // entered by dispatch
	}
	log := d.jobLog(id, j)
	rec, err := d.attempt(ctx, id, j, log)
	d.settleJob(ctx, id, j, rec, err, log)
}

// attempt runs job j up to Attempts times (fewer when its tier fails and other jobs are
// on it) and returns the outcome of the last try.
func (d *Daemon) attempt(ctx context.Context, id jobID, j due, log *zap.Logger) (catalog.Record, error) {
	t := j.tier
	var err error
	var rec catalog.Record
	for attempt := 1; attempt <= d.cfg.Attempts; attempt++ {
		if attempt > 1 {
			d.m.retries.WithLabelValues(id.tier).Inc()
			select {
			case <-ctx.Done():
			case <-time.After(d.cfg.Backoff.Delay(attempt - 1)):
			}
		}
		if ctx.Err() != nil {
			err = ctx.Err()
			break
		}
		start := time.Now()
		rec, err = d.do(ctx, j)
		if err == nil {
			log.Info(doneMessage[j.kind], zap.Int64("bytes", rec.Size), zap.String("why", j.why), zap.Duration("took", time.Since(start)))
			break
		}
		d.m.errors.WithLabelValues(id.tier).Inc()
		if errors.Is(err, errSkip) || ctx.Err() != nil {
			break
		}
		log.Warn("job failed", zap.Int("attempt", attempt), zap.Error(err))
		if t != nil {
			t.noteError(err, d.cfg.Now())
			if t.othersInFlight() {
				break // the tier fails: one job keeps trying it; this one frees its worker and buffers
			}
		}
	}
	return rec, err
}

// settleJob records the outcome of job j: it is no longer running (its result, if any, is
// in the catalog by now), and a failure waits for its retry.
func (d *Daemon) settleJob(ctx context.Context, id jobID, j due, rec catalog.Record, err error, log *zap.Logger) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.running, id)
	switch {
	case err == nil:
		delete(d.retry, id)
		d.noteDone(j, rec)
	case errors.Is(err, errSkip):
		r := d.retry[id]
		if r.err == nil || r.err.Error() != err.Error() {
			log.Warn("job skipped; will look again after the next scans", zap.Error(err))
		} else {
			log.Debug("job skipped again, for the same reason", zap.Error(err)) // said once is enough
		}
		r.failures++
		r.err, r.next = err, d.cfg.Now().Add(d.cfg.Backoff.Max)
		d.retry[id] = r
	case ctx.Err() != nil:
		log.Info("job aborted by shutdown", zap.Error(err))
	default:
		r := d.retry[id]
		r.failures++
		r.err = err
		r.next = d.cfg.Now().Add(d.cfg.Backoff.Delay(r.failures + d.cfg.Attempts))
		d.retry[id] = r
		log.Error("job failed; retrying later", zap.Int("failures", r.failures), zap.Time("next", r.next), zap.Error(err))
	}
}

// jobLog is the logger of job j.
func (d *Daemon) jobLog(id jobID, j due) *zap.Logger {
	log := d.log.With(zap.String("job", j.kind.String()), zap.String("tier", id.tier), zap.Stringer("key", j.key))
	if j.seg != nil {
		log = log.With(zap.String("segment", j.seg.Path))
	}
	if j.from != nil {
		log = log.With(zap.String("from", j.from.Name))
	}
	return log
}

var doneMessage = map[jobKind]string{
	jobCopy:        "offloaded",
	jobDeleteLocal: "deleted local segment: verified copies exist",
	jobExpire:      "expired from tier",
}

// do runs one attempt of a job.
func (d *Daemon) do(ctx context.Context, j due) (catalog.Record, error) {
	switch j.kind {
	case jobCopy:
		if j.seg != nil {
			return d.offload(ctx, *j.seg, j.tier, nil)
		}
		return d.copyFromTier(ctx, j)
	case jobDeleteLocal:
		return d.deleteLocal(ctx, j)
	case jobExpire:
		return d.expire(ctx, j)
	}
	panic("BUG: unknown job kind")
}

// noteDone counts a finished job (d.mu held).
func (d *Daemon) noteDone(j due, rec catalog.Record) {
	switch j.kind {
	case jobCopy:
		j.tier.noteSuccess(rec.Size)
		j.tier.mu.Lock()
		j.tier.due = max(j.tier.due-1, 0)
		j.tier.mu.Unlock()
		d.m.offloadedBytes.WithLabelValues(j.tier.Name).Add(float64(rec.Size))
		d.m.offloadedSegments.WithLabelValues(j.tier.Name).Inc()
	case jobDeleteLocal:
		d.m.deletedLocal.WithLabelValues(j.seg.Source).Inc()
	case jobExpire:
		j.tier.mu.Lock()
		j.tier.failing = false
		j.tier.expired++
		j.tier.mu.Unlock()
		d.m.expired.WithLabelValues(j.tier.Name, j.why).Inc()
	}
}

func (t *tierState) noteError(err error, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failing, t.lastErr, t.lastErrAt = true, err.Error(), now
}

func (t *tierState) noteSuccess(bytes int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failing = false
	t.segments++
	t.bytes += bytes
}

// enter and leave count a job on the tier (dispatch enters, and growBatch for each other
// member of a batch; runJob leaves, runBatch once per member).
func (t *tierState) enter(m *metrics) {
	t.mu.Lock()
	t.inFlight++
	t.mu.Unlock()
	m.inFlight.WithLabelValues(t.Name).Inc()
}

func (t *tierState) leave(m *metrics) {
	t.mu.Lock()
	t.inFlight--
	t.mu.Unlock()
	m.inFlight.WithLabelValues(t.Name).Dec()
}

// probing reports whether the tier is failing and a job is already on it: a failing tier
// gets one job at a time, which finds out when it is back, so that the workers stay free
// for the tiers that work (an object store outage must not stall the HDD tier).
func (t *tierState) probing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failing && t.inFlight > 0
}

// othersInFlight reports whether another job than the caller's is on the tier.
func (t *tierState) othersInFlight() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inFlight > 1
}

// isFailing reports whether the last attempt on the tier failed for a reason of the tier's.
func (t *tierState) isFailing() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failing
}

func (t *tierState) isPaused() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.paused
}
