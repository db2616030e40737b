package compactor

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/internal/benchutil"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/segment"
)

// BenchmarkCompact compacts full-size IndexFiles (5,000,000 slots, 20,000,000 items,
// 420,000,040 bytes, generated once into $TIERD_BENCH_DIR and kept) at 1 %, 50 % and
// 100 % fill into a posix tier in direct mode, from a cold source, and in the same run,
// interleaved, times the baseline of reading the input and writing the output with dd
// (O_DIRECT both ways). Reported per fill: median compaction time, its ratio to the
// baseline (goal <= 1.5), passes over the input, peak RSS (VmHWM) against the pool
// (goal <= pool + 64 MiB), compacted bytes per item (goal <= 18), and the ranged reads a
// lookup makes (goal <= 2), over a sample of the file's own key hashes.
//
//	go test -run '^$' -bench BenchmarkCompact -benchtime 1x -timeout 60m ./compactor/
//
// TIERD_BENCH_RUNS sets the runs per fill (default 5), TIERD_BENCH_COMPACT_POOL the pool
// (default 64MiB of 8 MiB buffers), TIERD_BENCH_COMPACT_BUFFERS the pool buffers a
// compaction may hold (default: the whole pool; the daemon's default is half of it).
func BenchmarkCompact(b *testing.B) {
	dir := benchutil.Dir(b)
	const (
		slots, items       = index.DefaultIndexSlots, index.DefaultIndexItems
		bufSize            = 8 << 20
		lookupSample       = 20_000
		lookupBufferLength = 64 << 10
	)
	poolSize := int64(64 << 20)
	if v := os.Getenv("TIERD_BENCH_COMPACT_POOL"); v != "" {
		n, err := benchutil.ParseSize(v)
		if err != nil || n < 2*bufSize {
			b.Fatalf("TIERD_BENCH_COMPACT_POOL=%q: want a size of at least 16MiB", v)
		}
		poolSize = n
	}
	maxBufs := int(poolSize / bufSize)
	if n, err := strconv.Atoi(os.Getenv("TIERD_BENCH_COMPACT_BUFFERS")); err == nil && n >= 2 {
		maxBufs = n
	}
	tierDir := filepath.Join(dir, "tier-compact")
	tier, err := posix.New(posix.Config{Path: tierDir, WriteMode: posix.Direct}, nil)
	if err != nil {
		b.Fatal(err)
	}
	runs := benchutil.Runs(5)
	for _, fill := range []int{1, 50, 100} {
		b.Run(fmt.Sprintf("fill=%d%%", fill), func(b *testing.B) {
			n := (items - 1) * fill / 100
			src := benchIndexFile(b, dir, slots, items, n)
			key := segment.Key(fmt.Sprintf("bench/fill-%d.tix", fill))
			ddOut := filepath.Join(tierDir, "bench", "dd-out")
			var tierd, cpus, ddRead, ddWrite []float64
			var peakAbove int64 // largest VmHWM over the RSS before the pool existed
			compact := func(timed bool) Result {
				benchutil.DropCache(b, src)
				runtime.GC()
				debug.FreeOSMemory()
				if err := benchutil.ResetPeakRSS(); err != nil {
					b.Fatal(err)
				}
				_, before := benchutil.PeakRSS()
				pool, err := bufpool.New(bufpool.Config{Budget: poolSize, BufferSize: bufSize})
				if err != nil {
					b.Fatal(err)
				}
				start, cpu0 := time.Now(), cpuTime()
				res := compactFile(b, tier, pool, src, key, slots, items, maxBufs)
				took, cpu := time.Since(start), cpuTime()-cpu0
				hwm, _ := benchutil.PeakRSS()
				if err := pool.Check(); err != nil {
					b.Fatal(err)
				}
				pool.Close()
				if timed {
					tierd, cpus = append(tierd, took.Seconds()), append(cpus, cpu.Seconds())
					peakAbove = max(peakAbove, hwm-before)
					b.Logf("compaction %v (CPU %v): counting pass %v, %d filling passes %v, writes %v", took.Round(time.Millisecond), cpu.Round(time.Millisecond),
						res.CountTime.Round(time.Millisecond), res.Passes-1, res.FillTime.Round(time.Millisecond), res.WriteTime.Round(time.Millisecond))
				}
				return res
			}
			res := compact(false) // learns the output size for dd
			steps := []func(){
				func() { compact(true) },
				func() {
					benchutil.DropCache(b, src)
					d, err := benchutil.TimeCommand("dd", "if="+src, "of=/dev/null", "bs=8M", "iflag=direct", "status=none")
					if err != nil {
						b.Fatal(err)
					}
					ddRead = append(ddRead, d.Seconds())
				},
				func() {
					os.MkdirAll(filepath.Dir(ddOut), 0o755)
					d, err := benchutil.TimeCommand("dd", "if=/dev/zero", "of="+ddOut, "bs=8M", fmt.Sprintf("count=%d", res.Size), "iflag=count_bytes", "oflag=direct", "status=none")
					if err != nil {
						b.Fatal(err)
					}
					ddWrite = append(ddWrite, d.Seconds())
					os.Remove(ddOut)
				},
			}
			for run := range runs {
				for i := range steps {
					steps[(i+run)%len(steps)]() // rotate the order every run
				}
			}
			mt, mr, mw := benchutil.Median(tierd), benchutil.Median(ddRead), benchutil.Median(ddWrite)
			ratio := mt / (mr + mw)
			perItem := math.NaN()
			if n > 0 {
				perItem = float64(res.Size) / float64(n)
			}
			reads, maxReads, bucketBytes := lookupReads(b, tier, key, src, slots, items, lookupSample, lookupBufferLength)
			b.ReportMetric(mt, "compact-s")
			b.ReportMetric(ratio, "ratio-to-dd")
			b.ReportMetric(float64(res.Passes), "passes")
			b.ReportMetric(float64(peakAbove)/(1<<20), "peakRSS-MiB")
			b.ReportMetric(perItem, "B/item")
			b.ReportMetric(reads, "reads/lookup")
			b.Logf("fill %d%%: %d items; output %d bytes = %.2f B/item (header %d B, %d buckets: %d bits, records %d B: rem %d + offset %d + time %d)",
				fill, n, res.Size, perItem, index.TixHeaderSize, res.Header.Buckets(), res.Header.Bits, res.Header.RecordSize(), res.Header.RemWidth, res.Header.OffWidth, res.Header.TimeWidth)
			b.Logf("compaction CPU (user+system) median %.3fs %v", benchutil.Median(cpus), fmtSecs(cpus))
			b.Logf("compaction median %.3fs %v; dd read %.3fs %v + dd write %.3fs %v = %.3fs; ratio %.2f (goal <= 1.5); %d passes with %d window buffers of %s",
				mt, fmtSecs(tierd), mr, fmtSecs(ddRead), mw, fmtSecs(ddWrite), mr+mw, ratio, res.Passes, res.Buffers, benchutil.MiB(bufSize))
			b.Logf("peak RSS (VmHWM) %s above the RSS before the pool was made, pool %s: %s beyond the pool (goal <= 64 MiB)",
				benchutil.MiB(peakAbove), benchutil.MiB(poolSize), benchutil.MiB(peakAbove-poolSize))
			b.Logf("lookups of %d sampled key hashes: %.3f ranged reads on average, at most %d (goal <= 2, header read once per object not counted); bucket run %.0f bytes on average",
				lookupSample, reads, maxReads, bucketBytes)
		})
	}
}

