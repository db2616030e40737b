package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Fencing is per tier. A fenced tier (one with a Fence: a bucket other sidecars could
// write under this node's name) is offloaded to only while this installation's lease on
// it is known to be live: renewed less than its TTL (less a safety margin) ago. Each
// fenced tier's lease is kept by a goroutine of its own, with a deadline on every
// request, so a store that hangs or fails delays nothing but that tier:
//   - another installation holds the lease: the tier is fenced (nothing is offloaded to
//     or cleaned up on it) until the lease is ours again; the other tiers go on;
//   - the store does not answer or answers with an error: the tier is "unreachable"; the
//     lease stays ours until it would expire, so the tier keeps working in between, and
//     the goroutine retries every few seconds.

// heldError is implemented by a Fence's error that says another installation holds the
// lease (s3.LeaseHeldError), as opposed to a store that could not be asked.
type heldError interface{ LeaseHeld() bool }

// isHeld reports whether err says another installation holds the lease.
func isHeld(err error) bool {
	var h heldError
	return errors.As(err, &h) && h.LeaseHeld()
}

// fenceState is a fenced tier's view of its lease (guarded by tierState.mu).
type fenceState struct {
	until   time.Time // the lease is ours until then (zero: not held)
	err     error     // the last Acquire or Renew that failed; nil after a success
	held    bool      // err says another installation holds the lease
	since   time.Time // when err first happened (of this run of failures)
	granted bool      // the lease was ours at least once in this run
}

// leaseMargin is how long before its expiry a lease that could not be renewed stops
// counting as ours: clock drift between hosts, and jobs deciding to start.
func leaseMargin(ttl time.Duration) time.Duration { return ttl / 6 }

// fenceAttempt is the deadline of one Acquire or Renew: a third of the TTL, so that a
// hung request is given up in time for another try before the lease expires.
func fenceAttempt(ttl time.Duration) time.Duration { return max(ttl/3, time.Second) }

// fenced reports whether t may not be written to now: it has a lease that is not known
// to be ours.
func (t *tierState) fenced(now time.Time) bool {
	if t.Fence == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return !now.Before(t.fence.until)
}

// fenceOnce makes one Acquire (or Renew, if the lease is ours) with its own deadline and
// records the outcome. It returns the error.
func (d *Daemon) fenceOnce(ctx context.Context, t *tierState) error {
	ttl := t.Fence.TTL()
	t.mu.Lock()
	ours := !t.fence.until.IsZero()
	wasErr, wasHeld := t.fence.err, t.fence.held
	t.mu.Unlock()
	actx, cancel := context.WithTimeout(ctx, fenceAttempt(ttl))
	defer cancel()
	start := d.cfg.Now()
	var err error
	if ours {
		err = t.Fence.Renew(actx)
	} else {
		err = t.Fence.Acquire(actx)
	}
	if err != nil && ctx.Err() != nil {
		return ctx.Err() // stopping: nothing to record
	}
	if err != nil && actx.Err() != nil && !isHeld(err) {
		err = fmt.Errorf("no answer within %s: %w", fenceAttempt(ttl), err)
	}
	now := d.cfg.Now()
	t.mu.Lock()
	f := &t.fence
	switch {
	case err == nil:
		f.until, f.err, f.held, f.since, f.granted = start.Add(ttl-leaseMargin(ttl)), nil, false, time.Time{}, true
	case isHeld(err):
		f.until, f.err, f.held = time.Time{}, err, true
		if wasErr == nil || !wasHeld {
			f.since = now
		}
	default:
		f.err, f.held = err, false
		if wasErr == nil || wasHeld {
			f.since = now
		}
	}
	until := f.until
	t.mu.Unlock()
	log := d.log.With(zap.String("tier", t.Name))
	switch {
	case err == nil && wasErr != nil:
		log.Info("the node's lease is ours again: offloading to the tier")
		d.wakeUp()
	case err == nil && !ours:
		d.wakeUp()
	case isHeld(err) && (wasErr == nil || wasErr.Error() != err.Error()):
		log.Error("not offloading to the tier: another installation holds the node's lease", zap.Error(err))
	case err != nil && !isHeld(err) && (wasErr == nil || wasHeld):
		if now.Before(until) {
			log.Warn("tier unreachable: cannot renew the node's lease; offloading to it until the lease would expire, and retrying",
				zap.Time("lease_until", until), zap.Error(err))
		} else {
			log.Error("tier unreachable: cannot take or renew the node's lease; retrying", zap.Error(err))
		}
	}
	return err
}

// wakeUp makes the main loop plan again (a tier became usable).
func (d *Daemon) wakeUp() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// keepFence keeps t's lease until ctx ends: renewed every third of its TTL, retried
// every few seconds after a failure (store unreachable), and every third of the TTL while
// another installation holds it.
func (d *Daemon) keepFence(ctx context.Context, t *tierState) {
	ttl := t.Fence.TTL()
	failures := 0
	for ctx.Err() == nil {
		err := d.fenceOnce(ctx, t)
		wait := ttl / 3
		switch {
		case err == nil || isHeld(err):
			failures = 0
		default:
			failures++
			wait = min(Backoff{Initial: time.Second, Max: max(ttl/6, time.Second)}.Delay(failures), ttl/3)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// startFences starts a keeper per fenced tier; the returned stop ends them and waits.
func (d *Daemon) startFences(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, t := range d.tiers {
		if t.Fence == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.keepFence(ctx, t)
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// acquireFences tries once to take every fenced tier's lease (one-off commands and run
// --once). It returns the failures, one per tier.
func (d *Daemon) acquireFences(ctx context.Context) error {
	var errs []error
	for _, t := range d.tiers {
		if t.Fence == nil {
			continue
		}
		if err := d.fenceOnce(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("tier %s: %w", t.Name, err))
		}
	}
	return errors.Join(errs...)
}

// fenceReason says why t is not offloaded to because of its lease, "" when it is.
func (t *tierState) fenceReason(now time.Time) string {
	if t.Fence == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.fence
	switch {
	case f.held:
		return fmt.Sprintf("tier %s: not offloading: %v", t.Name, f.err)
	case f.err != nil && now.Before(f.until):
		return fmt.Sprintf("tier %s: unreachable for %s (cannot renew the node's lease; offloading to it until %s): %v",
			t.Name, now.Sub(f.since).Round(time.Second), f.until.Format(time.RFC3339), f.err)
	case f.err != nil:
		return fmt.Sprintf("tier %s: unreachable for %s (cannot take or renew the node's lease): %v", t.Name, now.Sub(f.since).Round(time.Second), f.err)
	case !now.Before(f.until):
		return fmt.Sprintf("tier %s: waiting for the node's lease", t.Name)
	}
	return ""
}

// releaseFences gives every lease this installation holds up (on a clean exit).
func (d *Daemon) releaseFences() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, t := range d.tiers {
		if t.Fence == nil {
			continue
		}
		t.mu.Lock()
		granted := t.fence.granted
		t.mu.Unlock()
		if !granted {
			continue
		}
		if err := t.Fence.Release(ctx); err != nil {
			d.log.Warn("release the node's lease", zap.String("tier", t.Name), zap.Error(err))
		}
	}
}
