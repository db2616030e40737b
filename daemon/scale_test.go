package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/source"
)

// kafkaStore writes a Kafka log.dir of parts partitions, each with segs sealed segments
// (a 1 KiB .log and empty .index and .timeindex, as Kafka leaves small segments) and an
// active one, all an hour old. It returns the number of sealed files.
func kafkaStore(tb testing.TB, root string, parts, segs int) int {
	tb.Helper()
	old := time.Now().Add(-time.Hour)
	log := make([]byte, 1024)
	for p := range parts {
		dir := filepath.Join(root, fmt.Sprintf("topic%d-%d", p/100, p%100))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		for s := range segs + 1 {
			base := filepath.Join(dir, fmt.Sprintf("%020d", s*1000))
			for _, f := range []struct {
				ext  string
				data []byte
			}{{".log", log}, {".index", nil}, {".timeindex", nil}} {
				if err := os.WriteFile(base+f.ext, f.data, 0o644); err != nil {
					tb.Fatal(err)
				}
				os.Chtimes(base+f.ext, old, old)
			}
		}
		os.Chtimes(dir, old, old)
	}
	os.WriteFile(filepath.Join(root, "meta.properties"), []byte("version=1\n"), 0o644)
	return parts * segs * 3
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// scaleRun scans a Kafka store of parts partitions and plans over it the way the daemon
// does (two scans, so every file seals, then a dry-run plan and a dispatch look per tier),
// and returns the live heap while the daemon still holds everything it keeps.
func scaleRun(t *testing.T, parts int) (heap uint64, sealed int) {
	e := newEnv(t)
	want := kafkaStore(t, e.root, parts, 7)
	layout, err := source.NewLayout(source.LayoutKafka, source.LayoutOptions{Source: testSrc})
	if err != nil {
		t.Fatal(err)
	}
	d := e.daemon(func(c *Config) {
		c.Sources = []Source{{Name: testSrc, Root: e.root, Layout: layout}}
		c.Tiers[0].OffloadAfter = 0
		c.Log = zap.NewNop()
	})
	ctx := context.Background()
	if err := d.start(ctx); err != nil {
		t.Fatal(err)
	}
	d.scan(ctx)
	d.scan(ctx)
	if s := d.sources[testSrc]; s.sealed != want || s.scanErr != nil {
		t.Fatalf("%d sealed, want %d (%v)", s.sealed, want, s.scanErr)
	}
	recordHalf(t, d)
	now := d.cfg.Now()
	for range 100 { // dispatch looks, as the daemon makes one per job
		if _, ok, err := d.nextJob(now); err != nil || !ok {
			t.Fatalf("no job: %v", err)
		}
	}
	d.noteLag(now, true)
	heap = liveHeap()
	runtime.KeepAlive(d)
	if err := d.finish(); err != nil {
		t.Fatal(err)
	}
	return heap, want
}

// recordHalf records every other sealed file of the test source as offloaded to hdd (as a
// batch's group commit does), so that the catalog holds records as well as local state.
func recordHalf(t *testing.T, d *Daemon) {
	cat := d.cfg.Catalog
	var recs []catalog.Record
	var ins []catalog.Intent
	flush := func() {
		got, err := cat.BeginAll(ins)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]uint64, len(got))
		for i := range got {
			ids[i] = got[i].ID
		}
		if err := cat.CommitAll(recs, ids, nil); err != nil {
			t.Fatal(err)
		}
		recs, ins = recs[:0], ins[:0]
	}
	i := 0
	err := cat.WalkLocal(testSrc, func(f catalog.LocalFile) error {
		if i++; i%2 == 0 || !f.Sealed {
			return nil
		}
		key, err := catalog.SegmentKey(d.cfg.Node, f.Source, f.Rel, f.Kind)
		if err != nil {
			return err
		}
		now := time.Now()
		recs = append(recs, catalog.Record{Tier: "hdd", Key: key, Source: f.Source, Rel: f.Rel, Kind: f.Kind, Format: catalog.FormatRaw,
			Size: f.Size, LocalSize: f.Size, SegmentModTime: f.ModTime, OffloadedAt: now, Verified: now})
		ins = append(ins, catalog.Intent{Tier: "hdd", Key: key, Op: catalog.OpOffload})
		if len(recs) == 512 {
			flush()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	flush()
}

// TestHeapDoesNotGrowWithFiles (docs/DESIGN.md invariant 9): the daemon's live heap after
// scanning, sealing, recording half the files as offloaded and planning over a store of
// 4N files and 2N records is within a small constant of the heap with N files and N/2
// records. It asserts growth, not time.
func TestHeapDoesNotGrowWithFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 30,000 files")
	}
	small, n := scaleRun(t, 250)
	large, m := scaleRun(t, 1000)
	t.Logf("live heap: %d files %.1f MiB, %d files %.1f MiB", n, float64(small)/(1<<20), m, float64(large)/(1<<20))
	const slack = 2 << 20
	if large > small+slack {
		t.Fatalf("live heap grew by %.1f MiB from %d to %d files (allowed %.1f MiB)",
			float64(large-small)/(1<<20), n, m, float64(slack)/(1<<20))
	}
}
