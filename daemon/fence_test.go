package daemon

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/segment"
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

// downFence is a lease on a store that may not answer: while down, every request fails
// as a connection would.
type downFence struct {
	memFence
	down atomic.Bool
}

func (f *downFence) Acquire(ctx context.Context) error {
	if f.down.Load() {
		return errors.New("dial tcp 127.0.0.1:9: connect: connection refused")
	}
	return f.memFence.Acquire(ctx)
}

func (f *downFence) Renew(ctx context.Context) error { return f.Acquire(ctx) }

// heldErr is what s3.LeaseHeldError looks like to the daemon.
type heldErr struct{ holder string }

func (e heldErr) Error() string   { return "node node-a is held by another tierd (" + e.holder + ")" }
func (e heldErr) LeaseHeld() bool { return true }

type heldFence struct{ memFence }

func (f *heldFence) Acquire(context.Context) error   { return heldErr{"install-other@host"} }
func (f *heldFence) Renew(ctx context.Context) error { return f.Acquire(ctx) }

// TestFencingScope: a lease another installation holds fences only its tier, and a store
// that cannot be asked for the lease makes only its tier unreachable (not "held"): the
// other tiers offload throughout, and the unreachable tier catches up by itself once its
// store answers.
func TestFencingScope(t *testing.T) {
	e := newEnv(t)
	sealed, _ := store(t, e.root)
	tierB, err := posix.New(posix.Config{Path: t.TempDir(), WriteMode: posix.Buffered}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	tierC, err := posix.New(posix.Config{Path: t.TempDir(), WriteMode: posix.Buffered}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	down := &downFence{memFence: memFence{l: &memLease{}, holder: "me", ttl: 900 * time.Millisecond}}
	down.down.Store(true)
	held := &heldFence{memFence{l: &memLease{}, holder: "me", ttl: 900 * time.Millisecond}}
	d := e.daemon(func(c *Config) {
		c.Tiers = append(c.Tiers,
			Tier{Name: "s3", Type: "s3", Backend: tierB, Concurrency: 2, Fence: down},
			Tier{Name: "other", Type: "s3", Backend: tierC, Concurrency: 2, Fence: held})
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	count := func(tier string) int {
		recs, _ := e.cat.List(tier)
		return len(recs)
	}
	waitFor(t, 20*time.Second, "the hdd tier offloads while the others are fenced", func() bool { return count("hdd") == len(sealed) })
	st := d.Status()
	reasons := strings.Join(st.Reasons, "\n")
	if st.Ready || !strings.Contains(reasons, "tier s3: unreachable") || !strings.Contains(reasons, "connection refused") ||
		!strings.Contains(reasons, "tier other: not offloading") || !strings.Contains(reasons, "install-other") ||
		strings.Contains(reasons, "tier s3: not offloading") {
		t.Fatalf("status reasons:\n%s", reasons)
	}
	for _, ts := range st.Tiers {
		if ts.Fenced != (ts.Name != "hdd") {
			t.Errorf("tier %s fenced = %v", ts.Name, ts.Fenced)
		}
	}
	if count("s3") != 0 || count("other") != 0 {
		t.Fatalf("fenced tiers offloaded: s3 %d, other %d", count("s3"), count("other"))
	}
	// The metrics move while the tier is unreachable: the lag grows, the tier is failing.
	lag1 := metric(t, d, `tierd_oldest_pending_seconds{tier="s3"}`)
	time.Sleep(1100 * time.Millisecond)
	if lag2 := metric(t, d, `tierd_oldest_pending_seconds{tier="s3"}`); lag1 <= 0 || lag2 < lag1+1 {
		t.Errorf("tierd_oldest_pending_seconds of the unreachable tier: %v then %v a second later", lag1, lag2)
	}
	for series, want := range map[string]float64{
		`tierd_tier_failing{tier="s3"}`: 1, `tierd_tier_fenced{tier="s3"}`: 1, `tierd_tier_failing{tier="other"}`: 0,
		`tierd_tier_fenced{tier="other"}`: 1, `tierd_tier_failing{tier="hdd"}`: 0, `tierd_tier_fenced{tier="hdd"}`: 0,
		`tierd_pending_segments{tier="hdd"}`: 0, `tierd_pending_segments{tier="s3"}`: float64(len(sealed)),
	} {
		if got := metric(t, d, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	down.down.Store(false) // the store answers again
	waitFor(t, 20*time.Second, "the unreachable tier catches up", func() bool { return count("s3") == len(sealed) })
	if count("other") != 0 {
		t.Fatal("the tier held by another installation was offloaded to")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// downBackend is a tier whose store may not answer.
type downBackend struct {
	segment.Backend
	down atomic.Bool
}

var errDown = errors.New("dial tcp 127.0.0.1:9: connect: connection refused")

func (b *downBackend) Create(ctx context.Context, key segment.Key, size int64) (segment.Writer, error) {
	if b.down.Load() {
		return nil, errDown
	}
	return b.Backend.Create(ctx, key, size)
}

func (b *downBackend) Stat(ctx context.Context, key segment.Key) (segment.Info, error) {
	if b.down.Load() {
		return segment.Info{}, errDown
	}
	return b.Backend.Stat(ctx, key)
}

func (b *downBackend) Delete(ctx context.Context, key segment.Key) error {
	if b.down.Load() {
		return errDown
	}
	return b.Backend.Delete(ctx, key)
}

// TestStartsWithTierDown: after a crash that left an intent on a tier whose store is
// down, the daemon starts anyway and offloads to the other tier; the intent and the
// crash's reconcile of that tier stay pending (the abort marker is kept if the daemon
// stops before), and are done by themselves once the store answers.
func TestStartsWithTierDown(t *testing.T) {
	e := newEnv(t)
	sealed, _ := store(t, e.root)
	tierB, err := posix.New(posix.Config{Path: t.TempDir(), WriteMode: posix.Buffered}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	flaky := &downBackend{Backend: tierB}
	flaky.down.Store(true)
	rel, _ := filepath.Rel(e.root, sealed[0])
	key, _ := segment.ObjectKey(testNode, testSrc, filepath.ToSlash(rel))
	if _, err := e.cat.Begin(catalog.Intent{Tier: "s3", Key: key, Source: testSrc, Rel: filepath.ToSlash(rel), Kind: "commitlog", Op: catalog.OpOffload}); err != nil {
		t.Fatal(err)
	}
	// A record of the crashed run on s3, which the reconcile after the crash must check.
	rel1, _ := filepath.Rel(e.root, sealed[1])
	key1, _ := segment.ObjectKey(testNode, testSrc, filepath.ToSlash(rel1))
	data1, _ := os.ReadFile(sealed[1])
	w, _ := tierB.Create(context.Background(), key1, int64(len(data1)))
	w.Write(data1)
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	crc1 := crc32.Checksum(data1, segment.Castagnoli)
	fi1, _ := os.Stat(sealed[1])
	if err := e.cat.Put(catalog.Record{Tier: "s3", Key: key1, Source: testSrc, Rel: filepath.ToSlash(rel1), Kind: "consumequeue", Format: catalog.FormatRaw,
		Size: int64(len(data1)), CRC32C: crc1, LocalSize: int64(len(data1)), LocalCRC32C: crc1, SegmentModTime: fi1.ModTime(), OffloadedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e.cat.StartRun() // the crashed run's abort marker
	withS3 := func(c *Config) {
		c.Tiers = append(c.Tiers, Tier{Name: "s3", Type: "s3", Backend: flaky, Concurrency: 2})
	}
	count := func(tier string) int {
		recs, _ := e.cat.List(tier)
		return len(recs)
	}
	run := func(until func() bool, what string) *Daemon {
		d := e.daemon(withS3)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		waitFor(t, 20*time.Second, what, until)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
		return d
	}
	run(func() bool { return count("hdd") == len(sealed) }, "hdd offloads with the s3 store down after a crash")
	if ints, _ := e.cat.Intents(); len(ints) != 1 || count("s3") != 1 {
		t.Fatalf("with the store down: intents %+v, s3 records %d", ints, count("s3"))
	}
	if _, err := os.Stat(filepath.Join(e.state, catalog.AbortFile)); err != nil {
		t.Fatalf("abort marker removed with a reconcile pending: %v", err)
	}
	flaky.down.Store(false)
	run(func() bool {
		ints, _ := e.cat.Intents()
		return len(ints) == 0 && count("s3") == len(sealed)
	}, "the intent is settled and s3 catches up once the store answers")
	if _, err := os.Stat(filepath.Join(e.state, catalog.AbortFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("abort marker after a run that reconciled everything: %v", err)
	}
}

// metric scrapes d's /metrics and returns one series' value.
func metric(t *testing.T, d *Daemon, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	d.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in /metrics", series)
	return 0
}
