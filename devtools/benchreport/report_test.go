package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/devtools/bench"
)

func stat(xs ...float64) bench.Stat { return bench.Stat{Runs: xs, Median: bench.Median(xs)} }

func runs(name string, mbps float64, baseline string, ratio float64) bench.Runs {
	return bench.Runs{Name: name, Bytes: 1 << 30, Secs: stat(1, 1.1, 0.9), MBps: stat(mbps, mbps*1.1, mbps*0.9), CPUPerGiB: stat(0.5, 0.6, 0.4),
		MaxRSS: stat(80<<20, 81<<20, 82<<20), SrcResident: stat(0, 0, 0), DstResident: stat(0, 1<<20, 0), Baseline: baseline, Ratio: ratio}
}

// fakeReport is a report of every section, with numbers chosen so that exactly the
// posix mmap and the soak slope goals are missed.
func fakeReport(mode string) *Report {
	cfg, _ := preset(mode)
	r := &Report{Config: cfg, Command: "make bench-report", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Elapsed: "41m0s",
		Took:    map[string]string{"posix": "6m", "rss": "3m", "compaction": "4m", "s3": "15m", "soak": "13m"},
		Machine: bench.Machine{CPU: "Test CPU", Cores: 2, MemTotal: 24 << 30, FS: "ext4", Dir: "/tmp/tierd-bench", Tools: map[string]string{"dd": "dd 9.1"}},
		Rclone:  Rclone{Why: "not installed"}}
	check := func(key, what string, v float64, op string, target float64, unit string) bench.Check {
		met := v <= target
		if op == ">=" {
			met = v >= target
		}
		return bench.Check{Key: key, What: what, Value: v, Op: op, Target: target, Unit: unit, Met: met}
	}
	r.Posix = &bench.PosixResult{Pool: 64 << 20, BufSize: 8 << 20, Runs: 3, Sizes: []bench.PosixSize{{
		Size: 1 << 30,
		Contenders: []bench.Runs{runs("dd-direct", 800, "", 0), runs("tierd-direct", 820, "dd-direct", 1.025), runs("dd-fsync", 700, "", 0),
			runs("tierd-mmap", 560, "dd-fsync", 0.8), runs("tierd-buffered", 700, "dd-fsync", 1)},
		Checks: []bench.Check{
			check("posix/1GiB/direct/ratio", "1GiB: tierd direct / dd-direct throughput", 1.025, ">=", 0.95, "x"),
			check("posix/1GiB/mmap/ratio", "1GiB: tierd mmap / dd-fsync throughput", 0.8, ">=", 0.9, "x"),
			check("posix/1GiB/buffered/ratio", "1GiB: tierd buffered / dd-fsync throughput", 1, ">=", 0.9, "x"),
			check("posix/1GiB/cache", "1GiB: page cache", 1, "<=", 64, "MiB"),
		},
	}}}
	r.RSS = &bench.PosixRSSResult{Size: 1 << 30, Runs: []bench.RSSRun{{Pool: 16 << 20, Conc: 16, Mode: "direct", MaxRSS: 40 << 20, Limit: 64 << 20, MBps: 900}},
		Checks: []bench.Check{check("rss/16MiB/16/direct", "peak RSS, direct, pool 16MiB, 16 copies", 40, "<=", 64, "MiB")}}
	r.S3 = &bench.S3Result{Pool: 64 << 20, BufSize: 8 << 20, PartSize: 8 << 20, Runs: 3, Configs: []bench.S3Config{
		{Size: 1 << 30, Conc: 1, Contenders: []bench.Runs{runs("tierd-aws", 400, "mc", 1.33), runs("tierd-minio", 450, "mc", 1.5), runs("mc", 300, "", 0)},
			Checks: []bench.Check{check("s3/1GiBx1/aws/ratio", "1GiB x 1: tierd aws / mc throughput", 1.33, ">=", 1.2, "x")}},
		{Size: 4 << 30, Conc: 16, Skipped: "too big for the disk"},
	}}
	fill := bench.CompactFill{Fill: 100, Items: 19_999_999, SrcSize: 420_000_040, OutSize: 161 << 20, BytesPerItem: 8.05, Passes: 3, Buffers: 7, Partitioned: 2,
		CountSecs: 0.5, FillSecs: 0.4, ScanSecs: 0.3, PlaceSecs: 0.1, WriteSecs: 0.2,
		Contenders:     []bench.Runs{runs("tierd", 150, "dd-read+write", 1.4), runs("dd-read", 900, "", 0), runs("dd-write", 900, "", 0), runs("dd-read+write", 400, "", 0)},
		ReadsPerLookup: 2, MaxReads: 2, LookupsSampled: 100,
		Checks: []bench.Check{check("compaction/100/ratio", "fill 100%: compaction time / dd read + write", 1.4, "<=", 1.5, "x")}}
	r.Compaction = &bench.CompactResult{Slots: 5_000_000, ItemsMax: 20_000_000, Pool: 64 << 20, BufSize: 8 << 20, MaxBuffers: 8, Runs: 3, Fills: []bench.CompactFill{fill}}
	var tierd, naive []bench.SoakSample
	for i := range 60 {
		tierd = append(tierd, bench.SoakSample{Secs: float64(i), Rounds: float64(i) / 6, RSS: 90<<20 + int64(i)<<20})
		if i < 10 {
			naive = append(naive, bench.SoakSample{Secs: float64(i), Rounds: float64(i) / 5, RSS: int64(i+1) * 600 << 20})
		}
	}
	r.Soak = &bench.SoakResult{FileSize: 420_000_040, Workers: 8, Rounds: 10, Pool: 64 << 20, BufSize: 8 << 20, Driver: "aws", Interval: 1, Ceiling: 6 << 30,
		Tierd:  bench.SoakRun{Name: "tierd", Samples: tierd, Jobs: 80, Rounds: 10, Secs: 60, MaxRSS: 150 << 20, Slope: 6, SlopeOK: true, FitFrom: 1},
		Naive:  &bench.SoakRun{Name: "naive", Samples: naive, Jobs: 14, Rounds: 1.75, Secs: 10, MaxRSS: 6000 << 20, Slope: 3000, SlopeOK: true, Stopped: "stopped at the ceiling"},
		Checks: []bench.Check{check("soak/slope", "tierd RSS slope", 6, "<=", 0.5, "MiB/round"), check("soak/peak", "tierd peak RSS", 150, "<=", 112, "MiB")}}
	scaleRun := func(name string, files int64, rss int64, ratio float64) bench.ScaleRun {
		st, _ := bench.ParseScaleStore(strings.Replace(name, "-", ":", 1))
		x := bench.ScaleRun{Store: st, Name: name, Files: files, Sealed: files * 3 / 4, Find: bench.Runs{Secs: stat(0.5, 0.6)}, Scan: bench.Runs{Secs: stat(1.2, 1.4), MaxRSS: stat(float64(rss))},
			ScanRatio: 2.4, Once: bench.ScaleCopy{Usage: bench.Usage{Secs: 60, MaxRSS: rss}, Files: files / 2, Rate: 900, Stopped: true},
			Rsync: bench.ScaleCopy{Usage: bench.Usage{Secs: 60}, Files: files, Rate: 900 / ratio}, Ratio: ratio,
			Daemon: bench.ScaleIdle{Usage: bench.Usage{MaxRSS: rss}, Interval: 3, FirstScan: 2, Scans: 10, CPUPerScan: 0.25}, CatalogBytes: files * 100}
		x.Checks = []bench.Check{
			check("scale/"+name+"/scan", name+": scan / find", 2.4, "<=", 3, "x"),
			check("scale/"+name+"/daemon-rss", name+": idle daemon RSS", bench.MiB(rss), "<=", 112, "MiB"),
			check("scale/"+name+"/offload", name+": offload ratio", ratio, ">=", 0.5, "x"),
		}
		return x
	}
	r.Scale = &bench.ScaleResult{Commit: "abc1234", Pool: 64 << 20, BufSize: 8 << 20, Runs: 3, OffloadBudget: 120, Rsync: "rsync 3.2.7", Stores: []bench.ScaleRun{
		scaleRun("kafka-1x500x7", 11_505, 60<<20, 0.8), scaleRun("kafka-1x4800x7", 110_405, 70<<20, 0.7), scaleRun("rocketmq-10x1024x250000", 29_702, 65<<20, 0.6),
	}}
	r.collect()
	return r
}

