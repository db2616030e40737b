package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Defaults of the memory configuration every measurement uses unless told otherwise:
// docs/DESIGN.md's default pool of 8 MiB buffers.
const (
	DefaultPool    = 64 << 20
	DefaultBufSize = 8 << 20
	// RSSAllowance is what the issues allow a copy or upload above the pool; compaction
	// is allowed CompactRSSAllowance.
	RSSAllowance        = 48 << 20
	CompactRSSAllowance = 64 << 20
	// CacheAllowance is the page cache a 1 GiB direct copy may leave of its source and
	// destination together.
	CacheAllowance = 64 << 20
)

// PosixModes are the posix tier's write modes, each measured against the dd baseline of
// the same durability: direct against dd with O_DIRECT both ways, mmap and buffered
// against dd conv=fsync.
var PosixModes = []string{"direct", "mmap", "buffered"}

// PosixOptions configure Posix.
type PosixOptions struct {
	Dir     string  // bench directory: sources and the tier live here
	Sizes   []int64 // default 1 GiB and 4 GiB
	Runs    int     // default 5
	Pool    int64   // default DefaultPool
	BufSize int64   // default DefaultBufSize
	Logf    func(format string, args ...any)
}

// PosixSize is the copies of one size.
type PosixSize struct {
	Size       int64   `json:"size"`
	Contenders []Runs  `json:"contenders"`
	Checks     []Check `json:"checks"`
}

// PosixResult is what Posix measured.
type PosixResult struct {
	Pool    int64       `json:"pool"`
	BufSize int64       `json:"buf_size"`
	Runs    int         `json:"runs"`
	Sizes   []PosixSize `json:"sizes"`
}

// Posix copies a cold source file of each size into a posix tier in each write mode (one
// child process per copy) and, interleaved in the same runs, times dd with O_DIRECT and
// dd conv=fsync on the same file. Every run records throughput, CPU seconds per GiB, peak
// RSS and the page-cache residency of the source and the destination after the copy.
func Posix(ctx context.Context, o PosixOptions) (PosixResult, error) {
	logf := logger(o.Logf)
	if len(o.Sizes) == 0 {
		o.Sizes = []int64{1 << 30, 4 << 30}
	}
	o.Runs = max(o.Runs, 1)
	if o.Pool == 0 {
		o.Pool = DefaultPool
	}
	if o.BufSize == 0 {
		o.BufSize = DefaultBufSize
	}
	res := PosixResult{Pool: o.Pool, BufSize: o.BufSize, Runs: o.Runs}
	tierDir := filepath.Join(o.Dir, "tier")
	if err := os.MkdirAll(filepath.Join(tierDir, "bench"), 0o755); err != nil {
		return res, err
	}
	defer os.RemoveAll(filepath.Join(tierDir, "bench"))
	for _, size := range o.Sizes {
		src, err := SourceFile(o.Dir, size)
		if err != nil {
			return res, err
		}
		logf("posix: %s, %d runs", FormatSize(size), o.Runs)
		copyRun := func(name string, run func(ctx context.Context, dst string) (Usage, error)) contender {
			dst := filepath.Join(tierDir, "bench", name)
			return contender{name, func(ctx context.Context) (sample, error) {
				u, err := run(ctx, dst)
				if err != nil {
					return sample{}, err
				}
				s := sample{u: u}
				if s.src, err = Resident(src); err == nil {
					s.dst, err = Resident(dst)
				}
				if rerr := os.Remove(dst); err == nil {
					err = rerr
				}
				return s, err
			}}
		}
		dd := func(name string, flags ...string) contender {
			return copyRun(name, func(ctx context.Context, dst string) (Usage, error) {
				return runCmds(ctx, command("dd", append([]string{"if=" + src, "of=" + dst, "bs=8M", "status=none"}, flags...)...))
			})
		}
		tierd := func(mode string) contender {
			return copyRun("tierd-"+mode, func(ctx context.Context, dst string) (Usage, error) {
				_, u, err := runChild(ctx, childJob{Op: "posix-copy", Src: src, TierDir: tierDir, Keys: []string{"bench/tierd-" + mode},
					Mode: mode, Pool: o.Pool, BufSize: o.BufSize})
				return u, err
			})
		}
		cs := []contender{
			dd("dd-direct", "iflag=direct", "oflag=direct"), tierd("direct"),
			dd("dd-fsync", "conv=fsync"), tierd("mmap"), tierd("buffered"),
		}
		samples, err := interleave(ctx, o.Runs, cs, func() error { return DropCache(src) }, logf)
		if err != nil {
			return res, fmt.Errorf("posix %s: %w", FormatSize(size), err)
		}
		ps := PosixSize{Size: size}
		byName := map[string]*Runs{}
		for _, c := range cs {
			ps.Contenders = append(ps.Contenders, summarize(c.name, size, samples[c.name]))
		}
		for i := range ps.Contenders {
			byName[ps.Contenders[i].Name] = &ps.Contenders[i]
		}
		sz := FormatSize(size)
		for _, m := range PosixModes {
			r := byName["tierd-"+m]
			base, goal := "dd-fsync", 0.9
			if m == "direct" {
				base, goal = "dd-direct", 0.95
			}
			r.Baseline, r.Ratio = base, r.MBps.Median/byName[base].MBps.Median
			ps.Checks = append(ps.Checks,
				newCheck("posix/"+sz+"/"+m+"/ratio", fmt.Sprintf("%s: tierd %s / %s throughput", sz, m, base), r.Ratio, ">=", goal, "x"),
				newCheck("posix/"+sz+"/"+m+"/rss", fmt.Sprintf("%s: tierd %s peak RSS (largest run), pool %s + 48 MiB", sz, m, FormatSize(o.Pool)), MiB(int64(r.MaxRSS.Max())), "<=", MiB(o.Pool+RSSAllowance), "MiB"))
		}
		if d := byName["tierd-direct"]; d != nil {
			var worst float64
			for i := range d.SrcResident.Runs {
				worst = max(worst, d.SrcResident.Runs[i]+d.DstResident.Runs[i])
			}
			ps.Checks = append(ps.Checks, newCheck("posix/"+sz+"/cache", fmt.Sprintf("%s: page cache of source + destination after a direct copy (largest run)", sz),
				MiB(int64(worst)), "<=", MiB(CacheAllowance), "MiB"))
		}
		res.Sizes = append(res.Sizes, ps)
	}
	return res, nil
}

