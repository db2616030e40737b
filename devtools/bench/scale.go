package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tierd/tierd/devtools/brokersim"
)

// ScaleStore is one store of the scale measurements: a Kafka log dir of Topics x
// Partitions partitions of Segments segments each (1 KiB sealed .log files, their
// .index and .timeindex as Kafka leaves them, the last segment active), or a RocketMQ
// store of Topics x Queues queues filled with Messages messages into small consume-queue
// files (the commit log and IndexFiles small too).
type ScaleStore struct {
	Layout     string `json:"layout"` // kafka or rocketmq
	Topics     int    `json:"topics"`
	Partitions int    `json:"partitions,omitempty"` // kafka: per topic
	Segments   int    `json:"segments,omitempty"`   // kafka: per partition
	Queues     int    `json:"queues,omitempty"`     // rocketmq: per topic
	Messages   int64  `json:"messages,omitempty"`   // rocketmq
}

// The RocketMQ geometry of the scale stores (tierd's source configuration must match).
const (
	scaleCQSize     = 200 // 10 entries per consume-queue file
	scaleCommitLog  = 64 << 20
	scaleIndexSlots = 100_000
	scaleIndexItems = 400_000
)

// Name is the store's directory name and label, e.g. kafka-1x500x7 or rocketmq-10x1024x250000.
func (s ScaleStore) Name() string {
	if s.Layout == "kafka" {
		return fmt.Sprintf("kafka-%dx%dx%d", s.Topics, s.Partitions, s.Segments)
	}
	return fmt.Sprintf("rocketmq-%dx%dx%d", s.Topics, s.Queues, s.Messages)
}

// ParseScaleStore parses "kafka:TOPICSxPARTITIONSxSEGMENTS" or
// "rocketmq:TOPICSxQUEUESxMESSAGES".
func ParseScaleStore(v string) (ScaleStore, error) {
	layout, dims, ok := strings.Cut(v, ":")
	var n [3]int64
	parts := strings.Split(dims, "x")
	if !ok || (layout != "kafka" && layout != "rocketmq") || len(parts) != 3 {
		return ScaleStore{}, fmt.Errorf("store %q: want kafka:TOPICSxPARTITIONSxSEGMENTS or rocketmq:TOPICSxQUEUESxMESSAGES", v)
	}
	for i, p := range parts {
		x, err := strconv.ParseInt(p, 10, 64)
		if err != nil || x < 1 {
			return ScaleStore{}, fmt.Errorf("store %q: %q is not a positive number", v, p)
		}
		n[i] = x
	}
	if layout == "kafka" {
		return ScaleStore{Layout: layout, Topics: int(n[0]), Partitions: int(n[1]), Segments: int(n[2])}, nil
	}
	return ScaleStore{Layout: layout, Topics: int(n[0]), Queues: int(n[1]), Messages: n[2]}, nil
}

// ScaleOptions configure Scale.
type ScaleOptions struct {
	Dir    string       // bench directory: stores (kept for later runs), tiers, state
	Tierd  string       // the tierd binary to measure
	Stores []ScaleStore // default DefaultScaleStores
	Runs   int          // scan and find runs per store; default 3
	// OffloadBudget bounds `run --once` and rsync each: a copy still running then is
	// stopped (SIGTERM) and its rate is taken over what it copied. Default 5m.
	OffloadBudget time.Duration
	// ScanInterval is the idle daemon's scan_interval; IdleScans how many scans after its
	// first are measured; DaemonBudget bounds the daemon's whole life. Defaults 3s, 10, 5m.
	ScanInterval time.Duration
	IdleScans    int
	DaemonBudget time.Duration
	Pool         int64 // memory.buffer_pool; default DefaultPool
	BufSize      int64 // memory.buffer_size; default DefaultBufSize
	Logf         func(format string, args ...any)
}

