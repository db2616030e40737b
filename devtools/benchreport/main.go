// Command benchreport measures tierd against its peers on this machine and writes
// BENCHMARKS.md with SVG plots next to it (and the raw results as JSON): the posix tier
// in each write mode against dd, peak RSS of concurrent copies against the pool, RocketMQ
// IndexFile compaction against dd reading and writing the same bytes, the S3 tier with
// each driver against mc (and rclone when installed), the seeds' memory soak next to
// a deliberately naive offloader, and tierd over stores of 10^4..10^6 small files (scan
// against find, offload against rsync, peak RSS and CPU of an idle daemon). Every
// measurement is devtools/bench's, the same the `go test -bench` entry points run. `make bench-report` runs it:
//
//	go run ./devtools/benchreport [-mode quick|default|full] [-out BENCHMARKS.md] [flags]
//
// It exits 1 when a section failed (the report says which and why) and 2 on bad flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tierd/tierd/devtools/bench"
	"github.com/tierd/tierd/devtools/miniotest"
)

func main() {
	bench.MaybeChild() // a measured operation of a parent run
	os.Exit(run(os.Args[1:], os.Stderr))
}

// options are the flags that are not part of the measured configuration.
type options struct {
	out, plots, dir, rclone, command, format, from, keep string
	timeout                                              time.Duration
}

// parseFlags parses args into options and the configuration of the chosen mode with the
// flags' changes applied.
func parseFlags(args []string, stderr io.Writer) (options, config, error) {
	var o options
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "default", "quick (~5 min, small files: not the published numbers), default (the issue's sizes, under an hour on 2 cores) or full (more runs)")
	fs.StringVar(&o.out, "out", "BENCHMARKS.md", "report to write; plots and results.json go to the directory -plots names, relative to the report's")
	fs.StringVar(&o.plots, "plots", "benchmarks", "directory of the plots and results.json, relative to the report's directory")
	fs.StringVar(&o.dir, "dir", "", "bench directory for sources, tiers and MinIO's data (default $TIERD_BENCH_DIR, else $TMPDIR/tierd-bench); on disk, not tmpfs")
	fs.StringVar(&o.rclone, "rclone", "auto", `rclone binary to measure too: "auto" (PATH, then $(go env GOPATH)/bin), a path, or "" for none`)
	fs.StringVar(&o.command, "command", "", "the command line to print in the report (default: this program's)")
	fs.StringVar(&o.format, "format", "svg", "plot format: svg or png")
	fs.StringVar(&o.from, "from", "", "measure nothing: render the report and plots again from this results.json")
	fs.StringVar(&o.keep, "keep", "", "results.json of an earlier run: the sections this run does not measure are taken from it, each marked with that run's command and date (e.g. -sections scale -keep benchmarks/results.json); with -from, the sections that file lacks")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Hour, "stop measuring after this long (what is unfinished is reported as failed)")
	apply := overrides(fs)
	if err := fs.Parse(args); err != nil {
		return o, config{}, err
	}
	if o.format != "svg" && o.format != "png" {
		return o, config{}, fmt.Errorf("-format %q: want svg or png", o.format)
	}
	if fs.NArg() > 0 {
		return o, config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg, err := preset(*mode)
	if err == nil {
		err = apply(&cfg)
	}
	if o.command == "" {
		o.command = strings.TrimSpace("go run ./devtools/benchreport " + strings.Join(args, " "))
	}
	return o, cfg, err
}

