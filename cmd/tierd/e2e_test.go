package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tierd/tierd/devtools/brokersim"
	"github.com/tierd/tierd/index"
)

// cli runs tierd in-process with args and returns its exit code, stdout and stderr+logs.
// Calls are serialised: the output writers are package variables.
var cliMu sync.Mutex

func cli(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	cliMu.Lock()
	var out, errs syncBuffer
	stdout, logOutput = &out, &errs
	cliMu.Unlock()
	code := run(ctx, args)
	return code, out.String(), errs.String()
}

// syncBuffer is a bytes.Buffer safe for a logger and a test reading it concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type world struct {
	dir, store, tier, state, cfg string
}

func newWorld(t *testing.T, layout string, extra string) *world {
	t.Helper()
	d := t.TempDir()
	w := &world{dir: d, store: filepath.Join(d, "store"), tier: filepath.Join(d, "tier"), state: filepath.Join(d, "state"), cfg: filepath.Join(d, "tierd.yaml")}
	src := fmt.Sprintf(`
  - name: src
    layout: %s
    path: %s
    seal_grace: 0s`, layout, w.store)
	if layout == "rocketmq" {
		src += `
    commitlog_file_size: 256KiB
    consumequeue_file_size: 6000
    index_hash_slots: 64
    index_items: 256`
	}
	cfg := fmt.Sprintf(`node: node-1
state_dir: %s
memory: {buffer_pool: 1MiB, buffer_size: 256KiB}
scan_interval: 200ms
retry: {initial: 10ms, max: 100ms}
sources:%s
tiers:
  - {name: hdd, type: posix, path: %s, write_mode: direct}
log: {level: info, format: json}
%s`, w.state, src, w.tier, extra)
	if err := os.WriteFile(w.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// markUnread sets a file's atime before its mtime, so that (relatime) a read moves it.
func markUnread(t *testing.T, path string) {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime().Add(-time.Hour), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

func wasRead(t *testing.T, path string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return !time.Unix(st.Atim.Sec, st.Atim.Nsec).Before(fi.ModTime())
}

type tierObject struct {
	Key  string `json:"Key"`
	Rel  string `json:"Rel"`
	Size int64  `json:"Size"`
}

func lsJSON(t *testing.T, w *world) []tierObject {
	t.Helper()
	code, out, errs := cli(t, context.Background(), "-c", w.cfg, "ls", "--json")
	if code != 0 {
		t.Fatalf("ls: exit %d: %s", code, errs)
	}
	var objs []tierObject
	if err := json.Unmarshal([]byte(out), &objs); err != nil {
		t.Fatalf("ls --json: %v: %s", err, out)
	}
	return objs
}

// endToEnd checks a store after `run --once`: every sealed file on the tier, byte for
// byte; no active file read; verify passes; a second pass moves nothing.
func endToEnd(t *testing.T, w *world, files []brokersim.File, skipReadCheck func(brokersim.File) bool) {
	t.Helper()
	ctx := context.Background()
	var sealed, active []brokersim.File
	for _, f := range files {
		switch {
		case f.Kind == brokersim.KindMeta:
		case f.Active:
			active = append(active, f)
			markUnread(t, filepath.Join(w.store, f.Path))
		default:
			sealed = append(sealed, f)
		}
	}
	if len(sealed) < 3 || len(active) < 2 {
		t.Fatalf("store too small for the test: %d sealed, %d active", len(sealed), len(active))
	}
	code, _, errs := cli(t, ctx, "-c", w.cfg, "run", "--once")
	if code != 0 {
		t.Fatalf("run --once: exit %d: %s", code, errs)
	}
	t.Logf("run --once:\n%s", errs)
	objs := lsJSON(t, w)
	if len(objs) != len(sealed) {
		t.Fatalf("catalog has %d objects, want the %d sealed files", len(objs), len(sealed))
	}
	for _, f := range sealed {
		want, err := os.ReadFile(filepath.Join(w.store, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if f.Kind == brokersim.KindIndexFile { // stored compacted: see compact_test.go
			got, err := os.ReadFile(filepath.Join(w.tier, "node-1", "src", f.Path+".tix"))
			if err != nil {
				t.Fatalf("%s: no compacted index on the tier: %v", f.Path, err)
			}
			if _, err := index.OpenTix(bytes.NewReader(got), int64(len(got))); err != nil || len(got) >= len(want) {
				t.Fatalf("%s: compacted index of %d bytes (%v)", f.Path, len(got), err)
			}
			continue
		}
		got, err := os.ReadFile(filepath.Join(w.tier, "node-1", "src", f.Path))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: not byte-identical on the tier (%v)", f.Path, err)
		}
	}
	for _, f := range active {
		if _, err := os.Stat(filepath.Join(w.tier, "node-1", "src", f.Path)); err == nil {
			t.Errorf("active file %s was offloaded", f.Path)
		}
		if !skipReadCheck(f) && wasRead(t, filepath.Join(w.store, f.Path)) {
			t.Errorf("active file %s was read", f.Path)
		}
	}
	if code, out, errs := cli(t, ctx, "-c", w.cfg, "verify"); code != 0 || !strings.Contains(out, fmt.Sprintf("%d checked, 0 failed", len(sealed))) {
		t.Fatalf("verify: exit %d: %s %s", code, out, errs)
	}
	before := tierState(t, w.tier)
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "run", "--once"); code != 0 {
		t.Fatalf("second run --once: exit %d: %s", code, errs)
	}
	if after := tierState(t, w.tier); after != before {
		t.Fatalf("second pass changed the tier:\nbefore %s\nafter  %s", before, after)
	}
}

// tierState describes every file of a tier with its size and mtime.
func tierState(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			fmt.Fprintf(&b, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
		}
		return nil
	})
	return b.String()
}

func TestEndToEndRocketMQ(t *testing.T) {
	w := newWorld(t, "rocketmq", "")
	sum, err := brokersim.RocketMQ(context.Background(), brokersim.RocketMQOptions{
		Dir: w.store, Topics: 2, Queues: 2, Messages: 3000, CommitLogSize: 256 << 10, CQSize: 6000,
		IndexSlots: 64, IndexItems: 256, BodySize: 200, PreallocateNext: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The newest IndexFile's 40-byte header is read on purpose (is it full?).
	endToEnd(t, w, sum.Files, func(f brokersim.File) bool { return f.Kind == brokersim.KindIndexFile })
}

func TestEndToEndKafka(t *testing.T) {
	w := newWorld(t, "kafka", "")
	sum, err := brokersim.Kafka(context.Background(), brokersim.KafkaOptions{
		Dir: w.store, Topics: 2, Partitions: 2, Records: 4000, SegmentBytes: 128 << 10, RecordSize: 100, MaxIndexSize: 64 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	endToEnd(t, w, sum.Files, func(brokersim.File) bool { return false })
}

func TestBadConfigListsEveryProblem(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(p, []byte(`node: n1
state_dir: /var/lib/tierd
memory: {buffer_pool: lots}
sources:
  - {name: s, layout: rabbitmq, path: /data}
tiers:
  - {name: t, type: posix, path: /mnt/t, bukket: x}
`), 0o644)
	code, _, errs := cli(t, context.Background(), "-c", p, "run", "--once")
	if code != 2 {
		t.Fatalf("exit %d, want 2: %s", code, errs)
	}
	for _, want := range []string{"memory.buffer_pool", "sources[0].layout", "tiers[0].bukket"} {
		if !strings.Contains(errs, want) {
			t.Errorf("error output does not name %s:\n%s", want, errs)
		}
	}
	if code, _, _ := cli(t, context.Background(), "-c", p, "no-such-command"); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
	if code, _, _ := cli(t, context.Background(), "-c", filepath.Join(t.TempDir(), "missing.yaml"), "ls"); code != 2 {
		t.Fatalf("missing config: exit %d, want 2", code)
	}
}

func smallStore(t *testing.T, w *world) brokersim.RocketMQSummary {
	t.Helper()
	sum, err := brokersim.RocketMQ(context.Background(), brokersim.RocketMQOptions{
		Dir: w.store, Topics: 1, Queues: 1, Messages: 2000, CommitLogSize: 256 << 10, CQSize: 6000,
		IndexSlots: 64, IndexItems: 256, BodySize: 200, PreallocateNext: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestRestoreAndCat(t *testing.T) {
	w := newWorld(t, "rocketmq", "")
	smallStore(t, w)
	ctx := context.Background()
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "run", "--once"); code != 0 {
		t.Fatalf("run --once: %d %s", code, errs)
	}
	key := "node-1/src/commitlog/00000000000000000000"
	want, _ := os.ReadFile(filepath.Join(w.store, "commitlog/00000000000000000000"))
	to := t.TempDir()
	code, out, errs := cli(t, ctx, "-c", w.cfg, "restore", key, "--to", to)
	if code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errs)
	}
	got, err := os.ReadFile(filepath.Join(to, "commitlog/00000000000000000000"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("restored file differs (%v); output %s", err, out)
	}
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "restore", key, "--to", to); code != 2 || !strings.Contains(errs, "--force") {
		t.Fatalf("restore over an existing file: exit %d: %s", code, errs)
	}
	if code, _, _ := cli(t, ctx, "-c", w.cfg, "restore", key, "--to", to, "--force"); code != 0 {
		t.Fatalf("restore --force: exit %d", code)
	}
	for _, bad := range []string{"node-1/src/../../../etc/passwd", "../x", "/etc/passwd", "node-1/src/commitlog/.."} {
		code, _, errs := cli(t, ctx, "-c", w.cfg, "restore", bad, "--to", to)
		if code != 2 || !strings.Contains(errs, "refusing") {
			t.Errorf("restore %q: exit %d: %s", bad, code, errs)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(to)); len(entries) == 0 {
		t.Fatal("BUG: temp dir vanished")
	}
	code, out, _ = cli(t, ctx, "-c", w.cfg, "cat", key, "--offset", "1000", "--length", "5000")
	if code != 0 || out != string(want[1000:6000]) {
		t.Fatalf("cat range: exit %d, %d bytes", code, len(out))
	}
	if code, _, _ := cli(t, ctx, "-c", w.cfg, "cat", "node-1/src/commitlog/99999999999999999999"); code != 1 {
		t.Fatalf("cat of a missing key: exit %d, want 1", code)
	}
}

// TestForeignFilesAndRunningDaemon: foreign and corrupt files in the broker directory
// are each logged once and skipped while the daemon keeps running; status and ls work
// against the running daemon (which holds the catalog).
func TestForeignFilesAndRunningDaemon(t *testing.T) {
	w := newWorld(t, "rocketmq", "http: {listen: \"127.0.0.1:0\"}\n")
	smallStore(t, w)
	// The daemon needs a fixed port for the CLI to find it.
	port := freePort(t)
	cfg, _ := os.ReadFile(w.cfg)
	os.WriteFile(w.cfg, bytes.Replace(cfg, []byte("127.0.0.1:0"), []byte(port), 1), 0o644)
	for name, size := range map[string]int{"commitlog/garbage.txt": 10, "commitlog/00000000000000000123": 256 << 10, "index/20260101000000000": 7, "consumequeue/T/0/junk": 1} {
		p := filepath.Join(w.store, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, make([]byte, size), 0o644)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan int, 1)
	cliMu.Lock()
	stdout, logOutput = io.Discard, &logs
	cliMu.Unlock()
	go func() { done <- run(ctx, []string{"-c", w.cfg, "run"}) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), `"offloaded"`) || strings.Count(logs.String(), "skipping file") < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not offload and skip:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(700 * time.Millisecond) // a few more scans: skips must not be logged again
	for _, name := range []string{"garbage.txt", "00000000000000000123", "20260101000000000", "junk"} {
		if n := strings.Count(logs.String(), name); n != 1 {
			t.Errorf("%s logged %d times, want once", name, n)
		}
	}
	code, out, errs := cli(t, context.Background(), "-c", w.cfg, "status", "--json")
	if code != 0 || !strings.Contains(out, `"ready": true`) || !strings.Contains(out, `"skipped_files": 4`) {
		t.Fatalf("status: exit %d: %s %s", code, out, errs)
	}
	if objs := lsJSON(t, w); len(objs) == 0 {
		t.Fatal("ls against the running daemon listed nothing")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("daemon exit %d after SIGTERM-like stop", code)
	}
	if _, err := os.Stat(filepath.Join(w.store, "commitlog/garbage.txt")); err != nil {
		t.Fatal("a foreign file was touched")
	}
}
