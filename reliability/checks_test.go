package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierd/tierd/catalog"
)

// recorder collects what checks report, instead of failing the test.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.msgs, "\n")
	r.msgs = nil
	return s
}

// TestChecksCatchDamage proves that the checks the other tests rely on can fail: on a
// world tierd offloaded cleanly they report nothing, and each kind of damage done by hand
// (an orphan object, a torn object, a marker without its object, a leftover temp file, a
// local file gone without a copy) is reported.
func TestChecksCatchDamage(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, nil, worldConf{name: "damage", tiers: []tierConf{{name: "hdd", yaml: "write_mode: buffered"}}})
	w.startBroker(seed(t), 3000, 0)
	w.ageSealed(t, 10, time.Minute)
	if res := w.cli("run", "--once"); res.code != 0 {
		t.Fatalf("run --once: %d %s", res.code, res.errOut)
	}
	rec := &recorder{}
	w.r = rec
	// Losses and orphans staged here are not the system's: keep them out of the summary.
	tally.mu.Lock()
	lost, orphans, incomplete := tally.lost, tally.orphans, tally.incomplete
	tally.mu.Unlock()
	defer tally.add(func(c *counts) { c.lost, c.orphans, c.incomplete = lost, orphans, incomplete })
	recs := w.checkStopped(ctx)
	w.checkCrashed(ctx)
	if got := rec.take(); got != "" || len(recs) < 10 {
		t.Fatalf("checks of a clean world (%d records) reported:\n%s", len(recs), got)
	}
	tier := w.tiers[0].path
	var victim catalog.Record
	for _, r := range recs {
		if strings.HasPrefix(r.Rel, "commitlog/") {
			victim = r
			break
		}
	}
	obj := filepath.Join(tier, filepath.FromSlash(string(victim.Key)))
	f := func(what, want string, damage, check, undo func()) {
		t.Helper()
		damage()
		check()
		got := rec.take()
		undo()
		if !strings.Contains(got, want) {
			t.Errorf("%s: the checks reported %q, want %q", what, got, want)
		}
	}
	f("orphan object", "ORPHAN: tier hdd holds "+node+"/src/commitlog/x",
		func() { must(t, os.WriteFile(filepath.Join(tier, node, "src/commitlog/x"), []byte("x"), 0o644)) },
		func() { w.checkStopped(ctx) },
		func() { must(t, os.Remove(filepath.Join(tier, node, "src/commitlog/x"))) })
	data, err := os.ReadFile(obj)
	must(t, err)
	f("torn object", "TORN object "+string(victim.Key),
		func() { must(t, os.Truncate(obj, int64(len(data)/2))) },
		func() { w.checkCrashed(ctx) },
		func() { must(t, os.WriteFile(obj, data, 0o644)) })
	f("marker without object", "without its object",
		func() { must(t, os.Rename(obj, obj+".hidden")) },
		func() { w.checkCrashed(ctx) },
		func() { must(t, os.Rename(obj+".hidden", obj)) })
	f("temp file", "temp file left",
		func() { must(t, os.WriteFile(filepath.Join(tier, ".tierd-tmp-x"), nil, 0o644)) },
		func() { w.leftovers() },
		func() { must(t, os.Remove(filepath.Join(tier, ".tierd-tmp-x"))) })
	local := filepath.Join(w.store, filepath.FromSlash(victim.Rel))
	f("local file gone", "is gone although local.delete_after is never",
		func() { must(t, os.Rename(local, local+".hidden")) },
		func() { w.checkLocal(recs, "test") },
		func() { must(t, os.Rename(local+".hidden", local)) })
	var others []catalog.Record
	for _, r := range recs {
		if r.Rel != victim.Rel {
			others = append(others, r)
		}
	}
	f("segment lost", "SEGMENT LOST: local "+victim.Rel,
		func() { must(t, os.Rename(local, local+".hidden")) },
		func() { w.checkLocal(others, "test") },
		func() { must(t, os.Rename(local+".hidden", local)) })
	w.checkStopped(ctx)
	if got := rec.take(); got != "" {
		t.Fatalf("the world is not clean again after the damage was undone:\n%s", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