func run(args []string, stderr io.Writer) int {
	o, cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "benchreport:", err)
		return 2
	}
	if o.from != "" {
		return rerender(o.from, o.keep, o.out, o.plots, o.format, stderr)
	}
	if o.dir != "" {
		os.Setenv("TIERD_BENCH_DIR", o.dir)
	}
	benchDir, err := bench.Dir()
	if err != nil {
		fmt.Fprintln(stderr, "benchreport:", err)
		return 1
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, time.Now().Format("15:04:05 ")+format+"\n", a...)
	}
	r := &Report{Config: cfg, Command: o.command, Started: time.Now(), LoadStart: bench.LoadAvg()}
	r.Machine = bench.DescribeMachine(benchDir)
	r.Rclone = findRclone(o.rclone)
	r.Machine.Tools["dd"] = bench.ToolVersion("dd", "--version")
	logf("benchreport: %s mode, sections %s, bench directory %s", cfg.Mode, strings.Join(cfg.Sections, ","), benchDir)
	if err := checkSpace(cfg, benchDir); err != nil {
		fmt.Fprintln(stderr, "benchreport:", err)
		return 1
	}
	cfg.NaiveCeiling, r.CeilingNote = fitCeiling(cfg.NaiveCeiling)
	r.Config = cfg
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	measure(ctx, r, benchDir, logf)
	r.Finished, r.LoadEnd = time.Now(), bench.LoadAvg()
	if o.keep != "" {
		if err := keepSections(r, o.keep); err != nil {
			fmt.Fprintln(stderr, "benchreport:", err)
			return 1
		}
	}
	r.Elapsed = r.Finished.Sub(r.Started).Round(time.Second).String()
	r.collect()
	if err := write(r, o.out, o.plots, o.format); err != nil {
		fmt.Fprintln(stderr, "benchreport:", err)
		return 1
	}
	logf("wrote %s and %s/ in %s", o.out, filepath.Join(filepath.Dir(o.out), o.plots), r.Elapsed)
	if len(r.Errors) > 0 {
		for _, e := range r.Errors {
			fmt.Fprintln(stderr, "benchreport: section failed:", e)
		}
		return 1
	}
	return 0
}

// keepSections copies into r the sections of the report in file that r's run did not
// measure, and records where each came from.
func keepSections(r *Report, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("-keep: %w", err)
	}
	var old Report
	if err := json.Unmarshal(data, &old); err != nil {
		return fmt.Errorf("-keep %s: %w", file, err)
	}
	for _, s := range allSections {
		if r.Config.has(s) || !old.has(s) {
			continue
		}
		switch s {
		case "posix":
			r.Posix = old.Posix
		case "rss":
			r.RSS = old.RSS
		case "compaction":
			r.Compaction = old.Compaction
		case "s3":
			r.S3 = old.S3
		case "soak":
			r.Soak = old.Soak
		case "scale":
			r.Scale = old.Scale
		}
		if i := slices.IndexFunc(old.Kept, func(k Kept) bool { return k.Section == s }); i >= 0 {
			r.Kept = append(r.Kept, old.Kept[i]) // the earlier run had kept it from a run before
			continue
		}
		from := old.Command
		if old.Config.Mode != "default" {
			from += " (" + old.Config.Mode + " mode)"
		}
		r.Kept = append(r.Kept, Kept{Section: s, Command: from, Started: old.Started, Took: old.Took[s], LoadStart: old.LoadStart, LoadEnd: old.LoadEnd})
	}
	return nil
}

// rerender writes the report and plots of the results in file, with the sections it
// lacks taken from keep if set.
func rerender(file, keep, out, plots, format string, stderr io.Writer) int {
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(stderr, "benchreport:", err)
		return 1
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		fmt.Fprintf(stderr, "benchreport: %s: %v\n", file, err)
		return 1
	}
	if keep != "" {
		if err := keepSections(&r, keep); err != nil {
			fmt.Fprintln(stderr, "benchreport:", err)
			return 1
		}
	}
	r.collect()
	if err := write(&r, out, plots, format); err != nil {
		fmt.Fprintln(stderr, "benchreport:", err)
		return 1
	}
	return 0
}

