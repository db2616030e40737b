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
	state, sources string            // as written by newRealWorld
	tierExtra      string            // settings of the tier
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
	w.sources, w.state = srcs.String(), filepath.Join(d, "state")
	w.writeConfig(t, w.state, w.sources, extra)
	return w
}

// writeConfig writes the config: state_dir state, the sources, one posix tier (with the
// tier settings in w.tierExtra), and the top-level settings extra.
func (w *realWorld) writeConfig(t *testing.T, state, sources, extra string) {
	t.Helper()
	tierExtra := ""
	if w.tierExtra != "" {
		tierExtra = ", " + w.tierExtra
	}
	cfg := fmt.Sprintf(`node: node-1
state_dir: %s
memory: {buffer_pool: 1MiB, buffer_size: 256KiB}
scan_interval: 200ms
retry: {initial: 10ms, max: 100ms}
sources:
%stiers:
  - {name: hdd, type: posix, path: %s, write_mode: buffered%s}
http: {listen: ""}
log: {level: warn, format: json}
%s`, state, sources, w.tier, tierExtra, extra)
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

// cleanerReplace replays Kafka's log cleaner (LogCleaner.cleanSegments, then
// LocalLog.replaceSegments) in partition directory dir: the cleaned files (srcs, by
// extension, real files of ../shared/realdata) are written as <base>.<ext>.cleaned with
// the mtime of the last segment cleaned, renamed to .swap; the old segments' files (bases)
// are renamed to .deleted; the .swap files get the segment's names; the .deleted files
// are removed. between, if set, runs while the .swap and .deleted files exist.
func cleanerReplace(t *testing.T, dir string, bases []int64, srcs map[string]string, between func()) {
	t.Helper()
	last, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%020d.log", bases[len(bases)-1])))
	if err != nil {
		t.Fatal(err)
	}
	name := func(base int64, ext string) string { return filepath.Join(dir, fmt.Sprintf("%020d.%s", base, ext)) }
	for ext, src := range srcs {
		realdata.CopyFile(t, src, name(bases[0], ext)+".cleaned")
		if err := os.Chtimes(name(bases[0], ext)+".cleaned", last.ModTime(), last.ModTime()); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(name(bases[0], ext)+".cleaned", name(bases[0], ext)+".swap"); err != nil {
			t.Fatal(err)
		}
	}
	var deleted []string
	for _, b := range bases {
		for _, ext := range []string{"log", "index", "timeindex", "txnindex"} {
			if err := os.Rename(name(b, ext), name(b, ext)+".deleted"); err == nil {
				deleted = append(deleted, name(b, ext)+".deleted")
			} else if !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
	}
	if between != nil {
		between()
	}
	for ext := range srcs {
		if err := os.Rename(name(bases[0], ext)+".swap", name(bases[0], ext)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range deleted {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// k3Cleaned is the log cleaner's real output for segment 0 of __consumer_offsets-17 in
// K3 (a 390-byte .log, an empty .index, a 12-byte .timeindex).
var k3Cleaned = map[string]string{
	"log":       "kafka/k3/__consumer_offsets-17/00000000000000000000.log",
	"index":     "kafka/k3/__consumer_offsets-17/00000000000000000000.index",
	"timeindex": "kafka/k3/__consumer_offsets-17/00000000000000000000.timeindex",
}

func (w *realWorld) keysOf(t *testing.T, prefix string) map[string]lsEntry {
	t.Helper()
	out := map[string]lsEntry{}
	for _, o := range w.ls(t) {
		if strings.HasPrefix(string(o.Key), prefix) {
			out[strings.TrimPrefix(string(o.Key), prefix)] = o
		}
	}
	return out
}

// TestRealCleanerRewrite replays a log cleaner rewrite with real files: K2's offloaded
// __consumer_offsets-12 segment 0 (64,548 bytes) is replaced, under the same name and
// mtime, by the cleaner's real output from K3 (390 bytes). verify reports the divergence
// before the new version is offloaded; scan lists the changed files; run --once offloads
// version 2 beside version 1, which stays until superseded_retain_for passes; verify is
// clean again; local deletion takes the whole segment or nothing; restore --segment brings
// it back.
func TestRealCleanerRewrite(t *testing.T) {
	w := newRealWorld(t, "", realSource{name: "k2", layout: "kafka", sub: "kafka/k2"})
	w.cli(t, 0, "run", "--once")
	part := filepath.Join(w.roots["k2"], "__consumer_offsets-12")
	const prefix = "node-1/k2/__consumer_offsets-12/00000000000000000000."
	if got := w.keysOf(t, prefix); len(got) != 3 || got["log"].Size != 64548 {
		t.Fatalf("first pass: %+v", got)
	}

	cleanerReplace(t, part, []int64{0}, k3Cleaned, func() {
		// Mid-swap: .swap and .deleted files are the broker's business.
		out := w.cli(t, 0, "scan")
		if strings.Contains(out, ".swap") || strings.Contains(out, ".deleted") || strings.Contains(out, "__consumer_offsets-12/00000000000000000000") {
			t.Fatalf("scan in the middle of the swap offers or reports the broker's files:\n%s", out)
		}
	})

	// Divergence reported before the new version is offloaded.
	code, out, errs := cli(t, context.Background(), "-c", w.cfg, "verify")
	if code != exitFailed || !strings.Contains(out, "DIVERGED  "+filepath.Join(part, "00000000000000000000.log")+": local file "+filepath.Join(part, "00000000000000000000.log")+" has 390 bytes, newest offloaded version v1 ("+prefix+"log) was made from 64548") ||
		!strings.Contains(out, "9 checked, 0 failed,") || !strings.Contains(out, ", 3 local files diverged") {
		t.Fatalf("verify after the rewrite: exit %d\n%s%s", code, out, errs)
	}
	out = squash(w.cli(t, 0, "scan"))
	if !strings.Contains(out, "3 changed since offload") || !strings.Contains(out, "changed __consumer_offsets-12/00000000000000000000.log size 64548 -> 390 bytes since v1 was offloaded: goes to the tiers as v2, v1 stays until then") {
		t.Fatalf("scan after the rewrite:\n%s", out)
	}

	// The new version goes to the tier beside the old one.
	w.cli(t, 0, "run", "--once")
	got := w.keysOf(t, prefix)
	if len(got) != 6 || got["log"].State != "superseded by v2" || got["log@v2"].Ver != 2 || got["log@v2"].Size != 390 || got["log@v2"].State != "" {
		t.Fatalf("after the rewrite: %+v", got)
	}
	for ext, src := range k3Cleaned {
		obj, err1 := os.ReadFile(filepath.Join(w.tier, filepath.FromSlash(prefix+ext+"@v2")))
		want, err2 := os.ReadFile(filepath.Join(realdata.Dir(t), filepath.FromSlash(src)))
		if err1 != nil || err2 != nil || !bytes.Equal(obj, want) {
			t.Fatalf("%s@v2 on the tier: %v %v, differs from the cleaner's output", ext, err1, err2)
		}
	}
	if out := w.cli(t, 0, "verify"); !strings.Contains(out, "12 checked, 0 failed,") || !strings.Contains(out, ", 0 local files diverged") {
		t.Fatalf("verify after the new version:\n%s", out)
	}
	// Version 1 stays while superseded_retain_for (7d by default) has not passed...
	w.cli(t, 0, "run", "--once")
	if n := len(w.keysOf(t, prefix)); n != 6 {
		t.Fatalf("v1 expired before superseded_retain_for: %d objects", n)
	}
	// ... and goes once it has.
	w.tierExtra = "superseded_retain_for: 0s"
	w.writeConfig(t, w.state, w.sources, "")
	w.cli(t, 0, "run", "--once")
	if got := w.keysOf(t, prefix); len(got) != 3 || got["log@v2"].Size != 390 || got["index@v2"].Ver != 2 || got["timeindex@v2"].Ver != 2 {
		t.Fatalf("after superseded_retain_for: %+v", got)
	}
	w.cli(t, 0, "verify")

	// Local deletion: one file of the segment changed in place (same size and mtime) holds
	// back the whole segment.
	w.writeConfig(t, w.state, w.sources, "local: {delete_after: 0s}\n")
	ti := filepath.Join(part, "00000000000000000000.timeindex")
	fi, _ := os.Stat(ti)
	orig, _ := os.ReadFile(ti)
	bad := bytes.Clone(orig)
	bad[0] ^= 0xff
	os.WriteFile(ti, bad, 0o644)
	os.Chtimes(ti, fi.ModTime(), fi.ModTime())
	code, out, errs = cli(t, context.Background(), "-c", w.cfg, "run", "--once")
	if code != exitFailed || !strings.Contains(errs, "not deleting any file of segment __consumer_offsets-12/00000000000000000000") {
		t.Fatalf("run --once with a changed .timeindex: exit %d\n%s%s", code, out, errs)
	}
	for _, ext := range []string{"log", "index", "timeindex"} {
		if _, err := os.Stat(filepath.Join(part, "00000000000000000000."+ext)); err != nil {
			t.Fatalf("a file of the held-back segment was deleted: %v", err)
		}
	}
	os.WriteFile(ti, orig, 0o644)
	os.Chtimes(ti, fi.ModTime(), fi.ModTime())
	w.cli(t, 0, "run", "--once")
	for _, ext := range []string{"log", "index", "timeindex"} {
		if _, err := os.Stat(filepath.Join(part, "00000000000000000000."+ext)); !os.IsNotExist(err) {
			t.Fatalf("segment 0 .%s not deleted with its group: %v", ext, err)
		}
	}
	if _, err := os.Stat(filepath.Join(part, "00000000000000000862.log")); err != nil {
		t.Fatalf("the active segment was touched: %v", err)
	}
	// The whole segment comes back, in its newest version.
	out = w.cli(t, 0, "restore", "--segment", prefix+"log@v2", "--to", w.roots["k2"])
	for ext, src := range k3Cleaned {
		back, err1 := os.ReadFile(filepath.Join(part, "00000000000000000000."+ext))
		want, err2 := os.ReadFile(filepath.Join(realdata.Dir(t), filepath.FromSlash(src)))
		if err1 != nil || err2 != nil || !bytes.Equal(back, want) {
			t.Fatalf("restore --segment: .%s: %v %v\n%s", ext, err1, err2, out)
		}
	}
}

// TestRealCleanerMerge replays a merge: the cleaner cleans K1's invoice-0 segments 0 and
// 30626 into one segment named 0 (real cleaner output from K3), deleting 30626. Segment 0
// goes to the tier as version 2; 30626's files stay on the tier (retention decides) and
// ls says they were merged into 0.
func TestRealCleanerMerge(t *testing.T) {
	w := newRealWorld(t, "", realSource{name: "k1", layout: "kafka", sub: "kafka/k1"})
	w.cli(t, 0, "run", "--once")
	part := filepath.Join(w.roots["k1"], "invoice-0")
	cleanerReplace(t, part, []int64{0, 30626}, k3Cleaned, nil)
	out := squash(w.cli(t, 0, "scan"))
	if !strings.Contains(out, "changed invoice-0/00000000000000000000.log size 999252 -> 390 bytes since v1 was offloaded") {
		t.Fatalf("scan after the merge:\n%s", out)
	}
	w.cli(t, 0, "run", "--once")
	got := w.keysOf(t, "node-1/k1/invoice-0/")
	const into = "merged into invoice-0/00000000000000000000.log v2"
	for key, state := range map[string]string{
		"00000000000000000000.log":          "superseded by v2",
		"00000000000000000000.log@v2":       "",
		"00000000000000030626.log":          into,
		"00000000000000030626.index":        into,
		"00000000000000030626.timeindex":    into,
		"00000000000000060611.log":          "",
		"00000000000000030626.snapshot":     "",
		"00000000000000000000.timeindex@v2": "",
	} {
		if o, ok := got[key]; !ok || o.State != state {
			t.Errorf("%s: listed %v, state %q; want %q", key, ok, o.State, state)
		}
	}
	if out := w.cli(t, 0, "ls"); !strings.Contains(out, into) {
		t.Fatalf("ls does not say what was merged:\n%s", out)
	}
	w.cli(t, 0, "verify")
}

// squash replaces every run of spaces (tabwriter's padding) by one space.
func squash(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}
