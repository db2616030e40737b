package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierd/tierd/segment"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// file makes a candidate of a one-sequence scan result under /r.
func file(name string, closed bool, size int64, mtime time.Time) Candidate {
	why := "active: newest file of the sequence"
	if closed {
		why = "newer file exists"
	}
	return Candidate{Segment: segment.Segment{
		Source: "s", Kind: segment.KindConsumeQueue, Path: "/r/q/" + name, Rel: "q/" + name, Seq: "q",
		Size: size, ModTime: mtime,
	}, Closed: closed, Why: why}
}

func scanOf(root string, files ...Candidate) ScanResult {
	res := ScanResult{Source: "s", Root: root}
	if len(files) > 0 {
		res.Sequences = []Sequence{{Name: "q", Files: files}}
	}
	return res
}

// step is one Observe call and what it must return: the names of the sealed files and,
// for each pending file, a part of its reason.
type step struct {
	now     time.Time
	files   []Candidate
	sealed  []string
	pending map[string]string
}

func runSteps(t *testing.T, grace time.Duration, steps ...step) {
	t.Helper()
	s, err := NewSealer(grace)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range steps {
		sealed, pending := s.Observe(scanOf("/r", st.files...), st.now)
		var names []string
		for _, seg := range sealed {
			names = append(names, filepath.Base(seg.Path))
		}
		if !slices.Equal(names, st.sealed) {
			t.Fatalf("step %d: sealed %q, want %q (pending %+v)", i+1, names, st.sealed, pending)
		}
		if len(pending) != len(st.pending) {
			t.Fatalf("step %d: pending %+v, want %v", i+1, pending, st.pending)
		}
		for _, p := range pending {
			want, ok := st.pending[filepath.Base(p.Path)]
			if !ok || !strings.Contains(p.Why, want) {
				t.Fatalf("step %d: %s pending because %q, want %q", i+1, p.Path, p.Why, want)
			}
		}
		if len(sealed)+len(pending) != len(st.files) {
			t.Fatalf("step %d: %d sealed + %d pending of %d files", i+1, len(sealed), len(pending), len(st.files))
		}
	}
}