// measure runs every section of r.Config in turn, recording results and errors in r. A
// failed section does not stop the others.
func measure(ctx context.Context, r *Report, dir string, logf func(string, ...any)) {
	cfg := r.Config
	section := func(name string, f func() error) {
		if !cfg.has(name) {
			return
		}
		start := time.Now()
		if err := f(); err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", name, err))
			logf("%s failed: %v", name, err)
		}
		r.Took[name] = time.Since(start).Round(time.Second).String()
	}
	r.Took = map[string]string{}
	section("posix", func() error {
		res, err := bench.Posix(ctx, bench.PosixOptions{Dir: dir, Sizes: cfg.PosixSizes, Runs: cfg.PosixRuns, Logf: logf})
		r.Posix = &res
		return err
	})
	section("rss", func() error {
		res, err := bench.PosixRSS(ctx, bench.PosixRSSOptions{Dir: dir, Size: cfg.RSSSize, Pools: cfg.RSSPools, Concs: cfg.RSSConcs, Logf: logf})
		r.RSS = &res
		return err
	})
	section("compaction", func() error {
		res, err := bench.Compaction(ctx, bench.CompactOptions{Dir: dir, Fills: cfg.Fills, Slots: cfg.Slots, Items: cfg.Items, Runs: cfg.CompactRuns, Logf: logf})
		r.Compaction = &res
		return err
	})
	section("scale", func() error {
		tierd, commit, err := buildTierd(ctx, filepath.Join(dir, "scale"))
		if err != nil {
			return err
		}
		res, err := bench.Scale(ctx, bench.ScaleOptions{Dir: dir, Tierd: tierd, Stores: cfg.ScaleStores, Runs: cfg.ScaleRuns,
			OffloadBudget: cfg.ScaleBudget, ScanInterval: cfg.ScaleInterval, DaemonBudget: cfg.ScaleDaemon, Logf: logf})
		res.Commit = commit
		r.Scale = &res
		return err
	})
	if !cfg.has("s3") && !cfg.has("soak") {
		return
	}
	s, err := startMinIO(dir)
	if err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("s3, soak: cannot start MinIO: %v", err))
		logf("cannot start MinIO: %v", err)
		return
	}
	defer func() {
		if err := s.Close(); err != nil {
			logf("stopping MinIO: %v", err)
		}
	}()
	r.Machine.Tools["minio"] = bench.ToolVersion(minioBin(), "--version")
	if mc, err := miniotest.FindBin("TIERD_MC_BIN", "mc"); err == nil {
		r.Machine.Tools["mc"] = bench.ToolVersion(mc, "--version")
	}
	srv := bench.MinIO(s, filepath.Join(dir, "minio-data"))
	section("s3", func() error {
		res, err := bench.S3(ctx, bench.S3Options{Dir: dir, Server: srv, Sizes: cfg.S3Sizes, Concs: cfg.S3Concs, MaxStored: cfg.S3MaxStored,
			Runs: cfg.S3Runs, Rclone: r.Rclone.Path, Logf: logf})
		r.S3 = &res
		return err
	})
	section("soak", func() error {
		res, err := bench.Soak(ctx, bench.SoakOptions{Dir: dir, Server: srv, Slots: cfg.Slots, Items: cfg.Items, Workers: cfg.SoakWorkers,
			Rounds: cfg.SoakRounds, Deadline: cfg.SoakDeadline, NaiveCeiling: cfg.NaiveCeiling, Logf: logf})
		r.Soak = &res
		return err
	})
}

