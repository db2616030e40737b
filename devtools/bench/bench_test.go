package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/devtools/miniotest"
)

func TestMain(m *testing.M) {
	MaybeChild()
	os.Exit(m.Run())
}

func TestMedian(t *testing.T) {
	f := func(in []float64, want float64) {
		t.Helper()
		if got := Median(in); got != want {
			t.Errorf("Median(%v) = %v, want %v", in, got, want)
		}
	}
	f(nil, 0)
	f([]float64{3}, 3)
	f([]float64{3, 1, 2}, 2)
	f([]float64{4, 1, 3, 2}, 2.5)
	in := []float64{5, 1, 4}
	f(in, 4)
	if in[0] != 5 {
		t.Errorf("Median reordered its input: %v", in)
	}
}

func TestSlope(t *testing.T) {
	f := func(xs, ys []float64, want float64, wantOK bool) {
		t.Helper()
		got, ok := Slope(xs, ys)
		if ok != wantOK || (ok && (got < want-1e-9 || got > want+1e-9)) {
			t.Errorf("Slope(%v, %v) = %v, %v; want %v, %v", xs, ys, got, ok, want, wantOK)
		}
	}
	f([]float64{0, 1, 2, 3}, []float64{1, 3, 5, 7}, 2, true)
	f([]float64{0, 1, 2, 3}, []float64{5, 5, 5, 5}, 0, true)
	f([]float64{0, 1, 2, 3}, []float64{1, 0, 1, 0}, -0.2, true)
	f([]float64{1}, []float64{1}, 0, false)
	f([]float64{2, 2, 2}, []float64{1, 2, 3}, 0, false)
	f([]float64{1, 2}, []float64{1}, 0, false)
}

func TestFitSlope(t *testing.T) {
	var ss []SoakSample
	for i := range 20 {
		rss := int64(100 << 20)
		if i == 0 {
			rss = 10 << 20 // warm-up before round 1 is left out of the fit
		}
		ss = append(ss, SoakSample{Rounds: float64(i) / 2, RSS: rss + int64(i)<<19})
	}
	slope, ok, from := fitSlope(ss)
	if !ok || from != 1 || slope < 0.999 || slope > 1.001 {
		t.Errorf("fitSlope = %v, %v, from %v; want 1 MiB/round from round 1", slope, ok, from)
	}
	slope, ok, from = fitSlope(ss[:3]) // too few after round 1: all samples
	if !ok || from != 0 {
		t.Errorf("fitSlope of 3 samples = %v, %v, from %v; want a fit from round 0", slope, ok, from)
	}
}

func TestParseSize(t *testing.T) {
	f := func(in string, want int64, wantErr bool) {
		t.Helper()
		got, err := ParseSize(in)
		if (err != nil) != wantErr || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", in, got, err, want, wantErr)
		}
	}
	f("4GiB", 4<<30, false)
	f(" 256MiB", 256<<20, false)
	f("64KiB", 64<<10, false)
	f("1000", 1000, false)
	f("0", 0, true)
	f("-1MiB", 0, true)
	f("1TB", 0, true)
	f("", 0, true)
	f("99999999999GiB", 0, true)
	if s := FormatSize(4 << 30); s != "4GiB" {
		t.Errorf("FormatSize(4GiB) = %s", s)
	}
	if s := FormatSize(3<<20 + 1); s != "3145729" {
		t.Errorf("FormatSize(3MiB+1) = %s", s)
	}
	if got, err := ParseSizes("1GiB,4GiB"); err != nil || len(got) != 2 || got[1] != 4<<30 {
		t.Errorf("ParseSizes = %v, %v", got, err)
	}
}

