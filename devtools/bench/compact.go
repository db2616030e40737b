package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"

	"github.com/tierd/tierd/compactor"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/segment"
)

// CompactOptions configure Compaction.
type CompactOptions struct {
	Dir   string
	Fills []int // percent of the items used; default 1, 50 and 100
	// Slots and Items are the IndexFiles' geometry; default the broker's (5,000,000 and
	// 20,000,000: 420,000,040-byte files).
	Slots, Items int
	Runs         int   // default 5
	Pool         int64 // default DefaultPool
	BufSize      int64 // default DefaultBufSize
	// MaxBuffers caps the pool buffers a compaction may hold; default the whole pool
	// (`tierd compact` does the same; the daemon gives each compaction half).
	MaxBuffers int
	// LookupSample is how many of a file's own key hashes are looked up in its compacted
	// form to count ranged reads; default 20,000.
	LookupSample int
	Logf         func(format string, args ...any)
}

// CompactFill is the compactions of one IndexFile.
type CompactFill struct {
	Fill    int   `json:"fill"`  // percent
	Items   int   `json:"items"` // items in the file
	SrcSize int64 `json:"src_size"`
	OutSize int64 `json:"out_size"`
	// BytesPerItem is OutSize over Items (0 for an empty file).
	BytesPerItem float64 `json:"bytes_per_item"`
	Passes       int     `json:"passes"`
	Buffers      int     `json:"buffers"`
	// Partitioned is the number of windows (filling passes) whose records were
	// partitioned before they were placed.
	Partitioned int `json:"partitioned"`
	// Phases split tierd's runs, medians in seconds: the counting pass (reading the whole
	// file), the filling passes (ScanSecs reading the items again and partitioning the
	// window's records, PlaceSecs placing them; FillSecs both) and the writes.
	CountSecs float64 `json:"count_secs"`
	FillSecs  float64 `json:"fill_secs"`
	ScanSecs  float64 `json:"scan_secs"`
	PlaceSecs float64 `json:"place_secs"`
	WriteSecs float64 `json:"write_secs"`
	// Contenders: tierd (its ratio is its median time over the baseline's), dd-read and
	// dd-write, and dd-read+write, the baseline (per run, the sum of the two).
	Contenders []Runs `json:"contenders"`
	// Lookups: ranged reads per key lookup in the compacted object (average and most) and
	// the average bytes of bucket run read.
	ReadsPerLookup float64 `json:"reads_per_lookup"`
	MaxReads       int64   `json:"max_reads"`
	RunBytes       float64 `json:"run_bytes"`
	LookupsSampled int     `json:"lookups_sampled"`
	Checks         []Check `json:"checks"`
}

// CompactResult is what Compaction measured.
type CompactResult struct {
	Slots      int           `json:"slots"`
	ItemsMax   int           `json:"items_max"`
	Pool       int64         `json:"pool"`
	BufSize    int64         `json:"buf_size"`
	MaxBuffers int           `json:"max_buffers"`
	Runs       int           `json:"runs"`
	Fills      []CompactFill `json:"fills"`
}

