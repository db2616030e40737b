package posix

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/internal/benchutil"
	"github.com/tierd/tierd/segment"
)

// copyToTier is what an offload does: open the cold source without polluting the page
// cache, stream it into the tier through the pool, commit.
func copyToTier(ctx context.Context, b *Backend, pool *bufpool.Pool, src string, key segment.Key) error {
	r, err := OpenFile(src, ReadOptions{Direct: b.Mode() == Direct})
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := b.Create(ctx, key, r.Size())
	if err != nil {
		return err
	}
	if _, err := segment.Copy(ctx, w, r, r.Size(), pool); err != nil {
		_ = w.Abort()
		return err
	}
	if err := w.Commit(ctx); err != nil {
		_ = w.Abort()
		return err
	}
	return nil
}

type contender struct {
	name string
	run  func(b *testing.B, src, dst string) (time.Duration, error)
}

// BenchmarkCopy copies 1 GiB and 4 GiB files (TIERD_BENCH_SIZES) into a posix tier in
// each write mode and, in the same run and interleaved with them, times the durable
// baselines dd with O_DIRECT and dd with conv=fsync. Every source read starts cold.
// Reported: median throughput per contender, the ratios the goals are stated in, the
// process's peak RSS during tierd's copies, and page-cache residency after each copy.
//
//	go test -run '^$' -bench BenchmarkCopy -benchtime 1x ./posix/
func BenchmarkCopy(b *testing.B) {
	dir := benchutil.Dir(b)
	const poolSize, bufSize = 64 << 20, 8 << 20
	pool, err := bufpool.New(bufpool.Config{Budget: poolSize, BufferSize: bufSize})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	tierDir := filepath.Join(dir, "tier")
	backends := map[Mode]*Backend{}
	for _, m := range []Mode{Direct, Mmap, Buffered} {
		be, err := New(Config{Path: tierDir, WriteMode: m}, nil)
		if err != nil {
			b.Fatal(err)
		}
		backends[m] = be
	}
	tierd := func(m Mode) contender {
		return contender{"tierd-" + string(m), func(b *testing.B, src, dst string) (time.Duration, error) {
			rel, _ := filepath.Rel(tierDir, dst)
			start := time.Now()
			err := copyToTier(context.Background(), backends[m], pool, src, segment.Key(filepath.ToSlash(rel)))
			return time.Since(start), err
		}}
	}
	dd := func(name string, flags ...string) contender {
		return contender{name, func(b *testing.B, src, dst string) (time.Duration, error) {
			return benchutil.TimeCommand("dd", append([]string{"if=" + src, "of=" + dst, "bs=8M", "status=none"}, flags...)...)
		}}
	}
	contenders := []contender{
		dd("dd-direct", "iflag=direct", "oflag=direct"), tierd(Direct),
		dd("dd-fsync", "conv=fsync"), tierd(Mmap), tierd(Buffered),
	}
	runs := benchutil.Runs(5)
	for _, size := range benchutil.Sizes(b, "1GiB,4GiB") {
		b.Run("size="+benchutil.FormatSize(size), func(b *testing.B) {
			src := benchutil.SourceFile(b, dir, size)
			speeds := map[string][]float64{}
			var peak int64
			resident := map[string]string{}
			for run := range runs {
				for i := range contenders {
					c := contenders[(i+run)%len(contenders)] // rotate the order every run
					dst := filepath.Join(tierDir, "bench", c.name)
					os.MkdirAll(filepath.Dir(dst), 0o755)
					benchutil.DropCache(b, src)
					if err := benchutil.ResetPeakRSS(); err != nil {
						b.Fatal(err)
					}
					d, err := c.run(b, src, dst)
					if err != nil {
						b.Fatal(err)
					}
					if strings.HasPrefix(c.name, "tierd") {
						hwm, _ := benchutil.PeakRSS()
						peak = max(peak, hwm)
					}
					speeds[c.name] = append(speeds[c.name], benchutil.MBps(size, d))
					rs, _ := benchutil.Resident(src)
					rd, _ := benchutil.Resident(dst)
					resident[c.name] = fmt.Sprintf("src %s, dst %s", benchutil.MiB(rs), benchutil.MiB(rd))
					os.Remove(dst)
				}
			}
			med := map[string]float64{}
			for _, c := range contenders {
				med[c.name] = benchutil.Median(speeds[c.name])
				b.ReportMetric(med[c.name], c.name+"-MB/s")
				b.Logf("%-15s median %7.1f MB/s  runs %v  page cache after: %s", c.name, med[c.name], fmtSpeeds(speeds[c.name]), resident[c.name])
			}
			ratios := []struct {
				name, a, base string
				goal          float64
			}{
				{"direct/dd-direct", "tierd-direct", "dd-direct", 0.95},
				{"mmap/dd-fsync", "tierd-mmap", "dd-fsync", 0.9},
				{"buffered/dd-fsync", "tierd-buffered", "dd-fsync", 0.9},
			}
			for _, r := range ratios {
				x := med[r.a] / med[r.base]
				b.ReportMetric(x, r.name)
				b.Logf("ratio %-18s %.3f (goal >= %.2f)", r.name, x, r.goal)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peakRSS-MiB")
			b.Logf("peak RSS (VmHWM) during tierd copies: %s with a %s pool (goal <= pool + 48 MiB = %s)",
				benchutil.MiB(peak), benchutil.MiB(poolSize), benchutil.MiB(poolSize+48<<20))
		})
	}
}

func fmtSpeeds(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.0f", x))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// BenchmarkCopyRSS measures peak RSS (VmHWM) while 1 and 16 copies of a 1 GiB file
// (TIERD_BENCH_RSS_SIZE) run at once, for pools of 16 and 64 MiB of 8 MiB buffers, in
// each write mode. Goal: VmHWM <= pool + 48 MiB.
//
//	go test -run '^$' -bench BenchmarkCopyRSS -benchtime 1x ./posix/
func BenchmarkCopyRSS(b *testing.B) {
	dir := benchutil.Dir(b)
	size := int64(1 << 30)
	if s := os.Getenv("TIERD_BENCH_RSS_SIZE"); s != "" {
		var err error
		if size, err = benchutil.ParseSize(s); err != nil {
			b.Fatal(err)
		}
	}
	src := benchutil.SourceFile(b, dir, size)
	for _, poolSize := range []int64{16 << 20, 64 << 20} {
		for _, conc := range []int{1, 16} {
			for _, m := range []Mode{Direct, Mmap, Buffered} {
				name := fmt.Sprintf("pool=%s/conc=%d/mode=%s", benchutil.FormatSize(poolSize), conc, m)
				b.Run(name, func(b *testing.B) {
					tierDir := filepath.Join(dir, "tier-rss")
					be, err := New(Config{Path: tierDir, WriteMode: m}, nil)
					if err != nil {
						b.Fatal(err)
					}
					benchutil.DropCache(b, src)
					if err := benchutil.ResetPeakRSS(); err != nil {
						b.Fatal(err)
					}
					_, base := benchutil.PeakRSS()
					pool, err := bufpool.New(bufpool.Config{Budget: poolSize, BufferSize: 8 << 20})
					if err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					var wg sync.WaitGroup
					errs := make(chan error, conc)
					for i := range conc {
						wg.Add(1)
						go func() {
							defer wg.Done()
							errs <- copyToTier(context.Background(), be, pool, src, segment.Key(fmt.Sprintf("rss/%d", i)))
						}()
					}
					wg.Wait()
					elapsed := time.Since(start)
					close(errs)
					for err := range errs {
						if err != nil {
							b.Fatal(err)
						}
					}
					hwm, _ := benchutil.PeakRSS()
					if err := pool.Check(); err != nil {
						b.Fatal(err)
					}
					st := pool.Stats()
					pool.Close()
					os.RemoveAll(filepath.Join(tierDir, "rss"))
					limit := poolSize + 48<<20
					b.ReportMetric(float64(hwm)/(1<<20), "peakRSS-MiB")
					b.ReportMetric(float64(limit)/(1<<20), "limit-MiB")
					b.ReportMetric(benchutil.MBps(int64(conc)*size, elapsed), "MB/s")
					b.Logf("VmHWM %s (RSS before pool %s), limit %s, %d copies of %s in %v, pool waits %d",
						benchutil.MiB(hwm), benchutil.MiB(base), benchutil.MiB(limit), conc, benchutil.FormatSize(size), elapsed.Round(time.Millisecond), st.Waits)
					if hwm > limit {
						b.Errorf("peak RSS %s exceeds pool + 48 MiB = %s", benchutil.MiB(hwm), benchutil.MiB(limit))
					}
				})
			}
		}
	}
}