// DefaultScaleStores are Kafka stores of about 10^4, 10^5 and 10^6 files and a RocketMQ
// store of 10,240 queues with about 20,000 sealed consume-queue files.
var DefaultScaleStores = []ScaleStore{
	{Layout: "kafka", Topics: 1, Partitions: 500, Segments: 7},
	{Layout: "kafka", Topics: 1, Partitions: 4800, Segments: 7},
	{Layout: "kafka", Topics: 2, Partitions: 5000, Segments: 33},
	{Layout: "rocketmq", Topics: 10, Queues: 1024, Messages: 250_000},
}

// ScaleRun is what one store measured.
type ScaleRun struct {
	Store ScaleStore `json:"store"`
	Name  string     `json:"name"`
	Files int64      `json:"files"` // regular files in the store
	// Sealed is the sealed segment files (what an offload copies), SealedBytes their bytes.
	Sealed      int64   `json:"sealed"`
	SealedBytes int64   `json:"sealed_bytes"`
	GenSecs     float64 `json:"gen_secs,omitempty"` // generating the store, when this run did
	// OffloadSet is the sealed files due for the offload: all of them, or of a store of
	// more than 200,000, the oldest 100,000 (the tier's offload_after set to their age).
	OffloadSet int64 `json:"offload_set"`
	// Cold says the files offloaded were dropped from the page cache before each offload.
	Cold bool `json:"cold"`

	Find      Runs    `json:"find"` // find -type f -printf '%s %T@\n'
	Scan      Runs    `json:"scan"` // tierd scan
	ScanRatio float64 `json:"scan_ratio"`

	Once   ScaleCopy `json:"once"`  // tierd run --once into a posix tier
	Rsync  ScaleCopy `json:"rsync"` // rsync -a --fsync of the sealed files
	Ratio  float64   `json:"ratio"` // Once.Rate / Rsync.Rate
	Daemon ScaleIdle `json:"daemon"`
	// CatalogBytes is the size of tierd's state directory after run --once.
	CatalogBytes int64   `json:"catalog_bytes"`
	Checks       []Check `json:"checks"`
}

// ScaleCopy is an offload of the sealed files, bounded by ScaleOptions.OffloadBudget.
type ScaleCopy struct {
	Usage
	Files   int64   `json:"files"`   // files that arrived
	Rate    float64 `json:"rate"`    // files a second
	Stopped bool    `json:"stopped"` // stopped at the budget before it finished
	Skipped string  `json:"skipped,omitempty"`
}

// ScaleIdle is a daemon over a store with nothing left to do.
type ScaleIdle struct {
	Usage
	Interval   float64 `json:"interval"`       // scan_interval, seconds
	FirstScan  float64 `json:"first_scan"`     // seconds from start to the end of its first scan
	Scans      int     `json:"scans"`          // idle scans measured (after the first)
	CPUPerScan float64 `json:"cpu_per_scan"`   // CPU seconds per idle scan
	Note       string  `json:"note,omitempty"` // what went wrong, if anything
}

// ScaleResult is what Scale measured.
type ScaleResult struct {
	Commit        string     `json:"commit"` // of the tierd measured (set by the caller)
	Pool          int64      `json:"pool"`
	BufSize       int64      `json:"buf_size"`
	Runs          int        `json:"runs"`
	OffloadBudget float64    `json:"offload_budget"` // seconds
	Rsync         string     `json:"rsync"`          // version, or why it was not measured
	Stores        []ScaleRun `json:"stores"`
}

func (o *ScaleOptions) defaults() {
	if len(o.Stores) == 0 {
		o.Stores = DefaultScaleStores
	}
	o.Runs = max(o.Runs, 1)
	if o.OffloadBudget <= 0 {
		o.OffloadBudget = 5 * time.Minute
	}
	if o.ScanInterval <= 0 {
		o.ScanInterval = 3 * time.Second
	}
	if o.IdleScans <= 0 {
		o.IdleScans = 10
	}
	if o.DaemonBudget <= 0 {
		o.DaemonBudget = 5 * time.Minute
	}
	if o.Pool == 0 {
		o.Pool = DefaultPool
	}
	if o.BufSize == 0 {
		o.BufSize = DefaultBufSize
	}
}

