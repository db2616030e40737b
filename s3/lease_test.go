package s3

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tierd/tierd/devtools/miniotest"
)

// TestLease: one holder per node; the same holder renews and re-takes its lease at once
// (a restart); another holder is refused until the lease expires, then takes it over;
// the first holder's renewal then reports the takeover; of many racing for a free lease
// exactly one wins.
func TestLease(t *testing.T) {
	srv := miniotest.Start(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			ctx := testCtx(t)
			pool := newPool(t, 2)
			cfg := serverConfig(srv, driver)
			b := newBackend(t, cfg, pool)
			clock := time.Now()
			now := func() time.Time { return clock }
			mk := func(holder string) *Lease {
				l := b.Lease("node1", holder, time.Minute)
				l.now = now
				return l
			}
			a, a2, other := mk("install-a"), mk("install-a"), mk("install-b")
			if err := a.Acquire(ctx); err != nil {
				t.Fatal(err)
			}
			if err := a.Renew(ctx); err != nil {
				t.Fatalf("renew: %v", err)
			}
			if err := a2.Acquire(ctx); err != nil { // the same installation after a restart
				t.Fatalf("same holder re-acquiring: %v", err)
			}
			var held *LeaseHeldError
			err := other.Acquire(ctx)
			if !errors.As(err, &held) || held.Holder != "install-a" || !errors.Is(err, ErrLeaseHeld) {
				t.Fatalf("second holder: %v, want a LeaseHeldError naming install-a", err)
			}
			clock = clock.Add(2 * time.Minute) // install-a stopped renewing
			if err := other.Acquire(ctx); err != nil {
				t.Fatalf("taking over an expired lease: %v", err)
			}
			if err := a2.Renew(ctx); !errors.As(err, &held) || held.Holder != "install-b" {
				t.Fatalf("renewing a taken-over lease: %v", err)
			}
			if err := a2.Release(ctx); err != nil { // not ours: nothing happens
				t.Fatal(err)
			}
			if err := other.Release(ctx); err != nil {
				t.Fatal(err)
			}
			// Many holders race for the free lease: exactly one wins.
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins := 0
			for i := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l := b.Lease("node1", "racer-"+string(rune('a'+i)), time.Minute)
					err := l.Acquire(ctx)
					if err == nil {
						mu.Lock()
						wins++
						mu.Unlock()
					} else if !errors.Is(err, ErrLeaseHeld) {
						t.Errorf("racer %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
			if wins != 1 {
				t.Fatalf("%d racers won the lease, want 1", wins)
			}
		})
	}
}