func TestSealer(t *testing.T) {
	old := t0.Add(-time.Hour)
	const first = "first seen"

	t.Run("StableTwice", func(t *testing.T) {
		runSteps(t, 30*time.Second,
			step{t0, []Candidate{file("a", true, 10, old)}, nil, map[string]string{"a": first}},
			step{t0.Add(time.Second), []Candidate{file("a", true, 10, old)}, []string{"a"}, nil},
			// Sealed files are returned at every scan, not only once.
			step{t0.Add(2 * time.Second), []Candidate{file("a", true, 10, old)}, []string{"a"}, nil},
		)
	})
	t.Run("SizeChangeResets", func(t *testing.T) {
		runSteps(t, 0,
			step{t0, []Candidate{file("a", true, 10, old)}, nil, map[string]string{"a": first}},
			step{t0, []Candidate{file("a", true, 11, old)}, nil, map[string]string{"a": "size changed since the last scan (10 -> 11 bytes)"}},
			// Compared with the previous scan only: going back is a change too.
			step{t0, []Candidate{file("a", true, 10, old)}, nil, map[string]string{"a": "size changed since the last scan (11 -> 10 bytes)"}},
			step{t0, []Candidate{file("a", true, 10, old)}, []string{"a"}, nil},
		)
	})
	t.Run("MtimeChangeResets", func(t *testing.T) {
		runSteps(t, 0,
			step{t0, []Candidate{file("a", true, 10, old)}, nil, map[string]string{"a": first}},
			step{t0, []Candidate{file("a", true, 10, old.Add(time.Nanosecond))}, nil, map[string]string{"a": "modified since the last scan"}},
			step{t0, []Candidate{file("a", true, 10, old.Add(time.Nanosecond))}, []string{"a"}, nil},
		)
	})
	t.Run("GraceNotElapsed", func(t *testing.T) {
		m := t0.Add(-10 * time.Second)
		runSteps(t, 30*time.Second,
			step{t0, []Candidate{file("a", true, 10, m)}, nil, map[string]string{"a": first}},
			step{t0.Add(5 * time.Second), []Candidate{file("a", true, 10, m)}, nil, map[string]string{"a": "modified 15s ago, less than seal_grace 30s"}},
			step{m.Add(30*time.Second - time.Nanosecond), []Candidate{file("a", true, 10, m)}, nil, map[string]string{"a": "less than seal_grace"}},
			step{m.Add(30 * time.Second), []Candidate{file("a", true, 10, m)}, []string{"a"}, nil},
		)
	})
	t.Run("NewerSiblingAppearsLater", func(t *testing.T) {
		runSteps(t, time.Minute,
			step{t0, []Candidate{file("a", false, 10, old)}, nil, map[string]string{"a": "active: newest file"}},
			step{t0, []Candidate{file("a", false, 10, old)}, nil, map[string]string{"a": "active: newest file"}},
			// b appears: a is closed, and unchanged since the last scan.
			step{t0, []Candidate{file("a", true, 10, old), file("b", false, 10, t0)}, []string{"a"},
				map[string]string{"b": "active: newest file"}},
		)
	})
	t.Run("ActiveNeverSealed", func(t *testing.T) {
		var steps []step
		for i := range 5 {
			steps = append(steps, step{t0.Add(time.Duration(i) * time.Hour), []Candidate{file("a", false, 10, old)}, nil,
				map[string]string{"a": "active"}})
		}
		runSteps(t, 0, steps...)
		c := file("a", false, 10, old)
		c.Why = ""
		runSteps(t, 0,
			step{t0, []Candidate{c}, nil, map[string]string{"a": "not closed"}},
			step{t0, []Candidate{c}, nil, map[string]string{"a": "not closed"}},
		)
	})
	t.Run("ForgetsVanishedPaths", func(t *testing.T) {
		runSteps(t, 0,
			step{t0, []Candidate{file("a", true, 10, old), file("b", true, 10, old)}, nil,
				map[string]string{"a": first, "b": first}},
			step{t0, []Candidate{file("b", true, 10, old)}, []string{"b"}, nil},
			// a is back with the same size and mtime, but it was forgotten.
			step{t0, []Candidate{file("a", true, 10, old), file("b", true, 10, old)}, []string{"b"},
				map[string]string{"a": first}},
		)
	})
	t.Run("FutureMtime", func(t *testing.T) {
		runSteps(t, 0,
			step{t0, []Candidate{file("a", true, 10, t0.Add(time.Minute))}, nil, map[string]string{"a": "in the future"}},
			step{t0, []Candidate{file("a", true, 10, t0.Add(time.Minute))}, nil, map[string]string{"a": "in the future"}},
			step{t0.Add(time.Minute), []Candidate{file("a", true, 10, t0.Add(time.Minute))}, []string{"a"}, nil},
		)
	})
}

func TestSealerRootsAreIndependent(t *testing.T) {
	s, err := NewSealer(0)
	if err != nil {
		t.Fatal(err)
	}
	old := t0.Add(-time.Hour)
	a := file("a", true, 10, old)
	b := file("a", true, 10, old)
	b.Path = "/other/q/a"
	s.Observe(scanOf("/r", a), t0)
	s.Observe(scanOf("/other", b), t0) // must not forget /r's observations
	sealed, _ := s.Observe(scanOf("/r", a), t0)
	if len(sealed) != 1 || !reflect.DeepEqual(sealed[0], a.Segment) {
		t.Fatalf("sealed %+v, want %+v", sealed, a.Segment)
	}
	// An empty scan forgets everything of its root.
	s.Observe(scanOf("/r"), t0)
	if sealed, _ := s.Observe(scanOf("/r", a), t0); len(sealed) != 0 {
		t.Fatalf("sealed %+v after the root was seen empty", sealed)
	}
	if sealed, _ := s.Observe(scanOf("/other", b), t0); len(sealed) != 1 {
		t.Fatalf("/other: sealed %+v", sealed)
	}
}

