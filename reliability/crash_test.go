package reliability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/devtools/miniotest"
	"github.com/tierd/tierd/internal/failpoint"
)

// uncleanLine is what tierd logs when it starts and finds the abort marker of a run that
// did not exit cleanly, before it reconciles the catalog with the tiers.
const uncleanLine = "the previous run did not exit cleanly"

// Failpoints the crash test arms. The second list needs the multi-hop world (tier to
// tier copies, local deletes, expiry).
var (
	pipelinePoints = []string{
		"daemon.created", "daemon.read_chunk", "daemon.committed", "daemon.verified", "daemon.marked",
		"s3.upload_created", "s3.upload_journaled", "s3.part_uploaded", "s3.completing",
		"compactor.counted", "compactor.window_written", "posix.synced", "posix.temp_linked",
		// inside a batch of small segments (group commit): journaled, objects and markers
		// visible but not durable, durable but not recorded, recorded.
		"daemon.batch_journaled", "daemon.batch_item", "daemon.batch_synced", "daemon.batch_recorded",
	}
	multiHopPoints = []string{
		"daemon.tier_copy_committed", "daemon.tier_copy_marked", "daemon.local_deleted",
		"daemon.expire_unmarked", "daemon.expire_deleted",
	}
)

// killsPerWorld bounds a world's life, and so the size of what each check reads.
const killsPerWorld = 10

// TestCrash kills tierd with SIGKILL -kills times, alternately at a failpoint (armed for
// one run) and at a random moment, while brokersim keeps writing and tierd offloads to a
// posix and an S3 tier. After every kill it checks the crash state (checkCrashed); then
// usually it restarts tierd, requires the restart to report the abort marker and reach
// readiness after its reconcile, runs `tierd verify` against it, stops it with SIGTERM
// and checks everything (checkStopped); sometimes the restart is itself killed. Worlds
// alternate between keeping local files (both tiers due at once) and a multi-hop chain
// (posix at once with retain_for, S3 later from the posix tier, local delete_after).
func TestCrash(t *testing.T) {
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, 0xc4a54))
	srv := miniotest.Start(t)
	modes := []string{"mmap", "direct", "buffered"}
	drivers := []string{"aws", "minio"}
	left := *flagKills
	for i := 0; left > 0; i++ {
		n := min(killsPerWorld, left)
		left -= n
		mode, driver := modes[i%len(modes)], drivers[(i/2)%len(drivers)]
		// The name is the world's S3 prefix too: unique, so that no world sees another's objects.
		c := worldConf{name: fmt.Sprintf("%02d-keep-%s-%s", i, mode, driver)}
		points := pipelinePoints
		if i%2 == 0 {
			c.tiers = []tierConf{
				{name: "hdd", yaml: "write_mode: " + mode + ", offload_after: 0s"},
				{name: "s3", s3: true, yaml: "driver: " + driver + ", offload_after: 0s"},
			}
		} else {
			c.name = fmt.Sprintf("%02d-chain-%s-%s", i, mode, driver)
			c.tiers = []tierConf{
				{name: "hdd", yaml: "write_mode: " + mode + ", offload_after: 0s, retain_for: 10s"},
				{name: "s3", s3: true, yaml: "driver: " + driver + ", offload_after: 5s"},
			}
			c.deleteAfter = "3s"
			points = slices.Concat(pipelinePoints, multiHopPoints)
		}
		wseed := rng.Uint64()
		if !t.Run(c.name, func(t *testing.T) { crashWorld(t, srv, c, points, n, wseed) }) {
			return
		}
	}
}

