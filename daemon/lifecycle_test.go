package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/source"
)

// chain is an env with several posix tiers and a clock the test moves.
type chain struct {
	*env
	tiers map[string]*posix.Backend
	now   time.Time
}

func newChain(t *testing.T, names ...string) *chain {
	c := &chain{env: newEnv(t), tiers: map[string]*posix.Backend{}, now: time.Now()}
	for _, n := range names {
		b, err := posix.New(posix.Config{Path: filepath.Join(t.TempDir(), n), WriteMode: posix.Buffered}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		c.tiers[n] = b
	}
	return c
}

// pass runs one RunOnce at the chain's clock with the given tiers (in order, hot to cold).
func (c *chain) pass(tiers []Tier, mod ...func(*Config)) *Daemon {
	c.t.Helper()
	for i := range tiers {
		tiers[i].Backend = c.tiers[tiers[i].Name]
		tiers[i].Type = "posix"
	}
	d := c.daemon(append([]func(*Config){func(cfg *Config) {
		cfg.Tiers = tiers
		cfg.Now = func() time.Time { return c.now }
	}}, mod...)...)
	if err := d.RunOnce(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	return d
}

// held lists the object keys (markers left out) each tier holds, and checks that the
// catalog says exactly the same and that every object has its marker.
func (c *chain) held(tier string) []string {
	c.t.Helper()
	ctx := context.Background()
	ents, err := c.tiers[tier].List(ctx, "")
	if err != nil {
		c.t.Fatal(err)
	}
	var objs, markers []string
	for _, e := range ents {
		if strings.Contains(string(e.Key), "/_tierd/") {
			markers = append(markers, string(e.Key))
		} else {
			objs = append(objs, string(e.Key))
		}
	}
	recs, _ := c.cat.List(tier)
	var inCat []string
	for _, r := range recs {
		inCat = append(inCat, string(r.Key))
	}
	sort.Strings(inCat)
	if strings.Join(objs, ",") != strings.Join(inCat, ",") {
		c.t.Fatalf("tier %s holds %v, its catalog records say %v", tier, objs, inCat)
	}
	if len(markers) != len(objs) {
		c.t.Fatalf("tier %s: %d objects, %d markers", tier, len(objs), len(markers))
	}
	return objs
}

func (c *chain) localLeft(paths []string) int {
	n := 0
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			n++
		}
	}
	return n
}

