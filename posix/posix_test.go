package posix

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
)

func testPool(t *testing.T) *bufpool.Pool {
	t.Helper()
	// Small buffers keep the suite fast while still crossing every buffer boundary.
	p, err := bufpool.New(bufpool.Config{Budget: 4 * 64 << 10, BufferSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestConformance(t *testing.T) {
	dirs := map[string]func(t *testing.T) string{
		"disk": func(t *testing.T) string { return t.TempDir() },
		"shm": func(t *testing.T) string {
			d, err := os.MkdirTemp("/dev/shm", "tierd-posix-")
			if err != nil {
				t.Skip("no /dev/shm:", err)
			}
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		},
	}
	for _, mode := range []Mode{Direct, Mmap, Buffered} {
		for fsName, dir := range dirs {
			t.Run(string(mode)+"/"+fsName, func(t *testing.T) {
				pool := testPool(t)
				segmenttest.Run(t, segmenttest.Harness{
					Pool: pool,
					New: func(t *testing.T) segment.Backend {
						b, err := New(Config{Path: dir(t), WriteMode: mode, Window: 128 << 10}, zap.NewNop())
						if err != nil {
							t.Fatal(err)
						}
						return b
					},
				})
			})
		}
	}
}

// TestNamedTempFallback runs the suite with O_TMPFILE disabled, as on filesystems that
// lack it: writers then use hidden temp names.
func TestNamedTempFallback(t *testing.T) {
	pool := testPool(t)
	segmenttest.Run(t, segmenttest.Harness{
		Pool: pool,
		New: func(t *testing.T) segment.Backend {
			b, err := New(Config{Path: t.TempDir(), WriteMode: Buffered}, nil)
			if err != nil {
				t.Fatal(err)
			}
			b.tmpfile = false
			return b
		},
	})
}

// TestDirectFallback: where O_DIRECT is refused, the tier warns once and writes buffered.
// The kernel here (6.6+) accepts O_DIRECT on tmpfs, so the refusal is injected as well
// as tried for real on /dev/shm.
func TestDirectFallback(t *testing.T) {
	f := func(t *testing.T, dir string, refuse bool) {
		t.Helper()
		if refuse {
			orig := probeDirect
			probeDirect = func(string, bool) error { return unix.EINVAL }
			t.Cleanup(func() { probeDirect = orig })
		}
		core, logs := observer.New(zapcore.InfoLevel)
		b, err := New(Config{Path: dir, WriteMode: Direct}, zap.New(core))
		if err != nil {
			t.Fatal(err)
		}
		warned := logs.FilterMessageSnippet("O_DIRECT").Len()
		if refuse && (b.Mode() != Buffered || warned != 1) {
			t.Fatalf("mode %s, %d warnings; want buffered and one warning", b.Mode(), warned)
		}
		if !refuse && (b.Mode() == Direct) == (warned == 1) {
			t.Fatalf("mode %s with %d warnings", b.Mode(), warned)
		}
		ctx := context.Background()
		data := segmenttest.Data(1, 100000)
		w, err := b.Create(ctx, "a/b", int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "a/b"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back: %v", err)
		}
		t.Logf("mode in effect: %s", b.Mode())
	}
	t.Run("injected", func(t *testing.T) { f(t, t.TempDir(), true) })
	t.Run("shm", func(t *testing.T) {
		d, err := os.MkdirTemp("/dev/shm", "tierd-direct-")
		if err != nil {
			t.Skip(err)
		}
		defer os.RemoveAll(d)
		f(t, d, false)
	})
}

// TestNoOrphansOnAbort: an aborted writer leaves no file at all in the directory.
func TestNoOrphansOnAbort(t *testing.T) {
	for _, tmpfile := range []bool{true, false} {
		dir := t.TempDir()
		b, err := New(Config{Path: dir, WriteMode: Direct}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.tmpfile = tmpfile
		w, err := b.Create(context.Background(), "x/y", 10000)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(make([]byte, 5000)); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		ents, _ := os.ReadDir(filepath.Join(dir, "x"))
		if len(ents) != 0 {
			t.Fatalf("tmpfile=%v: %d entries left after Abort", tmpfile, len(ents))
		}
	}
}

func TestCleanTemp(t *testing.T) {
	dir := t.TempDir()
	b, err := New(Config{Path: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "a", tmpPrefix+"old")
	fresh := filepath.Join(dir, "a", tmpPrefix+"fresh")
	keep := filepath.Join(dir, "a", "object")
	os.MkdirAll(filepath.Dir(old), 0o755)
	for _, p := range []string{old, fresh, keep} {
		os.WriteFile(p, []byte("x"), 0o644)
	}
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, past, past)
	os.Chtimes(keep, past, past)
	n, err := b.CleanTemp(context.Background(), time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("CleanTemp = %d, %v; want 1", n, err)
	}
	for p, want := range map[string]bool{old: false, fresh: true, keep: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", p, err == nil, want)
		}
	}
	if _, err := b.Create(context.Background(), segment.Key("a/"+tmpPrefix+"x"), 1); err == nil {
		t.Fatal("a key using the temp prefix was accepted")
	}
}

// TestMappedReaderCloseRace closes and deletes mapped objects while many goroutines read
// them: every read returns the right bytes or an error; nothing faults.
func TestMappedReaderCloseRace(t *testing.T) {
	b, err := New(Config{Path: t.TempDir(), WriteMode: Mmap, Window: 64 << 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := segmenttest.Data(4, 1<<20)
	for round := range 20 {
		key := segment.Key("race/obj")
		w, err := b.Create(ctx, key, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		r, err := b.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := make([]byte, 4096)
				for i := range 200 {
					off := int64((g*7919 + i*104729) % (len(data) - len(p)))
					n, err := r.ReadAt(p, off)
					if err != nil {
						if !errors.Is(err, fs.ErrClosed) {
							t.Errorf("round %d: ReadAt: %v", round, err)
						}
						return
					}
					if !bytes.Equal(p[:n], data[off:off+int64(n)]) {
						t.Errorf("round %d: wrong bytes at %d", round, off)
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(round%4) * time.Millisecond)
		b.Delete(ctx, key)
		r.Close()
		wg.Wait()
	}
}

// TestMappedReaderTruncated: a file truncated under a mapped reader gives an error, not
// a SIGBUS.
func TestMappedReaderTruncated(t *testing.T) {
	dir := t.TempDir()
	b, _ := New(Config{Path: dir, WriteMode: Mmap}, nil)
	ctx := context.Background()
	data := segmenttest.Data(5, 1<<20)
	w, _ := b.Create(ctx, "t", int64(len(data)))
	w.Write(data)
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := b.Open(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := os.Truncate(filepath.Join(dir, "t"), 4096); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(make([]byte, 4096), 512<<10); err == nil {
		t.Fatal("read past a truncation succeeded")
	}
}

// TestDeferredView runs the conformance suite against a Deferred view (each test's
// objects synced by the view's Sync at cleanup), and checks that Sync fsyncs each
// directory once and forgets it.
func TestDeferredView(t *testing.T) {
	pool := testPool(t)
	segmenttest.Run(t, segmenttest.Harness{
		Pool: pool,
		New: func(t *testing.T) segment.Backend {
			b, err := New(Config{Path: t.TempDir(), WriteMode: Buffered}, nil)
			if err != nil {
				t.Fatal(err)
			}
			v := b.Deferred()
			t.Cleanup(func() {
				if err := v.Sync(context.Background()); err != nil {
					t.Error(err)
				}
			})
			return v
		},
	})
	b, err := New(Config{Path: t.TempDir(), WriteMode: Buffered}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := b.Deferred()
	for _, k := range []string{"n/s/a/1", "n/s/a/2", "n/s/b/1"} {
		w, err := v.Create(context.Background(), segment.Key(k), 3)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("abc")); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(v.(deferred).pending.dirs); n != 2 {
		t.Fatalf("%d directories pending, want 2", n)
	}
	if err := v.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(v.(deferred).pending.dirs); n != 0 {
		t.Fatalf("%d directories pending after Sync", n)
	}
	if b.pending != nil {
		t.Fatal("the view changed its backend")
	}
}
