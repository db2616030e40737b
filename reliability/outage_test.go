package reliability

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/tierd/tierd/daemon"
	"github.com/tierd/tierd/devtools/miniotest"
)

// TestObjectStoreOutage stops MinIO while tierd uploads to it (a rate-limited S3 tier, so
// that an upload is in flight) for several retry intervals, -outages times, while
// brokersim keeps writing: meanwhile /readyz reports the failing tier and the posix tier
// keeps offloading; after MinIO is back the uploads resume by themselves, and in the end
// every sealed segment is on both tiers once, nothing incomplete is left, and every check
// passes.
func TestObjectStoreOutage(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	srv := miniotest.Start(t)
	w := newWorld(t, srv, worldConf{
		name: "outage",
		tiers: []tierConf{
			{name: "hdd", yaml: "write_mode: direct"},
			// min_transfer_rate: the 256KiB/s shared by concurrency × part_concurrency transfers
			// gives each 32KiB/s (config/validate.go refuses the 1MiB/s default here).
			{name: "s3", s3: true, yaml: "driver: aws, rate_limit: 256KiB/s, min_transfer_rate: 32KiB/s"},
		},
		retry: "{initial: 100ms, max: 500ms}",
		// Room for an S3 compaction (two buffers) that keeps retrying, and for HDD jobs.
		memory: "{buffer_pool: 20MiB, buffer_size: 5MiB}",
	})
	checkLeftoverDetection(t, w)
	w.startBroker(s, 1500, 150)
	p := w.startReady("daemon")
	ready := w.ready
	const outage = 3 * time.Second // six times retry.max
	for i := range *flagOutages {
		if !p.waitFor(time.Minute, func() bool { return w.tierStatus("s3").InFlight > 0 }) {
			t.Fatalf("outage %d: no upload in flight:\n%s", i, p.tail())
		}
		hddBefore := w.tierStatus("hdd").Segments
		srv.Stop()
		// The outage lasts until /readyz reports it, and at least six retry.max.
		start := time.Now()
		reported := ""
		var hddDue time.Time // since when the posix tier has had work due, without progress
		for time.Since(start) < outage || (reported == "" && time.Since(start) < time.Minute) {
			if ok, body := ready(); !ok && strings.Contains(body, "tier s3 is failing") {
				reported = body
			}
			if hdd := w.tierStatus("hdd"); hdd.Segments > hddBefore || hdd.Due == 0 {
				hddDue = time.Time{}
			} else if hddDue.IsZero() {
				hddDue = time.Now()
			}
			time.Sleep(50 * time.Millisecond)
		}
		down := time.Since(start)
		if p.exited() {
			t.Fatalf("outage %d: tierd exited:\n%s", i, p.tail())
		}
		if reported == "" {
			t.Errorf("outage %d: /readyz never reported the failing S3 tier in a minute:\n%s", i, p.tail())
		} else {
			t.Logf("outage %d (%s): /readyz: %s", i, down.Round(time.Millisecond), firstLines(reported, 1))
		}
		// The posix tier keeps offloading: it never had work due for a second without doing any.
		if !hddDue.IsZero() && time.Since(hddDue) > time.Second {
			t.Errorf("outage %d: the posix tier stalled with the S3 tier: %+v", i, w.tierStatus("hdd"))
		}
		srv.Restart()
		if !p.waitFor(time.Minute, func() bool { ok, _ := ready(); return ok }) {
			_, body := ready()
			t.Fatalf("outage %d: not ready a minute after MinIO came back: %s\n%s", i, body, p.tail())
		}
		t.Logf("outage %d: ready again %s after MinIO came back", i, (time.Since(start) - down).Round(time.Millisecond))
		tally.add(func(c *counts) { c.outages++ })
	}
	// The uploads resume by themselves: everything sealed reaches both tiers.
	w.stopBroker()
	if !w.waitCaughtUp(p, 3*time.Minute, nil) {
		t.Fatalf("the S3 tier did not catch up after the outages:\n%s", p.tail())
	}
	// An upload whose creation reply the outage swallowed is known to tierd by its object's
	// name only: the running daemon reaps it (every few scans).
	if !p.waitFor(time.Minute, func() bool { return len(w.uploadsOfRecords(ctx)) == 0 }) {
		t.Errorf("incomplete multipart uploads left a minute after the S3 tier caught up: %v", w.uploadsOfRecords(ctx))
	}
	if code := p.term(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.tail())
	}
	t.Logf("uploads the running daemon reaped after their creation failed: %d",
		strings.Count(p.log(), "its creation failed in this process"))
	recs := w.checkStopped(ctx)
	w.checkCoverage(recs)
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.Tier+":"+string(r.Key)] {
			t.Errorf("catalog lists %s:%s twice", r.Tier, r.Key)
		}
		seen[r.Tier+":"+string(r.Key)] = true
	}
	for _, u := range w.uploadsOfRecords(ctx) {
		t.Errorf("incomplete multipart upload left after the outages: %s", u)
		tally.add(func(c *counts) { c.incomplete++ })
	}
}

