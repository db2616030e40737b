package daemon

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
	"github.com/tierd/tierd/source"
)

// Small RocketMQ geometry for tests.
const (
	clSize    = 64 << 10
	cqSize    = 6000
	idxSlots  = 16
	idxItems  = 64
	idxSize   = 40 + idxSlots*4 + idxItems*20
	testNode  = "node-a"
	testSrc   = "rmq"
	oldMtime  = -time.Hour
	freshTime = 0
)

// store builds a RocketMQ store: 3 commit-log files (the two newest stay unsealed: the
// broker pre-creates the next one), a consume queue of 2 files, and 2 IndexFiles.
// It returns the files that must be offloaded and the active ones.
func store(t *testing.T, root string) (sealed, active []string) {
	t.Helper()
	write := func(rel string, size int, seed uint64, age time.Duration) string {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, segmenttest.Data(seed, size), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Now().Add(age)
		// atime before mtime: with relatime, a read would move it (see assertNotRead).
		os.Chtimes(p, mt.Add(-time.Hour), mt)
		return p
	}
	sealed = append(sealed,
		write("commitlog/00000000000000000000", clSize, 1, oldMtime),
		write("consumequeue/TopicA/0/00000000000000000000", cqSize, 4, oldMtime),
		writeIndex(t, root, "index/20261121081500123", idxItems-1, oldMtime),
	)
	active = append(active,
		write(fmt.Sprintf("commitlog/%020d", clSize), clSize, 2, oldMtime),
		write(fmt.Sprintf("commitlog/%020d", 2*clSize), clSize, 3, freshTime),
		write(fmt.Sprintf("consumequeue/TopicA/0/%020d", cqSize), cqSize, 5, freshTime),
	)
	writeIndex(t, root, "index/20261121091500123", 10, freshTime)
	write("checkpoint", 4096, 8, oldMtime)
	write("abort", 0, 9, oldMtime)
	write("config/topics.json", 100, 10, oldMtime)
	return sealed, active
}