// Scale measures tierd over stores of many small files (see ScaleStore), each generated
// once into Dir/scale and kept: `tierd scan` against find over the same tree (interleaved,
// Runs runs each), then `tierd run --once` into a posix tier against `rsync -a --fsync` of
// the same sealed files into the same filesystem (one run each, every source file dropped
// from the page cache before each), the size of tierd's state directory after it, and a
// daemon (`tierd run`, with offload_after raised so that nothing is due) over IdleScans
// idle scans: its peak RSS and CPU per scan.
func Scale(ctx context.Context, o ScaleOptions) (ScaleResult, error) {
	o.defaults()
	logf := logger(o.Logf)
	res := ScaleResult{Pool: o.Pool, BufSize: o.BufSize, Runs: o.Runs, OffloadBudget: o.OffloadBudget.Seconds()}
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		res.Rsync = "not installed (the Debian package rsync; make bench-report installs it when it can): the offload rate has no baseline"
		rsync = ""
	} else {
		res.Rsync = ToolVersion(rsync, "--version")
	}
	root := filepath.Join(o.Dir, "scale")
	for _, st := range o.Stores {
		run, err := scaleStore(ctx, o, root, st, rsync, logf)
		res.Stores = append(res.Stores, run)
		if err != nil {
			return res, fmt.Errorf("%s: %w", st.Name(), err)
		}
	}
	return res, nil
}

// scaleWork is the scratch directories of one store's measurements.
type scaleWork struct {
	store, list, tier, state, rsyncDst, config string
}

