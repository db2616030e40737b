package throttle

import (
	"context"
	"hash/crc32"
	"testing"
	"time"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
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

// TestConformance runs the backend conformance suite through the wrapper (over a posix
// tier, with a limit that never waits): a rate-limited tier keeps the whole contract.
func TestConformance(t *testing.T) {
	pool, err := bufpool.New(bufpool.Config{Budget: 8 << 20, BufferSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	segmenttest.Run(t, segmenttest.Harness{
		Pool: pool,
		New: func(t *testing.T) segment.Backend {
			be, err := posix.New(posix.Config{Path: t.TempDir(), WriteMode: posix.Buffered}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return Backend(be, NewRateLimiter(64<<30))
		},
	})
}

// TestKeepsChecksummer: a tier Writer's CRC-32C stays visible through the wrapper, so
// Copy does not compute it a second time.
func TestKeepsChecksummer(t *testing.T) {
	be, err := posix.New(posix.Config{Path: t.TempDir(), WriteMode: posix.Buffered}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := Backend(be, NewRateLimiter(1<<30)).Create(ctx, segment.Key("c"), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	sum, ok := w.(segment.Checksummer)
	if !ok {
		t.Fatal("the rate-limited Writer of a posix tier is not a segment.Checksummer")
	}
	if _, err := w.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if got, want := sum.CRC32C(), crc32.Checksum([]byte("abc"), segment.Castagnoli); got != want {
		t.Fatalf("CRC32C = %08x, want %08x", got, want)
	}
}
