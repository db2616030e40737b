package s3

import (
	"context"
	"fmt"
	"math"
	"sync"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
)

// RateLimiter caps a byte rate shared by every stream that uses it (all writers of one
// tier). A nil *RateLimiter is unlimited. Safe for concurrent use.
type RateLimiter struct {
	lim   *rate.Limiter
	burst int
}

// NewRateLimiter returns a limiter of bytesPerSec, or nil (unlimited) when bytesPerSec ≤ 0.
// The burst is a tenth of a second's worth, at least 64 KiB, so that waits are short and
// smooth rather than one big stall per second.
func NewRateLimiter(bytesPerSec int64) *RateLimiter {
	if bytesPerSec <= 0 {
		return nil
	}
	burst := int(min(max(bytesPerSec/10, 64<<10), math.MaxInt32))
	return &RateLimiter{lim: rate.NewLimiter(rate.Limit(bytesPerSec), burst), burst: burst}
}

// WaitN blocks until n bytes may pass, or ctx ends. It waits in chunks of at most the
// burst, so n may be any size.
func (r *RateLimiter) WaitN(ctx context.Context, n int) error {
	if r == nil {
		return nil
	}
	for n > 0 {
		c := min(n, r.burst)
		if err := r.lim.WaitN(ctx, c); err != nil {
			return fmt.Errorf("rate limit: %w", err)
		}
		n -= c
	}
	return nil
}

// Gate caps how many holders may be inside at once (a counting semaphore). A nil *Gate
// admits everyone. Safe for concurrent use.
type Gate struct {
	sem *semaphore.Weighted
}

// NewGate returns a gate of n places, or nil (no limit) when n ≤ 0.
func NewGate(n int) *Gate {
	if n <= 0 {
		return nil
	}
	return &Gate{sem: semaphore.NewWeighted(int64(n))}
}

// Enter waits for a place, or until ctx ends. The returned func gives the place back; it
// may be called more than once and only the first call counts.
func (g *Gate) Enter(ctx context.Context) (leave func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	if err := g.sem.Acquire(ctx, 1); err != nil {
		return nil, fmt.Errorf("wait for a free slot: %w", err)
	}
	var once sync.Once
	return func() { once.Do(func() { g.sem.Release(1) }) }, nil
}
