package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierd/tierd/devtools/realdata"
)

// realSource is one set of real broker files (../shared/realdata, see its README) as a
// source, with the broker settings its files were written with and what tierd must find.
type realSource struct {
	name, layout, sub string
	extra             string // layout settings
	sealed, skipped   int
}

// realSources: every set. The sealed counts are the files the brokers had finished
// writing (81 in all): K1 5 partitions x 3 closed segments (the first without a
// snapshot) = 55; K2 and K3 three partitions each with one closed segment (.log, .index,
// .timeindex); K4 single active segments; R1 2 of its 4 commit-log files (the newest two
// may still be written) and 5 of its 6 consume-queue files; R2 the older of two
// IndexFiles; R3 none (one commit-log file, the active one). R1's 0-byte newest
// commit-log file is skipped.
var realSources = []realSource{
	{name: "k1", layout: "kafka", sub: "kafka/k1", sealed: 55},
	{name: "k2", layout: "kafka", sub: "kafka/k2", sealed: 9},
	{name: "k3", layout: "kafka", sub: "kafka/k3", sealed: 9},
	{name: "k4", layout: "kafka", sub: "kafka/k4", sealed: 0},
	{name: "r1", layout: "rocketmq", sub: "rocketmq/r1/store", extra: "commitlog_file_size: 8KiB, consumequeue_file_size: 200", sealed: 7, skipped: 1},
	{name: "r2", layout: "rocketmq", sub: "rocketmq/r2/store", extra: "index_hash_slots: 100, index_items: 400", sealed: 1},
	{name: "r3", layout: "rocketmq", sub: "rocketmq/r3/store", extra: "commitlog_file_size: 8KiB", sealed: 0},
}

// realWorld copies the given sets into a temp dir with their real mtimes and writes a
// config with one source per set and one posix tier.
type realWorld struct {
	dir, tier, cfg string
	roots          map[string]string // source name -> copy
}

func newRealWorld(t *testing.T, extra string, sets ...realSource) *realWorld {
	t.Helper()
	d := t.TempDir()
	w := &realWorld{dir: d, tier: filepath.Join(d, "tier"), cfg: filepath.Join(d, "tierd.yaml"), roots: map[string]string{}}
	var srcs strings.Builder
	for _, s := range sets {
		root := realdata.Copy(t, s.sub, filepath.Join(d, "src", s.name))
		w.roots[s.name] = root
		fmt.Fprintf(&srcs, "  - {name: %s, layout: %s, path: %s, seal_grace: 0s", s.name, s.layout, root)
		if s.extra != "" {
			srcs.WriteString(", " + s.extra)
		}
		srcs.WriteString("}\n")
	}
	w.writeConfig(t, filepath.Join(d, "state"), srcs.String(), extra)
	return w
}