// Compaction compacts IndexFiles filled to each fill into a posix tier in direct mode
// from a cold source (one child process per compaction, after an unmeasured warm-up that
// learns the output size), and in the same runs, interleaved, times dd reading the input
// (O_DIRECT) and dd writing as many bytes as the output (O_DIRECT). It then looks up a
// sample of the file's own key hashes in the compacted object and counts the ranged reads.
func Compaction(ctx context.Context, o CompactOptions) (CompactResult, error) {
	logf := logger(o.Logf)
	if len(o.Fills) == 0 {
		o.Fills = []int{1, 50, 100}
	}
	if o.Slots == 0 {
		o.Slots = index.DefaultIndexSlots
	}
	if o.Items == 0 {
		o.Items = index.DefaultIndexItems
	}
	o.Runs = max(o.Runs, 1)
	if o.Pool == 0 {
		o.Pool = DefaultPool
	}
	if o.BufSize == 0 {
		o.BufSize = DefaultBufSize
	}
	if o.MaxBuffers == 0 {
		o.MaxBuffers = int(o.Pool / o.BufSize)
	}
	if o.LookupSample == 0 {
		o.LookupSample = 20_000
	}
	res := CompactResult{Slots: o.Slots, ItemsMax: o.Items, Pool: o.Pool, BufSize: o.BufSize, MaxBuffers: o.MaxBuffers, Runs: o.Runs}
	tierDir := filepath.Join(o.Dir, "tier-compact")
	benchDir := filepath.Join(tierDir, "bench")
	if err := os.MkdirAll(benchDir, 0o755); err != nil {
		return res, err
	}
	defer os.RemoveAll(benchDir)
	for _, fill := range o.Fills {
		n := (o.Items - 1) * fill / 100
		logf("compaction: fill %d%% (%d items)", fill, n)
		src, err := IndexFile(o.Dir, o.Slots, o.Items, n)
		if err != nil {
			return res, err
		}
		srcSize, err := fileSize(src)
		if err != nil {
			return res, err
		}
		key := fmt.Sprintf("bench/fill-%d.tix", fill)
		out := filepath.Join(tierDir, key)
		job := childJob{Op: "compact", Src: src, TierDir: tierDir, Keys: []string{key}, Mode: "direct", Pool: o.Pool, BufSize: o.BufSize,
			Slots: o.Slots, Items: o.Items, MaxBuffers: o.MaxBuffers}
		if err := DropCache(src); err != nil {
			return res, err
		}
		warm, _, err := runChild(ctx, job) // learns the output size for dd
		if err != nil {
			return res, fmt.Errorf("compaction fill %d%%: %w", fill, err)
		}
		outSize := warm.Compact.Size
		var results []compactor.Result
		ddOut := filepath.Join(benchDir, "dd-out")
		cs := []contender{
			{"tierd", func(ctx context.Context) (sample, error) {
				cr, u, err := runChild(ctx, job)
				if err != nil {
					return sample{}, err
				}
				results = append(results, *cr.Compact)
				s := sample{u: u, res: cr}
				if s.src, err = Resident(src); err == nil {
					s.dst, err = Resident(out)
				}
				return s, err
			}},
			{"dd-read", func(ctx context.Context) (sample, error) {
				u, err := runCmds(ctx, command("dd", "if="+src, "of=/dev/null", "bs=8M", "iflag=direct", "status=none"))
				if err != nil {
					return sample{}, err
				}
				s := sample{u: u}
				s.src, err = Resident(src)
				return s, err
			}},
			{"dd-write", func(ctx context.Context) (sample, error) {
				u, err := runCmds(ctx, command("dd", "if=/dev/zero", "of="+ddOut, "bs=8M", fmt.Sprintf("count=%d", outSize), "iflag=count_bytes", "oflag=direct", "status=none"))
				if err != nil {
					return sample{}, err
				}
				s := sample{u: u}
				s.dst, err = Resident(ddOut)
				if rerr := os.Remove(ddOut); err == nil {
					err = rerr
				}
				return s, err
			}},
		}
		samples, err := interleave(ctx, o.Runs, cs, func() error { return DropCache(src) }, logf)
		if err != nil {
			return res, fmt.Errorf("compaction fill %d%%: %w", fill, err)
		}
		var both []sample
		for i := range samples["dd-read"] {
			r, w := samples["dd-read"][i], samples["dd-write"][i]
			both = append(both, sample{u: Usage{Secs: r.u.Secs + w.u.Secs, CPU: r.u.CPU + w.u.CPU, MaxRSS: max(r.u.MaxRSS, w.u.MaxRSS)}, src: r.src, dst: w.dst})
		}
		f := CompactFill{Fill: fill, Items: n, SrcSize: srcSize, OutSize: outSize, Passes: warm.Compact.Passes, Buffers: warm.Compact.Buffers, Partitioned: warm.Compact.Partitioned}
		if n > 0 {
			f.BytesPerItem = float64(outSize) / float64(n)
		}
		tierd := summarize("tierd", srcSize, samples["tierd"])
		base := summarize("dd-read+write", srcSize, both)
		tierd.Baseline, tierd.Ratio = base.Name, tierd.Secs.Median/base.Secs.Median
		f.Contenders = []Runs{tierd, summarize("dd-read", srcSize, samples["dd-read"]), summarize("dd-write", outSize, samples["dd-write"]), base}
		var cnt, fil, scan, place, wr []float64
		for _, r := range results {
			cnt, fil, wr = append(cnt, r.CountTime.Seconds()), append(fil, r.FillTime.Seconds()), append(wr, r.WriteTime.Seconds())
			scan, place = append(scan, r.ScanTime.Seconds()), append(place, r.PlaceTime.Seconds())
		}
		f.CountSecs, f.FillSecs, f.WriteSecs = Median(cnt), Median(fil), Median(wr)
		f.ScanSecs, f.PlaceSecs = Median(scan), Median(place)
		f.ReadsPerLookup, f.MaxReads, f.RunBytes, err = lookupReads(ctx, tierDir, segment.Key(key), src, o.Slots, o.Items, o.LookupSample)
		if err != nil {
			return res, fmt.Errorf("compaction fill %d%%: lookups: %w", fill, err)
		}
		f.LookupsSampled = min(o.LookupSample, n)
		if err := os.Remove(out); err != nil {
			return res, err
		}
		what := fmt.Sprintf("fill %d%%", fill)
		f.Checks = append(f.Checks,
			newCheck(fmt.Sprintf("compaction/%d/ratio", fill), what+": compaction time / dd read + write", tierd.Ratio, "<=", 1.5, "x"),
			newCheck(fmt.Sprintf("compaction/%d/rss", fill), fmt.Sprintf("%s: peak RSS (largest run), pool %s + 64 MiB", what, FormatSize(o.Pool)), MiB(int64(tierd.MaxRSS.Max())), "<=", MiB(o.Pool+CompactRSSAllowance), "MiB"))
		if n > 0 {
			f.Checks = append(f.Checks,
				newCheck(fmt.Sprintf("compaction/%d/bytes", fill), what+": compacted bytes per item", f.BytesPerItem, "<=", 18, "B/item"),
				newCheck(fmt.Sprintf("compaction/%d/reads", fill), what+": ranged reads per lookup (most)", float64(f.MaxReads), "<=", 2, "reads"))
		}
		logf("compaction fill %d%%: %.2fs vs dd %.2fs (%.2fx), %.2f B/item, %.3f reads/lookup (max %d)",
			fill, tierd.Secs.Median, base.Secs.Median, tierd.Ratio, f.BytesPerItem, f.ReadsPerLookup, f.MaxReads)
		res.Fills = append(res.Fills, f)
	}
	return res, nil
}

