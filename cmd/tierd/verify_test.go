package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
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