// PosixRSSOptions configure PosixRSS.
type PosixRSSOptions struct {
	Dir     string
	Size    int64   // source size; default 1 GiB
	Pools   []int64 // default 16 MiB and 64 MiB
	Concs   []int   // concurrent copies; default 1 and 16
	BufSize int64   // default DefaultBufSize
	Logf    func(format string, args ...any)
}

// RSSRun is the peak RSS of one process copying Conc files at once through one pool.
type RSSRun struct {
	Pool      int64   `json:"pool"`
	Conc      int     `json:"conc"`
	Mode      string  `json:"mode"`
	MaxRSS    int64   `json:"max_rss"`
	Limit     int64   `json:"limit"`
	MBps      float64 `json:"mbps"`
	CPUPerGiB float64 `json:"cpu_per_gib"`
	PoolWaits int64   `json:"pool_waits"`
}

// PosixRSSResult is what PosixRSS measured.
type PosixRSSResult struct {
	Size   int64    `json:"size"`
	Runs   []RSSRun `json:"runs"`
	Checks []Check  `json:"checks"`
}

// PosixRSS measures the peak RSS of a process making 1 and 16 copies of a cold file at
// once into a posix tier, in each write mode, through pools of 16 and 64 MiB: the pool
// bounds the copies' memory, however many run. One run each (a peak, not a rate).
func PosixRSS(ctx context.Context, o PosixRSSOptions) (PosixRSSResult, error) {
	logf := logger(o.Logf)
	if o.Size == 0 {
		o.Size = 1 << 30
	}
	if len(o.Pools) == 0 {
		o.Pools = []int64{16 << 20, 64 << 20}
	}
	if len(o.Concs) == 0 {
		o.Concs = []int{1, 16}
	}
	if o.BufSize == 0 {
		o.BufSize = DefaultBufSize
	}
	res := PosixRSSResult{Size: o.Size}
	src, err := SourceFile(o.Dir, o.Size)
	if err != nil {
		return res, err
	}
	tierDir := filepath.Join(o.Dir, "tier-rss")
	defer os.RemoveAll(filepath.Join(tierDir, "rss"))
	for _, pool := range o.Pools {
		for _, conc := range o.Concs {
			for _, mode := range PosixModes {
				if err := DropCache(src); err != nil {
					return res, err
				}
				var keys []string
				for i := range conc {
					keys = append(keys, fmt.Sprintf("rss/%d", i))
				}
				cr, u, err := runChild(ctx, childJob{Op: "posix-copy", Src: src, TierDir: tierDir, Keys: keys, Mode: mode, Pool: pool, BufSize: o.BufSize})
				if err != nil {
					return res, fmt.Errorf("posix rss pool %s, %d copies, %s: %w", FormatSize(pool), conc, mode, err)
				}
				if err := os.RemoveAll(filepath.Join(tierDir, "rss")); err != nil {
					return res, err
				}
				bytes := int64(conc) * o.Size
				r := RSSRun{Pool: pool, Conc: conc, Mode: mode, MaxRSS: u.MaxRSS, Limit: pool + RSSAllowance,
					MBps: MBps(bytes, u.Secs), CPUPerGiB: u.CPU / GiB(bytes), PoolWaits: cr.PoolWaits}
				logf("posix rss: pool %s, %2d copies, %-8s peak RSS %6.1f MiB (limit %.0f), %6.0f MB/s", FormatSize(pool), conc, mode, MiB(r.MaxRSS), MiB(r.Limit), r.MBps)
				res.Runs = append(res.Runs, r)
				res.Checks = append(res.Checks, newCheck(fmt.Sprintf("rss/%s/%d/%s", FormatSize(pool), conc, mode), fmt.Sprintf("peak RSS, %s, pool %s, %d concurrent copies of %s", mode, FormatSize(pool), conc, FormatSize(o.Size)),
					MiB(r.MaxRSS), "<=", MiB(r.Limit), "MiB"))
			}
		}
	}
	return res, nil
}