// TestThreeTierChainWithLocalDelete: ssd right away, hdd after 2h, cold after 4h; local
// files deleted after 90 minutes (only ssd must hold them by then); ssd keeps objects
// 3h. Segments are an hour old at the start.
func TestThreeTierChainWithLocalDelete(t *testing.T) {
	c := newChain(t, "ssd", "hdd", "cold")
	sealed, active := store(t, c.root)
	tiers := func() []Tier {
		return []Tier{
			{Name: "ssd", Concurrency: 2, RetainFor: 3 * time.Hour},
			{Name: "hdd", Concurrency: 2, OffloadAfter: 2 * time.Hour},
			{Name: "cold", Concurrency: 2, OffloadAfter: 4 * time.Hour},
		}
	}
	deleteAfter := func(cfg *Config) { cfg.LocalDelete, cfg.LocalDeleteAfter = true, 90*time.Minute }

	// Age 1h: ssd gets everything; nothing is deleted yet.
	c.pass(tiers(), deleteAfter)
	if n := len(c.held("ssd")); n != len(sealed) || len(c.held("hdd"))+len(c.held("cold")) != 0 {
		t.Fatalf("age 1h: ssd %d, hdd %d, cold %d", n, len(c.held("hdd")), len(c.held("cold")))
	}
	if c.localLeft(sealed) != len(sealed) {
		t.Fatal("age 1h: local files deleted before delete_after")
	}
	want := map[string][]byte{}
	for _, k := range c.held("ssd") {
		want[k], _ = os.ReadFile(filepath.Join(c.tiers["ssd"].Root(), k))
	}

	// Age 1h40m: the local files go (ssd, the only required tier, holds verified copies).
	c.now = c.now.Add(40 * time.Minute)
	c.pass(tiers(), deleteAfter)
	if n := c.localLeft(sealed); n != 0 {
		t.Fatalf("age 1h40m: %d local sealed files left", n)
	}
	if c.localLeft(active) != len(active) {
		t.Fatal("an active file was deleted")
	}

	// Age 2h10m: hdd copies from ssd (the local files are gone).
	c.now = c.now.Add(30 * time.Minute)
	c.pass(tiers(), deleteAfter)
	if n := len(c.held("hdd")); n != len(sealed) {
		t.Fatalf("age 2h10m: hdd holds %d, want %d", n, len(sealed))
	}

	// Age 4h10m: ssd's copies expire (hdd holds them), and cold copies from hdd, not ssd.
	c.now = c.now.Add(2 * time.Hour)
	c.pass(tiers(), deleteAfter)
	if n := len(c.held("ssd")); n != 0 {
		t.Fatalf("age 4h10m: ssd still holds %d", n)
	}
	for _, tier := range []string{"hdd", "cold"} {
		keys := c.held(tier)
		if len(keys) != len(sealed) {
			t.Fatalf("age 4h10m: %s holds %d, want %d", tier, len(keys), len(sealed))
		}
		for _, k := range keys {
			got, _ := os.ReadFile(filepath.Join(c.tiers[tier].Root(), k))
			if !bytes.Equal(got, want[k]) {
				t.Fatalf("%s on %s differs from the first copy", k, tier)
			}
		}
	}
	// The catalog can be rebuilt from a tier's markers alone, record for record.
	var dump bytes.Buffer
	if err := c.cat.Dump(&dump); err != nil {
		t.Fatal(err)
	}
	fresh, err := catalog.Open(t.TempDir(), testNode, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	for _, tier := range []string{"hdd", "cold"} {
		if n, skipped, err := fresh.Rebuild(context.Background(), tier, c.tiers[tier]); err != nil || n != len(sealed) || len(skipped) != 0 {
			t.Fatalf("rebuild %s: %d, %v, %v", tier, n, skipped, err)
		}
	}
	var rebuilt bytes.Buffer
	fresh.Dump(&rebuilt)
	if dump.String() != rebuilt.String() {
		t.Fatalf("rebuilt catalog differs:\n%s\nvs\n%s", dump.String(), rebuilt.String())
	}
}

// TestRetention: retain_for and max_bytes remove exactly the oldest objects they should,
// and never the last copy a colder tier still wants.
func TestRetention(t *testing.T) {
	c := newChain(t, "a", "b")
	store(t, c.root) // 3 sealed: commit log 65536 B, consume queue 6000 B, IndexFile (compacted, small)
	// b is capped below the three segments' total: the oldest (by time, then key: the
	// commit log) goes; a keeps nothing past 30 minutes while local files exist.
	d1 := c.pass([]Tier{{Name: "a", Concurrency: 1, RetainFor: 30 * time.Minute}, {Name: "b", Concurrency: 1, MaxBytes: 70000}})
	d := c.pass([]Tier{{Name: "a", Concurrency: 1, RetainFor: 30 * time.Minute}, {Name: "b", Concurrency: 1, MaxBytes: 70000}})
	if got := c.held("a"); len(got) != 0 {
		t.Fatalf("a holds %v past retain_for", got)
	}
	got := c.held("b")
	if len(got) != 2 || strings.Contains(strings.Join(got, ","), "commitlog") {
		t.Fatalf("b (max 70000 B) holds %v, want everything but the commit log", got)
	}
	// The expiry may come in the pass that copied (a pass dispatches until nothing is due).
	if st, st1 := d.Status(), d1.Status(); st.Tiers[1].Expired+st1.Tiers[1].Expired != 1 {
		t.Fatalf("status counts no expiry: %+v then %+v", st1.Tiers, st.Tiers)
	}
}

// TestLastCopyKept: with the local file gone, a tier past retain_for keeps its copy
// until the colder tier that still wants it has one.
func TestLastCopyKept(t *testing.T) {
	c := newChain(t, "a", "b")
	sealed, _ := store(t, c.root)
	tiers := func() []Tier {
		return []Tier{{Name: "a", Concurrency: 1, RetainFor: time.Hour}, {Name: "b", Concurrency: 1, OffloadAfter: 3 * time.Hour}}
	}
	deleteAfter := func(cfg *Config) { cfg.LocalDelete, cfg.LocalDeleteAfter = true, 30*time.Minute }
	c.pass(tiers(), deleteAfter) // age 1h: a copies; a's retain_for has passed but the local files exist
	c.pass(tiers(), deleteAfter) // local deleted
	if c.localLeft(sealed) != 0 {
		t.Fatal("local files not deleted")
	}
	c.now = c.now.Add(time.Hour) // age 2h: a is the only copy; b wants it at 3h
	c.pass(tiers(), deleteAfter)
	if n := len(c.held("a")); n != len(sealed) {
		t.Fatalf("a dropped last copies: holds %d of %d", n, len(sealed))
	}
	c.now = c.now.Add(90 * time.Minute) // age 3h30m: b copies from a, then a may go
	c.pass(tiers(), deleteAfter)
	c.pass(tiers(), deleteAfter)
	if n, m := len(c.held("a")), len(c.held("b")); n != 0 || m != len(sealed) {
		t.Fatalf("after b copied: a %d, b %d", n, m)
	}
}

// TestDeleteLocalRefusesMismatch: a local file that no longer matches the copies is not
// deleted.
func TestDeleteLocalRefusesMismatch(t *testing.T) {
	c := newChain(t, "a")
	sealed, _ := store(t, c.root)
	c.pass([]Tier{{Name: "a", Concurrency: 1}})
	// Corrupt one local file after it was offloaded, keeping size and mtime.
	fi, _ := os.Stat(sealed[0])
	f, _ := os.OpenFile(sealed[0], os.O_WRONLY, 0)
	f.WriteAt([]byte("changed"), 100)
	f.Close()
	os.Chtimes(sealed[0], fi.ModTime(), fi.ModTime())
	d := c.daemon(func(cfg *Config) {
		cfg.Tiers = []Tier{{Name: "a", Type: "posix", Backend: c.tiers["a"], Concurrency: 1}}
		cfg.LocalDelete, cfg.LocalDeleteAfter = true, time.Minute
	})
	err := d.RunOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not deleting") {
		t.Fatalf("RunOnce = %v, want a refusal", err)
	}
	if _, err := os.Stat(sealed[0]); err != nil {
		t.Fatal("a mismatching local file was deleted")
	}
	if c.localLeft(sealed) != 1 {
		t.Fatal("the matching files should have been deleted")
	}
}

