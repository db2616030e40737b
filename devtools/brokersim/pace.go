package brokersim

import (
	"context"
	"time"
)

// pace runs the continuous phase: every tick it calls step with the number of messages
// due at rate per second since the start (so the average rate holds whatever a step
// costs), then flush. It ends, returning nil, when duration has passed (duration 0: never)
// or ctx ends; a step or flush error ends it with that error.
func pace(ctx context.Context, rate float64, duration, tick time.Duration, step func(n int64) error, flush func() error) error {
	start := time.Now()
	t := time.NewTicker(tick)
	defer t.Stop()
	var written int64
	for {
		stop := false
		select {
		case <-ctx.Done():
			stop = true
		case <-t.C:
		}
		elapsed := time.Since(start)
		if duration > 0 && elapsed >= duration {
			elapsed, stop = duration, true
		}
		if due := int64(rate*elapsed.Seconds()) - written; due > 0 && ctx.Err() == nil {
			if err := step(due); err != nil {
				return err
			}
			written += due
		}
		if err := flush(); err != nil {
			return err
		}
		if stop {
			return nil
		}
	}
}
