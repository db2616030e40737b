package pacing

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fakeStats writes a diskstats file where device vda has io_ticks ticks.
func fakeStats(t *testing.T, path string, ticks uint64) {
	t.Helper()
	line := fmt.Sprintf("   7       0 loop0 1 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n 254       0 vda 100 0 800 50 200 0 1600 70 0 %d 120 0 0 0 0 0 0\n", ticks)
	if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPacingReacts drives the pacer with a fake diskstats file: busy samples halve the
// rate down to the floor, calm samples bring it back to unlimited.
func TestPacingReacts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "diskstats")
	fakeStats(t, path, 0)
	p, err := New(Config{Device: "vda", Busy: 0.8, Path: path, MinRate: 4 << 20, StartRate: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	ticks := uint64(0)
	step := func(util float64) float64 {
		now = now.Add(time.Second)
		ticks += uint64(util * 1000)
		fakeStats(t, path, ticks)
		p.Sample(now)
		r, _ := p.Rate()
		return r
	}
	p.Sample(now)
	if r := step(0.3); !math.IsInf(r, 1) {
		t.Fatalf("calm disk: rate %v, want unlimited", r)
	}
	want := []float64{64 << 20, 32 << 20, 16 << 20, 8 << 20, 4 << 20, 4 << 20}
	for i, w := range want {
		if r := step(0.95); r != w {
			t.Fatalf("busy sample %d: rate %v, want %v", i+1, r, w)
		}
	}
	if _, u := p.Rate(); u < 0.94 || u > 0.96 {
		t.Fatalf("utilisation %v, want 0.95", u)
	}
	prev := 4.0 * (1 << 20)
	for i := 0; ; i++ {
		r := step(0.1)
		if math.IsInf(r, 1) {
			break
		}
		if r <= prev || i > 10 {
			t.Fatalf("calm sample %d: rate %v after %v", i+1, r, prev)
		}
		prev = r
	}
}

// TestWaitNIsPaced: while slowed, WaitN takes the time the rate says.
func TestWaitNIsPaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "diskstats")
	fakeStats(t, path, 0)
	p, err := New(Config{Device: "vda", Busy: 0.5, Path: path, StartRate: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	p.Sample(now)
	fakeStats(t, path, 1000)
	p.Sample(now.Add(time.Second)) // 100% busy: 2 MiB/s
	ctx := context.Background()
	start := time.Now()
	for range 8 {
		if err := p.WaitN(ctx, 256<<10); err != nil {
			t.Fatal(err)
		}
	}
	// 2 MiB at 2 MiB/s with a 200 KiB burst: close to a second.
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Fatalf("2 MiB at 2 MiB/s took %v", d)
	}
}

func TestConfigAndDevice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "diskstats")
	fakeStats(t, path, 0)
	f := func(cfg Config) {
		t.Helper()
		cfg.Path = path
		if _, err := New(cfg); err == nil {
			t.Fatalf("New(%+v) succeeded", cfg)
		}
	}
	f(Config{Busy: 0.5})
	f(Config{Device: "vda", Busy: 0})
	f(Config{Device: "vda", Busy: 1.5})
	f(Config{Device: "sdz", Busy: 0.5})
	if _, err := os.Stat("/proc/diskstats"); err == nil {
		if dev, err := DeviceOf(t.TempDir(), ""); err != nil {
			t.Logf("DeviceOf on this machine: %v (overlay or tmpfs temp dirs have no block device)", err)
		} else if _, err := readTicks("/proc/diskstats", dev); err != nil {
			t.Fatalf("DeviceOf found %q but it has no stats: %v", dev, err)
		}
	}
}
