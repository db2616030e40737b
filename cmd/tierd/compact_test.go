package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierd/tierd/index"
)

// writeIndexFile writes an IndexFile of slots x items holding n items.
func writeIndexFile(t *testing.T, path string, slots, items, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := index.NewIndexFileWriter(f, slots, items, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Put(fmt.Sprintf("T#key-%d", i%37), int64(100*i), 1_700_000_000_000+int64(i)*300); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestCompactCommand(t *testing.T) {
	w := newWorld(t, "rocketmq", "") // index_hash_slots 64, index_items 256
	ctx := context.Background()
	if err := os.MkdirAll(filepath.Join(w.store, "index"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(w.store, "index", "20260101000000000")
	writeIndexFile(t, src, 64, 256, 200)
	out := filepath.Join(w.dir, "out", "x.tix")

	// Geometry from the config's rocketmq source, whose path holds the file.
	code, stdout, errs := cli(t, ctx, "-c", w.cfg, "compact", src, "-o", out, "--json")
	if code != 0 {
		t.Fatalf("compact: exit %d: %s", code, errs)
	}
	var rep compactReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("compact --json: %v: %s", err, stdout)
	}
	srcBytes, _ := os.ReadFile(src)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Items != 200 || rep.Size != int64(len(got)) || rep.InputSize != int64(len(srcBytes)) || rep.Passes < 2 {
		t.Fatalf("report %+v", rep)
	}
	ix, _ := index.OpenIndexFile(bytes.NewReader(srcBytes), int64(len(srcBytes)), 64, 256)
	tx, err := index.OpenTix(bytes.NewReader(got), int64(len(got)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 37 {
		k := fmt.Sprintf("T#key-%d", i)
		walk, _ := ix.Lookup(k, 0, math.MaxInt64, 0)
		found, err := tx.Lookup(k, 0, math.MaxInt64, 0, nil)
		if err != nil || len(found) != len(walk) || len(found) == 0 {
			t.Fatalf("%s: compacted %v (%v), chain walk %v", k, found, err, walk)
		}
	}

	// OUT exists: refused without --force; replaced with it.
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "compact", src, "-o", out); code != 2 || !strings.Contains(errs, "--force") {
		t.Fatalf("compact onto an existing file: exit %d: %s", code, errs)
	}
	if code, stdout, errs := cli(t, ctx, "-c", w.cfg, "compact", src, "-o", out, "--force"); code != 0 || !strings.Contains(stdout, "200 items") {
		t.Fatalf("compact --force: exit %d: %s %s", code, stdout, errs)
	}
	// Without a config the broker's default geometry applies, which this file does not
	// have; --slots and --items fix that.
	t.Setenv("TIERD_CONFIG", "")
	nocfg := filepath.Join(w.dir, "missing.yaml")
	other := filepath.Join(w.dir, "y.tix")
	if code, _, errs := cli(t, ctx, "--config", nocfg, "compact", src, "-o", other); code != 2 || !strings.Contains(errs, "load config") {
		t.Fatalf("explicit missing config: exit %d: %s", code, errs)
	}
	g := &globals{configPath: nocfg}
	cmd := newCompactCmd(g)
	cmd.SetArgs([]string{src, "-o", other})
	cmd.SetContext(ctx)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "5000000 slots") || !strings.Contains(err.Error(), "--slots 64 --items 256") {
		t.Fatalf("default geometry on a small file: %v", err)
	}
	cmd = newCompactCmd(g)
	cmd.SetArgs([]string{src, "-o", other, "--slots", "64", "--items", "256"})
	cmd.SetContext(ctx)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("--slots --items without a config: %v", err)
	}
	if b, _ := os.ReadFile(other); !bytes.Equal(b, got) {
		t.Fatal("the same IndexFile compacted to different bytes")
	}
	// Not an IndexFile, and no -o.
	junk := filepath.Join(w.store, "index", "junk")
	os.WriteFile(junk, bytes.Repeat([]byte{0xff}, len(srcBytes)), 0o644)
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "compact", junk, "-o", filepath.Join(w.dir, "j.tix")); code != 2 || !strings.Contains(errs, "not an IndexFile") {
		t.Fatalf("compact junk: exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "j.tix")); err == nil {
		t.Fatal("a failed compaction left its output")
	}
	if code, _, _ := cli(t, ctx, "-c", w.cfg, "compact", src); code != 2 {
		t.Fatalf("compact without -o: exit %d", code)
	}
}

// TestCompactGeometry: compact takes the geometry of the rocketmq source whose path holds
// the file (not the first source's); a file no source holds needs --slots/--items, and
// the error says so and what fits; a size that does not fit the geometry says which
// YAML keys or flags would.
func TestCompactGeometry(t *testing.T) {
	d := t.TempDir()
	storeA, storeB, elsewhere := filepath.Join(d, "a"), filepath.Join(d, "b"), filepath.Join(d, "elsewhere")
	for _, dir := range []string{storeA + "/index", storeB + "/index", elsewhere} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(d, "tierd.yaml")
	cfg := fmt.Sprintf(`node: n
state_dir: %s
sources:
  - {name: a, layout: rocketmq, path: %s, index_hash_slots: 64, index_items: 256}
  - {name: b, layout: rocketmq, path: %s, index_hash_slots: 100, index_items: 400}
tiers:
  - {name: t, type: posix, path: %s}
`, filepath.Join(d, "state"), storeA, storeB, filepath.Join(d, "tier"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inB := filepath.Join(storeB, "index", "20260101000000000")
	writeIndexFile(t, inB, 100, 400, 150)
	if code, out, errs := cli(t, ctx, "-c", cfgPath, "compact", inB, "-o", filepath.Join(d, "b.tix")); code != 0 || !strings.Contains(out, "150 items") {
		t.Fatalf("compact a file of the second source: exit %d: %s%s", code, out, errs)
	}
	// The same file where no source holds it: the flags are named, with what fits.
	loose := filepath.Join(elsewhere, "20260101000000000")
	writeIndexFile(t, loose, 100, 400, 150)
	code, _, errs := cli(t, ctx, "-c", cfgPath, "compact", loose, "-o", filepath.Join(d, "l.tix"))
	t.Logf("no source holds it: exit %d: %s", code, errs)
	if code != 2 || !strings.Contains(errs, "--slots and --items") || !strings.Contains(errs, "pass --slots 100 --items 400") {
		t.Fatalf("compact a file no source holds: exit %d: %s", code, errs)
	}
	if code, _, errs := cli(t, ctx, "-c", cfgPath, "compact", loose, "-o", filepath.Join(d, "l.tix"), "--slots", "100", "--items", "400"); code != 0 {
		t.Fatalf("with --slots --items: exit %d: %s", code, errs)
	}
	// A file of source b's geometry in source a: the YAML that would fit.
	inA := filepath.Join(storeA, "index", "20260101000000000")
	writeIndexFile(t, inA, 100, 400, 150)
	code, _, errs = cli(t, ctx, "-c", cfgPath, "compact", inA, "-o", filepath.Join(d, "a.tix"))
	t.Logf("size mismatch in source a: exit %d: %s", code, errs)
	if code != 2 || !strings.Contains(errs, `source "a" has index_hash_slots 64 and index_items 256`) ||
		!strings.Contains(errs, "set index_hash_slots: 100 and index_items: 400 in sources[0] (a)") {
		t.Fatalf("size mismatch: exit %d: %s", code, errs)
	}
	// Wrong flags: the flags that fit.
	code, _, errs = cli(t, ctx, "-c", cfgPath, "compact", inA, "-o", filepath.Join(d, "a.tix"), "--slots", "10", "--items", "10")
	if code != 2 || !strings.Contains(errs, "--slots 10 --items 10 make 280") || !strings.Contains(errs, "pass --slots 100 --items 400") {
		t.Fatalf("wrong flags: exit %d: %s", code, errs)
	}
}
