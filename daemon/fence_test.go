package daemon

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// memLease is one node's lease, shared by the fences of several installations.
type memLease struct {
	mu      sync.Mutex
	holder  string
	expires time.Time
}

type memFence struct {
	l      *memLease
	holder string
	ttl    time.Duration
}

func (f *memFence) Acquire(context.Context) error {
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	if f.l.holder != "" && f.l.holder != f.holder && time.Now().Before(f.l.expires) {
		return fmt.Errorf("node held by %s until %s", f.l.holder, f.l.expires.Format(time.TimeOnly))
	}
	f.l.holder, f.l.expires = f.holder, time.Now().Add(f.ttl)
	return nil
}

func (f *memFence) Renew(ctx context.Context) error { return f.Acquire(ctx) }

func (f *memFence) Release(context.Context) error {
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	if f.l.holder == f.holder {
		f.l.holder = ""
	}
	return nil
}

func (f *memFence) TTL() time.Duration { return f.ttl }

// TestFencing: two installations of one node share a tier; while the first runs, the
// second refuses to offload with a clear error (run --once) or waits, not ready (run);
// once the first stops, the second offloads.
func TestFencing(t *testing.T) {
	lease := &memLease{}
	a, b := newEnv(t), newEnv(t)
	store(t, a.root)
	store(t, b.root)
	b.tier = a.tier // the same bucket
	fence := func(holder string) func(*Config) {
		return func(c *Config) { c.Tiers[0].Fence = &memFence{l: lease, holder: holder, ttl: time.Minute} }
	}
	ctx, cancel := context.WithCancel(context.Background())
	da := a.daemon(fence("install-a"))
	done := make(chan error, 1)
	go func() { done <- da.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for recs, _ := a.cat.List(""); len(recs) < 3; recs, _ = a.cat.List("") {
		if time.Now().After(deadline) {
			t.Fatal("the lease holder did not offload")
		}
		time.Sleep(20 * time.Millisecond)
	}

	err := b.daemon(fence("install-b")).RunOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "held by install-a") {
		t.Fatalf("second installation's run --once = %v, want a clear refusal", err)
	}
	if recs, _ := b.cat.List(""); len(recs) != 0 {
		t.Fatalf("second installation offloaded %d segments while fenced", len(recs))
	}
	bctx, bcancel := context.WithCancel(context.Background())
	db := b.daemon(fence("install-b"), func(c *Config) { c.Listen = "" })
	bdone := make(chan error, 1)
	go func() { bdone <- db.Run(bctx) }()
	time.Sleep(300 * time.Millisecond)
	if st := db.Status(); st.Ready || len(st.Reasons) == 0 || !strings.Contains(st.Reasons[len(st.Reasons)-1], "install-a") {
		t.Fatalf("fenced daemon status: %+v", st)
	}
	if recs, _ := b.cat.List(""); len(recs) != 0 {
		t.Fatal("fenced daemon offloaded")
	}
	bcancel()
	if err := <-bdone; err != nil {
		t.Fatal(err)
	}

	cancel() // the holder stops and releases the lease
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := b.daemon(fence("install-b")).RunOnce(context.Background()); err != nil {
		t.Fatalf("after the holder stopped: %v", err)
	}
	if recs, _ := b.cat.List(""); len(recs) != 3 {
		t.Fatalf("second installation offloaded %d of 3 once free", len(recs))
	}
}