func crashWorld(t *testing.T, srv *miniotest.Server, c worldConf, points []string, kills int, wseed uint64) {
	rng := rand.New(rand.NewPCG(wseed, 0x5eed))
	ctx := context.Background()
	w := newWorld(t, srv, c)
	w.startBroker(wseed, 1500, 250)
	// Age the first sealed segments so that every policy (local delete, tier to tier
	// copy, expiry) is due from the start.
	w.ageSealed(t, 8, time.Minute)
	order := slices.Clone(points)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	abort := filepath.Join(w.state, catalog.AbortFile)
	prevKilled := false
	unchecked := 0 // kills not yet followed by a clean recovery and checkStopped
	fired := map[string]int{}
	for k := range kills {
		var env []string
		point := ""
		if k%2 == 0 {
			point = order[(k/2)%len(order)]
			env = append(env, failpoint.EnvVar+"="+point+":"+string(rune('1'+rng.IntN(3))))
		}
		p := w.start("victim-"+orDefault(point, "random"), env...)
		if prevKilled {
			if !p.waitLog(uncleanLine, 60*time.Second) {
				t.Fatalf("kill %d: the start after a SIGKILL did not report the abort marker:\n%s", k, p.tail())
			}
		} else if !p.waitFor(60*time.Second, func() bool { _, err := os.Stat(abort); return err == nil }) {
			t.Fatalf("kill %d: tierd never started a run:\n%s", k, p.tail())
		}
		if point != "" && p.wait(6*time.Second) {
			if !p.diedOfSIGKILL() {
				t.Fatalf("kill %d: tierd armed with %s exited on its own (%v):\n%s", k, point, p.cmd.ProcessState, p.tail())
			}
			fired[point]++
		} else {
			if point == "" {
				time.Sleep(time.Duration(rng.Int64N(int64(2 * time.Second))))
			}
			if p.exited() {
				t.Fatalf("kill %d: tierd exited on its own (%v):\n%s", k, p.cmd.ProcessState, p.tail())
			}
			p.kill()
		}
		unchecked++
		w.checkCrashed(ctx)
		if t.Failed() {
			t.Fatalf("kill %d (%s): crash state broken; last log:\n%s", k, orDefault(point, "random"), p.tail())
		}
		prevKilled = true
		if k < kills-1 && rng.IntN(4) == 0 {
			continue // the next victim is also the restart: a crash during recovery
		}
		w.cleanRestart(ctx, k)
		prevKilled = false
		tally.add(func(c *counts) { c.kills += unchecked })
		unchecked = 0
	}
	for name, n := range fired {
		tally.add(func(c *counts) { c.fired[name] += n })
	}
	t.Logf("kills at failpoints: %v", fired)

	// The end: the broker stops, one full pass offloads everything due, and all holds.
	w.stopBroker()
	time.Sleep(2 * sealGrace) // the last files the broker wrote become sealed for the pass
	if res := w.cli("run", "--once"); res.code != 0 {
		t.Fatalf("final run --once: exit %d:\n%s", res.code, res.errOut)
	}
	recs := w.checkStopped(ctx)
	w.checkCoverage(recs)
}

// cleanRestart restarts tierd after a kill: it must report the abort marker, reconcile,
// become ready and pass `tierd verify` while running; then it is stopped with SIGTERM
// (exit 0) and checkStopped runs.
func (w *world) cleanRestart(ctx context.Context, k int) {
	t := w.t
	t.Helper()
	r := w.start("restart")
	if !r.waitLog(uncleanLine, 60*time.Second) {
		t.Fatalf("kill %d: the restart did not report the abort marker:\n%s", k, r.tail())
	}
	if !r.waitFor(60*time.Second, func() bool { code, _ := httpGet(w.addr, "/readyz"); return code == 200 }) {
		_, body := httpGet(w.addr, "/readyz")
		t.Fatalf("kill %d: the restart did not become ready: %s\n%s", k, body, r.tail())
	}
	if res := w.cli("verify", "--json"); res.code != 0 {
		t.Errorf("kill %d: tierd verify against the restarted daemon: exit %d:\n%s\n%s", k, res.code, res.out, res.errOut)
	}
	time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
	if code := r.term(30 * time.Second); code != 0 {
		t.Fatalf("kill %d: the restarted tierd exited %d after SIGTERM:\n%s", k, code, r.tail())
	}
	w.checkStopped(ctx)
	if t.Failed() {
		t.Fatalf("kill %d: invariants broken after recovery; the restart's log:\n%s", k, r.tail())
	}
}

// ageSealed waits until the broker has sealed at least n segments and sets their mtime
// age into the past, so that policies keyed on a segment's age apply to them at once.
func (w *world) ageSealed(t *testing.T, n int, age time.Duration) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(w.sealed.all()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("brokersim sealed only %d segments in 30s", len(w.sealed.all()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	old := time.Now().Add(-age)
	for rel := range w.sealed.all() {
		if err := os.Chtimes(filepath.Join(w.store, filepath.FromSlash(rel)), old, old); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// checkCoverage checks, after a final full pass, that every segment tierd must have
// moved is where the policy wants it: in a world that keeps local files, every sealed
// segment (but the newest commit-log file but one, which tierd leaves to a broker that
// creates files ahead) is on every tier.
func (w *world) checkCoverage(recs []catalog.Record) {
	t := w.t
	held := map[string]map[string]bool{}
	for _, r := range recs {
		if held[r.Rel] == nil {
			held[r.Rel] = map[string]bool{}
		}
		held[r.Rel][r.Tier] = true
	}
	sealed := w.sealed.all()
	var commitLogs []string
	for rel := range sealed {
		if strings.HasPrefix(rel, "commitlog/") {
			commitLogs = append(commitLogs, rel)
		}
	}
	slices.Sort(commitLogs)
	newestButOne := ""
	if len(commitLogs) > 0 {
		newestButOne = commitLogs[len(commitLogs)-1]
	}
	onTier := 0
	for rel := range sealed {
		if len(held[rel]) > 0 {
			onTier++
		}
		if w.deletes() || rel == newestButOne {
			continue
		}
		for _, wt := range w.tiers {
			if !held[rel][wt.name] {
				w.r.Errorf("after the final pass, sealed segment %s is not on tier %s", rel, wt.name)
			}
		}
	}
	t.Logf("%d sealed segments, %d of them on a tier (%d records)", len(sealed), onTier, len(recs))
	tally.add(func(c *counts) { c.segments += len(sealed) })
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
