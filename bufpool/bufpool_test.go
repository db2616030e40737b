package bufpool

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

func newPool(t *testing.T, budget, size int64) *Pool {
	t.Helper()
	p, err := New(Config{Budget: budget, BufferSize: size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Check(); err != nil {
			t.Error(err)
		}
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func TestConfigErrors(t *testing.T) {
	f := func(cfg Config, want string) {
		t.Helper()
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("New(%+v) = %v, want error containing %q", cfg, err, want)
		}
	}
	f(Config{Budget: 1 << 20, BufferSize: 1000}, "multiple of 4096")
	f(Config{Budget: 1 << 20, BufferSize: 0}, "multiple of 4096")
	f(Config{Budget: 4096, BufferSize: 8192}, "holds no buffer")
}

func TestAlignedAndBounded(t *testing.T) {
	p := newPool(t, 5*8192+100, 8192) // rounds down to 5 buffers
	if p.Capacity() != 5 {
		t.Fatalf("capacity %d, want 5", p.Capacity())
	}
	ctx := context.Background()
	var got []*Buffer
	seen := map[uintptr]bool{}
	for range 5 {
		b, err := p.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		addr := uintptr(unsafe.Pointer(&b.Bytes()[0]))
		if addr%Align != 0 || len(b.Bytes()) != 8192 || cap(b.Bytes()) != 8192 {
			t.Fatalf("buffer at %#x len %d cap %d", addr, len(b.Bytes()), cap(b.Bytes()))
		}
		if seen[addr] {
			t.Fatal("same buffer handed out twice")
		}
		seen[addr] = true
		got = append(got, b)
	}
	if b := p.TryGet(); b != nil {
		t.Fatal("TryGet on an empty pool returned a buffer")
	}
	if s := p.Stats(); s.InUse != 5 || s.Gets != 5 {
		t.Fatalf("stats %+v", s)
	}
	if err := p.Check(); err == nil || !strings.Contains(err.Error(), "5 of 5 buffers not released") ||
		!strings.Contains(err.Error(), "TestAlignedAndBounded") {
		t.Fatalf("Check = %v, want a leak report naming this test", err)
	}
	if err := p.Close(); !errors.Is(err, ErrInUse) {
		t.Fatalf("Close with buffers out = %v", err)
	}
	for _, b := range got {
		b.Release()
	}
}

func TestGetWaitsAndCancels(t *testing.T) {
	p := newPool(t, 8192, 4096)
	ctx := context.Background()
	a, _ := p.Get(ctx)
	b, _ := p.Get(ctx)

	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := p.Get(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get on an empty pool with a deadline = %v", err)
	}

	done := make(chan *Buffer)
	go func() {
		c, err := p.Get(ctx)
		if err != nil {
			t.Error(err)
		}
		done <- c
	}()
	select {
	case <-done:
		t.Fatal("Get returned while the pool was empty")
	case <-time.After(20 * time.Millisecond):
	}
	a.Release()
	c := <-done
	if s := p.Stats(); s.Waits != 2 || s.WaitTime <= 0 || s.InUse != 2 {
		t.Fatalf("stats %+v, want 2 waits", s)
	}
	c.Release()
	b.Release()
}

func TestDoubleReleasePanics(t *testing.T) {
	p := newPool(t, 4096, 4096)
	b, _ := p.Get(context.Background())
	b.Release()
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "BUG") {
			t.Fatalf("second Release: recover() = %v", r)
		}
	}()
	b.Release()
}

// TestNeverMoreThanCapacity hammers the pool from many goroutines and checks that no more
// buffers than the capacity are ever out at once.
func TestNeverMoreThanCapacity(t *testing.T) {
	p := newPool(t, 4*4096, 4096)
	var mu sync.Mutex
	out, peak := 0, 0
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				b, err := p.Get(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				out++
				peak = max(peak, out)
				mu.Unlock()
				b.Bytes()[0]++
				mu.Lock()
				out--
				mu.Unlock()
				b.Release()
			}
		}()
	}
	wg.Wait()
	if peak > 4 {
		t.Fatalf("%d buffers out at once, capacity 4", peak)
	}
	if s := p.Stats(); s.Gets != 32*200 || s.InUse != 0 {
		t.Fatalf("stats %+v", s)
	}
}
