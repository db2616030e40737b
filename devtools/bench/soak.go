package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tierd/tierd/index"
)

// SoakOptions configure Soak.
type SoakOptions struct {
	Dir    string
	Server S3Server
	// Slots and Items are the IndexFile's geometry (default the broker's: 420,000,040
	// bytes); the file is full (Items-1 items), as a sealed IndexFile is.
	Slots, Items int
	Workers      int           // default 8
	Rounds       int           // default 50: Rounds x Workers jobs
	Pool         int64         // default DefaultPool
	BufSize      int64         // default DefaultBufSize
	Driver       string        // tierd's S3 driver; default aws
	Interval     time.Duration // RSS sampling; default 1s
	// Deadline bounds tierd's soak (default 30 minutes) and NaiveDeadline the naive
	// offloader's (default 5 minutes): a run stops taking jobs then and says so.
	Deadline, NaiveDeadline time.Duration
	// NaiveCeiling stops the naive offloader before what it holds passes it; default
	// 6 GiB.
	NaiveCeiling int64
	// SkipNaive leaves the naive offloader out.
	SkipNaive bool
	Logf      func(format string, args ...any)
}

// SoakSample is one sample of a soak's RSS.
type SoakSample struct {
	Secs   float64 `json:"secs"`
	Rounds float64 `json:"rounds"` // jobs finished / workers
	RSS    int64   `json:"rss"`
}

// SoakRun is one offloader's soak.
type SoakRun struct {
	Name    string       `json:"name"`
	Samples []SoakSample `json:"samples"`
	Jobs    int          `json:"jobs"`
	Rounds  float64      `json:"rounds"`
	Secs    float64      `json:"secs"`
	CPU     float64      `json:"cpu"`
	MaxRSS  int64        `json:"max_rss"` // the kernel's maxrss at exit: the true peak
	// Slope is the least-squares slope of RSS (MiB) over rounds, fitted to the samples
	// taken from round FitFrom on; SlopeOK is false when too few samples allowed a fit.
	Slope     float64 `json:"slope"`
	SlopeOK   bool    `json:"slope_ok"`
	FitFrom   float64 `json:"fit_from"`
	Stopped   string  `json:"stopped,omitempty"`
	Kept      int64   `json:"kept,omitempty"`
	PoolWaits int64   `json:"pool_waits,omitempty"`
}

// SoakResult is what Soak measured.
type SoakResult struct {
	FileSize int64    `json:"file_size"`
	Workers  int      `json:"workers"`
	Rounds   int      `json:"rounds"`
	Pool     int64    `json:"pool"`
	BufSize  int64    `json:"buf_size"`
	Driver   string   `json:"driver"`
	Interval float64  `json:"interval"`
	Ceiling  int64    `json:"ceiling"`
	Tierd    SoakRun  `json:"tierd"`
	Naive    *SoakRun `json:"naive,omitempty"`
	Checks   []Check  `json:"checks"`
}

// Soak is the seeds' scenario: Rounds rounds of Workers workers compacting and offloading
// a full-size, full IndexFile, alternately into a posix tier (direct) and into S3, with
// one shared pool, in a child process whose RSS is sampled every Interval. Then the naive
// offloader (see naive.go) does the same work in a child of its own until its ceiling.
// The slope of RSS over rounds is fitted from the end of the first round on (the first
// round touches the pool's pages and opens connections).
func Soak(ctx context.Context, o SoakOptions) (SoakResult, error) {
	logf := logger(o.Logf)
	if o.Slots == 0 {
		o.Slots = index.DefaultIndexSlots
	}
	if o.Items == 0 {
		o.Items = index.DefaultIndexItems
	}
	if o.Workers == 0 {
		o.Workers = 8
	}
	if o.Rounds == 0 {
		o.Rounds = 50
	}
	if o.Pool == 0 {
		o.Pool = DefaultPool
	}
	if o.BufSize == 0 {
		o.BufSize = DefaultBufSize
	}
	if o.Driver == "" {
		o.Driver = "aws"
	}
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.Deadline == 0 {
		o.Deadline = 30 * time.Minute
	}
	if o.NaiveDeadline == 0 {
		o.NaiveDeadline = 5 * time.Minute
	}
	if o.NaiveCeiling == 0 {
		o.NaiveCeiling = 6 << 30
	}
	res := SoakResult{Workers: o.Workers, Rounds: o.Rounds, Pool: o.Pool, BufSize: o.BufSize, Driver: o.Driver,
		Interval: o.Interval.Seconds(), Ceiling: o.NaiveCeiling}
	src, err := IndexFile(o.Dir, o.Slots, o.Items, o.Items-1)
	if err != nil {
		return res, err
	}
	if res.FileSize, err = fileSize(src); err != nil {
		return res, err
	}
	tierDir := filepath.Join(o.Dir, "tier-soak")
	if err := os.MkdirAll(tierDir, 0o755); err != nil {
		return res, err
	}
	defer os.RemoveAll(tierDir)
	job := childJob{Op: "soak", Src: src, TierDir: tierDir, Pool: o.Pool, BufSize: o.BufSize, Slots: o.Slots, Items: o.Items,
		S3: o.Server.Target, Driver: o.Driver, Prefix: "soak", Workers: o.Workers, Jobs: o.Workers * o.Rounds, Deadline: o.Deadline}
	logf("soak: tierd, %d rounds of %d workers on %s, pool %s", o.Rounds, o.Workers, FormatSize(res.FileSize), FormatSize(o.Pool))
	if res.Tierd, err = soakRun(ctx, "tierd", job, o.Interval, 0, logf); err != nil {
		return res, fmt.Errorf("soak tierd: %w", err)
	}
	lim := o.Pool + RSSAllowance
	t := res.Tierd
	if t.SlopeOK {
		res.Checks = append(res.Checks, newCheck("soak/slope", fmt.Sprintf("tierd RSS slope over rounds %.0f..%.0f", t.FitFrom, t.Rounds), t.Slope, "<=", 0.5, "MiB/round"))
	}
	res.Checks = append(res.Checks, newCheck("soak/peak", fmt.Sprintf("tierd peak RSS, pool %s + 48 MiB", FormatSize(o.Pool)), MiB(t.MaxRSS), "<=", MiB(lim), "MiB"))
	if t.Stopped != "" {
		res.Checks = append(res.Checks, newCheck("soak/rounds", "tierd rounds finished", t.Rounds, ">=", float64(o.Rounds), "rounds"))
	}
	if o.SkipNaive {
		return res, nil
	}
	naive := job
	naive.Op, naive.Prefix, naive.Ceiling, naive.Deadline = "naive", "soak", o.NaiveCeiling, o.NaiveDeadline
	logf("soak: naive offloader, ceiling %s", FormatSize(o.NaiveCeiling))
	// The parent kills the naive child outright if it ever gets 1 GiB past its ceiling.
	n, err := soakRun(ctx, "naive", naive, o.Interval, o.NaiveCeiling+1<<30, logf)
	if err != nil {
		return res, fmt.Errorf("soak naive: %w", err)
	}
	res.Naive = &n
	return res, nil
}