// startReady starts tierd run and waits up to a minute for /readyz to say ready.
func (w *world) startReady(name string) *proc {
	w.t.Helper()
	p := w.start(name)
	if !p.waitFor(time.Minute, func() bool { ok, _ := w.ready(); return ok }) {
		w.t.Fatalf("tierd never became ready:\n%s", p.tail())
	}
	return p
}

// ready asks the running tierd's /readyz: ready, and the body (the reasons if not).
func (w *world) ready() (bool, string) {
	code, body := httpGet(w.addr, "/readyz")
	return code == 200, strings.TrimSpace(body)
}

// waitCaughtUp waits up to limit for every sealed segment (but commit-log files, of which
// tierd leaves the newest but one to the broker) to be on the hdd and s3 tiers, and for
// ok (if not nil) to hold. Call it with the broker stopped.
func (w *world) waitCaughtUp(p *proc, limit time.Duration, ok func() bool) bool {
	w.t.Helper()
	want := 0
	for rel := range w.sealed.all() {
		if !strings.HasPrefix(rel, "commitlog/") {
			want++
		}
	}
	return p.waitFor(limit, func() bool {
		if ok != nil && !ok() {
			return false
		}
		n := map[string]int{}
		for _, r := range w.records() {
			if !strings.HasPrefix(r.Rel, "commitlog/") {
				n[r.Tier]++
			}
		}
		return n["hdd"] >= want && n["s3"] >= want
	})
}

// uploadsOfRecords lists the incomplete multipart uploads of every object the catalog
// records on an S3 tier, asking for each object's own: MinIO lists bucket-wide only the
// uploads it has seen since it started, and finds an object's on disk.
func (w *world) uploadsOfRecords(ctx context.Context) []string {
	w.t.Helper()
	var out []string
	for _, r := range w.records() {
		if r.Tier != "s3" {
			continue
		}
		for u := range w.srv.Client().ListIncompleteUploads(ctx, w.srv.Bucket, w.prefix+"/"+string(r.Key), false) {
			if u.Err != nil {
				w.t.Fatal(u.Err)
			}
			out = append(out, u.Key+" "+u.UploadID)
		}
	}
	return out
}

// tierStatus returns a tier's status from the running daemon (zero if it does not answer).
func (w *world) tierStatus(name string) daemon.TierStatus {
	_, body := httpGet(w.addr, "/status")
	var st daemon.Status
	_ = json.Unmarshal([]byte(body), &st)
	for _, ts := range st.Tiers {
		if ts.Name == name {
			return ts
		}
	}
	return daemon.TierStatus{}
}

// checkLeftoverDetection proves that the leftover check sees an incomplete multipart
// upload under the world's prefix.
func checkLeftoverDetection(t *testing.T, w *world) {
	t.Helper()
	ctx := context.Background()
	core := minio.Core{Client: w.srv.Client()}
	key := w.prefix + "/" + node + "/src/commitlog/00000000000000000000"
	id, err := core.NewMultipartUpload(ctx, w.srv.Bucket, key, minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	w.r = rec
	n := w.leftovers()
	w.r = t
	if got := rec.take(); n != 1 || !strings.Contains(got, "incomplete multipart upload") {
		t.Fatalf("an incomplete upload was not found by the leftover check (%d): %s", n, got)
	}
	if err := core.AbortMultipartUpload(ctx, w.srv.Bucket, key, id); err != nil {
		t.Fatal(err)
	}
}
