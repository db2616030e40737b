// Package throttle caps the byte rate of a tier: a RateLimiter shared by all streams of
// the tier, and a segment.Backend wrapper that makes every Writer wait for it.
package throttle

import (
	"context"
	"fmt"
	"math"

	"golang.org/x/time/rate"

	"github.com/tierd/tierd/segment"
)

// RateLimiter caps a byte rate shared by every stream that uses it. A nil *RateLimiter
// is unlimited. Safe for concurrent use.
type RateLimiter struct {
	lim   *rate.Limiter
	burst int
}

// NewRateLimiter returns a limiter of bytesPerSec, or nil (unlimited) when bytesPerSec <= 0.
// The burst is a tenth of a second's worth, at least 64 KiB, so waits are short and
// smooth rather than one stall per second.
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

// Backend wraps b so that all bytes written through its Writers share lim. Reads, Stat,
// List and Delete pass through.
func Backend(b segment.Backend, lim *RateLimiter) segment.Backend {
	if lim == nil {
		return b
	}
	return &backend{Backend: b, lim: lim}
}

type backend struct {
	segment.Backend
	lim *RateLimiter
}

func (b *backend) Create(ctx context.Context, key segment.Key, size int64) (segment.Writer, error) {
	w, err := b.Backend.Create(ctx, key, size)
	if err != nil {
		return nil, err
	}
	tw := &writer{Writer: w, ctx: ctx, lim: b.lim}
	if sum, ok := w.(segment.Checksummer); ok {
		// Keep the tier's own CRC-32C visible to Copy, which would otherwise compute it
		// a second time over the same bytes.
		return &checksumWriter{writer: tw, sum: sum}, nil
	}
	return tw, nil
}

// checksumWriter is a writer whose tier Writer computes the CRC-32C (segment.Checksummer).
type checksumWriter struct {
	*writer
	sum segment.Checksummer
}

// CRC32C implements segment.Checksummer with the tier Writer's checksum.
func (w *checksumWriter) CRC32C() uint32 { return w.sum.CRC32C() }

type writer struct {
	segment.Writer
	ctx context.Context
	lim *RateLimiter
}

func (w *writer) Write(p []byte) (int, error) {
	if err := w.lim.WaitN(w.ctx, len(p)); err != nil {
		return 0, err
	}
	return w.Writer.Write(p)
}