func TestResident(t *testing.T) {
	dir := t.TempDir()
	path, err := SourceFile(dir, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Resident(path); err != nil || n > 64<<10 {
		t.Fatalf("after SourceFile: %d bytes resident, %v; want (almost) none", n, err)
	}
	data, err := os.ReadFile(path)
	if err != nil || len(data) != 4<<20 {
		t.Fatalf("read %d bytes, %v", len(data), err)
	}
	if n, err := Resident(path); err != nil || n != 4<<20 {
		t.Fatalf("after reading: %d bytes resident, %v; want all %d", n, err, 4<<20)
	}
	if n, err := ResidentTree(dir); err != nil || n != 4<<20 {
		t.Fatalf("ResidentTree: %d, %v", n, err)
	}
	if err := DropCache(path); err != nil {
		t.Fatal(err)
	}
	if n, err := Resident(path); err != nil || n > 64<<10 {
		t.Fatalf("after DropCache: %d bytes resident, %v", n, err)
	}
	if _, err := Resident(filepath.Join(dir, "missing")); err == nil {
		t.Error("Resident of a missing file: no error")
	}
	again, err := SourceFile(dir, 4<<20) // kept, not rewritten
	if err != nil || again != path {
		t.Fatalf("SourceFile again: %s, %v", again, err)
	}
}

func TestDescribeMachine(t *testing.T) {
	m := DescribeMachine(t.TempDir())
	if m.Cores < 1 || m.MemTotal <= 0 || m.FS == "" || m.DiskSize <= 0 || m.GoVersion == "" {
		t.Errorf("DescribeMachine = %+v", m)
	}
	if v := ToolVersion("dd", "--version"); !strings.Contains(v, "dd") {
		t.Errorf("ToolVersion(dd) = %q", v)
	}
	if v := ToolVersion("no-such-tool-here"); !strings.HasPrefix(v, "unavailable") {
		t.Errorf("ToolVersion of a missing tool = %q", v)
	}
	if l := LoadAvg(); l[0] < 0 {
		t.Errorf("LoadAvg = %v", l)
	}
}

func TestChildWithoutMaybeChildIsReported(t *testing.T) {
	_, _, err := runChild(context.Background(), childJob{Op: "nonsense"})
	if err == nil || !strings.Contains(err.Error(), "unknown operation") {
		t.Fatalf("runChild of an unknown operation: %v", err)
	}
}

func checkAll(t *testing.T, checks []Check) {
	t.Helper()
	if len(checks) == 0 {
		t.Error("no checks")
	}
	for _, c := range checks {
		if c.Op != "<=" && c.Op != ">=" || c.What == "" || c.Unit == "" {
			t.Errorf("malformed check %+v", c)
		}
	}
}

// The measurements end to end on tiny inputs: they run, every number is there, and
// nothing is left behind.
func TestPosixSmall(t *testing.T) {
	dir := t.TempDir()
	res, err := Posix(context.Background(), PosixOptions{Dir: dir, Sizes: []int64{8 << 20}, Runs: 2, Pool: 16 << 20, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sizes) != 1 || len(res.Sizes[0].Contenders) != 5 {
		t.Fatalf("result %+v", res)
	}
	for _, c := range res.Sizes[0].Contenders {
		if len(c.Secs.Runs) != 2 || c.MBps.Median <= 0 || c.MaxRSS.Median <= 0 || c.CPUPerGiB.Median <= 0 {
			t.Errorf("%s: %+v", c.Name, c)
		}
		if strings.HasPrefix(c.Name, "tierd-") && (c.Baseline == "" || c.Ratio <= 0) {
			t.Errorf("%s: no ratio: %+v", c.Name, c)
		}
	}
	checkAll(t, res.Sizes[0].Checks)
	assertEmpty(t, filepath.Join(dir, "tier"))
}

func TestPosixRSSSmall(t *testing.T) {
	dir := t.TempDir()
	res, err := PosixRSS(context.Background(), PosixRSSOptions{Dir: dir, Size: 8 << 20, Pools: []int64{16 << 20}, Concs: []int{1, 3}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 6 || len(res.Checks) != 6 {
		t.Fatalf("result %+v", res)
	}
	for _, r := range res.Runs {
		if r.MaxRSS <= 16<<20/2 || r.MBps <= 0 {
			t.Errorf("run %+v: the pool's touched pages must count in the peak", r)
		}
	}
	assertEmpty(t, filepath.Join(dir, "tier-rss"))
}

func TestCompactionSmall(t *testing.T) {
	dir := t.TempDir()
	res, err := Compaction(context.Background(), CompactOptions{Dir: dir, Fills: []int{0, 100}, Slots: 500, Items: 2000, Runs: 2,
		Pool: 16 << 20, LookupSample: 100, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Fills) != 2 {
		t.Fatalf("result %+v", res)
	}
	full := res.Fills[1]
	if full.Items != 1999 || full.OutSize <= 0 || full.BytesPerItem <= 0 || full.ReadsPerLookup < 1 || full.MaxReads > 2 || len(full.Contenders) != 4 {
		t.Errorf("full file: %+v", full)
	}
	if tierd := full.Contenders[0]; tierd.Name != "tierd" || tierd.Baseline != "dd-read+write" || tierd.Ratio <= 0 || len(tierd.Secs.Runs) != 2 {
		t.Errorf("tierd: %+v", tierd)
	}
	checkAll(t, full.Checks)
	if len(res.Fills[0].Checks) != 2 {
		t.Errorf("empty file checks %+v: want no per-item checks", res.Fills[0].Checks)
	}
	assertEmpty(t, filepath.Join(dir, "tier-compact"))
}

func TestS3AndSoakSmall(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "minio")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv := miniotest.StartWith(t, miniotest.Options{DataDir: dataDir})
	miniotest.MCBin(t)
	server := MinIO(srv, dataDir)
	ctx := context.Background()
	res, err := S3(ctx, S3Options{Dir: dir, Server: server, Sizes: []int64{12 << 20}, Concs: []int{1, 3}, MaxStored: 24 << 20, Runs: 1,
		Pool: 24 << 20, BufSize: 6 << 20, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Configs) != 2 || res.Configs[0].Skipped != "" || res.Configs[1].Skipped == "" {
		t.Fatalf("configs %+v: want 12MiB x 1 measured, 12MiB x 3 skipped", res.Configs)
	}
	cfg := res.Configs[0]
	if len(cfg.Contenders) != 3 {
		t.Fatalf("contenders %+v", cfg.Contenders)
	}
	for _, c := range cfg.Contenders {
		if c.MBps.Median <= 0 || c.MaxRSS.Median <= 0 || c.ServerCPUPerGiB.Median <= 0 {
			t.Errorf("%s: %+v", c.Name, c)
		}
	}
	checkAll(t, cfg.Checks)
	out, err := srv.MC("ls", "--recursive", miniotest.Alias+"/"+srv.Bucket)
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("objects left after S3: %s %v", out, err)
	}

	soak, err := Soak(ctx, SoakOptions{Dir: dir, Server: server, Slots: 500, Items: 2000, Workers: 3, Rounds: 4, Pool: 24 << 20, BufSize: 6 << 20,
		Interval: 20 * time.Millisecond, NaiveCeiling: 3 * 2000 * 20, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if soak.Tierd.Jobs != 12 || soak.Tierd.Stopped != "" || len(soak.Tierd.Samples) == 0 || soak.Tierd.MaxRSS <= 0 {
		t.Errorf("tierd soak %+v", soak.Tierd)
	}
	if n := soak.Naive; n == nil || n.Jobs >= 12 || !strings.Contains(n.Stopped, "ceiling") || n.Kept == 0 {
		t.Errorf("naive soak %+v: want it stopped by its ceiling", n)
	}
	checkAll(t, soak.Checks)
	assertEmpty(t, filepath.Join(dir, "tier-soak"))
	out, err = srv.MC("ls", "--recursive", miniotest.Alias+"/"+srv.Bucket)
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("objects left after the soak: %s %v", out, err)
	}
}

// assertEmpty fails if dir holds anything but empty directories.
func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("left behind: %s", path)
		}
		return nil
	})
}