func TestSealerMemoryBounded(t *testing.T) {
	s, err := NewSealer(0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		s.Observe(scanOf("/r", file(fmt.Sprint(i), true, 1, t0)), t0)
	}
	if n := len(s.seen["/r"]); n != 1 {
		t.Fatalf("%d observations kept, want 1", n)
	}
}

func TestNewSealerNegativeGrace(t *testing.T) {
	if s, err := NewSealer(-time.Second); err == nil {
		t.Fatalf("NewSealer(-1s) = %v, want an error", s)
	}
}

func TestSealerConcurrent(t *testing.T) {
	s, err := NewSealer(0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			root := fmt.Sprintf("/r%d", g)
			c := file("a", true, 1, t0)
			c.Path = root + "/q/a"
			for i := range 50 {
				sealed, _ := s.Observe(scanOf(root, c), t0)
				if (i > 0) != (len(sealed) == 1) {
					t.Errorf("%s scan %d: sealed %v", root, i, sealed)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestSealerOnRocketMQ drives the Sealer with real scans of a store whose files change
// between scans.
func TestSealerOnRocketMQ(t *testing.T) {
	spec := treeSpec{opts: LayoutOptions{Source: "rmq", ConsumeQueueFileSize: 6000}, lines: []string{
		"x: file consumequeue/T/0/00000000000000000000 6000",
		"x: file consumequeue/T/0/00000000000000006000 6000",
		"x: file consumequeue/T/0/00000000000000012000 6000",
	}}
	root := spec.build(t)
	l, err := NewLayout(LayoutRocketMQ, spec.opts)
	if err != nil {
		t.Fatal(err)
	}
	const grace = 30 * time.Second
	s, err := NewSealer(grace)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old := now.Add(-time.Hour)
	path := func(off int64) string { return filepath.Join(root, "consumequeue", "T", "0", offsetName(off)) }
	touch := func(off int64, mtime time.Time) {
		t.Helper()
		if err := os.Chtimes(path(off), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	for _, off := range []int64{0, 6000, 12000} {
		touch(off, old)
	}
	observe := func(wantSealed []int64, wantPending map[int64]string) {
		t.Helper()
		res, err := l.Scan(context.Background(), root)
		if err != nil {
			t.Fatal(err)
		}
		sealed, pending := s.Observe(res, now)
		var got []int64
		for _, seg := range sealed {
			got = append(got, offsetOf(t, seg.Path))
		}
		if !slices.Equal(got, wantSealed) {
			t.Fatalf("sealed %v, want %v; pending %+v", got, wantSealed, pending)
		}
		if len(pending) != len(wantPending) {
			t.Fatalf("pending %+v, want %v", pending, wantPending)
		}
		for _, p := range pending {
			if want, ok := wantPending[offsetOf(t, p.Path)]; !ok || !strings.Contains(p.Why, want) {
				t.Fatalf("%s pending because %q, want %q", p.Path, p.Why, want)
			}
		}
	}
	observe(nil, map[int64]string{0: "first seen", 6000: "first seen", 12000: "active"})
	observe([]int64{0, 6000}, map[int64]string{12000: "active"})

	// Someone writes into a closed file: it goes back to pending until it is stable
	// again and older than the grace.
	touch(0, now.Add(-time.Second))
	observe([]int64{6000}, map[int64]string{0: "modified since the last scan", 12000: "active"})
	observe([]int64{6000}, map[int64]string{0: "less than seal_grace", 12000: "active"})

	// The queue rolls: 12000 is closed, and was already stable while active.
	writeSparse(t, path(18000), 6000, -1)
	now = now.Add(grace)
	observe([]int64{0, 6000, 12000}, map[int64]string{18000: "active"})
}

func offsetOf(t *testing.T, path string) int64 {
	t.Helper()
	off, err := strconv.ParseInt(filepath.Base(path), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return off
}