// countingReader counts ReadAt calls and bytes.
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

// lookupReads looks up the key hashes of sampled items of the IndexFile src in its
// compacted object key on the posix tier at tierDir (each must find its item) and returns
// the ranged reads per lookup (average, most; the header, read once per object, is not
// counted) and the average bytes of bucket run read.
func lookupReads(ctx context.Context, tierDir string, key segment.Key, src string, slots, items, sample int) (float64, int64, float64, error) {
	f, err := os.Open(src)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, 0, err
	}
	ix, err := index.OpenIndexFile(f, fi.Size(), slots, items)
	if err != nil {
		return 0, 0, 0, err
	}
	if ix.Len() == 0 {
		return 0, 0, 0, nil
	}
	tier, err := posix.New(posix.Config{Path: tierDir}, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	obj, err := tier.Open(ctx, key)
	if err != nil {
		return 0, 0, 0, err
	}
	defer obj.Close()
	cr := &countingReader{r: obj}
	tx, err := index.OpenTix(cr, obj.Size())
	if err != nil {
		return 0, 0, 0, err
	}
	sample = min(sample, ix.Len())
	rng := rand.New(rand.NewPCG(9, 9))
	buf := make([]byte, 64<<10)
	var most, total, runBytes int64
	for range sample {
		it, err := ix.Item(int32(1 + rng.IntN(ix.Len())))
		if err != nil {
			return 0, 0, 0, err
		}
		r0, b0 := cr.reads.Load(), cr.bytes.Load()
		found, err := tx.LookupHash(it.KeyHash, math.MinInt64, math.MaxInt64, 0, buf)
		if err != nil {
			return 0, 0, 0, err
		}
		reads := cr.reads.Load() - r0
		total += reads
		most = max(most, reads)
		runBytes += cr.bytes.Load() - b0 - (index.TixDirEntrySize + 4) // less the directory read
		if !slices.ContainsFunc(found, func(t index.TixItem) bool { return t.PhyOffset == it.PhyOffset && t.TimeDiff == it.TimeDiff }) {
			return 0, 0, 0, fmt.Errorf("item %d (hash %d, offset %d) not found in the compacted index", it.Number, it.KeyHash, it.PhyOffset)
		}
	}
	return float64(total) / float64(sample), most, float64(runBytes) / float64(sample), nil
}