func (w *realWorld) writeConfig(t *testing.T, state, sources, extra string) {
	t.Helper()
	cfg := fmt.Sprintf(`node: node-1
state_dir: %s
memory: {buffer_pool: 1MiB, buffer_size: 256KiB}
scan_interval: 200ms
retry: {initial: 10ms, max: 100ms}
sources:
%stiers:
  - {name: hdd, type: posix, path: %s, write_mode: buffered}
http: {listen: ""}
log: {level: warn, format: json}
%s`, state, sources, w.tier, extra)
	if err := os.WriteFile(w.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (w *realWorld) cli(t *testing.T, wantCode int, args ...string) string {
	t.Helper()
	code, out, errs := cli(t, context.Background(), append([]string{"-c", w.cfg}, args...)...)
	if code != wantCode {
		t.Fatalf("tierd %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, wantCode, out, errs)
	}
	return out
}

// lsEntries is ls --json.
func (w *realWorld) ls(t *testing.T) []lsEntry {
	t.Helper()
	var objs []lsEntry
	if err := json.Unmarshal([]byte(w.cli(t, 0, "ls", "--json")), &objs); err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestRealBrokerFiles takes every set of real broker files through scan, run --once, ls,
// verify, restore (file by file and a whole Kafka segment), compact and catalog rebuild.
func TestRealBrokerFiles(t *testing.T) {
	w := newRealWorld(t, "", realSources...)
	w.cli(t, 0, "config", "check")

	var rep struct {
		Sources []struct {
			Name    string            `json:"name"`
			Error   string            `json:"error"`
			Sealed  []json.RawMessage `json:"sealed"`
			Skipped []json.RawMessage `json:"skipped"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(w.cli(t, 0, "scan", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, s := range realSources {
		got := rep.Sources[i]
		if got.Name != s.name || got.Error != "" || len(got.Sealed) != s.sealed || len(got.Skipped) != s.skipped {
			t.Errorf("scan of %s (%s): %d sealed, %d skipped, error %q; want %d sealed, %d skipped",
				s.name, s.sub, len(got.Sealed), len(got.Skipped), got.Error, s.sealed, s.skipped)
		}
		total += s.sealed
	}

	w.cli(t, 0, "run", "--once")
	objs := w.ls(t)
	if len(objs) != total {
		t.Fatalf("ls: %d objects, want %d", len(objs), total)
	}
	restored := filepath.Join(w.dir, "restored")
	for _, o := range objs {
		local, err := os.ReadFile(filepath.Join(w.roots[o.Source], filepath.FromSlash(o.Rel)))
		if err != nil {
			t.Fatal(err)
		}
		obj, err := os.ReadFile(filepath.Join(w.tier, filepath.FromSlash(string(o.Key))))
		if err != nil {
			t.Fatal(err)
		}
		switch o.Format {
		case "raw":
			if !bytes.Equal(obj, local) {
				t.Errorf("%s: the object differs from the local file", o.Key)
			}
		case "trim": // a Kafka index without its zero-filled tail
			if !bytes.Equal(obj, local[:len(obj)]) || bytes.Count(local[len(obj):], []byte{0}) != len(local)-len(obj) {
				t.Errorf("%s: not the local file's prefix before a zero tail", o.Key)
			}
		case "tix":
			continue
		}
		out := w.cli(t, 0, "restore", string(o.Key), "--to", filepath.Join(restored, o.Source))
		back, err := os.ReadFile(filepath.Join(restored, o.Source, filepath.FromSlash(o.Rel)))
		if err != nil || !bytes.Equal(back, obj) {
			t.Errorf("restore %s (%s): %v, restored bytes differ from the object", o.Key, out, err)
		}
		if o.Ver != 1 || o.State != "" {
			t.Errorf("%s: version %d, state %q; want 1 and none", o.Key, o.Ver, o.State)
		}
	}
	if out := w.cli(t, 0, "verify"); !strings.Contains(out, fmt.Sprintf("%d checked, 0 failed, 0 could not be read, 0 removed while being verified, 0 local files diverged", total)) {
		t.Fatalf("verify:\n%s", out)
	}

	// A whole Kafka segment: .log, .index, .timeindex and its snapshot.
	out := w.cli(t, 0, "restore", "--segment", "node-1/k1/invoice-0/00000000000000030626.timeindex", "--to", filepath.Join(w.dir, "segment"))
	for _, ext := range []string{"log", "index", "timeindex", "snapshot"} {
		name := filepath.Join(w.dir, "segment", "invoice-0", "00000000000000030626."+ext)
		back, err1 := os.ReadFile(name)
		orig, err2 := os.ReadFile(filepath.Join(w.roots["k1"], "invoice-0", "00000000000000030626."+ext))
		if err1 != nil || err2 != nil || !bytes.Equal(back, orig) {
			t.Fatalf("restore --segment: %s: %v %v, differs from the original\n%s", name, err1, err2, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 4 {
		t.Fatalf("restore --segment restored %d files, want 4:\n%s", n, out)
	}

	// Compact R2's sealed IndexFile with the geometry of its source.
	idx := filepath.Join(w.roots["r2"], "index", "20230320133000025")
	w.cli(t, 0, "compact", idx, "-o", filepath.Join(w.dir, "r2.tix"), "--slots", "100", "--items", "400")
	if fi, err := os.Stat(filepath.Join(w.dir, "r2.tix")); err != nil || fi.Size() == 0 {
		t.Fatalf("compact of R2: %v", err)
	}

	// A new host: an empty state_dir, the catalog rebuilt from the tier's markers.
	var srcs strings.Builder
	for _, s := range realSources {
		fmt.Fprintf(&srcs, "  - {name: %s, layout: %s, path: %s, seal_grace: 0s", s.name, s.layout, w.roots[s.name])
		if s.extra != "" {
			srcs.WriteString(", " + s.extra)
		}
		srcs.WriteString("}\n")
	}
	w.writeConfig(t, filepath.Join(w.dir, "state2"), srcs.String(), "")
	if out := w.cli(t, 0, "catalog", "rebuild", "--tier", "hdd"); !strings.Contains(out, fmt.Sprint(total)) {
		t.Fatalf("catalog rebuild:\n%s", out)
	}
	if got := w.ls(t); len(got) != total {
		t.Fatalf("after rebuild, ls lists %d objects, want %d", len(got), total)
	}
	w.cli(t, 0, "verify")
	if out := w.cli(t, 0, "scan"); !strings.Contains(out, fmt.Sprintf("0 to move now, 0 later, 0 to expire, %d already there", total)) {
		t.Fatalf("scan after rebuild:\n%s", out)
	}
}
