package daemon

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/segment"
)

// dispatch starts the jobs the policy wants while workers and tier slots are free, and
// returns how many it started. A job already running, waiting for a retry, or copying
// to a paused tier is left for later.
func (d *Daemon) dispatch(ctx, jobCtx context.Context, jobs *sync.WaitGroup) int {
	started := 0
	now := d.cfg.Now()
	d.checkTiers()
	p, err := d.policy(now)
	if err != nil {
		d.log.Error("plan", zap.Error(err))
		return 0
	}
	d.notePlan(p, now)
	for _, j := range p.jobs {
		id := j.id()
		d.mu.Lock()
		r, retrying := d.retry[id]
		skip := d.inFlight[id] || d.stopping || (retrying && (d.oneShot || now.Before(r.next))) || d.passDone[id] || d.unsettledJob(id)
		if j.kind == jobDeleteLocal {
			skip = skip || d.readingLocal(j)
		}
		d.mu.Unlock()
		if skip || ctx.Err() != nil || (j.kind == jobCopy && (j.tier.isPaused() || j.tier.probing())) || (j.tier != nil && j.tier.fenced(now)) {
			continue
		}
		if j.tier != nil {
			select {
			case j.tier.slots <- struct{}{}:
			default:
				continue // the tier is busy; a finishing job wakes the loop
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
		d.mu.Lock()
		d.inFlight[id] = true
		d.mu.Unlock()
		if j.tier != nil {
			j.tier.enter(d.m)
		}
		started++
		jobs.Add(1)
		go func() {
			defer jobs.Done()
			d.runJob(jobCtx, id, j)
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

// readingLocal reports whether a copy job is reading j's local file now (d.mu held).
func (d *Daemon) readingLocal(j due) bool {
	for _, t := range d.tiers {
		if d.inFlight[jobID{t.Name, j.key}] {
			return true
		}
	}
	return false
}

// notePlan publishes each tier's lag: how many copies are due and how old the oldest is.
func (d *Daemon) notePlan(p plan, now time.Time) {
	for _, t := range d.tiers {
		count, oldest := p.dueCount[t.Name], p.oldestDue[t.Name]
		t.mu.Lock()
		t.due, t.oldestDue = count, oldest
		t.mu.Unlock()
		d.m.pendingSegments.WithLabelValues(t.Name).Set(float64(count))
		lag := 0.0
		if !oldest.IsZero() {
			lag = now.Sub(oldest).Seconds()
		}
		d.m.oldestPending.WithLabelValues(t.Name).Set(lag)
	}
}

// runJob runs one job with up to Attempts tries and records the outcome.
func (d *Daemon) runJob(ctx context.Context, id jobID, j due) {
	t := j.tier
	if t != nil {
		defer t.leave(d.m) // entered by dispatch
	}
	log := d.log.With(zap.String("job", j.kind.String()), zap.String("tier", id.tier), zap.Stringer("key", j.key))
	if j.seg != nil {
		log = log.With(zap.String("segment", j.seg.Path))
	}
	if j.from != nil {
		log = log.With(zap.String("from", j.from.Name))
	}
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
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.inFlight, id)
	switch {
	case err == nil:
		delete(d.retry, id)
		if d.oneShot {
			d.passDone[id] = true
		}
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
		d.m.offloadedBytes.WithLabelValues(j.tier.Name).Add(float64(rec.Size))
		d.m.offloadedSegments.WithLabelValues(j.tier.Name).Inc()
	case jobDeleteLocal:
		d.m.deletedLocal.WithLabelValues(j.seg.Source).Inc()
		d.sealed = slices.DeleteFunc(slices.Clone(d.sealed), func(s segment.Segment) bool { return s.Path == j.seg.Path })
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

// enter and leave count a job on the tier (dispatch enters, runJob leaves).
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

func (t *tierState) isPaused() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.paused
}
