package bench_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/tierd/tierd/devtools/bench"
)

// BenchmarkCopy copies cold 1 GiB and 4 GiB files (TIERD_BENCH_SIZES) into a posix tier
// in each write mode and, in the same runs and interleaved with them, times the durable
// baselines dd with O_DIRECT and dd with conv=fsync (bench.Posix). Reported: median
// throughput per contender, the ratios the goals are stated in, peak RSS, CPU per GiB and
// page-cache residency after each copy. TIERD_BENCH_RUNS sets the runs (default 5),
// TIERD_BENCH_DIR where the files live. `make bench-report` runs the same measurement.
//
//	go test -run '^$' -bench BenchmarkCopy -benchtime 1x ./devtools/bench/
func BenchmarkCopy(b *testing.B) {
	dir := benchDir(b)
	sizes, err := bench.EnvSizes("TIERD_BENCH_SIZES", "1GiB,4GiB")
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range sizes {
		b.Run("size="+bench.FormatSize(size), func(b *testing.B) {
			res, err := bench.Posix(context.Background(), bench.PosixOptions{Dir: dir, Sizes: []int64{size}, Runs: bench.EnvInt("TIERD_BENCH_RUNS", 5), Logf: b.Logf})
			if err != nil {
				b.Fatal(err)
			}
			ps := res.Sizes[0]
			for _, c := range ps.Contenders {
				b.Logf("%v", c)
				b.ReportMetric(c.MBps.Median, c.Name+"-MB/s")
				if c.Baseline != "" {
					b.ReportMetric(c.Ratio, strings.TrimPrefix(c.Name, "tierd-")+"/"+c.Baseline)
					b.ReportMetric(c.MaxRSS.Max()/(1<<20), c.Name+"-peakRSS-MiB")
				}
			}
			reportChecks(b, ps.Checks)
		})
	}
}

// BenchmarkCopyRSS measures peak RSS while 1 and 16 copies of a 1 GiB file
// (TIERD_BENCH_RSS_SIZE) run at once in one process, for pools of 16 and 64 MiB of 8 MiB
// buffers, in each write mode (bench.PosixRSS). Goal: peak RSS <= pool + 48 MiB; a run
// past it fails the benchmark.
//
//	go test -run '^$' -bench BenchmarkCopyRSS -benchtime 1x ./devtools/bench/
func BenchmarkCopyRSS(b *testing.B) {
	size, err := bench.EnvSize("TIERD_BENCH_RSS_SIZE", 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	res, err := bench.PosixRSS(context.Background(), bench.PosixRSSOptions{Dir: benchDir(b), Size: size, Logf: b.Logf})
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range res.Runs {
		b.ReportMetric(float64(r.MaxRSS)/(1<<20), "pool="+bench.FormatSize(r.Pool)+"/conc="+strconv.Itoa(r.Conc)+"/"+r.Mode+"-peakRSS-MiB")
	}
	reportChecks(b, res.Checks)
	for _, c := range res.Checks {
		if !c.Met {
			b.Errorf("%v", c)
		}
	}
}

func benchDir(b *testing.B) string {
	dir, err := bench.Dir()
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

func reportChecks(b *testing.B, checks []bench.Check) {
	for _, c := range checks {
		b.Logf("goal %v", c)
	}
	b.ReportMetric(0, "ns/op") // the framework's time covers every contender
}