// countingPacer records how many bytes it was asked to pace.
type countingPacer struct {
	mu sync.Mutex
	n  int64
}

func (p *countingPacer) WaitN(_ context.Context, n int) error {
	p.mu.Lock()
	p.n += int64(n)
	p.mu.Unlock()
	return nil
}

// TestPacerSeesLocalReads: every byte read from the broker's disk goes through the pacer.
func TestPacerSeesLocalReads(t *testing.T) {
	e := newEnv(t)
	sealed, _ := store(t, e.root)
	p := &countingPacer{}
	if err := e.daemon(func(c *Config) { c.Pacer = p }).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range sealed {
		fi, _ := os.Stat(s)
		total += fi.Size()
	}
	if p.n < total {
		t.Fatalf("pacer saw %d bytes, the sealed files hold %d", p.n, total)
	}
	_ = segment.Key("")
}

// TestDeleteAfterZero: local.delete_after 0s deletes a sealed file as soon as the tiers
// that must hold it have verified copies (here in the same pass that offloads it), and
// never an active file; without LocalDelete nothing is deleted.
func TestDeleteAfterZero(t *testing.T) {
	c := newChain(t, "hdd")
	sealed, active := store(t, c.root)
	tiers := func() []Tier { return []Tier{{Name: "hdd", Concurrency: 2}} }

	c.pass(tiers())
	if n := c.localLeft(sealed); n != len(sealed) {
		t.Fatalf("LocalDelete off: %d of %d sealed files left", n, len(sealed))
	}
	c.pass(tiers(), func(cfg *Config) { cfg.LocalDelete, cfg.LocalDeleteAfter = true, 0 })
	if n := c.localLeft(sealed); n != 0 {
		t.Fatalf("delete_after 0s: %d sealed files left after a pass", n)
	}
	if c.localLeft(active) != len(active) {
		t.Fatal("an active file was deleted")
	}
	if n := len(c.held("hdd")); n != len(sealed) {
		t.Fatalf("hdd holds %d objects, want %d", n, len(sealed))
	}
}