func scaleStore(ctx context.Context, o ScaleOptions, root string, st ScaleStore, rsync string, logf func(string, ...any)) (ScaleRun, error) {
	run := ScaleRun{Store: st, Name: st.Name()}
	// Scratch directories of this process: two reports may share a bench directory.
	work := filepath.Join(root, "work-"+strconv.Itoa(os.Getpid()))
	w := scaleWork{
		store: filepath.Join(root, st.Name()), list: filepath.Join(root, st.Name()+".sealed"),
		tier: filepath.Join(work, "tier"), state: filepath.Join(work, "state"), rsyncDst: filepath.Join(work, "rsync"),
		config: filepath.Join(work, "tierd.yaml"),
	}
	cleanup := func() error { return os.RemoveAll(work) }
	if err := cleanup(); err != nil {
		return run, err
	}
	defer cleanup()
	start := time.Now()
	generated, err := ensureStore(ctx, st, w.store, w.list, logf)
	if err != nil {
		return run, err
	}
	if generated {
		run.GenSecs = time.Since(start).Seconds()
	}
	if run.Files, err = countFiles(w.store); err != nil {
		return run, err
	}
	sealed, err := readList(w.list)
	if err != nil {
		return run, err
	}
	run.Sealed = int64(len(sealed))
	mtimes := make([]int64, len(sealed)) // Unix nanoseconds
	for i, rel := range sealed {
		if fi, err := os.Stat(filepath.Join(w.store, rel)); err == nil {
			run.SealedBytes += fi.Size()
			mtimes[i] = fi.ModTime().UnixNano()
		}
	}
	logf("scale %s: %d files, %d sealed (%s)", run.Name, run.Files, run.Sealed, FormatSize(run.SealedBytes))
	for _, d := range []string{w.tier, w.state, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return run, err
		}
	}
	// The offload copies every sealed file, or of a store of more than maxDropFiles, the
	// oldest maxOffloadFiles: the tier's offload_after is set to their age, so that
	// run --once scans the whole store and finds only those due; rsync gets their list.
	offloadAfter, offList := "0s", w.list
	offload := sealed
	if len(sealed) > maxDropFiles {
		order := make([]int, len(sealed))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(mtimes[a], mtimes[b]) })
		cutoff := mtimes[order[maxOffloadFiles-1]]
		offload = offload[:0:0]
		for _, i := range order {
			if mtimes[i] <= cutoff {
				offload = append(offload, sealed[i])
			}
		}
		// Due when at least this old: every file of the set is older already.
		offloadAfter = fmt.Sprintf("%ds", int64(time.Since(time.Unix(0, cutoff)).Seconds()))
		offList = filepath.Join(work, "offload.list")
		if err := os.WriteFile(offList, []byte(strings.Join(offload, "\n")+"\n"), 0o644); err != nil {
			return run, err
		}
	}
	run.OffloadSet = int64(len(offload))
	cfg := scaleConfig{o: o, st: st, w: w, interval: 100 * time.Millisecond, offloadAfter: offloadAfter, listen: ""}
	if err := cfg.write(); err != nil {
		return run, err
	}

	// Scan against find, interleaved.
	tierd := func(args ...string) *exec.Cmd {
		return exec.Command(o.Tierd, append([]string{"--config", w.config}, args...)...)
	}
	cs := []contender{
		{"find", func(ctx context.Context) (sample, error) {
			u, err := runCmds(ctx, command("find", w.store, "-type", "f", "-printf", `%s %T@\n`))
			return sample{u: u}, err
		}},
		{"tierd scan", func(ctx context.Context) (sample, error) {
			u, err := runCmds(ctx, tierd("scan"))
			return sample{u: u}, err
		}},
	}
	samples, err := interleave(ctx, o.Runs, cs, nil, logf)
	if err != nil {
		return run, err
	}
	run.Find = timeRuns("find", samples["find"])
	run.Scan = timeRuns("tierd scan", samples["tierd scan"])
	run.ScanRatio = run.Scan.Secs.Median / run.Find.Secs.Median

	// Offload: tierd run --once, then rsync, each from a cold page cache where dropping
	// the store from it takes reasonable time.
	run.Cold = len(offload) <= maxDropFiles
	if err := dropFiles(w.store, offload, run.Cold); err != nil {
		return run, err
	}
	u, stopped, err := runBounded(ctx, tierd("run", "--once"), o.OffloadBudget)
	if err != nil {
		return run, fmt.Errorf("run --once: %w", err)
	}
	n, err := countFiles(filepath.Join(w.tier, scaleNode, scaleSource))
	if err != nil {
		return run, err
	}
	run.Once = ScaleCopy{Usage: u, Files: n, Rate: float64(n) / u.Secs, Stopped: stopped}
	if run.CatalogBytes, err = treeBytes(w.state); err != nil {
		return run, err
	}
	logf("  run --once: %d (%d due) of %d files in %.1f s (%.0f files/s), peak RSS %.1f MiB, state %s%s", n, run.OffloadSet, run.Sealed, u.Secs, run.Once.Rate,
		MiB(u.MaxRSS), FormatSize(run.CatalogBytes), map[bool]string{true: ", stopped at the budget"}[stopped])
	if rsync == "" {
		run.Rsync.Skipped = "rsync is not installed"
	} else {
		if err := dropFiles(w.store, offload, run.Cold); err != nil {
			return run, err
		}
		u, stopped, err := runBounded(ctx, command(rsync, "-a", "--fsync", "--files-from="+offList, w.store+"/", w.rsyncDst+"/"), o.OffloadBudget)
		if err != nil {
			return run, fmt.Errorf("rsync: %w", err)
		}
		n, err := countFiles(w.rsyncDst)
		if err != nil {
			return run, err
		}
		run.Rsync = ScaleCopy{Usage: u, Files: n, Rate: float64(n) / u.Secs, Stopped: stopped}
		if n == 0 {
			run.Rsync.Skipped = fmt.Sprintf("rsync copied nothing in %.1f s", u.Secs)
		} else {
			run.Ratio = run.Once.Rate / run.Rsync.Rate
		}
		logf("  rsync: %d files in %.1f s (%.0f files/s): tierd %.2fx", n, u.Secs, run.Rsync.Rate, run.Ratio)
		if err := os.RemoveAll(w.rsyncDst); err != nil {
			return run, err
		}
	}

	// The daemon, idle: nothing more is due.
	port, err := freePort()
	if err != nil {
		return run, err
	}
	cfg.interval, cfg.offloadAfter, cfg.listen = o.ScanInterval, "3650d", "127.0.0.1:"+strconv.Itoa(port)
	if err := cfg.write(); err != nil {
		return run, err
	}
	if run.Daemon, err = idleDaemon(ctx, tierd("run"), cfg.listen, o); err != nil {
		return run, fmt.Errorf("idle daemon: %w", err)
	}
	logf("  idle daemon: first scan after %.1f s, %d idle scans, %.3f CPU s per scan, peak RSS %.1f MiB",
		run.Daemon.FirstScan, run.Daemon.Scans, run.Daemon.CPUPerScan, MiB(run.Daemon.MaxRSS))
	run.Checks = scaleChecks(run, o.Pool)
	return run, nil
}

