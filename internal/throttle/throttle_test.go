package throttle

import (
	"context"
	"testing"
	"time"

	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/segment"
)

func TestBackendRate(t *testing.T) {
	be, err := posix.New(posix.Config{Path: t.TempDir(), WriteMode: posix.Buffered}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 1 MiB/s with a 100 KiB burst: 400 KiB need at least ~0.29 s.
	tb := Backend(be, NewRateLimiter(1<<20))
	ctx := context.Background()
	w, err := tb.Create(ctx, segment.Key("a"), 400<<10)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 4 {
		if _, err := w.Write(make([]byte, 100<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("400 KiB at 1 MiB/s took %v", d)
	}
	if Backend(be, nil) != segment.Backend(be) {
		t.Fatal("an unlimited wrapper is not the backend itself")
	}
	cctx, cancel := context.WithCancel(ctx)
	w, _ = Backend(be, NewRateLimiter(1)).Create(cctx, segment.Key("b"), 1<<20)
	cancel()
	if _, err := w.Write(make([]byte, 1<<20)); err == nil {
		t.Fatal("write after cancel succeeded")
	}
	w.Abort()
}

func TestRateLimiter(t *testing.T) {
	if NewRateLimiter(0) != nil || NewRateLimiter(-1) != nil {
		t.Fatal("non-positive rate is not unlimited")
	}
	var nilLim *RateLimiter
	if err := nilLim.WaitN(context.Background(), 1<<30); err != nil {
		t.Fatal(err)
	}
	// 1 MiB/s has a burst of 0.1 s worth: the burst passes at once, one more second's
	// worth takes about a second.
	lim := NewRateLimiter(1 << 20)
	start := time.Now()
	if err := lim.WaitN(context.Background(), 1<<20+(1<<20)/10); err != nil { // burst + 1 s worth
		t.Fatal(err)
	}
	if d := time.Since(start); d < 800*time.Millisecond || d > 3*time.Second {
		t.Fatalf("1.1 MiB at 1 MiB/s with a 0.1 s burst took %s, want about 1 s", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := lim.WaitN(ctx, 10<<20); err == nil {
		t.Fatal("WaitN beyond the deadline succeeded")
	}
}