// TestCleanerRewriteMakesAVersion replays Kafka's log cleaner on an offloaded segment:
// the .log is replaced under the same name by a shorter one with the same mtime (the
// cleaner keeps the last cleaned segment's mtime). The next pass offloads it as version 2
// under its own key beside version 1; version 1 expires superseded_retain_for after the
// tier holds version 2, and not before.
func TestCleanerRewriteMakesAVersion(t *testing.T) {
	c := newChain(t, "hdd")
	old := time.Now().Add(-time.Hour)
	write := func(rel string, data []byte) string { return c.writeAt(rel, data, old) }
	v1 := bytes.Repeat([]byte("offsets-commit"), 200)
	v2 := []byte("the cleaner kept one record")
	write("__consumer_offsets-12/00000000000000000000.log", v1)
	write("__consumer_offsets-12/00000000000000000862.log", make([]byte, 50))
	kafka := kafkaSource(t)
	tiers := func() []Tier { return []Tier{{Name: "hdd", Concurrency: 2, SupersededRetainFor: time.Hour}} }
	key1 := testNode + "/" + testSrc + "/__consumer_offsets-12/00000000000000000000.log"
	c.pass(tiers(), kafka)
	if got := strings.Join(c.held("hdd"), " "); got != key1 {
		t.Fatalf("first pass: hdd holds %s", got)
	}

	write("__consumer_offsets-12/00000000000000000000.log", v2) // same name, same mtime
	c.pass(tiers(), kafka)
	if got, want := strings.Join(c.held("hdd"), " "), key1+" "+key1+"@v2"; got != want {
		t.Fatalf("after the rewrite: hdd holds %s, want %s", got, want)
	}
	for key, want := range map[string][]byte{key1: v1, key1 + "@v2": v2} {
		got, err := os.ReadFile(filepath.Join(c.tiers["hdd"].Root(), key))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, %v; want the version's %d bytes", key, len(got), err, len(want))
		}
	}
	rec, err := c.cat.Get("hdd", segment.Key(key1+"@v2"))
	if err != nil || rec.Version != 2 || rec.LocalSize != int64(len(v2)) {
		t.Fatalf("version 2 record: %+v, %v", rec, err)
	}

	c.now = c.now.Add(59 * time.Minute) // superseded_retain_for has not passed
	c.pass(tiers(), kafka)
	if n := len(c.held("hdd")); n != 2 {
		t.Fatalf("before superseded_retain_for: hdd holds %d objects, want both versions", n)
	}
	c.now = c.now.Add(2 * time.Minute)
	c.pass(tiers(), kafka)
	if got := strings.Join(c.held("hdd"), " "); got != key1+"@v2" {
		t.Fatalf("after superseded_retain_for: hdd holds %s, want only v2", got)
	}
	// Nothing more to do: the local file is the tier's newest version.
	c.pass(tiers(), kafka)
	if got := strings.Join(c.held("hdd"), " "); got != key1+"@v2" {
		t.Fatalf("a further pass changed hdd: %s", got)
	}
}

// TestKafkaGroupDeletedAllOrNone: a Kafka segment's files (.log, .index, .timeindex,
// .snapshot) are deleted locally together, and not at all while one of them differs
// from its copies (docs/DESIGN.md invariant 11).
func TestKafkaGroupDeletedAllOrNone(t *testing.T) {
	c := newChain(t, "hdd")
	old := time.Now().Add(-time.Hour)
	write := func(rel string, data []byte) string { return c.writeAt(rel, data, old) }
	logData := bytes.Repeat([]byte("kafka-batch!"), 100)
	group := []string{
		write("t-0/00000000000000000000.log", logData),
		write("t-0/00000000000000000000.index", make([]byte, 16)),
		write("t-0/00000000000000000000.timeindex", make([]byte, 24)),
		write("t-0/00000000000000000000.snapshot", make([]byte, 10)),
	}
	active := write("t-0/00000000000000000100.log", make([]byte, 50))
	kafka := kafkaSource(t)
	tiers := func() []Tier { return []Tier{{Name: "hdd", Concurrency: 2}} }
	c.pass(tiers(), kafka)
	if n := len(c.held("hdd")); n != len(group) {
		t.Fatalf("hdd holds %d objects, want %d", n, len(group))
	}

	// The .log changes in place (same size and mtime): nothing of the group is deleted.
	bad := bytes.Clone(logData)
	bad[7] ^= 0xff
	if err := os.WriteFile(group[0], bad, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(group[0], old, old)
	deleteNow := func(cfg *Config) { cfg.LocalDelete, cfg.LocalDeleteAfter = true, 0 }
	d := c.daemon(func(cfg *Config) {
		cfg.Tiers = tiers()
		cfg.Tiers[0].Backend, cfg.Tiers[0].Type = c.tiers["hdd"], "posix"
		cfg.Now = func() time.Time { return c.now }
	}, kafka, deleteNow)
	err := d.RunOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not deleting any file of segment t-0/00000000000000000000") {
		t.Fatalf("pass with a changed .log: %v", err)
	}
	if n := c.localLeft(group); n != len(group) {
		t.Fatalf("a changed .log: %d of the group's %d files left, want all", n, len(group))
	}

	// Back to what the tier holds: the whole group goes, the active segment stays.
	write("t-0/00000000000000000000.log", logData)
	c.pass(tiers(), kafka, deleteNow)
	if n := c.localLeft(group); n != 0 {
		t.Fatalf("%d of the group's files left, want none", n)
	}
	if c.localLeft([]string{active}) != 1 {
		t.Fatal("the active segment was deleted")
	}
}

// writeAt writes a file of the source at rel with the given mtime and returns its path.
func (c *chain) writeAt(rel string, data []byte, mtime time.Time) string {
	c.t.Helper()
	p := filepath.Join(c.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// kafkaSource makes the daemon's source a Kafka log.dir.
func kafkaSource(t *testing.T) func(*Config) {
	return func(cfg *Config) {
		l, err := source.NewLayout(source.LayoutKafka, source.LayoutOptions{Source: testSrc})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Sources[0].Layout = l
	}
}