// startMinIO runs the MinIO server the s3 and soak sections measure against, with its
// data under dir/minio-data.
func startMinIO(dir string) (*miniotest.Server, error) {
	dataDir := filepath.Join(dir, "minio-data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	return miniotest.Launch(miniotest.Options{Dir: dir, DataDir: dataDir})
}

// buildTierd builds the tierd of this working tree into dir and returns its path and the
// commit it was built from ("+dirty" when the tree has changes).
func buildTierd(ctx context.Context, dir string) (string, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	bin := filepath.Join(dir, "tierd")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tierd").CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("build tierd (run from the repository's root): %w: %s", err, strings.TrimSpace(string(out)))
	}
	commit := "unknown"
	if out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty=+dirty").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	return bin, commit, nil
}

// minioBin is the MinIO server binary miniotest runs.
func minioBin() string {
	if p := os.Getenv("TIERD_MINIO_BIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	return filepath.Join(goBin(), "minio")
}

func goBin() string {
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return ""
	}
	return filepath.Join(strings.TrimSpace(string(out)), "bin")
}

// Rclone says which rclone was measured, or why none was.
type Rclone struct {
	Path    string `json:"path,omitempty"`
	Version string `json:"version,omitempty"`
	Why     string `json:"why,omitempty"`
}

func findRclone(flagValue string) Rclone {
	path := flagValue
	switch flagValue {
	case "":
		return Rclone{Why: "not measured (-rclone \"\")"}
	case "auto":
		path = ""
		if p, err := exec.LookPath("rclone"); err == nil {
			path = p
		} else if p := filepath.Join(goBin(), "rclone"); fileExists(p) {
			path = p
		}
		if path == "" {
			return Rclone{Why: "not installed (looked on PATH and in $(go env GOPATH)/bin); `make rclone` installs it from the Go module proxy"}
		}
	}
	v := bench.ToolVersion(path, "version")
	if !strings.Contains(v, "rclone v") { // "rclone v1.x" (its output) or "github.com/rclone/rclone v1.x" (build info)
		return Rclone{Why: fmt.Sprintf("%s is not a working rclone: %s", path, v)}
	}
	return Rclone{Path: path, Version: v}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// checkSpace fails when dir's filesystem lacks the space the run needs at its peak: the
// source files not yet generated, plus the largest set of copies or objects one
// measurement holds at once, plus 2 GiB to spare.
func checkSpace(cfg config, dir string) error {
	free, err := bench.FreeSpace(dir)
	if err != nil {
		return err
	}
	sources := map[string]int64{}
	var peak int64
	if cfg.has("posix") {
		for _, s := range cfg.PosixSizes {
			sources[bench.SourcePath(dir, s)] = s
			peak = max(peak, s)
		}
	}
	if cfg.has("rss") {
		sources[bench.SourcePath(dir, cfg.RSSSize)] = cfg.RSSSize
		peak = max(peak, cfg.RSSSize*int64(maxInt(cfg.RSSConcs)))
	}
	if cfg.has("s3") {
		for _, s := range cfg.S3Sizes {
			sources[bench.SourcePath(dir, s)] = s
			for _, c := range cfg.S3Concs {
				if n := s * int64(c); n <= cfg.S3MaxStored {
					peak = max(peak, 2*n) // MinIO's trash may hold the last run's objects a while
				}
			}
		}
	}
	idx := indexFileSize(cfg.Slots, cfg.Items)
	if cfg.has("compaction") {
		for _, f := range cfg.Fills {
			sources[bench.IndexFilePath(dir, cfg.Slots, cfg.Items, (cfg.Items-1)*f/100)] = idx
		}
		peak = max(peak, 2*idx)
	}
	if cfg.has("soak") {
		sources[bench.IndexFilePath(dir, cfg.Slots, cfg.Items, cfg.Items-1)] = idx
		peak = max(peak, int64(cfg.SoakWorkers)*idx)
	}
	if cfg.has("scale") {
		// A store's files take a block each at least; its copies (run --once, then rsync)
		// as much again, one after the other.
		for _, st := range cfg.ScaleStores {
			files := int64(st.Topics) * int64(st.Partitions) * int64(3*st.Segments+2)
			if st.Layout == "rocketmq" {
				files = int64(st.Topics)*int64(st.Queues)*(1+st.Messages/int64(st.Topics*st.Queues)/10) + 16
			}
			est := files * 4 << 10
			if _, err := os.Stat(filepath.Join(dir, "scale", st.Name()+".sealed")); err != nil {
				sources[filepath.Join(dir, "scale", st.Name())] = est
			}
			peak = max(peak, est)
		}
	}
	var missing int64
	for p, s := range sources {
		if fi, err := os.Stat(p); err != nil || fi.Size() != s {
			missing += s
		}
	}
	need := missing + peak + 2<<30
	if free < need {
		return fmt.Errorf("%s has %.1f GiB free, this run needs %.1f GiB (%.1f GiB of sources to generate, %.1f GiB of copies and objects at once, 2 GiB spare): free space, use -dir elsewhere, or a smaller -mode",
			dir, bench.GiB(free), bench.GiB(need), bench.GiB(missing), bench.GiB(peak))
	}
	return nil
}

func indexFileSize(slots, items int) int64 { return 40 + int64(slots)*4 + int64(items)*20 }

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// fitCeiling lowers the naive offloader's ceiling to leave 4 GiB of the memory available
// now to everything else (the machine may be shared), and says so.
func fitCeiling(ceiling int64) (int64, string) {
	avail := bench.MemAvailable()
	if avail == 0 || ceiling+4<<30 <= avail {
		return ceiling, ""
	}
	lowered := max(avail-4<<30, 1<<30)
	return lowered, fmt.Sprintf("The naive offloader's ceiling was lowered from %s to %s: only %.1f GiB of memory was available when the run started.",
		bench.FormatSize(ceiling), bench.FormatSize(lowered), bench.GiB(avail))
}

// write renders the report, its plots and results.json.
func write(r *Report, out, plots, format string) error {
	plotDir := filepath.Join(filepath.Dir(out), plots)
	if err := os.MkdirAll(plotDir, 0o755); err != nil {
		return err
	}
	names, err := drawPlots(r, plotDir, format)
	if err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	r.Plots = map[string]string{}
	for k, n := range names {
		r.Plots[k] = filepath.ToSlash(filepath.Join(plots, n))
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(plotDir, "results.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	md, err := render(r)
	if err != nil {
		return err
	}
	return writeAtomic(out, md)
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return nil
}