// scaleChecks states the goals for one store.
func scaleChecks(r ScaleRun, pool int64) []Check {
	k := "scale/" + r.Name + "/"
	limit := MiB(pool + RSSAllowance)
	files := fmt.Sprintf("%s (%d files)", r.Name, r.Files)
	cs := []Check{
		newCheck(k+"scan", files+": tierd scan time / find's", r.ScanRatio, "<=", 3, "x"),
		newCheck(k+"scan-rss", files+": peak RSS of tierd scan", MiB(int64(r.Scan.MaxRSS.Max())), "<=", limit, "MiB"),
		newCheck(k+"once-rss", files+": peak RSS of tierd run --once", MiB(r.Once.MaxRSS), "<=", limit, "MiB"),
		newCheck(k+"daemon-rss", files+": peak RSS of an idle daemon", MiB(r.Daemon.MaxRSS), "<=", limit, "MiB"),
	}
	if r.Rsync.Skipped == "" {
		cs = append(cs, newCheck(k+"offload", files+": small-segment offload rate, run --once / rsync -a --fsync", r.Ratio, ">=", 0.5, "x"))
	}
	return cs
}

const (
	scaleNode   = "bench"
	scaleSource = "src"
)

// scaleConfig writes tierd's configuration for one store.
type scaleConfig struct {
	o            ScaleOptions
	st           ScaleStore
	w            scaleWork
	interval     time.Duration
	offloadAfter string
	listen       string
}

func (c scaleConfig) write() error {
	var b strings.Builder
	fmt.Fprintf(&b, "node: %s\nstate_dir: %s\nmemory:\n  buffer_pool: %d\n  buffer_size: %d\n", scaleNode, c.w.state, c.o.Pool, c.o.BufSize)
	fmt.Fprintf(&b, "scan_interval: %s\nsources:\n  - name: %s\n    layout: %s\n    path: %s\n    seal_grace: 1s\n", c.interval, scaleSource, c.st.Layout, c.w.store)
	if c.st.Layout == "rocketmq" {
		fmt.Fprintf(&b, "    commitlog_file_size: %d\n    consumequeue_file_size: %d\n    index_hash_slots: %d\n    index_items: %d\n",
			scaleCommitLog, scaleCQSize, scaleIndexSlots, scaleIndexItems)
	}
	fmt.Fprintf(&b, "tiers:\n  - name: hdd\n    type: posix\n    path: %s\n    offload_after: %s\n", c.w.tier, c.offloadAfter)
	fmt.Fprintf(&b, "http:\n  listen: %q\nlog:\n  level: warn\n", c.listen)
	return os.WriteFile(c.w.config, []byte(b.String()), 0o644)
}