// soakRun runs job in a child, sampling its RSS every interval (killing it past kill
// bytes, when kill > 0), and fits the slope.
func soakRun(ctx context.Context, name string, job childJob, interval time.Duration, kill int64, logf func(string, ...any)) (SoakRun, error) {
	run := SoakRun{Name: name}
	c, err := startChild(job)
	if err != nil {
		return run, err
	}
	var (
		mu     sync.Mutex
		jobs   int
		killed string
	)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			rss, _, err := procStatus(c.cmd.Process.Pid)
			if err == nil && rss > 0 {
				mu.Lock()
				run.Samples = append(run.Samples, SoakSample{Secs: time.Since(c.start).Seconds(), Rounds: float64(jobs) / float64(job.Workers), RSS: rss})
				if kill > 0 && rss > kill && killed == "" {
					killed = fmt.Sprintf("killed by the parent at %s RSS", FormatSize(rss))
					_ = c.cmd.Process.Kill()
				}
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	lastLog := time.Now()
	cr, u, err := c.wait(ctx, func(ev childEvent) {
		mu.Lock()
		jobs = ev.Jobs
		mu.Unlock()
		if time.Since(lastLog) > 30*time.Second || ev.Jobs == job.Jobs {
			lastLog = time.Now()
			rss, _, _ := procStatus(c.cmd.Process.Pid)
			logf("  %s: %d/%d jobs (round %.1f) after %.0fs, RSS %.1f MiB", name, ev.Jobs, job.Jobs, float64(ev.Jobs)/float64(job.Workers), ev.Secs, MiB(rss))
		}
	})
	close(stop)
	<-sampled
	mu.Lock()
	defer mu.Unlock()
	run.Secs, run.CPU, run.MaxRSS = u.Secs, u.CPU, u.MaxRSS
	if killed != "" {
		run.Stopped = killed
		run.Jobs = jobs
	} else {
		if err != nil {
			return run, err
		}
		run.Jobs, run.Stopped, run.Kept, run.PoolWaits = cr.Jobs, cr.Stopped, cr.Kept, cr.PoolWaits
	}
	run.Rounds = float64(run.Jobs) / float64(job.Workers)
	run.Slope, run.SlopeOK, run.FitFrom = fitSlope(run.Samples)
	logf("  %s: %d jobs in %.0fs, peak RSS %.1f MiB, slope %.3f MiB/round (from round %.0f)%s",
		name, run.Jobs, run.Secs, MiB(run.MaxRSS), run.Slope, run.FitFrom, map[bool]string{true: ", " + run.Stopped, false: ""}[run.Stopped != ""])
	return run, nil
}

// fitSlope fits RSS in MiB against rounds over the samples from round 1 on, or over all
// samples when fewer than 3 were taken after round 1 (a run stopped early).
func fitSlope(ss []SoakSample) (slope float64, ok bool, from float64) {
	pick := func(from float64) (xs, ys []float64) {
		for _, s := range ss {
			if s.Rounds >= from {
				xs, ys = append(xs, s.Rounds), append(ys, MiB(s.RSS))
			}
		}
		return xs, ys
	}
	from = 1
	xs, ys := pick(from)
	if len(xs) < 3 {
		from = 0
		xs, ys = pick(from)
	}
	slope, ok = Slope(xs, ys)
	return slope, ok, from
}