// cpuTime returns the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fmtSecs(xs []float64) string {
	s := "["
	for i, x := range xs {
		if i > 0 {
			s += " "
		}
		s += strconv.FormatFloat(x, 'f', 3, 64)
	}
	return s + "]"
}

// compactFile is what the daemon does with a sealed IndexFile: open it keeping what it
// reads in the page cache until the end (later passes read from memory), compact it into
// the tier, commit.
func compactFile(b *testing.B, tier *posix.Backend, pool *bufpool.Pool, src string, key segment.Key, slots, items, maxBufs int) Result {
	ctx := context.Background()
	r, err := posix.OpenFile(src, posix.ReadOptions{Direct: true, DropAtClose: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var w segment.Writer
	res, err := Compact(ctx, r, r.Size(), Options{Slots: slots, Items: items, Pool: pool, MaxBuffers: maxBufs}, func(size int64) (segment.Writer, error) {
		var err error
		w, err = tier.Create(ctx, key, size)
		return w, err
	})
	if err == nil {
		err = w.Commit(ctx)
	}
	if err != nil {
		if w != nil {
			w.Abort()
		}
		b.Fatal(err)
	}
	return res
}

// countingReader counts ReadAt calls.
type countingReader struct {
	r     io.ReaderAt
	reads atomic.Int64
	bytes atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.reads.Add(1)
	c.bytes.Add(int64(len(p)))
	return c.r.ReadAt(p, off)
}

// lookupReads looks up the key hashes of sampled items of the IndexFile in the compacted
// object on the tier (each must find its item) and returns the reads per lookup (average,
// max) and the average bucket run read.
func lookupReads(b *testing.B, tier *posix.Backend, key segment.Key, src string, slots, items, sample, bufLen int) (float64, int64, float64) {
	ctx := context.Background()
	f, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	ix, err := index.OpenIndexFile(f, fi.Size(), slots, items)
	if err != nil {
		b.Fatal(err)
	}
	obj, err := tier.Open(ctx, key)
	if err != nil {
		b.Fatal(err)
	}
	defer obj.Close()
	cr := &countingReader{r: obj}
	tx, err := index.OpenTix(cr, obj.Size())
	if err != nil {
		b.Fatal(err)
	}
	if ix.Len() == 0 {
		return 0, 0, 0
	}
	rng := rand.New(rand.NewPCG(9, 9))
	buf := make([]byte, bufLen)
	var maxReads, total, runBytes int64
	for range sample {
		it, err := ix.Item(int32(1 + rng.IntN(ix.Len())))
		if err != nil {
			b.Fatal(err)
		}
		r0, b0 := cr.reads.Load(), cr.bytes.Load()
		found, err := tx.LookupHash(it.KeyHash, math.MinInt64, math.MaxInt64, 0, buf)
		if err != nil {
			b.Fatal(err)
		}
		reads := cr.reads.Load() - r0
		total += reads
		maxReads = max(maxReads, reads)
		runBytes += cr.bytes.Load() - b0 - 12
		if !slices.ContainsFunc(found, func(t index.TixItem) bool { return t.PhyOffset == it.PhyOffset && t.TimeDiff == it.TimeDiff }) {
			b.Fatalf("item %d (hash %d, offset %d) not found in the compacted index", it.Number, it.KeyHash, it.PhyOffset)
		}
	}
	return float64(total) / float64(sample), maxReads, float64(runBytes) / float64(sample)
}

// benchIndexFile returns an IndexFile of the given geometry holding n items in dir,
// generating it once (kept for later runs). Messages are indexed as a broker indexes
// them: a 32-hex-digit UNIQ_KEY and three business keys per message, each message ~700
// bytes after the previous one in the commit log, stored 1 ms apart.
func benchIndexFile(b *testing.B, dir string, slots, items, n int) string {
	path := filepath.Join(dir, fmt.Sprintf("indexfile-%dx%d-%d", slots, items, n))
	if fi, err := os.Stat(path); err == nil && fi.Size() == index.IndexFileSize(slots, items) {
		return path
	}
	b.Logf("generating %s (once)", path)
	start := time.Now()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w, err := index.NewIndexFileWriter(f, slots, items, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	const topic = "BenchTopic#"
	phy, ts := int64(0), int64(1_760_000_000_000)
	key := make([]byte, 0, 64)
	for i := 0; i < n; i++ {
		key = append(key[:0], topic...)
		if i%4 == 0 {
			key = fmt.Appendf(key, "%016X%016X", rng.Uint64(), rng.Uint64())
		} else {
			key = strconv.AppendUint(key, rng.Uint64()%1_000_000_000_000, 36)
		}
		if err := w.Put(string(key), phy, ts); err != nil {
			b.Fatal(err)
		}
		if i%4 == 3 {
			phy += 600 + rng.Int64N(200)
			ts++
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated in %v", time.Since(start).Round(time.Second))
	return path
}
