package compactor

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
)

var benchBuffers = flag.Int("rehydrate.buffers", 8, "BenchmarkRehydrate: 8 MiB pool buffers (half of them for the rehydration)")

// BenchmarkRehydrate rehydrates the compacted form of a broker-like IndexFile of
// 1,000,000 items (250,000 slots; 20 MB) from memory into a Writer that discards, with
// a pool of 8 MiB buffers (default 8, the default 64 MiB pool; the rehydration holds
// half: a window of 3 x 349,525 items, so one window, 2 passes; -rehydrate.buffers 2
// gives a window of 349,525 items: 3 windows, 7 passes), and in the same
// run times the baseline: one checked pass over the compacted index (index.Tix.Items),
// the unit a rehydration repeats. Reported: seconds per rehydration, passes, and the
// ratio of the rehydration to passes x baseline (the cost of selecting, sorting and
// writing the IndexFile on top of reading).
//
//	go test -run '^$' -bench BenchmarkRehydrate -benchtime 3x ./compactor/
func BenchmarkRehydrate(b *testing.B) {
	const n, slots = 1_000_000, 250_000
	rng := rand.New(rand.NewPCG(1, 1))
	puts := randomPuts(rng, keyPool(b), n, 1_700_000_000_000)
	for i := range puts {
		puts[i].key = fmt.Sprintf("T#k%d", rng.IntN(n/4))
	}
	src := buildIndex(b, slots, n+1, 0, 0, puts)
	tix, _, err := compactMem(b, src, Options{Slots: slots, Items: n + 1, Pool: newPool(b, 8<<20, 4)})
	if err != nil {
		b.Fatal(err)
	}
	src = nil
	tf := &memFile{b: tix}
	tx, err := index.OpenTix(tf, tf.size())
	if err != nil {
		b.Fatal(err)
	}
	pool := newPool(b, 8<<20, *benchBuffers)
	var passes int
	var rehydrate, baseline time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		w := &discardWriter{}
		res, err := Rehydrate(context.Background(), tf, tf.size(), RehydrateOptions{Pool: pool},
			func(size int64) (segment.Writer, error) { w.size = size; return w, nil })
		if err != nil {
			b.Fatal(err)
		}
		rehydrate += time.Since(start)
		passes = res.Passes
		start = time.Now()
		if err := tx.Items(make([]byte, 2*maxHeapRead), func(int, index.TixItem) error { return nil }); err != nil {
			b.Fatal(err)
		}
		baseline += time.Since(start)
	}
	per, pass := rehydrate.Seconds()/float64(b.N), baseline.Seconds()/float64(b.N)
	b.Logf("%d items, %d-byte compacted index: rehydration %.3fs in %d passes; one checked pass %.3fs; ratio %.2f", n, len(tix), per, passes, pass, per/(float64(passes)*pass))
	b.ReportMetric(per, "rehydrate-s")
	b.ReportMetric(float64(passes), "passes")
	b.ReportMetric(per/(float64(passes)*pass), "ratio-to-passes")
	b.ReportMetric(0, "ns/op")
}
