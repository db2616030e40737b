package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestParseScaleStore(t *testing.T) {
	f := func(in string, want ScaleStore, wantErr bool) {
		t.Helper()
		got, err := ParseScaleStore(in)
		if (err != nil) != wantErr || got != want {
			t.Fatalf("ParseScaleStore(%q) = %+v, %v", in, got, err)
		}
		if err == nil && (got.Name() != in[:len(got.Layout)]+"-"+in[len(got.Layout)+1:]) {
			t.Fatalf("%q: name %s", in, got.Name())
		}
	}
	f("kafka:1x500x7", ScaleStore{Layout: "kafka", Topics: 1, Partitions: 500, Segments: 7}, false)
	f("rocketmq:10x1024x250000", ScaleStore{Layout: "rocketmq", Topics: 10, Queues: 1024, Messages: 250000}, false)
	f("kafka:1x500", ScaleStore{}, true)
	f("kafka:1x0x7", ScaleStore{}, true)
	f("nats:1x2x3", ScaleStore{}, true)
	f("kafka-1x2x3", ScaleStore{}, true)
}

// The scale harness end to end against the tierd of this tree, on stores small enough
// for a test: every store measured, the offload of a small store finished, every scratch
// directory removed and the stores kept.
func TestScaleSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tierd and runs it over generated stores")
	}
	dir := t.TempDir()
	tierd := filepath.Join(dir, "tierd")
	if out, err := exec.Command("go", "build", "-o", tierd, "../../cmd/tierd").CombinedOutput(); err != nil {
		t.Fatalf("build tierd: %v: %s", err, out)
	}
	stores := []ScaleStore{{Layout: "kafka", Topics: 1, Partitions: 4, Segments: 3}, {Layout: "rocketmq", Topics: 1, Queues: 4, Messages: 200}}
	res, err := Scale(context.Background(), ScaleOptions{Dir: dir, Tierd: tierd, Stores: stores, Runs: 2, OffloadBudget: 2 * time.Minute,
		ScanInterval: 200 * time.Millisecond, IdleScans: 3, DaemonBudget: time.Minute, Pool: 16 << 20, BufSize: 1 << 20, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stores) != 2 {
		t.Fatalf("%d stores measured", len(res.Stores))
	}
	for _, s := range res.Stores {
		if s.Files == 0 || s.Sealed == 0 || len(s.Scan.Secs.Runs) != 2 || len(s.Find.Secs.Runs) != 2 || s.ScanRatio <= 0 {
			t.Errorf("%s: scan %+v", s.Name, s)
		}
		if s.Once.Stopped || s.Once.Files == 0 || s.Once.MaxRSS == 0 || s.CatalogBytes == 0 {
			t.Errorf("%s: run --once %+v, catalog %d", s.Name, s.Once, s.CatalogBytes)
		}
		if s.Daemon.Scans < 3 || s.Daemon.CPUPerScan <= 0 || s.Daemon.MaxRSS == 0 {
			t.Errorf("%s: idle daemon %+v", s.Name, s.Daemon)
		}
		if s.Rsync.Skipped == "" && (s.Rsync.Files != s.Sealed || s.Ratio <= 0) {
			t.Errorf("%s: rsync %+v of %d sealed files", s.Name, s.Rsync, s.Sealed)
		}
		if len(s.Checks) < 4 {
			t.Errorf("%s: checks %+v", s.Name, s.Checks)
		}
		if _, err := os.Stat(filepath.Join(dir, "scale", s.Name+".sealed")); err != nil {
			t.Errorf("%s: store not kept: %v", s.Name, err)
		}
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "scale", "work-*"))
	if len(entries) != 0 {
		t.Errorf("scratch left: %v", entries)
	}
}
