// Package segmenttest is the conformance suite of the segment.Backend contract. Every
// backend and mode runs it (posix mmap, direct, buffered; s3 with each driver) from its
// own tests:
//
//	segmenttest.Run(t, segmenttest.Harness{New: newBackend, Pool: pool})
package segmenttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/segment"
)

// Harness tells the suite how to get a backend.
type Harness struct {
	// New returns an empty backend (no keys) for one test. It may register cleanup on t.
	New func(t *testing.T) segment.Backend
	// Pool is the pool the backends take buffers from. After every test the suite checks
	// that every buffer came back.
	Pool *bufpool.Pool
	// Short trims the largest sizes (for slow backends under -short).
	Short bool
}

// Run runs the whole suite as subtests of t.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"RoundTripSizes", testRoundTripSizes},
		{"OddWrites", testOddWrites},
		{"Visibility", testVisibility},
		{"Abort", testAbort},
		{"Overwrite", testOverwrite},
		{"SizeMismatch", testSizeMismatch},
		{"RangedReads", testRangedReads},
		{"ConcurrentReadAt", testConcurrentReadAt},
		{"ConcurrentWriters", testConcurrentWriters},
		{"NotFound", testNotFound},
		{"DeleteIdempotent", testDelete},
		{"DeleteWhileReading", testDeleteWhileReading},
		{"List", testList},
		{"InvalidKeys", testInvalidKeys},
		{"CancelMidWrite", testCancelMidWrite},
		{"ClosedReader", testClosedReader},
		{"UnknownSize", testUnknownSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, h)
			if err := h.Pool.Check(); err != nil {
				t.Fatalf("after %s: %v", tc.name, err)
			}
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Data returns n deterministic pseudo-random bytes for seed.
func Data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		p[i] = byte(r.Uint32())
	}
	return p
}

// put writes data under key through segment.Copy (pool buffers) and commits.
func put(t *testing.T, h Harness, b segment.Backend, key segment.Key, data []byte) {
	t.Helper()
	ctx := ctxT(t)
	w, err := b.Create(ctx, key, int64(len(data)))
	if err != nil {
		t.Fatalf("Create %s: %v", key, err)
	}
	crc, err := segment.Copy(ctx, w, bytes.NewReader(data), int64(len(data)), h.Pool)
	if err != nil {
		_ = w.Abort()
		t.Fatalf("Copy %s: %v", key, err)
	}
	if want := crc32.Checksum(data, segment.Castagnoli); crc != want {
		t.Fatalf("Copy %s returned CRC %08x, want %08x", key, crc, want)
	}
	if err := w.Commit(ctx); err != nil {
		_ = w.Abort()
		t.Fatalf("Commit %s: %v", key, err)
	}
}

// putChunks writes data with Write calls of the given sizes (cycled) and commits.
func putChunks(t *testing.T, b segment.Backend, key segment.Key, data []byte, chunks ...int) {
	t.Helper()
	ctx := ctxT(t)
	w, err := b.Create(ctx, key, int64(len(data)))
	if err != nil {
		t.Fatalf("Create %s: %v", key, err)
	}
	for i, off := 0, 0; off < len(data); i++ {
		n := min(chunks[i%len(chunks)], len(data)-off)
		if m, err := w.Write(data[off : off+n]); err != nil || m != n {
			_ = w.Abort()
			t.Fatalf("Write %s at %d: n=%d err=%v", key, off, m, err)
		}
		off += n
	}
	if err := w.Commit(ctx); err != nil {
		_ = w.Abort()
		t.Fatalf("Commit %s: %v", key, err)
	}
}

