package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// acquireFences takes the node's lease on every fenced tier, or fails saying who holds it.
func (d *Daemon) acquireFences(ctx context.Context) error {
	var errs []error
	for _, t := range d.tiers {
		if t.Fence == nil {
			continue
		}
		if err := t.Fence.Acquire(ctx); err != nil {
			errs = append(errs, fmt.Errorf("tier %s: %w", t.Name, err))
		}
	}
	err := errors.Join(errs...)
	d.mu.Lock()
	was := d.fenceErr
	d.fenceErr = err
	d.mu.Unlock()
	switch {
	case err != nil && (was == nil || was.Error() != err.Error()):
		d.log.Error("not offloading: the node's lease is not ours", zap.Error(err))
	case err == nil && was != nil:
		d.log.Info("the node's lease is ours again: offloading")
	}
	return err
}

// waitFences acquires every lease, retrying every third of the lease TTL while another
// installation holds one. It returns false if ctx ended first.
func (d *Daemon) waitFences(ctx context.Context) bool {
	for {
		if d.acquireFences(ctx) == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(max(d.fenceTTL()/3, time.Second)):
		}
	}
}

// renewFences renews every lease. A lease another installation took over stops new work
// until it is ours again; a store that does not answer leaves the lease ours until it
// expires (the next renewal tries again).
func (d *Daemon) renewFences(ctx context.Context) {
	d.mu.Lock()
	lost := d.fenceErr != nil
	d.mu.Unlock()
	if lost {
		_ = d.acquireFences(ctx)
		return
	}
	for _, t := range d.tiers {
		if t.Fence == nil {
			continue
		}
		if err := t.Fence.Renew(ctx); err != nil {
			d.log.Warn("renew the node's lease", zap.String("tier", t.Name), zap.Error(err))
			if errors.Is(err, context.Canceled) {
				return
			}
			_ = d.acquireFences(ctx) // taken over: this records why and stops new jobs
			return
		}
	}
}

// releaseFences gives every lease up (on a clean exit).
func (d *Daemon) releaseFences() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, t := range d.tiers {
		if t.Fence != nil {
			if err := t.Fence.Release(ctx); err != nil {
				d.log.Warn("release the node's lease", zap.String("tier", t.Name), zap.Error(err))
			}
		}
	}
}

// fenceTTL is the shortest lease TTL of the fenced tiers (0 if none is fenced).
func (d *Daemon) fenceTTL() time.Duration {
	var ttl time.Duration
	for _, t := range d.tiers {
		if t.Fence != nil && (ttl == 0 || t.Fence.TTL() < ttl) {
			ttl = t.Fence.TTL()
		}
	}
	return ttl
}
