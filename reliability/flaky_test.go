package reliability

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/devtools/miniotest"
)

var (
	flagFlakyFor   = flag.Duration("flaky-for", 8*time.Second, "how long each fault scenario of TestFlakyStore injects faults (make reliability: 60s)")
	flagLongOutage = flag.Duration("long-outage", 25*time.Second, "how long TestLongOutage stops MinIO (longer than a lease renewal, 20s; make reliability: 2m)")
)

// flakyScenario is one fault scenario of TestFlakyStore.
type flakyScenario struct {
	name   string
	driver string
	faults faults
	// probe runs once while the faults are on, after a third of the fault time.
	probe func(t *testing.T, w *world, fc *flakyCounts)
	// deadline, if set: /readyz must report the S3 tier within it of the first request
	// the proxy held, and the posix tier must keep offloading meanwhile.
	deadline time.Duration
}

// flakyCounts is what a fault scenario measured (the summary line of each).
type flakyCounts struct {
	faulted                  string
	offloaded                map[string]int // distinct keys offloaded per tier, in the end
	hddDuring                int            // segments the posix tier offloaded while the faults were on
	duplicated               int            // copies of a tier/key made twice ("offloaded" lines beyond one per key)
	lost, orphaned, leftover int            // from the crash harness's checks
	recover                  time.Duration  // from the end of the faults to ready with every tier caught up
	falseVerify, unreadable  int            // verify under faults: failures of good objects; entries it could not read
	readRetries              int            // GETs resumed after a cut or failed read (cat and verify under faults)
	catFailed                int            // tierd cat runs under faults that failed
	extraUploads             int            // commits redone because verify after commit did not see the object
	settled                  int            // commits whose lost reply was settled by looking
	uploadsLeft              int            // incomplete uploads of the catalog's objects after the daemon stopped, before any reap
	reported                 time.Duration  // first hung request to /readyz reporting the S3 tier (deadline scenarios)
}

func (c flakyCounts) String() string {
	return fmt.Sprintf("faulted: %s; offloaded hdd=%d s3=%d (hdd during faults %d); duplicated %d, lost %d, orphaned %d, left incomplete %d; "+
		"recovered in %s; false verify failures %d (unreadable %d), read retries %d, cat failures %d; extra uploads after stale reads %d; "+
		"lost commit replies settled %d; uploads left after lost creation replies %d; S3 tier reported failing %s after the first hung request",
		c.faulted, c.offloaded["hdd"], c.offloaded["s3"], c.hddDuring, c.duplicated, c.lost, c.orphaned, c.leftover,
		c.recover.Round(100*time.Millisecond), c.falseVerify, c.unreadable, c.readRetries, c.catFailed, c.extraUploads, c.settled, c.uploadsLeft, c.reported.Round(100*time.Millisecond))
}

// TestFlakyStore runs tierd against MinIO through a fault-injecting proxy while brokersim
// writes: 503 SlowDown, 500, connection resets mid-upload and mid-download, latency,
// commits and upload creations whose replies are lost after the store did them, stale
// 404s right after a commit, and hung requests (the lease, parts, GETs). During each
// scenario verify and cat run under the faults. After it: nothing lost, duplicated,
// orphaned or left incomplete, the posix tier kept offloading, and tierd recovered by
// itself once the faults stopped; each scenario's counts are logged and summed into the
// package's summary line.
func TestFlakyStore(t *testing.T) {
	flaky := faults{
		slowDown: 0.05, internal: 0.03, resetUpload: 0.03, resetDownload: 0.05, latency: 0.1, latencyOf: 100 * time.Millisecond,
		lostCommit: 0.2, lostCreate: 0.2, staleHead: 0.5,
	}
	underFaults := func(t *testing.T, w *world, fc *flakyCounts) {
		verifyUnderFaults(t, w, fc)
		catUnderFaults(t, w, fc, 3)
	}
	for _, sc := range []flakyScenario{
		{name: "flaky", driver: "aws", faults: flaky, probe: underFaults},
		{name: "flaky", driver: "minio", faults: flaky, probe: underFaults},
		{name: "hung", driver: "aws", faults: faults{hangLease: true, hangParts: true, hangGets: true}, deadline: 10 * time.Second,
			probe: func(t *testing.T, w *world, fc *flakyCounts) { catUnderFaults(t, w, fc, 1) }},
	} {
		t.Run(sc.name+"-"+sc.driver, func(t *testing.T) {
			fc := runFlaky(t, sc)
			t.Logf("scenario %s-%s: %s", sc.name, sc.driver, fc)
			tally.add(func(c *counts) {
				c.scenarios = append(c.scenarios, fmt.Sprintf("%s-%s: %s", sc.name, sc.driver, fc))
			})
			if fc.duplicated > 0 || fc.uploadsLeft > 0 || fc.falseVerify > 0 || fc.extraUploads > 0 {
				t.Errorf("scenario %s-%s: %s", sc.name, sc.driver, fc)
			}
		})
	}
}

