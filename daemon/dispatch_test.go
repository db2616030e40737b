package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
)

// countingBackend counts the objects created under each key (markers left out).
type countingBackend struct {
	segment.Backend
	mu      sync.Mutex
	creates map[segment.Key]int
}

func (c *countingBackend) Create(ctx context.Context, key segment.Key, size int64) (segment.Writer, error) {
	if !strings.Contains(string(key), "/_tierd/") {
		c.mu.Lock()
		c.creates[key]++
		c.mu.Unlock()
	}
	return c.Backend.Create(ctx, key, size)
}

// TestDaemonNeverCopiesTwice (issue 15): the daemon runs many dispatch cycles (a short
// scan interval, more workers than tier slots, every finished job waking a dispatch) over
// a store to which new segments keep arriving, and no key is ever copied twice to a tier.
func TestDaemonNeverCopiesTwice(t *testing.T) {
	e := newEnv(t)
	const queues, files = 6, 8
	write := func(q, i int, age time.Duration) {
		p := filepath.Join(e.root, fmt.Sprintf("consumequeue/T/%d/%020d", q, i*cqSize))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, segmenttest.Data(uint64(q*100+i), cqSize), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Now().Add(age)
		os.Chtimes(p, mt, mt)
	}
	for q := range queues {
		for i := range files / 2 {
			write(q, i, -time.Hour)
		}
	}
	counter := &countingBackend{Backend: e.tier, creates: map[segment.Key]int{}}
	d := e.daemon(func(c *Config) {
		c.Sources[0].SealGrace = 0
		c.ScanInterval = 10 * time.Millisecond
		c.Workers = 4
		c.Tiers[0].Backend = counter
		c.Tiers[0].Concurrency = 3
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	// New segments arrive while the daemon runs: each queue rolls to the next file.
	for i := files / 2; i < files; i++ {
		time.Sleep(100 * time.Millisecond)
		for q := range queues {
			write(q, i, -time.Minute)
		}
	}
	want := queues * (files - 1) // the newest file of each queue stays active
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs, _ := e.cat.List("hdd")
		if len(recs) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d segments offloaded", len(recs), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // dozens more scan and dispatch cycles
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	counter.mu.Lock()
	defer counter.mu.Unlock()
	if len(counter.creates) != want {
		t.Fatalf("%d keys created, want %d", len(counter.creates), want)
	}
	for k, n := range counter.creates {
		if n != 1 {
			t.Errorf("%s copied %d times", k, n)
		}
	}
}