// check asserts that key holds exactly want, by Stat, a whole read and the CRC.
func check(t *testing.T, b segment.Backend, key segment.Key, want []byte) {
	t.Helper()
	ctx := ctxT(t)
	info, err := b.Stat(ctx, key)
	if err != nil {
		t.Fatalf("Stat %s: %v", key, err)
	}
	if info.Key != key || info.Size != int64(len(want)) {
		t.Fatalf("Stat %s = key %s size %d, want size %d", key, info.Key, info.Size, len(want))
	}
	if c := crc32.Checksum(want, segment.Castagnoli); info.CRC32C != c {
		t.Fatalf("Stat %s CRC32C = %08x, want %08x", key, info.CRC32C, c)
	}
	r, err := b.Open(ctx, key)
	if err != nil {
		t.Fatalf("Open %s: %v", key, err)
	}
	defer r.Close()
	if r.Size() != int64(len(want)) {
		t.Fatalf("Reader.Size %s = %d, want %d", key, r.Size(), len(want))
	}
	got := make([]byte, len(want))
	if n, err := r.ReadAt(got, 0); n != len(want) || (err != nil && !errors.Is(err, io.EOF)) {
		t.Fatalf("ReadAt %s whole: n=%d err=%v", key, n, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs from what was written (first difference at %d)", key, firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func mustKey(s string) segment.Key {
	k, err := segment.ParseKey(s)
	if err != nil {
		panic("BUG: test key: " + err.Error())
	}
	return k
}

func sizes(h Harness) []int {
	bs := h.Pool.BufferSize()
	s := []int{0, 1, 4095, 4096, 4097, bs - 1, bs, bs + 1, 3*bs + 4097}
	if h.Short {
		s = s[:len(s)-1]
	}
	return s
}

func testRoundTripSizes(t *testing.T, h Harness) {
	b := h.New(t)
	for i, n := range sizes(h) {
		key := mustKey(fmt.Sprintf("sizes/%d/obj-%d", i, n))
		data := Data(uint64(n)+1, n)
		put(t, h, b, key, data)
		check(t, b, key, data)
	}
}

func testOddWrites(t *testing.T, h Harness) {
	b := h.New(t)
	n := h.Pool.BufferSize() + 12345
	data := Data(7, n)
	f := func(name string, chunks ...int) {
		t.Helper()
		key := mustKey("odd/" + name)
		putChunks(t, b, key, data, chunks...)
		check(t, b, key, data)
	}
	f("single", n)
	f("bytes-then-rest", 1, 2, 3, n)
	f("unaligned", 1000, 4097, 65535, 333)
	f("page-then-odd", 4096, 8192, 1, 4095)
}

func testVisibility(t *testing.T, h Harness) {
	b := h.New(t)
	ctx := ctxT(t)
	key := mustKey("vis/a")
	data := Data(3, 10000)
	w, err := b.Create(ctx, key, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:5000]); err != nil {
		_ = w.Abort()
		t.Fatal(err)
	}
	assertAbsent(t, b, key, "before Commit")
	if _, err := w.Write(data[5000:]); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, b, key, "before Commit, all bytes written")
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, b, key, data)
}

// assertAbsent checks that key is invisible to Stat, Open and List.
func assertAbsent(t *testing.T, b segment.Backend, key segment.Key, when string) {
	t.Helper()
	ctx := ctxT(t)
	if _, err := b.Stat(ctx, key); !errors.Is(err, segment.ErrNotFound) {
		t.Fatalf("%s: Stat %s = %v, want ErrNotFound", when, key, err)
	}
	if r, err := b.Open(ctx, key); !errors.Is(err, segment.ErrNotFound) {
		if r != nil {
			r.Close()
		}
		t.Fatalf("%s: Open %s = %v, want ErrNotFound", when, key, err)
	}
	es, err := b.List(ctx, "")
	if err != nil {
		t.Fatalf("%s: List: %v", when, err)
	}
	for _, e := range es {
		if e.Key == key {
			t.Fatalf("%s: List shows %s", when, key)
		}
	}
}

