package daemon

import (
	"math/rand/v2"
	"time"
)

// Backoff computes retry delays: exponential from Initial, capped at Max, with full
// jitter (a uniform delay in [d/2, d]) so that jobs failing together do not retry
// together.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// Delay returns the wait before retry number attempt (1 = the first retry).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Initial
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}
