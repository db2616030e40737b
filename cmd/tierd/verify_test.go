package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/devtools/brokersim"
	"github.com/tierd/tierd/segment"
)

// TestVerifyAgainstRunningDaemon: when a running tierd holds the catalog, verify asks it
// for the records; an entry the daemon removes (retention) while verify runs is reported
// as gone, not failed, and an entry still recorded whose object is missing fails.
func TestVerifyAgainstRunningDaemon(t *testing.T) {
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, "rocketmq", fmt.Sprintf("http: {listen: %q}\n", l.Addr()))
	// The daemon's catalog lock: held here, so verify must ask over HTTP.
	cat, err := catalog.Open(w.state, "node-1", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	rec := catalog.Record{
		Tier: "hdd", Key: segment.Key("node-1/src/commitlog/00000000000000000000"), Source: "src",
		Rel: "commitlog/00000000000000000000", Kind: "commitlog", Format: catalog.FormatRaw,
		Size: 262144, CRC32C: 0x1234, LocalSize: 262144, LocalCRC32C: 0x1234,
		SegmentModTime: time.Now().Add(-time.Hour), OffloadedAt: time.Now(),
	}
	if err := cat.Put(rec); err != nil {
		t.Fatal(err)
	}
	// The daemon's /catalog, which expires the record after serving it expireAfter times.
	var served atomic.Int32
	expireAfter := int32(1)
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/catalog" {
			http.NotFound(rw, r)
			return
		}
		if served.Add(1) > atomic.LoadInt32(&expireAfter) {
			if err := cat.Delete(rec.Tier, rec.Key); err != nil {
				t.Error(err)
			}
		}
		if err := cat.Dump(rw); err != nil {
			t.Error(err)
		}
	})}
	go srv.Serve(l)
	defer srv.Close()

	code, out, errs := cli(t, ctx, "-c", w.cfg, "verify")
	if code != 0 || !strings.Contains(out, "gone  hdd:"+string(rec.Key)) || !strings.Contains(out, "0 checked, 0 failed, 0 could not be read, 1 removed while being verified") {
		t.Fatalf("verify of an entry expired meanwhile: exit %d:\n%s%s", code, out, errs)
	}
	if err := cat.Put(rec); err != nil {
		t.Fatal(err)
	}
	atomic.StoreInt32(&expireAfter, 1000)
	code, out, errs = cli(t, ctx, "-c", w.cfg, "verify", "--json")
	if code != 1 || !strings.Contains(out, `"checked": 1`) || !strings.Contains(out, `"failed": 1`) || !strings.Contains(out, "object missing") {
		t.Fatalf("verify of an entry whose object is missing: exit %d:\n%s%s", code, out, errs)
	}
}

// TestVerifyRewritesMarkers: verify compares the marker of every good object with its
// record and rewrites a missing or different one (what catalog rebuild would read).
func TestVerifyRewritesMarkers(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "rocketmq", "")
	if _, err := brokersim.RocketMQ(ctx, brokersim.RocketMQOptions{
		Dir: w.store, Topics: 1, Queues: 1, Messages: 2000, CommitLogSize: 256 << 10, CQSize: 6000,
		IndexSlots: 64, IndexItems: 256, BodySize: 200, PreallocateNext: true,
	}); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "run", "--once"); code != 0 {
		t.Fatalf("run --once: exit %d: %s", code, errs)
	}
	markers := filepath.Join(w.tier, "node-1", segment.MarkerDir, "markers")
	var files []string
	filepath.WalkDir(markers, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 2 {
		t.Fatalf("markers under %s: %v", markers, files)
	}
	want, _ := os.ReadFile(files[1])
	if err := os.Remove(files[0]); err != nil { // a marker PUT that was answered but never stored
		t.Fatal(err)
	}
	rec, err := catalog.DecodeMarker(want)
	if err != nil {
		t.Fatal(err)
	}
	rec.SegmentModTime = rec.SegmentModTime.Add(time.Second) // a marker that does not match its record
	bad, err := catalog.EncodeMarker(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files[1], bad, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(t, ctx, "-c", w.cfg, "verify", "--json")
	if code != 0 || !strings.Contains(out, `"markers_rewritten": 2`) || !strings.Contains(out, "missing: rewritten") || !strings.Contains(out, "differs in segment_mtime: rewritten") {
		t.Fatalf("verify with a missing and a wrong marker: exit %d:\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(files[0]); err != nil {
		t.Fatalf("missing marker not rewritten: %v", err)
	}
	if got, _ := os.ReadFile(files[1]); bytes.Contains(got, bad) || len(got) == 0 {
		t.Fatal("wrong marker not rewritten")
	}
	if code, out, errs := cli(t, ctx, "-c", w.cfg, "verify", "--json"); code != 0 || !strings.Contains(out, `"markers_rewritten": 0`) {
		t.Fatalf("verify after the rewrite: exit %d:\n%s%s", code, out, errs)
	}
}

// TestVerifyRepair: verify --repair removes an object whose bytes differ from its record
// when the local file still has the recorded bytes, and the next pass copies it again; an
// object with no good copy left is kept and reported loudly (exit 1).
func TestVerifyRepair(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "rocketmq", "")
	if _, err := brokersim.RocketMQ(ctx, brokersim.RocketMQOptions{
		Dir: w.store, Topics: 1, Queues: 1, Messages: 2000, CommitLogSize: 256 << 10, CQSize: 6000,
		IndexSlots: 64, IndexItems: 256, BodySize: 200, PreallocateNext: true,
	}); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "run", "--once"); code != 0 {
		t.Fatalf("run --once: exit %d: %s", code, errs)
	}
	flip := func(path string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cl := "commitlog/00000000000000000000"
	flip(filepath.Join(w.tier, "node-1", "src", cl)) // bit rot on the tier
	code, out, errs := cli(t, ctx, "-c", w.cfg, "verify", "--repair")
	if code != 0 || !strings.Contains(out, "repair: removed; the next pass copies it again from local file") || !strings.Contains(out, "repair: 1 removed to be copied again, 0 with NO GOOD COPY left") {
		t.Fatalf("verify --repair with the local file intact: exit %d:\n%s%s", code, out, errs)
	}
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "run", "--once"); code != 0 {
		t.Fatalf("run --once after the repair: exit %d: %s", code, errs)
	}
	if code, out, errs := cli(t, ctx, "-c", w.cfg, "verify"); code != 0 || !strings.Contains(out, " 0 failed") || !strings.Contains(out, "ok    hdd:node-1/src/"+cl+"\n") {
		t.Fatalf("verify after the repair and a pass: exit %d:\n%s%s", code, out, errs)
	}
	// No good copy: the tier's object and the local file both changed.
	flip(filepath.Join(w.tier, "node-1", "src", cl))
	flip(filepath.Join(w.store, cl))
	code, out, errs = cli(t, ctx, "-c", w.cfg, "verify", "--repair")
	if code != 1 || !strings.Contains(out, "NO GOOD COPY") || !strings.Contains(errs, "NO GOOD COPY") {
		t.Fatalf("verify --repair with no good copy left: exit %d:\n%s%s", code, out, errs)
	}
	if code, out, _ := cli(t, ctx, "-c", w.cfg, "verify"); code != 1 || !strings.Contains(out, "FAIL  hdd:node-1/src/"+cl) {
		t.Fatalf("the record with no good copy was not kept: exit %d:\n%s", code, out)
	}
}