func testAbort(t *testing.T, h Harness) {
	b := h.New(t)
	ctx := ctxT(t)
	f := func(name string, written int) {
		t.Helper()
		key := mustKey("abort/" + name)
		data := Data(uint64(written), 3*h.Pool.BufferSize())
		w, err := b.Create(ctx, key, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data[:written]); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Fatalf("Abort: %v", err)
		}
		assertAbsent(t, b, key, "after Abort")
		es, err := b.List(ctx, "")
		if err != nil || len(es) != 0 {
			t.Fatalf("after Abort List = %v, %v; want nothing", es, err)
		}
	}
	f("nothing-written", 0)
	f("partly-written", h.Pool.BufferSize()+1)
	f("all-written", 3*h.Pool.BufferSize())

	// Abort after a failed Commit (too few bytes) leaves nothing either.
	key := mustKey("abort/short-commit")
	w, err := b.Create(ctx, key, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 99)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err == nil {
		t.Fatal("Commit of 99 of 100 bytes succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after failed Commit: %v", err)
	}
	assertAbsent(t, b, key, "after failed Commit and Abort")
}

func testOverwrite(t *testing.T, h Harness) {
	b := h.New(t)
	ctx := ctxT(t)
	key := mustKey("over/x")
	old := Data(1, 5000)
	put(t, h, b, key, old)
	nw := Data(2, 7000)
	w, err := b.Create(ctx, key, int64(len(nw)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(nw); err != nil {
		t.Fatal(err)
	}
	check(t, b, key, old) // the old object stays until Commit
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	check(t, b, key, nw)
	// An aborted overwrite keeps the committed object.
	w, err = b.Create(ctx, key, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	check(t, b, key, nw)
}

func testSizeMismatch(t *testing.T, h Harness) {
	b := h.New(t)
	ctx := ctxT(t)
	key := mustKey("mismatch/long")
	w, err := b.Create(ctx, key, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 11)); err == nil {
		_ = w.Abort()
		t.Fatal("Write of 11 bytes into a 10-byte object succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, b, key, "after overlong write")
	if _, err := b.Create(ctx, key, -2); err == nil {
		t.Fatal("Create with size -2 succeeded")
	}
}

func testRangedReads(t *testing.T, h Harness) {
	b := h.New(t)
	ctx := ctxT(t)
	n := 2*h.Pool.BufferSize() + 777
	data := Data(11, n)
	key := mustKey("ranged/obj")
	put(t, h, b, key, data)
	r, err := b.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f := func(off, length int) {
		t.Helper()
		p := make([]byte, length)
		got, err := r.ReadAt(p, int64(off))
		want := max(0, min(length, n-off))
		if got != want {
			t.Fatalf("ReadAt(len %d, off %d) = %d bytes, want %d (err %v)", length, off, got, want, err)
		}
		if want < length && !errors.Is(err, io.EOF) {
			t.Fatalf("ReadAt(len %d, off %d) short without io.EOF: %v", length, off, err)
		}
		if want == length && err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("ReadAt(len %d, off %d): %v", length, off, err)
		}
		if got > 0 && !bytes.Equal(p[:got], data[off:off+got]) {
			t.Fatalf("ReadAt(len %d, off %d): wrong bytes", length, off)
		}
	}
	f(0, 1)
	f(1, 1)
	f(4095, 2)
	f(4097, 4095)
	f(12345, 67891)
	f(h.Pool.BufferSize()-3, 7)
	f(n-1, 1)
	f(n-10, 100) // crosses the end
	f(n, 10)     // at the end
	f(n+5, 10)   // past the end
	f(0, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		off := rng.IntN(n)
		f(off, rng.IntN(70000))
	}
	if _, err := r.ReadAt(make([]byte, 1), -1); err == nil {
		t.Fatal("ReadAt at a negative offset succeeded")
	}
}

func testConcurrentReadAt(t *testing.T, h Harness) {
	b := h.New(t)
	ctx := ctxT(t)
	n := 3*h.Pool.BufferSize() + 5
	data := Data(13, n)
	key := mustKey("conc/obj")
	put(t, h, b, key, data)
	r, err := b.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 99))
			p := make([]byte, 100000)
			for range 40 {
				off := rng.IntN(n)
				l := 1 + rng.IntN(len(p))
				got, err := r.ReadAt(p[:l], int64(off))
				want := min(l, n-off)
				if got != want || (got < l && !errors.Is(err, io.EOF)) || !bytes.Equal(p[:got], data[off:off+got]) {
					errs <- fmt.Errorf("goroutine %d: ReadAt(len %d, off %d) = %d, %v", g, l, off, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testConcurrentWriters(t *testing.T, h Harness) {
	b := h.New(t)
	var wg sync.WaitGroup
	const n = 6
	want := make([][]byte, n)
	for i := range n {
		want[i] = Data(uint64(100+i), h.Pool.BufferSize()+i*1000)
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			put(t, h, b, mustKey(fmt.Sprintf("cw/%d", i)), want[i])
		}()
	}
	wg.Wait()
	for i := range n {
		check(t, b, mustKey(fmt.Sprintf("cw/%d", i)), want[i])
	}
}

func testNotFound(t *testing.T, h Harness) {
	b := h.New(t)
	ctx := ctxT(t)
	key := mustKey("nf/missing")
	if _, err := b.Stat(ctx, key); !errors.Is(err, segment.ErrNotFound) {
		t.Fatalf("Stat missing = %v, want ErrNotFound", err)
	}
	if _, err := b.Open(ctx, key); !errors.Is(err, segment.ErrNotFound) {
		t.Fatalf("Open missing = %v, want ErrNotFound", err)
	}
	put(t, h, b, mustKey("nf/dir/file"), []byte("x"))
	for _, k := range []segment.Key{"nf/dir", "nf/dir/file/sub", "nf/di"} {
		if _, err := b.Stat(ctx, k); !errors.Is(err, segment.ErrNotFound) {
			t.Fatalf("Stat %s = %v, want ErrNotFound", k, err)
		}
	}
	es, err := b.List(ctx, "nf/nothing/")
	if err != nil || len(es) != 0 {
		t.Fatalf("List of empty prefix = %v, %v", es, err)
	}
}

func testDelete(t *testing.T, h Harness) {
	b := h.New(t)
	ctx := ctxT(t)
	key := mustKey("del/a")
	put(t, h, b, key, Data(5, 100))
	for i := range 2 {
		if err := b.Delete(ctx, key); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
		assertAbsent(t, b, key, "after Delete")
	}
	if err := b.Delete(ctx, mustKey("del/never-existed")); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
}

func testDeleteWhileReading(t *testing.T, h Harness) {
	b := h.New(t)
	ctx := ctxT(t)
	key := mustKey("delread/a")
	data := Data(6, 2*h.Pool.BufferSize())
	put(t, h, b, key, data)
	r, err := b.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := b.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	// The reader may go on or fail, but never returns other bytes.
	p := make([]byte, 5000)
	if n, err := r.ReadAt(p, 1000); err == nil && !bytes.Equal(p[:n], data[1000:1000+n]) {
		t.Fatal("reader of a deleted object returned wrong bytes")
	}
}

func testList(t *testing.T, h Harness) {
	b := h.New(t)
	ctx := ctxT(t)
	keys := []string{"l/a/1", "l/a/2", "l/a2/1", "l/b/c/d/e", "l/b/c/f", "m/x"}
	for i, k := range keys {
		put(t, h, b, mustKey(k), Data(uint64(i), i*10))
	}
	f := func(prefix string, want ...string) {
		t.Helper()
		es, err := b.List(ctx, segment.Key(prefix))
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		var got []string
		for _, e := range es {
			got = append(got, string(e.Key))
			i := slices.Index(keys, string(e.Key))
			if e.Size != int64(i*10) {
				t.Fatalf("List(%q): %s has size %d, want %d", prefix, e.Key, e.Size, i*10)
			}
			if e.ModTime.IsZero() {
				t.Fatalf("List(%q): %s has no ModTime", prefix, e.Key)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("List(%q) = %q, want %q", prefix, got, want)
		}
	}
	f("", keys...)
	f("l/", keys[:5]...)
	f("l/a", "l/a/1", "l/a/2", "l/a2/1")
	f("l/a/", "l/a/1", "l/a/2")
	f("l/b/c/", "l/b/c/d/e", "l/b/c/f")
	f("l/b/c/d/e", "l/b/c/d/e")
	f("zzz")
}

func testInvalidKeys(t *testing.T, h Harness) {
	b := h.New(t)
	ctx := ctxT(t)
	for _, k := range []segment.Key{"", "/abs", "a/../b", "..", "a//b", "a/./b", "a/"} {
		if w, err := b.Create(ctx, k, 1); err == nil {
			_ = w.Abort()
			t.Errorf("Create(%q) succeeded", k)
		}
		if _, err := b.Stat(ctx, k); err == nil || errors.Is(err, segment.ErrNotFound) {
			t.Errorf("Stat(%q) = %v, want an invalid-key error", k, err)
		}
		if err := b.Delete(ctx, k); err == nil {
			t.Errorf("Delete(%q) succeeded", k)
		}
	}
}

func testCancelMidWrite(t *testing.T, h Harness) {
	b := h.New(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	key := mustKey("cancel/obj")
	n := 4 * h.Pool.BufferSize()
	w, err := b.Create(ctx, key, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	// A source that cancels the context after its first chunk.
	src := &cancellingReader{data: Data(9, n), after: h.Pool.BufferSize(), cancel: cancel}
	_, err = segment.Copy(ctx, w, src, int64(n), h.Pool)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Copy after cancel = %v, want context.Canceled", err)
	}
	if err := w.Commit(ctx); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	assertAbsent(t, b, key, "after cancel and Abort")
}

type cancellingReader struct {
	data   []byte
	after  int
	cancel func()
	mu     sync.Mutex
	read   int
}

func (r *cancellingReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.read += len(p)
	if r.read > r.after {
		r.cancel()
	}
	r.mu.Unlock()
	return copy(p, r.data[off:]), nil
}

func testClosedReader(t *testing.T, h Harness) {
	b := h.New(t)
	ctx := ctxT(t)
	key := mustKey("closed/obj")
	put(t, h, b, key, Data(10, 1000))
	r, err := b.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(make([]byte, 10), 0); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("ReadAt after Close = %v, want an error wrapping fs.ErrClosed", err)
	}
}

// testUnknownSize writes objects created with segment.UnknownSize as the contract allows:
// whole pool buffers, then one shorter Write (or none).
func testUnknownSize(t *testing.T, h Harness) {
	b := h.New(t)
	ctx := ctxT(t)
	bs := h.Pool.BufferSize()
	f := func(name string, n int) {
		t.Helper()
		key := mustKey("unknown/" + name)
		data := Data(uint64(n)+7, n)
		w, err := b.Create(ctx, key, segment.UnknownSize)
		if err != nil {
			t.Fatalf("Create %s: %v", key, err)
		}
		buf, err := h.Pool.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < n; off += bs {
			m := copy(buf.Bytes(), data[off:min(n, off+bs)])
			if _, err := w.Write(buf.Bytes()[:m]); err != nil {
				buf.Release()
				_ = w.Abort()
				t.Fatalf("Write %s at %d: %v", key, off, err)
			}
		}
		buf.Release()
		if err := w.Commit(ctx); err != nil {
			_ = w.Abort()
			t.Fatalf("Commit %s: %v", key, err)
		}
		check(t, b, key, data)
	}
	f("empty", 0)
	f("small", 100)
	f("one-buffer", bs)
	f("buffers-and-tail", 2*bs+12345)
	f("whole-buffers", 3*bs)

	// Abort of a partly written object of unknown size leaves nothing.
	key := mustKey("unknown/aborted")
	w, err := b.Create(ctx, key, segment.UnknownSize)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	assertAbsent(t, b, key, "after Abort")
}