// ensureStore generates st into dir unless a complete one is there (its list of sealed
// files, written last, exists), and reports whether it generated it.
func ensureStore(ctx context.Context, st ScaleStore, dir, list string, logf func(string, ...any)) (bool, error) {
	if _, err := os.Stat(list); err == nil {
		return false, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return false, err
	}
	logf("scale %s: generating the store (kept for later runs)", st.Name())
	var files []brokersim.File
	switch st.Layout {
	case "kafka":
		sum, err := brokersim.Kafka(ctx, brokersim.KafkaOptions{
			Dir: dir, Topics: st.Topics, Partitions: st.Partitions, Static: true, Segments: st.Segments,
			SegmentBytes: 1 << 10, RecordSize: 100, BatchRecords: 4, Seed: 1,
		})
		if err != nil {
			return false, fmt.Errorf("generate %s: %w", dir, err)
		}
		files = sum.Files
	case "rocketmq":
		sum, err := brokersim.RocketMQ(ctx, brokersim.RocketMQOptions{
			Dir: dir, Topics: st.Topics, Queues: st.Queues, Messages: st.Messages, CommitLogSize: scaleCommitLog,
			CQSize: scaleCQSize, IndexSlots: scaleIndexSlots, IndexItems: scaleIndexItems, BodySize: 64, Seed: 1,
			Start: time.Now().Add(-time.Duration(st.Messages) * time.Millisecond),
		})
		if err != nil {
			return false, fmt.Errorf("generate %s: %w", dir, err)
		}
		files = sum.Files
		// Its files were all written just now: date the sealed ones an hour back, as if
		// the broker had moved past them then, so that they are past any seal_grace.
		old := time.Now().Add(-time.Hour)
		for _, f := range files {
			if !f.Active && f.Kind != brokersim.KindMeta {
				if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(f.Path)), old, old); err != nil {
					return false, fmt.Errorf("date %s: %w", f.Path, err)
				}
			}
		}
	default:
		return false, fmt.Errorf("unknown layout %q", st.Layout)
	}
	var b strings.Builder
	for _, f := range files {
		if !f.Active && f.Kind != brokersim.KindMeta {
			b.WriteString(f.Path)
			b.WriteByte('\n')
		}
	}
	tmp := list + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return false, err
	}
	return true, os.Rename(tmp, list)
}

func readList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// countFiles counts the regular files under dir (0 if it is missing).
func countFiles(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") { // rsync's and tierd's temporary files start with a dot
			n++
		}
		return nil
	})
	return n, err
}

// treeBytes sums the sizes of the regular files under dir.
func treeBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// maxOffloadFiles is how many of the oldest sealed files the offload of a store of more
// than maxDropFiles copies.
const maxOffloadFiles = 100_000

// maxDropFiles is the most sealed files a store may have for its offloads to start from
// a cold page cache: dropping a file costs three system calls, minutes for 10^6 files on a
// loaded machine, twice per store.
const maxDropFiles = 200_000

// dropFiles evicts the listed files under dir from the page cache if drop is set. They
// were written long before (no write-back to wait for).
func dropFiles(dir string, rels []string, drop bool) error {
	if !drop {
		return nil
	}
	for _, rel := range rels {
		path := filepath.Join(dir, rel)
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("drop %s from the page cache: %w", path, err)
		}
		err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
		if err != nil {
			return fmt.Errorf("drop %s from the page cache: %w", path, err)
		}
	}
	return nil
}