func runFlaky(t *testing.T, sc flakyScenario) flakyCounts {
	s := seed(t)
	ctx := context.Background()
	srv := miniotest.Start(t)
	px := startFaultProxy(t, srv.Endpoint, s)
	w := newWorld(t, srv, worldConf{
		name: fmt.Sprintf("%s-%s-%d", sc.name, sc.driver, s%1_000_000),
		tiers: []tierConf{
			{name: "hdd", yaml: "write_mode: buffered"},
			{name: "s3", s3: true, endpoint: px.URL, yaml: "driver: " + sc.driver + ", request_timeout: 2s, min_transfer_rate: 2MiB/s"},
		},
		retry:  "{initial: 100ms, max: 1s}",
		memory: "{buffer_pool: 20MiB, buffer_size: 5MiB}",
		// Commit-log files larger than a PUT: they go up as multipart uploads (two parts).
		commitLogSize: 6 << 20, bodySize: 4096,
	})
	w.startBroker(s, 1500, 1000)
	p := w.startReady("daemon")
	ready := w.ready
	var fc flakyCounts
	hddBefore := w.tierStatus("hdd").Segments
	px.set(sc.faults)
	start := time.Now()
	probed := false
	probeDone := make(chan struct{})
	for time.Since(start) < *flagFlakyFor {
		if !probed && time.Since(start) > *flagFlakyFor/3 {
			probed = true
			go func() { // in the background: the loop keeps watching /readyz
				defer close(probeDone)
				if sc.probe != nil {
					sc.probe(t, w, &fc)
				}
			}()
		}
		if sc.deadline > 0 && fc.reported == 0 {
			px.mu.Lock()
			first := px.firstHung
			px.mu.Unlock()
			if ok, body := ready(); !first.IsZero() && !ok && strings.Contains(body, "tier s3") {
				fc.reported = time.Since(first)
				t.Logf("/readyz after %s: %s", fc.reported.Round(100*time.Millisecond), firstLines(body, 2))
			}
		}
		if p.exited() {
			t.Fatalf("tierd exited under faults:\n%s", p.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if probed {
		<-probeDone // the probe runs under the faults to its end
	}
	fc.hddDuring = int(w.tierStatus("hdd").Segments - hddBefore)
	if sc.deadline > 0 && (fc.reported == 0 || fc.reported > sc.deadline) {
		t.Errorf("/readyz did not report the S3 tier within %s of the first hung request (after %s)", sc.deadline, fc.reported)
	}
	if fc.hddDuring == 0 {
		t.Errorf("the posix tier offloaded nothing in %s of faults on the S3 tier", *flagFlakyFor)
	}
	px.set(faults{})
	end := time.Now()
	w.stopBroker()
	if !w.waitCaughtUp(p, 3*time.Minute, func() bool { ok, _ := ready(); return ok }) {
		_, body := ready()
		t.Fatalf("tierd did not recover by itself in 3 minutes after the faults stopped: %s\n%s", body, p.tail())
	}
	fc.recover = time.Since(end)
	// The daemon reaps every ten scans: uploads whose creation reply was lost go then.
	p.waitFor(30*time.Second, func() bool { return len(w.uploadsOfRecords(ctx)) == 0 })
	if code := p.term(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.tail())
	}
	fc.uploadsLeft = len(w.uploadsOfRecords(ctx))
	fc.faulted = px.summary()
	fc.duplicated, fc.extraUploads, fc.settled = w.logCounts()
	before := snapshot()
	recs := w.checkStopped(ctx)
	w.checkCoverage(recs)
	after := snapshot()
	fc.lost, fc.orphaned, fc.leftover = after.lost-before.lost, after.orphans-before.orphans, after.incomplete-before.incomplete
	fc.offloaded = map[string]int{}
	for _, r := range recs {
		fc.offloaded[r.Tier]++
	}
	return fc
}

// snapshot copies the tally's counters.
func snapshot() counts {
	tally.mu.Lock()
	defer tally.mu.Unlock()
	return counts{lost: tally.lost, orphans: tally.orphans, incomplete: tally.incomplete}
}

// verifyUnderFaults runs tierd verify against the running daemon while the proxy injects
// faults: every object is good, so every failure is a false one; entries the store did
// not let it read are counted apart (exit 3), and must not be called failed.
func verifyUnderFaults(t *testing.T, w *world, fc *flakyCounts) {
	t.Helper()
	res := w.cli("verify", "--json", "--tier", "s3")
	var ver struct{ Checked, Failed, Unreadable int }
	if err := json.Unmarshal([]byte(res.out), &ver); err != nil {
		t.Errorf("verify --json under faults: exit %d, %v:\n%s", res.code, err, res.errOut)
		return
	}
	fc.falseVerify += ver.Failed
	fc.unreadable += ver.Unreadable
	fc.readRetries += strings.Count(res.errOut, "read cut short")
	switch {
	case ver.Failed > 0 && res.code != 1, ver.Failed == 0 && ver.Unreadable > 0 && res.code != 3, ver.Failed+ver.Unreadable == 0 && res.code != 0:
		t.Errorf("verify under faults: exit %d for %+v", res.code, ver)
	}
	t.Logf("verify under faults: exit %d, %d checked, %d failed, %d unreadable", res.code, ver.Checked, ver.Failed, ver.Unreadable)
}

// catUnderFaults reads up to n objects of the S3 tier with tierd cat while the proxy
// injects faults; a cut body is resumed with a ranged GET from the last byte received.
func catUnderFaults(t *testing.T, w *world, fc *flakyCounts, n int) {
	t.Helper()
	done := 0
	for _, r := range w.records() {
		if r.Tier != "s3" || done == n {
			continue
		}
		done++
		res := w.cli("cat", "--tier", "s3", string(r.Key))
		fc.readRetries += strings.Count(res.errOut, "read cut short")
		if res.code != 0 {
			fc.catFailed++
			lines := strings.Split(strings.TrimSpace(res.errOut), "\n")
			t.Logf("cat %s under faults: exit %d: %s", r.Key, res.code, lines[len(lines)-1])
			continue
		}
		if int64(len(res.out)) != r.Size || crc([]byte(res.out)) != r.CRC32C {
			t.Errorf("cat %s under faults returned other bytes (%d, want %d)", r.Key, len(res.out), r.Size)
		}
	}
}

// logCounts reads every tierd log of the world: copies made twice (more than one
// "offloaded" line for a tier and key), commits redone after verify did not see the new
// object, and commits whose lost reply was settled by looking.
func (w *world) logCounts() (duplicated, extraUploads, settled int) {
	w.t.Helper()
	seen := map[string]bool{}
	for _, p := range w.procs {
		f, err := os.Open(p.logPath)
		if err != nil {
			w.t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l struct {
				Msg, Tier, Key, Job, Error string
			}
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			switch {
			case l.Msg == "offloaded":
				if seen[l.Tier+":"+l.Key] {
					duplicated++
				}
				seen[l.Tier+":"+l.Key] = true
			case (l.Msg == "job failed" || l.Msg == "job failed; retrying later") && strings.Contains(l.Error, "verify "):
				extraUploads++
			case strings.Contains(l.Msg, "its reply was lost"):
				settled++
			}
		}
		f.Close()
	}
	return duplicated, extraUploads, settled
}

// TestLongOutage stops MinIO for -long-outage (25 s here, longer than a lease renewal;
// make reliability: 2 minutes) while brokersim writes, and kills and restarts tierd in
// the middle of it: the restart must not exit, the posix tier keeps offloading
// throughout (objects per 10 s), the lag gauge of the S3 tier keeps moving, the S3 tier
// catches up by itself after MinIO is back, and nothing is duplicated, lost or orphaned.
func TestLongOutage(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	srv := miniotest.Start(t)
	w := newWorld(t, srv, worldConf{
		name: fmt.Sprintf("long-outage-%d", s%1_000_000),
		tiers: []tierConf{
			{name: "hdd", yaml: "write_mode: buffered"},
			{name: "s3", s3: true, yaml: "driver: aws, request_timeout: 2s"},
		},
		retry:  "{initial: 100ms, max: 1s}",
		memory: "{buffer_pool: 20MiB, buffer_size: 5MiB}",
	})
	w.startBroker(s, 1500, 150)
	p := w.startReady("daemon")
	hddRecords := func() (int, bool) {
		res := w.cli("ls", "--json", "--tier", "hdd")
		if res.code != 0 {
			return 0, false
		}
		var recs []json.RawMessage
		if json.Unmarshal([]byte(res.out), &recs) != nil {
			return 0, false
		}
		return len(recs), true
	}
	lag := func() float64 {
		_, body := httpGet(w.addr, "/metrics")
		var v float64
		for _, line := range strings.Split(body, "\n") {
			if rest, ok := strings.CutPrefix(line, `tierd_oldest_pending_seconds{tier="s3"} `); ok {
				fmt.Sscan(rest, &v)
			}
		}
		return v
	}
	srv.Stop()
	start := time.Now()
	var perTen []int
	last, _ := hddRecords()
	lag0, restarted, restartsExited := lag(), false, 0
	var lag1 float64
	for next := start.Add(10 * time.Second); time.Since(start) < *flagLongOutage; next = next.Add(10 * time.Second) {
		for time.Now().Before(next) && time.Since(start) < *flagLongOutage {
			if !restarted && time.Since(start) > *flagLongOutage/2 {
				lag1 = lag()
				p.kill()
				p = w.start("restart-in-outage")
				restarted = true
				if p.waitFor(10*time.Second, p.exited) {
					restartsExited++
					t.Errorf("tierd restarted during the outage exited:\n%s", p.tail())
					p = w.start("restart-in-outage-again")
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		if n, ok := hddRecords(); ok {
			perTen = append(perTen, n-last)
			last = n
		}
	}
	lag2 := lag()
	srv.Restart()
	back := time.Now()
	if !restarted || lag1 <= lag0 || lag2 <= 0 {
		t.Errorf("tierd_oldest_pending_seconds{tier=\"s3\"} during the outage: %.1f, %.1f before the restart, %.1f at the end", lag0, lag1, lag2)
	}
	for i, n := range perTen {
		if n == 0 && i < len(perTen)-1 {
			t.Errorf("the posix tier offloaded nothing in the %d-th 10 s of the outage (per 10 s: %v)", i+1, perTen)
		}
	}
	w.stopBroker()
	if !w.waitCaughtUp(p, 4*time.Minute, nil) {
		t.Fatalf("the S3 tier did not catch up after the outage:\n%s", p.tail())
	}
	caughtUp := time.Since(back)
	p.waitFor(30*time.Second, func() bool { return len(w.uploadsOfRecords(ctx)) == 0 })
	if code := p.term(30 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.tail())
	}
	dup, _, _ := w.logCounts()
	before := snapshot()
	recs := w.checkStopped(ctx)
	w.checkCoverage(recs)
	after := snapshot()
	line := fmt.Sprintf("outage %s (MinIO stopped, tierd restarted in it): hdd objects per 10 s %v; s3 lag gauge %.0fs -> %.0fs -> %.0fs; "+
		"restarts that exited %d; S3 caught up %s after MinIO came back; duplicated %d, lost %d, orphaned %d",
		*flagLongOutage, perTen, lag0, lag1, lag2, restartsExited, caughtUp.Round(100*time.Millisecond), dup,
		after.lost-before.lost, after.orphans-before.orphans)
	t.Log(line)
	tally.add(func(c *counts) { c.scenarios = append(c.scenarios, line); c.outages++ })
	if dup > 0 {
		t.Errorf("%d copies made twice", dup)
	}
}
