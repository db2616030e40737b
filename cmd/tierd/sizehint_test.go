package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierd/tierd/index"
)

// TestConfigCheckSuggestsSizes: `config check` on the real RocketMQ stores configured
// with the broker's default sizes names each setting the files disagree with and the
// value that fits them (R1: commitlog_file_size 8KiB, consumequeue_file_size 200B; R2:
// index_hash_slots 100, index_items 400); with those values it passes. Then R2's sealed
// IndexFile goes through run --once (compacted to .tix) and restore, and the rehydrated
// file answers the lookups of key "0" (hash 48) as the original.
func TestConfigCheckSuggestsSizes(t *testing.T) {
	w := newRealWorld(t, "",
		realSource{name: "r1", layout: "rocketmq", sub: "rocketmq/r1/store"},
		realSource{name: "r2", layout: "rocketmq", sub: "rocketmq/r2/store"})
	code, _, errs := cli(t, t.Context(), "-c", w.cfg, "config", "check")
	t.Logf("config check with the default sizes: exit %d\n%s", code, errs)
	for _, want := range []string{
		"sources[0].commitlog_file_size: 5 files disagree",
		`set commitlog_file_size: 8KiB for source "r1"`,
		"sources[0].consumequeue_file_size: 6 files disagree",
		`set consumequeue_file_size: 200B for source "r1"`,
		"sources[1].index_hash_slots: 2 files disagree",
		`its 8440 bytes fit index_hash_slots: 100 and index_items: 400 (4 items a slot, as the broker's defaults): set them for source "r2"`,
	} {
		if code != 2 || !strings.Contains(errs, want) {
			t.Fatalf("config check: exit %d, want 2 and %q in:\n%s", code, want, errs)
		}
	}
	cfg, err := os.ReadFile(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	fixed := strings.Replace(string(cfg), "seal_grace: 0s}", "seal_grace: 0s, commitlog_file_size: 8KiB, consumequeue_file_size: 200B}", 1)
	fixed = strings.Replace(fixed, "path: "+w.roots["r2"]+", seal_grace: 0s}", "path: "+w.roots["r2"]+", seal_grace: 0s, index_hash_slots: 100, index_items: 400}", 1)
	if err := os.WriteFile(w.cfg, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	w.cli(t, 0, "config", "check")

	// R2 through run --once, restore of the .tix, and the same lookups.
	w.cli(t, 0, "run", "--once")
	const name = "20230320133000025"
	to := t.TempDir()
	out := w.cli(t, 0, "restore", "node-1/r2/index/"+name+".tix", "--to", to)
	t.Log(strings.TrimSpace(out))
	orig, err := os.ReadFile(filepath.Join(w.roots["r2"], "index", name))
	if err != nil {
		t.Fatal(err)
	}
	back, err := os.ReadFile(filepath.Join(to, "index", name))
	if err != nil {
		t.Fatal(err)
	}
	ox, err := index.OpenIndexFile(bytes.NewReader(orig), int64(len(orig)), 100, 400)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := index.OpenIndexFile(bytes.NewReader(back), int64(len(back)), 100, 400)
	if err != nil {
		t.Fatal(err)
	}
	if ox.Header() != rx.Header() {
		t.Fatalf("header %+v, original %+v", rx.Header(), ox.Header())
	}
	h := ox.Header()
	for _, r := range [][2]int64{{math.MinInt64, math.MaxInt64}, {h.BeginTimestamp, h.EndTimestamp}, {h.EndTimestamp + 1000, math.MaxInt64}} {
		for _, key := range []string{"0", "1", "absent"} {
			want, _ := ox.Lookup(key, r[0], r[1], 0)
			got, err := rx.Lookup(key, r[0], r[1], 0)
			if err != nil || len(want) != len(got) {
				t.Fatalf("lookup %q in [%d, %d]: original %v, rehydrated %v (%v)", key, r[0], r[1], want, got, err)
			}
			for i := range want {
				if want[i].KeyHash != got[i].KeyHash || want[i].PhyOffset != got[i].PhyOffset || want[i].TimeDiff != got[i].TimeDiff {
					t.Fatalf("lookup %q: original %v, rehydrated %v", key, want, got)
				}
			}
		}
	}
	if got, _ := rx.Lookup("0", math.MinInt64, math.MaxInt64, 0); len(got) != 1 || got[0].KeyHash != 48 {
		t.Fatalf("key \"0\" in the rehydrated R2: %v, want its one item of hash 48", got)
	}
}
