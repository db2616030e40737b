package bench_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tierd/tierd/devtools/bench"
)

// BenchmarkCompact compacts full-size IndexFiles (5,000,000 slots, 20,000,000 items,
// 420,000,040 bytes, generated once into $TIERD_BENCH_DIR and kept) at 1 %, 50 % and
// 100 % fill into a posix tier in direct mode, from a cold source, and in the same runs,
// interleaved, times the baseline of reading the input and writing the output with dd
// (O_DIRECT both ways) (bench.Compaction). Reported per fill: median compaction time,
// its ratio to the baseline (goal <= 1.5), passes over the input, the compacting
// process's peak RSS against the pool (goal <= pool + 64 MiB), compacted bytes per item
// (goal <= 18), and the ranged reads a lookup makes (goal <= 2), over a sample of the
// file's own key hashes.
//
//	go test -run '^$' -bench BenchmarkCompact -benchtime 1x -timeout 60m ./devtools/bench/
//
// TIERD_BENCH_RUNS sets the runs per fill (default 5), TIERD_BENCH_COMPACT_POOL the pool
// (default 64MiB of 8 MiB buffers), TIERD_BENCH_COMPACT_BUFFERS the pool buffers a
// compaction may hold (default: the whole pool; the daemon's default is half of it).
func BenchmarkCompact(b *testing.B) {
	dir, err := bench.Dir()
	if err != nil {
		b.Fatal(err)
	}
	pool, err := bench.EnvSize("TIERD_BENCH_COMPACT_POOL", bench.DefaultPool)
	if err != nil || pool < 2*bench.DefaultBufSize {
		b.Fatalf("TIERD_BENCH_COMPACT_POOL: want a size of at least 16MiB (%v)", err)
	}
	for _, fill := range []int{1, 50, 100} {
		b.Run(fmt.Sprintf("fill=%d%%", fill), func(b *testing.B) {
			res, err := bench.Compaction(context.Background(), bench.CompactOptions{
				Dir: dir, Fills: []int{fill}, Runs: bench.EnvInt("TIERD_BENCH_RUNS", 5), Pool: pool,
				MaxBuffers: bench.EnvInt("TIERD_BENCH_COMPACT_BUFFERS", 0), Logf: b.Logf,
			})
			if err != nil {
				b.Fatal(err)
			}
			f := res.Fills[0]
			for _, c := range f.Contenders {
				b.Logf("%v", c)
			}
			tierd := f.Contenders[0]
			b.Logf("fill %d%%: %d items; output %d bytes = %.2f B/item; %d passes with %d window buffers (%d partitioned); median phases: counting %.3fs, filling %.3fs (reading and partitioning %.3fs, placing %.3fs), writing %.3fs",
				fill, f.Items, f.OutSize, f.BytesPerItem, f.Passes, f.Buffers, f.Partitioned, f.CountSecs, f.FillSecs, f.ScanSecs, f.PlaceSecs, f.WriteSecs)
			b.Logf("lookups of %d sampled key hashes: %.3f ranged reads on average, at most %d; bucket run %.0f bytes on average",
				f.LookupsSampled, f.ReadsPerLookup, f.MaxReads, f.RunBytes)
			for _, c := range f.Checks {
				b.Logf("goal %v", c)
			}
			b.ReportMetric(tierd.Secs.Median, "compact-s")
			b.ReportMetric(tierd.Ratio, "ratio-to-dd")
			b.ReportMetric(float64(f.Passes), "passes")
			b.ReportMetric(tierd.MaxRSS.Max()/(1<<20), "peakRSS-MiB")
			b.ReportMetric(tierd.CPUPerGiB.Median, "cpu-s/GiB")
			b.ReportMetric(f.BytesPerItem, "B/item")
			b.ReportMetric(f.ReadsPerLookup, "reads/lookup")
			b.ReportMetric(0, "ns/op")
		})
	}
}