// runBounded runs cmd, stopping it with SIGTERM after budget (and killing it if it is
// still there a minute later), and returns its usage and whether it was stopped. A
// non-zero exit is an error only if it was not stopped.
func runBounded(ctx context.Context, cmd *exec.Cmd, budget time.Duration) (Usage, bool, error) {
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4 << 10}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Usage{}, false, fmt.Errorf("start %s: %w", cmd, err)
	}
	watch := watchHWM(cmd.Process.Pid)
	stopped := make(chan struct{})
	term := time.AfterFunc(budget, func() {
		close(stopped)
		_ = cmd.Process.Signal(syscall.SIGTERM)
	})
	kill := time.AfterFunc(budget+time.Minute, func() { _ = cmd.Process.Kill() })
	stopCtx := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	err := cmd.Wait()
	term.Stop()
	kill.Stop()
	stopCtx()
	var u Usage
	u.add(cmd.ProcessState, watch.peak())
	u.Secs = time.Since(start).Seconds()
	wasStopped := false
	select {
	case <-stopped:
		wasStopped = true
	default:
	}
	if cerr := ctx.Err(); cerr != nil {
		return u, wasStopped, cerr
	}
	if err != nil && !wasStopped {
		return u, false, fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(stderr.String()))
	}
	return u, wasStopped, nil
}

// limitedWriter keeps the first n bytes written to it.
type limitedWriter struct {
	w interface{ WriteString(string) (int, error) }
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(l.n, len(p))
		_, _ = l.w.WriteString(string(p[:k]))
		l.n -= k
	}
	return len(p), nil
}

// freePort returns a loopback TCP port free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// scansDone reads the daemon's finished scans from its /metrics.
func scansDone(ctx context.Context, listen string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+listen+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "tierd_scan_duration_seconds_count "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(n), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no tierd_scan_duration_seconds_count in /metrics")
}

// idleDaemon runs the daemon cmd until it has finished its first scan and then
// o.IdleScans more (or o.DaemonBudget has passed since its start), and measures its CPU
// per scan after the first and its peak RSS over its whole life.
func idleDaemon(ctx context.Context, cmd *exec.Cmd, listen string, o ScaleOptions) (ScaleIdle, error) {
	res := ScaleIdle{Interval: o.ScanInterval.Seconds()}
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4 << 10}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", cmd, err)
	}
	watch := watchHWM(cmd.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(o.DaemonBudget)
	first, cpu0 := -1, 0.0
	var scans int
	var waitErr error
	done := false
	for !done {
		select {
		case waitErr = <-exited:
			watch.peak()
			return res, fmt.Errorf("daemon exited early: %v: %s", waitErr, strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			watch.peak()
			return res, ctx.Err()
		case <-deadline:
			done = true
		case <-time.After(100 * time.Millisecond):
			n, err := scansDone(ctx, listen)
			if err != nil {
				continue // not listening yet
			}
			cpu := procCPU(cmd.Process.Pid)
			if first < 0 && n >= 1 {
				first, cpu0, res.FirstScan = n, cpu, time.Since(start).Seconds()
			}
			scans = n
			if first >= 0 && scans-first >= o.IdleScans {
				res.CPUPerScan = (cpu - cpu0) / float64(scans-first)
				done = true
			} else if first >= 0 && scans > first {
				res.CPUPerScan = (cpu - cpu0) / float64(scans-first)
			}
		}
	}
	if first >= 0 {
		res.Scans = scans - first
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	killed := false
	select {
	case waitErr = <-exited:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		waitErr, killed = <-exited, true
	}
	res.add(cmd.ProcessState, watch.peak())
	res.Secs = time.Since(start).Seconds()
	switch {
	case killed:
		res.Note = "did not stop within a minute of SIGTERM: killed"
	case waitErr != nil:
		return res, fmt.Errorf("daemon: %w: %s", waitErr, strings.TrimSpace(stderr.String()))
	}
	if res.Scans == 0 {
		res.Note = strings.TrimPrefix(res.Note+"; ", "; ") + fmt.Sprintf("no idle scan finished within %v (first scan finished: %v)", o.DaemonBudget, first >= 0)
	}
	return res, nil
}

// timeRuns summarizes runs that move no bytes: their times and peak RSS.
func timeRuns(name string, ss []sample) Runs {
	var sec, rss []float64
	for _, s := range ss {
		sec = append(sec, s.u.Secs)
		rss = append(rss, float64(s.u.MaxRSS))
	}
	return Runs{Name: name, Secs: newStat(sec), MaxRSS: newStat(rss)}
}