func TestRenderAndPlots(t *testing.T) {
	dir := t.TempDir()
	r := fakeReport("default")
	out := filepath.Join(dir, "BENCHMARKS.md")
	if err := write(r, out, "benchmarks", "svg"); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	s := string(md)
	for _, want := range []string{
		"# Benchmarks", "**2 cores**", "ext4", "Test CPU", "## Headline", "| posix 1GiB, mmap | 560 MB/s | dd conv=fsync 700 MB/s | 0.80× | ≥ 0.90× | ❌ short |",
		"| posix 1GiB, direct | 820 MB/s | dd O_DIRECT 800 MB/s | 1.02× | ≥ 0.95× | ✅ met |",
		"## Where tierd falls short", "**1GiB: tierd mmap / dd-fsync throughput**: 0.80×, the goal is ≥ 0.90×.",
		"**tierd RSS slope**: 6 MiB/round, the goal is ≤ 0.5 MiB/round.", "**tierd peak RSS**: 150.0 MiB, the goal is ≤ 112.0 MiB.",
		"Skipped: too big for the disk.", "rclone: not installed", "420,000,040 bytes", "stopped at the ceiling",
		"(benchmarks/posix-throughput.svg)", "(benchmarks/soak-rss.svg)", "(benchmarks/compaction.svg)", "## All goals", "make bench-report",
		"2 filling passes (2 partitioned) 0.40 s: reading the items and partitioning 0.30 s, placing 0.10 s; writing 0.20 s",
		"## Scale: stores of many small files", "commit `abc1234`", "(benchmarks/scale-rss.svg)", "(benchmarks/scale-time.svg)",
		"| scale, 110,405 files (kafka-1x4800x7): scan time | 1.30 s | find 0.55 s | 2.40× | ≤ 3.00× | ✅ met |",
		"900 files/s: 55202 of 0 in 60.0 s, stopped", "0.250 s (10), 2.0 s",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(s, "Quick run") || strings.Contains(s, "<no value>") || strings.Contains(s, "\n\n\n") {
		t.Errorf("report of a default run:\n%s", s)
	}
	for _, name := range []string{"posix-throughput", "posix-rss", "s3-throughput", "s3-cpu", "compaction", "soak-rss", "soak-tierd", "scale-rss", "scale-time"} {
		data, err := os.ReadFile(filepath.Join(dir, "benchmarks", name+".svg"))
		if err != nil || !bytes.Contains(data, []byte("<svg")) {
			t.Errorf("plot %s: %v", name, err)
		}
	}
	// results.json holds everything: rendering it again gives the same report.
	again := filepath.Join(dir, "again", "BENCHMARKS.md")
	var stderr bytes.Buffer
	if code := run([]string{"-from", filepath.Join(dir, "benchmarks", "results.json"), "-out", again}, &stderr); code != 0 {
		t.Fatalf("rerender: exit %d: %s", code, stderr.String())
	}
	md2, err := os.ReadFile(again)
	if err != nil || !bytes.Equal(md, md2) {
		t.Errorf("rendering results.json again changed the report (%v)", err)
	}
	png := filepath.Join(dir, "png", "BENCHMARKS.md")
	if code := run([]string{"-from", filepath.Join(dir, "benchmarks", "results.json"), "-out", png, "-format", "png"}, &stderr); code != 0 {
		t.Fatalf("rerender as png: exit %d: %s", code, stderr.String())
	}
	if md3, err := os.ReadFile(png); err != nil || !bytes.Contains(md3, []byte("(benchmarks/soak-rss.png)")) {
		t.Errorf("png report: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "png", "benchmarks", "soak-rss.png")); err != nil {
		t.Errorf("png plots: %v", err)
	}
}

func TestQuickReportIsLabelled(t *testing.T) {
	r := fakeReport("quick")
	md, err := render(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(md, []byte("> **Quick run.**")) {
		t.Errorf("quick report not labelled:\n%s", md)
	}
}

func TestHeadlineVerdicts(t *testing.T) {
	r := fakeReport("default")
	f := func(keys []string, want string) {
		t.Helper()
		if got := r.verdict(keys...); got != want {
			t.Errorf("verdict(%v) = %q, want %q", keys, got, want)
		}
	}
	f([]string{"posix/1GiB/direct/ratio"}, "met")
	f([]string{"posix/1GiB/direct/ratio", "posix/1GiB/mmap/ratio"}, "short")
	f([]string{"no/such/key"}, "")
	if n := len(r.short()); n != 3 {
		t.Errorf("%d goals short, want 3 (mmap, soak slope, soak peak)", n)
	}
}

func TestFlags(t *testing.T) {
	f := func(args []string, wantErr bool, check func(config)) {
		t.Helper()
		_, cfg, err := parseFlags(args, &bytes.Buffer{})
		if (err != nil) != wantErr {
			t.Errorf("%v: error %v, want one: %v", args, err, wantErr)
			return
		}
		if check != nil && err == nil {
			check(cfg)
		}
	}
	f(nil, false, func(c config) {
		if len(c.PosixSizes) != 2 || c.SoakRounds != 30 || c.SoakWorkers != 8 || c.Items != 20_000_000 || len(c.Sections) != 6 || len(c.ScaleStores) != 4 {
			t.Errorf("default config %+v", c)
		}
	})
	f([]string{"-mode", "quick", "-runs", "2", "-posix-sizes", "64MiB,128MiB", "-sections", "posix,soak"}, false, func(c config) {
		if c.PosixRuns != 2 || c.S3Runs != 2 || c.PosixSizes[1] != 128<<20 || !c.has("soak") || c.has("s3") || c.SoakRounds != 10 {
			t.Errorf("quick config %+v", c)
		}
	})
	f([]string{"-mode", "fast"}, true, nil)
	f([]string{"-sections", "posix,gpu"}, true, nil)
	f([]string{"-posix-sizes", "1TB"}, true, nil)
	f([]string{"-fills", "1,150"}, true, nil)
	f([]string{"-soak-workers", "0"}, true, nil)
	f([]string{"-sections", "scale", "-scale-stores", "kafka:1x10x3,rocketmq:2x8x1000", "-scale-budget", "30s"}, false, func(c config) {
		if len(c.ScaleStores) != 2 || c.ScaleStores[1].Queues != 8 || c.ScaleStores[0].Segments != 3 || c.ScaleBudget != 30*time.Second || !c.has("scale") || c.has("posix") {
			t.Errorf("scale config %+v", c)
		}
	})
	f([]string{"-scale-stores", "nats:1x2x3"}, true, nil)
	f([]string{"-scale-stores", "kafka:1x0x3"}, true, nil)
	f([]string{"-scale-budget", "-1s"}, true, nil)
}

// -keep takes the sections a run did not measure from an earlier results.json, says so,
// and keeps what the earlier run had kept itself.
func TestKeepSections(t *testing.T) {
	dir := t.TempDir()
	old := fakeReport("default")
	old.Command, old.Took = "make bench-report", map[string]string{"posix": "6m", "scale": "9m"}
	data, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "results.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _ := preset("default")
	cfg.Sections = []string{"scale"}
	r := &Report{Config: cfg, Command: "second", Started: time.Now(), Scale: &bench.ScaleResult{Commit: "new"}}
	if err := keepSections(r, file); err != nil {
		t.Fatal(err)
	}
	if r.Scale.Commit != "new" || r.Posix == nil || r.Soak == nil || len(r.Kept) != 5 || r.Kept[0].Section != "posix" || r.Kept[0].Took != "6m" {
		t.Fatalf("kept %+v, scale %+v", r.Kept, r.Scale)
	}
	r.collect()
	md, err := render(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(md, []byte("| Section posix: from an earlier run | `make bench-report`, started 2026-01-02 03:04 UTC, took 6m;")) {
		t.Errorf("report does not say where posix came from:\n%s", md)
	}
	// A later run of posix alone keeps scale from this one and the rest from the first.
	data, _ = json.Marshal(r)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Sections = []string{"posix"}
	r2 := &Report{Config: cfg, Posix: old.Posix}
	if err := keepSections(r2, file); err != nil {
		t.Fatal(err)
	}
	byName := map[string]Kept{}
	for _, k := range r2.Kept {
		byName[k.Section] = k
	}
	if r2.Scale == nil || r2.Scale.Commit != "new" || len(r2.Kept) != 5 || byName["scale"].Command != "second" || byName["soak"].Command != "make bench-report" {
		t.Fatalf("second keep: %+v", r2.Kept)
	}
	// -from a run of scale alone, -keep the rest: the same report from the tool.
	scaleOnly := filepath.Join(dir, "scale.json")
	data, _ = json.Marshal(&Report{Config: cfg2(cfg, "scale"), Command: "third", Scale: r.Scale})
	if err := os.WriteFile(scaleOnly, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "merged", "BENCHMARKS.md")
	var stderr bytes.Buffer
	if code := run([]string{"-from", scaleOnly, "-keep", file, "-out", out}, &stderr); code != 0 {
		t.Fatalf("-from -keep: exit %d: %s", code, stderr.String())
	}
	if md, err := os.ReadFile(out); err != nil || !bytes.Contains(md, []byte("| Section posix: from an earlier run | `make bench-report`")) || !bytes.Contains(md, []byte("## Scale")) {
		t.Errorf("-from -keep report: %v", err)
	}
	if err := keepSections(r2, filepath.Join(dir, "missing.json")); err == nil {
		t.Error("-keep of a missing file succeeded")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"-format", "gif"}, &stderr); code != 2 {
		t.Errorf("-format gif: exit %d", code)
	}
	if code := run([]string{"-mode", "nope"}, &stderr); code != 2 || !strings.Contains(stderr.String(), "nope") {
		t.Errorf("-mode nope: exit %d: %s", code, stderr.String())
	}
}

func TestCheckSpace(t *testing.T) {
	cfg, _ := preset("default")
	cfg.S3MaxStored = 1 << 50 // a run that cannot fit anywhere
	cfg.S3Concs = []int{1 << 20}
	err := checkSpace(cfg, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "GiB free, this run needs") {
		t.Errorf("checkSpace of an impossible run: %v", err)
	}
	small, _ := preset("quick")
	small.Sections = []string{"posix"}
	small.PosixSizes = []int64{1 << 20}
	if err := checkSpace(small, t.TempDir()); err != nil {
		t.Errorf("checkSpace of a tiny run: %v", err)
	}
}

func TestResultsRoundTrip(t *testing.T) {
	r := fakeReport("default")
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	back.collect()
	if len(back.Checks) != len(r.Checks) || len(back.Headline) != len(r.Headline) || back.Soak.Naive.MaxRSS != r.Soak.Naive.MaxRSS {
		t.Errorf("round trip lost data")
	}
}

func cfg2(c config, sections ...string) config {
	c.Sections = sections
	return c
}
