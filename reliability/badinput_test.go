package reliability

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/devtools/brokersim"
	"github.com/tierd/tierd/index"
)

// badInput is one file a test puts into a broker directory.
type badInput struct {
	what     string
	source   string // "src" (RocketMQ) or "kaf" (Kafka)
	rel      string // path in the source, slash-separated
	make     func() error
	verbatim bool // tierd cannot tell it from a real segment: it must be stored byte for byte
}

// TestBadInput puts truncated, empty, wrong-size, random and looping files named like
// segments into a RocketMQ store and a Kafka log dir, then runs the daemon: each bad file
// gets one clear log line (not one per scan or retry) and stays off the tiers, every good
// segment is offloaded, the daemon keeps running and stops cleanly, and the tiers pass
// every check.
func TestBadInput(t *testing.T) {
	s := seed(t)
	rng := rand.New(rand.NewPCG(s, 0xbad))
	ctx := context.Background()
	kafkaDir := filepath.Join(t.TempDir(), "kafka")
	w := newWorld(t, nil, worldConf{
		name:         "bad",
		tiers:        []tierConf{{name: "hdd", yaml: "write_mode: buffered"}},
		retry:        "{initial: 50ms, max: 200ms}", // a skip logged per retry would show many times
		sources:      fmt.Sprintf("  - {name: kaf, layout: kafka, path: %s, seal_grace: 300ms}\n", kafkaDir),
		otherSources: map[string]string{"kaf": kafkaDir},
	})
	w.startBroker(s, 4000, 0)
	if _, err := brokersim.Kafka(ctx, brokersim.KafkaOptions{
		Dir: kafkaDir, Topics: 1, Partitions: 1, Records: 3000, SegmentBytes: 64 << 10, RecordSize: 100,
		MaxIndexSize: 8 << 10, Seed: s,
	}); err != nil {
		t.Fatal(err)
	}
	sealedByDir := func(root, dir, suffix string) []string {
		var out []string
		entries, _ := os.ReadDir(filepath.Join(root, dir))
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), suffix) {
				out = append(out, dir+"/"+e.Name())
			}
		}
		slices.Sort(out)
		return out[:len(out)-1]
	}
	commitLogs := sealedByDir(w.store, "commitlog", "")
	queue := sealedByDir(w.store, "consumequeue/SimTopic0/0", "")
	indexes := sealedByDir(w.store, "index", "")
	kIndexes := sealedByDir(kafkaDir, "sim-topic-0-0", ".index")
	kTimes := sealedByDir(kafkaDir, "sim-topic-0-0", ".timeindex")
	if len(commitLogs) < 3 || len(queue) < 2 || len(indexes) < 4 || len(kIndexes) < 3 {
		t.Fatalf("store too small: %d commit logs, %d queue files, %d IndexFiles, %d Kafka segments", len(commitLogs), len(queue), len(indexes), len(kIndexes))
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	// patch rewrites bytes of a file in place.
	patch := func(rel string, root string, off int64, b []byte) error {
		f, err := os.OpenFile(filepath.Join(root, filepath.FromSlash(rel)), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteAt(b, off)
		return err
	}
	item := func(n int) int64 {
		return index.IndexHeaderSize + indexSlots*index.IndexSlotSize + int64(n)*index.IndexItemSize
	}
	be := binary.BigEndian
	var inputs []badInput
	add := func(in badInput) { inputs = append(inputs, in) }
	add(badInput{what: "truncated commit-log file", source: "src", rel: commitLogs[0], make: func() error {
		return os.Truncate(filepath.Join(w.store, commitLogs[0]), commitLogSize/2)
	}})
	add(badInput{what: "zero-length consume-queue file", source: "src", rel: queue[0], make: func() error {
		return os.Truncate(filepath.Join(w.store, queue[0]), 0)
	}})
	add(badInput{what: "wrong-size IndexFile of random bytes", source: "src", rel: "index/20000101000000000", make: func() error {
		return os.WriteFile(filepath.Join(w.store, "index/20000101000000000"), random(1000), 0o644)
	}})
	add(badInput{what: "IndexFile of random bytes, right size", source: "src", rel: indexes[0], make: func() error {
		return os.WriteFile(filepath.Join(w.store, indexes[0]), random(int(index.IndexFileSize(indexSlots, indexItems))), 0o644)
	}})
	add(badInput{what: "IndexFile whose chain loops (item 5 links to item 9)", source: "src", rel: indexes[1], make: func() error {
		return patch(indexes[1], w.store, item(5)+16, be.AppendUint32(nil, 9))
	}})
	add(badInput{what: "IndexFile whose chain loops on itself (item 7 links to item 7)", source: "src", rel: indexes[2], make: func() error {
		return patch(indexes[2], w.store, item(7)+16, be.AppendUint32(nil, 7))
	}})
	add(badInput{what: "IndexFile whose slot points past the last item", source: "src", rel: indexes[3], make: func() error {
		return patch(indexes[3], w.store, index.IndexHeaderSize+3*index.IndexSlotSize, be.AppendUint32(nil, indexItems+100))
	}})
	add(badInput{what: "IndexFile name in the commit-log directory", source: "src", rel: "commitlog/20000101000000000", make: func() error {
		return os.WriteFile(filepath.Join(w.store, "commitlog/20000101000000000"), random(commitLogSize), 0o644)
	}})
	add(badInput{what: "directory named like an IndexFile", source: "src", rel: "index/20000101000000001", make: func() error {
		return os.Mkdir(filepath.Join(w.store, "index/20000101000000001"), 0o755)
	}})
	add(badInput{what: "symlink named like a consume-queue file, to /etc/passwd", source: "src", rel: "consumequeue/SimTopic0/1/99999999999999999999", make: func() error {
		return os.Symlink("/etc/passwd", filepath.Join(w.store, "consumequeue/SimTopic0/1/99999999999999999999"))
	}})
	add(badInput{what: "Kafka offset index with decreasing offsets", source: "kaf", rel: kIndexes[0], make: func() error {
		return patch(kIndexes[0], kafkaDir, 0, slices.Concat(be.AppendUint32(nil, 100), be.AppendUint32(nil, 0), be.AppendUint32(nil, 50), be.AppendUint32(nil, 10)))
	}})
	add(badInput{what: "Kafka time index of random bytes", source: "kaf", rel: kTimes[1], make: func() error {
		fi, err := os.Stat(filepath.Join(kafkaDir, kTimes[1]))
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(kafkaDir, kTimes[1]), random(int(fi.Size())), 0o644)
	}})
	add(badInput{what: "Kafka offset index of a size that is no whole number of entries", source: "kaf", rel: kIndexes[2], make: func() error {
		return os.Truncate(filepath.Join(kafkaDir, kIndexes[2]), 8*5+3)
	}})
	add(badInput{what: "consume queue of random bytes, right size (stored verbatim)", source: "src", rel: "consumequeue/SimTopic0/7/00000000000000000000", verbatim: true, make: func() error {
		dir := filepath.Join(w.store, "consumequeue/SimTopic0/7")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "00000000000000000000"), random(cqSize), 0o644); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "00000000000000006000"), random(cqSize), 0o644) // a newer file: the first is sealed
	}})
	for _, in := range inputs {
		if err := in.make(); err != nil {
			t.Fatalf("%s: %v", in.what, err)
		}
	}
	tally.add(func(c *counts) { c.badInputs += len(inputs) })
	// Every file is old enough to be sealed at the first scans.
	old := time.Now().Add(-time.Minute)
	for _, root := range []string{w.store, kafkaDir} {
		_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				_ = os.Chtimes(p, old, old)
			}
			return nil
		})
	}

	p := w.start("daemon")
	// Run until nothing new has been offloaded for 2 s (good segments done, bad ones
	// retried several times over).
	log := settle(t, w, p, 2*time.Second)
	recs := w.records()
	held := map[string]bool{}
	for _, r := range recs {
		held[r.Source+":"+r.Rel] = true
	}
	lines := strings.Split(log, "\n")
	for _, in := range inputs {
		var about []string
		for _, l := range lines {
			if strings.Contains(l, in.rel) && (strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`)) {
				about = append(about, l)
			}
		}
		switch {
		case in.verbatim:
			if !held[in.source+":"+in.rel] || len(about) > 0 {
				t.Errorf("%s (%s): offloaded %t, %d warnings; want it stored verbatim:\n%s", in.what, in.rel, held[in.source+":"+in.rel], len(about), strings.Join(about, "\n"))
			}
		case held[in.source+":"+in.rel]:
			t.Errorf("%s (%s) was offloaded", in.what, in.rel)
		case len(about) != 1:
			t.Errorf("%s (%s): %d warnings, want exactly one clear line:\n%s", in.what, in.rel, len(about), strings.Join(about, "\n"))
		default:
			t.Logf("%s: %s", in.what, about[0])
		}
	}
	// Every good sealed segment is on the tier: the RocketMQ ones the harness saw sealed
	// (less the newest commit-log file but one, which tierd leaves to the broker), and
	// every Kafka segment with a newer one.
	bad := map[string]bool{}
	for _, in := range inputs {
		bad[in.source+":"+in.rel] = true
	}
	want := []string{}
	for rel := range w.sealed.all() {
		if rel != commitLogs[len(commitLogs)-1] {
			want = append(want, "src:"+rel)
		}
	}
	for _, rel := range slices.Concat(sealedByDir(kafkaDir, "sim-topic-0-0", ".log"), kIndexes, kTimes) {
		want = append(want, "kaf:"+rel)
	}
	for _, k := range want {
		if !bad[k] && !held[k] {
			t.Errorf("good segment %s was not offloaded", k)
		}
	}
	w.checkStopped(ctx)
}

// TestSegmentDestroyedWhileRead plays a broker that deletes one segment and truncates
// another while tierd is copying them (to a rate-limited tier, so that each copy takes
// about a second): the deleted one is either copied whole from the still-open file or
// skipped, the truncated one is skipped with a clear log line and nothing of it is
// recorded; the daemon keeps running and every check passes.
func TestSegmentDestroyedWhileRead(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	w := newWorld(t, nil, worldConf{
		name:    "destroy",
		tiers:   []tierConf{{name: "hdd", yaml: "write_mode: buffered, rate_limit: 256KiB/s, concurrency: 1"}},
		memory:  "{buffer_pool: 128KiB, buffer_size: 64KiB}", // a 256 KiB file is read in 4 chunks
		workers: 1,
	})
	w.startBroker(s, 3000, 0)
	w.ageSealed(t, 1, time.Minute)
	p := w.start("daemon")
	// reading returns the commit-log file tierd has open now, if any.
	fdDir := fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid)
	reading := func() string {
		entries, _ := os.ReadDir(fdDir)
		for _, e := range entries {
			target, err := os.Readlink(filepath.Join(fdDir, e.Name()))
			if err == nil && strings.HasPrefix(target, filepath.Join(w.store, "commitlog")+"/") {
				return strings.TrimSuffix(target, " (deleted)")
			}
		}
		return ""
	}
	destroy := func(what string, do func(path string) error) string {
		t.Helper()
		var victim string
		if !p.waitFor(30*time.Second, func() bool {
			victim = reading()
			_, err := os.Stat(victim)
			return victim != "" && err == nil
		}) {
			t.Fatalf("tierd never read a commit-log file:\n%s", p.tail())
		}
		if err := do(victim); err != nil {
			t.Fatal(err)
		}
		if !p.waitFor(30*time.Second, func() bool { return reading() != victim }) {
			t.Fatalf("tierd kept %s open", victim)
		}
		rel, _ := filepath.Rel(w.store, victim)
		t.Logf("%s %s while tierd read it", what, rel)
		return filepath.ToSlash(rel)
	}
	deleted := destroy("deleted", os.Remove)
	w.brokerDeleted[deleted] = true
	truncated := destroy("truncated", func(path string) error { return os.Truncate(path, commitLogSize/3) })
	tally.add(func(c *counts) { c.badInputs += 2 })
	// Let the daemon finish the rest of the store.
	log := settle(t, w, p, 3*time.Second)
	warnings := func(rel string) []string {
		var out []string
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, rel) && (strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`)) {
				out = append(out, l)
			}
		}
		return out
	}
	recs := w.checkStopped(ctx)
	held := map[string]bool{}
	for _, r := range recs {
		held[r.Rel] = true
	}
	if n := len(warnings(deleted)); !held[deleted] && n != 1 {
		t.Errorf("deleted %s: not offloaded, and %d warnings about it (want one):\n%s", deleted, n, strings.Join(warnings(deleted), "\n"))
	}
	if held[truncated] {
		t.Logf("truncated %s: its copy was complete before the truncation (checked against what was sealed)", truncated)
	} else if n := len(warnings(truncated)); n < 1 || n > 2 {
		t.Errorf("truncated %s: %d warnings, want the skipped copy and the changed file, each once:\n%s", truncated, n, strings.Join(warnings(truncated), "\n"))
	}
	for _, l := range warnings(truncated) {
		t.Logf("truncated: %s", l)
	}
	for rel := range w.sealed.all() {
		if !held[rel] && rel != deleted && rel != truncated && strings.HasPrefix(rel, "consumequeue/") {
			t.Errorf("good segment %s was not offloaded", rel)
		}
	}
}

// settle lets the daemon p run until it has offloaded something and then nothing more
// for quiet (at most a minute), checks it is healthy, stops it with SIGTERM (exit 0) and
// returns its log.
func settle(t *testing.T, w *world, p *proc, quiet time.Duration) string {
	t.Helper()
	last, lastChange := -1, time.Now()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if p.exited() {
			t.Fatalf("tierd exited (%v):\n%s", p.cmd.ProcessState, p.tail())
		}
		if n := strings.Count(p.log(), `"msg":"offloaded"`); n != last {
			last, lastChange = n, time.Now()
		} else if n > 0 && time.Since(lastChange) > quiet {
			break
		}
	}
	if code, _ := httpGet(w.addr, "/healthz"); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	log := p.log()
	if code := p.term(30 * time.Second); code != 0 {
		t.Fatalf("tierd exited %d after SIGTERM:\n%s", code, p.tail())
	}
	return log
}