// writeIndex writes an IndexFile of the test geometry holding n items (keys "T#k<i%7>").
func writeIndex(t *testing.T, root, rel string, n int, age time.Duration) string {
	t.Helper()
	p := filepath.Join(root, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := index.NewIndexFileWriter(f, idxSlots, idxItems, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Put(fmt.Sprintf("T#k%d", i%7), int64(1000+100*i), 1_700_000_000_000+int64(i)*500); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	mt := time.Now().Add(age)
	os.Chtimes(p, mt.Add(-time.Hour), mt)
	return p
}

type env struct {
	t       *testing.T
	root    string
	tierDir string
	state   string
	pool    *bufpool.Pool
	cat     *catalog.Catalog
	tier    *posix.Backend
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, root: t.TempDir(), tierDir: t.TempDir(), state: t.TempDir()}
	var err error
	e.pool, err = bufpool.New(bufpool.Config{Budget: 4 * 64 << 10, BufferSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.pool.Check(); err != nil {
			t.Error(err)
		}
	})
	e.openCatalog()
	e.tier, err = posix.New(posix.Config{Path: e.tierDir, WriteMode: posix.Buffered}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) openCatalog() {
	var err error
	e.cat, err = catalog.Open(e.state, testNode, zap.NewNop())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { e.cat.Close() })
}

func (e *env) daemon(mod ...func(*Config)) *Daemon {
	e.t.Helper()
	layout, err := source.NewLayout(source.LayoutRocketMQ, source.LayoutOptions{
		Source: testSrc, CommitLogFileSize: clSize, ConsumeQueueFileSize: cqSize, IndexHashSlots: idxSlots, IndexItems: idxItems,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := Config{
		Node:         testNode,
		Sources:      []Source{{Name: testSrc, Root: e.root, Layout: layout, SealGrace: time.Minute, IndexSlots: idxSlots, IndexItems: idxItems}},
		Tiers:        []Tier{{Name: "hdd", Type: "posix", Backend: e.tier, Concurrency: 2, MaxUsed: 0.999, Usage: e.tier.Usage}},
		Catalog:      e.cat,
		Pool:         e.pool,
		Workers:      3,
		ScanInterval: 50 * time.Millisecond,
		Backoff:      Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond},
		Log:          zaptest.NewLogger(e.t),
	}
	for _, m := range mod {
		m(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// assertNotRead checks a file's atime did not move (it was set before its mtime, so with
// relatime any read would have updated it).
func assertNotRead(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	atime := time.Unix(st.Atim.Sec, st.Atim.Nsec)
	if !atime.Before(fi.ModTime()) {
		t.Errorf("%s was read (atime %v, mtime %v)", path, atime, fi.ModTime())
	}
}

func TestRunOnceOffloadsSealedOnly(t *testing.T) {
	e := newEnv(t)
	sealed, active := store(t, e.root)
	ctx := context.Background()
	if err := e.daemon().RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	ents, err := e.tier.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var objects []string
	for _, en := range ents {
		if !strings.Contains(string(en.Key), "/_tierd/") {
			objects = append(objects, string(en.Key))
		}
	}
	if len(objects) != len(sealed) {
		t.Fatalf("tier holds %q, want the %d sealed segments", objects, len(sealed))
	}
	for _, p := range sealed {
		rel, _ := filepath.Rel(e.root, p)
		key := segment.Key(testNode + "/" + testSrc + "/" + filepath.ToSlash(rel))
		want, _ := os.ReadFile(p)
		if strings.HasPrefix(rel, "index/") { // stored compacted; the local file stays
			key += segment.CompactedSuffix
			got, err := os.ReadFile(filepath.Join(e.tierDir, string(key)))
			if err != nil {
				t.Fatal(err)
			}
			checkCompacted(t, want, got)
			rec, err := e.cat.Get("hdd", key)
			if err != nil || rec.Format != catalog.FormatTix || rec.Size != int64(len(got)) || rec.LocalSize != int64(len(want)) ||
				rec.LocalCRC32C != crc32.Checksum(want, segment.Castagnoli) || rec.CRC32C != crc32.Checksum(got, segment.Castagnoli) {
				t.Fatalf("catalog record of %s: %+v, %v", key, rec, err)
			}
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("local IndexFile gone: %v", err)
			}
		} else {
			got, err := os.ReadFile(filepath.Join(e.tierDir, string(key)))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: not byte-identical on the tier (%v)", key, err)
			}
			rec, err := e.cat.Get("hdd", key)
			if err != nil || rec.Size != int64(len(want)) || rec.Format != catalog.FormatRaw {
				t.Fatalf("catalog record of %s: %+v, %v", key, rec, err)
			}
		}
		if _, err := e.tier.Stat(ctx, mustMarker(t, key)); err != nil {
			t.Fatalf("marker of %s: %v", key, err)
		}
	}
	for _, p := range active {
		assertNotRead(t, p)
	}
	if ints, _ := e.cat.Intents(); len(ints) != 0 {
		t.Fatalf("intents left: %+v", ints)
	}
	// A second pass moves nothing.
	before, _ := e.tier.List(ctx, "")
	if err := e.daemon().RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := e.tier.List(ctx, "")
	if len(after) != len(before) {
		t.Fatalf("second pass changed the tier: %d -> %d objects", len(before), len(after))
	}
	for i := range after {
		if !after[i].ModTime.Equal(before[i].ModTime) {
			t.Fatalf("second pass rewrote %s", after[i].Key)
		}
	}
}

// checkCompacted checks that tix is the compacted form of the IndexFile src (test
// geometry): every key hash's lookup equals the chain walk on src.
func checkCompacted(t *testing.T, src, tix []byte) {
	t.Helper()
	ix, err := index.OpenIndexFile(bytes.NewReader(src), int64(len(src)), idxSlots, idxItems)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := index.OpenTix(bytes.NewReader(tix), int64(len(tix)))
	if err != nil {
		t.Fatal(err)
	}
	if tx.Len() != ix.Len() || tx.Header().Source != ix.Header() || tx.Header().SourceCRC32C != crc32.Checksum(src, segment.Castagnoli) {
		t.Fatalf("compacted header %+v does not describe the IndexFile %+v", tx.Header(), ix.Header())
	}
	found := 0
	if err := ix.Items(nil, func(_ int, it index.Item) error {
		walk, err := ix.LookupHash(it.KeyHash, math.MinInt64, math.MaxInt64, 0)
		if err != nil {
			return err
		}
		got, err := tx.LookupHash(it.KeyHash, math.MinInt64, math.MaxInt64, 0, nil)
		if err != nil {
			return err
		}
		if len(got) != len(walk) {
			t.Fatalf("hash %d: compacted lookup found %d items, the chain walk %d", it.KeyHash, len(got), len(walk))
		}
		for i := range got {
			if got[i].PhyOffset != walk[i].PhyOffset || got[i].TimeDiff != walk[i].TimeDiff {
				t.Fatalf("hash %d: compacted %+v, chain walk %+v", it.KeyHash, got, walk)
			}
		}
		found += len(got)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if ix.Len() > 0 && found == 0 {
		t.Fatal("no lookup found anything")
	}
}

func mustMarker(t *testing.T, key segment.Key) segment.Key {
	mk, err := catalog.MarkerKey(testNode, key)
	if err != nil {
		t.Fatal(err)
	}
	return mk
}

func TestOffloadAfterAndLag(t *testing.T) {
	e := newEnv(t)
	store(t, e.root)
	d := e.daemon(func(c *Config) { c.Tiers[0].OffloadAfter = 2 * time.Hour })
	if err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ents, _ := e.tier.List(context.Background(), ""); len(ents) != 0 {
		t.Fatalf("offloaded %d objects before offload_after", len(ents))
	}
	d = e.daemon(func(c *Config) {
		c.Tiers[0].OffloadAfter = 30 * time.Minute
		c.Tiers[0].MaxUsed = 0.0001 // the guard pauses the tier
	})
	if err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := d.Status()
	if !st.Tiers[0].Paused || st.Tiers[0].Due != 3 || st.Tiers[0].OldestDueSeconds < 3000 {
		t.Fatalf("paused tier status %+v: want paused with 3 due, about an hour late", st.Tiers[0])
	}
	if ents, _ := e.tier.List(context.Background(), ""); len(ents) != 0 {
		t.Fatalf("a paused tier received %d objects", len(ents))
	}
}

// failingBackend fails Create a given number of times.
type failingBackend struct {
	segment.Backend
	mu    sync.Mutex
	fails int
}

func (f *failingBackend) Create(ctx context.Context, key segment.Key, size int64) (segment.Writer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 && !strings.Contains(string(key), "/_tierd/") {
		f.fails--
		return nil, fmt.Errorf("injected failure")
	}
	return f.Backend.Create(ctx, key, size)
}

func TestRetries(t *testing.T) {
	e := newEnv(t)
	sealed, _ := store(t, e.root)
	// Two failures: within the three attempts of one job, so one pass completes.
	fb := &failingBackend{Backend: e.tier, fails: 2}
	d := e.daemon(func(c *Config) { c.Tiers[0].Backend = fb; c.Attempts = 3; c.Workers = 1 })
	if err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if recs, _ := e.cat.List("hdd"); len(recs) != len(sealed) {
		t.Fatalf("%d records after retries, want %d", len(recs), len(sealed))
	}
	// A tier that keeps failing: the pass reports every segment, and nothing is recorded.
	e2 := newEnv(t)
	store(t, e2.root)
	fb = &failingBackend{Backend: e2.tier, fails: 1000}
	d = e2.daemon(func(c *Config) { c.Tiers[0].Backend = fb })
	err := d.RunOnce(context.Background())
	if err == nil || strings.Count(err.Error(), "injected failure") != len(sealed) {
		t.Fatalf("RunOnce on a failing tier = %v; want one error per segment", err)
	}
	if st := d.Status(); !st.Tiers[0].Failing || st.Ready {
		t.Fatalf("status of a failing tier: %+v", st)
	}
	if recs, _ := e2.cat.List(""); len(recs) != 0 {
		t.Fatalf("failing tier: %d records", len(recs))
	}
	if ents, _ := e2.tier.List(context.Background(), ""); len(ents) != 0 {
		t.Fatalf("failing tier: %d objects", len(ents))
	}
}

// slowFailingBackend fails every Create after a delay and records how many overlap.
type slowFailingBackend struct {
	segment.Backend
	mu         sync.Mutex
	calls      int // Creates started
	active     int // Creates running
	maxOverlap int // most Creates running at once among calls after the first burst
	burst      int // calls that may overlap: those started before the tier was known failing
}

func (f *slowFailingBackend) Create(ctx context.Context, key segment.Key, size int64) (segment.Writer, error) {
	f.mu.Lock()
	f.calls++
	f.active++
	if f.calls > f.burst {
		f.maxOverlap = max(f.maxOverlap, f.active)
	}
	f.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	f.mu.Lock()
	f.active--
	f.mu.Unlock()
	return nil, fmt.Errorf("injected outage")
}

// TestFailingTierGetsOneJob: once a tier fails, it gets one job at a time (a probe) and
// the other workers serve the tiers that work.
func TestFailingTierGetsOneJob(t *testing.T) {
	e := newEnv(t)
	sealed, _ := store(t, e.root)
	other, err := posix.New(posix.Config{Path: t.TempDir(), WriteMode: posix.Buffered}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	bad := &slowFailingBackend{Backend: other, burst: 3}
	d := e.daemon(func(c *Config) {
		c.Sources[0].SealGrace = 0
		c.Workers, c.Attempts = 3, 1
		c.Tiers = append(c.Tiers, Tier{Name: "s3", Type: "s3", Backend: bad, Concurrency: 3})
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs, _ := e.cat.List("hdd")
		bad.mu.Lock()
		calls := bad.calls
		bad.mu.Unlock()
		if len(recs) == len(sealed) && calls >= 12 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d segments on the working tier, %d tries on the failing one", len(recs), len(sealed), calls)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if bad.maxOverlap > 1 {
		t.Errorf("a failing tier ran %d jobs at once after its first failures; want 1", bad.maxOverlap)
	}
	if st := d.Status(); !st.Tiers[1].Failing {
		t.Errorf("status: %+v", st.Tiers[1])
	}
}

// TestRecoverIntents: a crash after Commit but before the catalog record leaves an
// intent and a committed object; the next start finishes it. A crash mid-copy leaves an
// intent and nothing visible; the next start rolls it back.
func TestRecoverIntents(t *testing.T) {
	e := newEnv(t)
	sealed, _ := store(t, e.root)
	ctx := context.Background()
	rel, _ := filepath.Rel(e.root, sealed[0])
	key, _ := segment.ObjectKey(testNode, testSrc, filepath.ToSlash(rel))
	data, _ := os.ReadFile(sealed[0])
	if _, err := e.cat.Begin(catalog.Intent{Tier: "hdd", Key: key, Source: testSrc, Rel: filepath.ToSlash(rel), Kind: "commitlog", Op: catalog.OpOffload}); err != nil {
		t.Fatal(err)
	}
	w, _ := e.tier.Create(ctx, key, int64(len(data)))
	w.Write(data)
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	rel2, _ := filepath.Rel(e.root, sealed[1])
	key2, _ := segment.ObjectKey(testNode, testSrc, filepath.ToSlash(rel2))
	if _, err := e.cat.Begin(catalog.Intent{Tier: "hdd", Key: key2, Source: testSrc, Rel: filepath.ToSlash(rel2), Op: catalog.OpOffload}); err != nil {
		t.Fatal(err)
	}
	e.cat.StartRun() // the crashed run's abort marker
	var aborted []string
	d := e.daemon(func(c *Config) {
		c.Sources[0].SealGrace = 100 * time.Hour // offload nothing new
		c.Tiers[0].AbortUpload = func(ctx context.Context, key segment.Key, id string) error {
			aborted = append(aborted, string(key)+"#"+id)
			return nil
		}
	})
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// Neither intent journaled an upload id: every upload of each key and of its marker's
	// is aborted.
	want := []string{string(key) + "#", string(mustMarker(t, key)) + "#", string(key2) + "#", string(mustMarker(t, key2)) + "#"}
	if !slices.Equal(aborted, want) {
		t.Errorf("uploads aborted: %v; want %v", aborted, want)
	}
	if ints, _ := e.cat.Intents(); len(ints) != 0 {
		t.Fatalf("intents left: %+v", ints)
	}
	rec, err := e.cat.Get("hdd", key)
	if err != nil || rec.Size != int64(len(data)) || rec.Kind != "commitlog" {
		t.Fatalf("completed intent: record %+v, %v", rec, err)
	}
	if _, err := e.tier.Stat(ctx, mustMarker(t, key)); err != nil {
		t.Fatalf("completed intent has no marker: %v", err)
	}
	if _, err := e.cat.Get("hdd", key2); err == nil {
		t.Fatal("rolled back intent has a record")
	}
}

func TestReconcileDropsMissing(t *testing.T) {
	e := newEnv(t)
	store(t, e.root)
	ctx := context.Background()
	if err := e.daemon().RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _ := e.cat.List("hdd")
	os.Remove(filepath.Join(e.tierDir, string(recs[0].Key)))
	rep, err := e.daemon().Reconcile(ctx)
	if err != nil || rep.Checked != len(recs) || len(rep.Dropped) != 1 {
		t.Fatalf("Reconcile = %+v, %v", rep, err)
	}
	// The next pass offloads it again.
	if err := e.daemon().RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cat.Get("hdd", recs[0].Key); err != nil {
		t.Fatalf("not offloaded again: %v", err)
	}
}

func TestRunServesHTTPAndStops(t *testing.T) {
	e := newEnv(t)
	sealed, _ := store(t, e.root)
	d := e.daemon(func(c *Config) { c.Listen = "127.0.0.1:0"; c.Sources[0].SealGrace = 0 })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs, _ := e.cat.List("hdd")
		if len(recs) == len(sealed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d segments offloaded", len(recs), len(sealed))
		}
		time.Sleep(20 * time.Millisecond)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + d.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if c, _ := get("/healthz"); c != 200 {
		t.Fatalf("/healthz %d", c)
	}
	if c, b := get("/readyz"); c != 200 {
		t.Fatalf("/readyz %d: %s", c, b)
	}
	// A batch's jobs are counted just after its group commit: wait for that too.
	for {
		c, b := get("/status")
		if c == 200 && strings.Contains(b, `"segments_offloaded": 3`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status %d: %s", c, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c, b := get("/metrics"); c != 200 || !strings.Contains(b, `tierd_offloaded_segments_total{tier="hdd"} 3`) ||
		!strings.Contains(b, "tierd_pool_buffers 4") || !strings.Contains(b, `tierd_oldest_pending_seconds{tier="hdd"} 0`) {
		t.Fatalf("/metrics %d: %s", c, b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.state, catalog.AbortFile)); err == nil {
		t.Fatal("abort marker left after a clean stop")
	}
}
