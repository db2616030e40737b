package s3

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/semaphore"
)

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
