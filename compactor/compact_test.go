package compactor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
)

// TestCompactLarge: a directory larger than a window, records and directory entries
// straddling buffers and windows, many passes; the bytes must equal the reference.
func TestCompactLarge(t *testing.T) {
	const slots, items = 5000, 70_001
	rng := rand.New(rand.NewPCG(3, 4))
	var keys []string
	for i := range 30_000 {
		keys = append(keys, fmt.Sprintf("Topic#k%d", i))
	}
	puts := randomPuts(rng, keys, items-1, 1_700_000_000_000)
	// Drop a few of the newest items so that the directory runs across a buffer boundary.
	h0, err := index.DecodeTixHeader(reference(t, buildIndex(t, slots, items, 0, 0, puts), slots, items, 4096))
	if err != nil {
		t.Fatal(err)
	}
	dirSize := int64(h0.Buckets()+1) * index.TixDirEntrySize
	for (index.TixHeaderSize+int64(len(puts))*int64(h0.RecordSize()))%4096 <= 4096-dirSize {
		puts = puts[:len(puts)-1]
	}
	src := buildIndex(t, slots, items, 0, 0, puts)
	want := reference(t, src, slots, items, 4096)
	for _, scratch := range []int{0, 100, 1000} {
		restore := setScratch(scratch)
		pool := newPool(t, 4096, 4)
		got, res, err := compactMem(t, src, Options{Slots: slots, Items: items, Pool: pool, MaxBuffers: 2})
		restore()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("scratch %d: output differs from the reference", scratch)
		}
		if scratch > 0 && res.Partitioned < res.Passes-2 {
			t.Fatalf("scratch %d: %d of %d windows partitioned", scratch, res.Partitioned, res.Passes-1)
		}
		h := res.Header
		if dirOff := h.DirOffset(); h.Bits != maxBits(4096) || dirOff/4096 == (h.Size()-1)/4096 {
			t.Fatalf("directory at %d..%d (%d bits): the test wants one across windows", dirOff, h.Size(), h.Bits)
		}
		if res.Passes < 10 || res.Buffers != 1 {
			t.Fatalf("%d passes with %d window buffers: the test wants many", res.Passes, res.Buffers)
		}
		t.Logf("scratch %d: %d items, %d bytes (%.2f B/item), %d passes, %d partitioned", scratch, res.Entries, res.Size, float64(res.Size)/float64(res.Entries), res.Passes, res.Partitioned)
	}
}

// TestCompactErrors: a corrupt IndexFile, a source that changes between passes, a failing
// writer, too small a pool, a cancelled context. Every buffer comes back (newPool checks).
func TestCompactErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	puts := randomPuts(rng, keyPool(t), 99, 1_700_000_000_000)
	const slots, items = 16, 100
	ctx := context.Background()
	f := func(name string, src *memFile, opts Options, create func(int64) (segment.Writer, error), want error) {
		t.Helper()
		if opts.Pool == nil {
			opts.Pool = newPool(t, 4096, 3)
		}
		opts.Slots, opts.Items = slots, items
		if create == nil {
			create = func(size int64) (segment.Writer, error) { return &memWriter{t: t, size: size, bufSize: 4096}, nil }
		}
		_, err := Compact(ctx, src, src.size(), opts, create)
		if !errors.Is(err, want) {
			t.Fatalf("%s: error %v, want %v", name, err, want)
		}
	}
	good := func() *memFile { return buildIndex(t, slots, items, 0, 0, puts) }
	itemAt := func(n int) int { return 40 + slots*4 + n*20 }

	bad := good()
	bad.b[itemAt(7)] |= 0x80 // negative key hash
	f("negative hash", bad, Options{}, nil, index.ErrCorruptIndex)
	bad = good()
	bad.b[itemAt(9)+16] = 0x7f // prevIndex not older
	f("forward link", bad, Options{}, nil, index.ErrCorruptIndex)
	bad = good()
	bad.b[40+3*4] = 0x7f // slot head far out
	f("slot head", bad, Options{}, nil, index.ErrCorruptIndex)
	bad = good()
	bad.b[36] = 0x7f // indexCount beyond the items
	f("index count", bad, Options{}, nil, index.ErrCorruptIndex)
	f("too few buffers", good(), Options{Pool: newPool(t, 4096, 1)}, nil, ErrTooFewBuffers)
	if _, err := Compact(ctx, good(), good().size(), Options{Slots: slots, Items: items}, nil); !errors.Is(err, errNoPool) {
		t.Fatalf("no pool: %v", err)
	}

	// The source changes after the counting pass (create is called between the counting
	// pass and the first window): an item moves to another bucket.
	changing := good()
	f("source changed", changing, Options{MaxBuffers: 2}, func(size int64) (segment.Writer, error) {
		changing.mu.Lock()
		changing.b[itemAt(5)+3] ^= 1
		changing.mu.Unlock()
		return &memWriter{t: t, size: size, bufSize: 4096}, nil
	}, segment.ErrSourceChanged)

	injected := errors.New("injected")
	f("create fails", good(), Options{}, func(int64) (segment.Writer, error) { return nil, injected }, injected)
	f("write fails", good(), Options{MaxBuffers: 2}, func(size int64) (segment.Writer, error) {
		return &memWriter{t: t, size: size, bufSize: 4096, failAt: 1, writeErr: injected}, nil
	}, injected)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Compact(cctx, good(), good().size(), Options{Slots: slots, Items: items, Pool: newPool(t, 4096, 2)}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestAcquireWaits: with every buffer but one taken, acquire waits (without holding
// anything while it waits) until a second one is free.
func TestAcquireWaits(t *testing.T) {
	pool := newPool(t, 4096, 3)
	held := []*bufpool.Buffer{pool.TryGet(), pool.TryGet()}
	done := make(chan error, 1)
	go func() {
		bufs, err := acquire(context.Background(), pool, 3)
		if err == nil {
			if len(bufs) < 2 {
				err = fmt.Errorf("got %d buffers", len(bufs))
			}
			for _, b := range bufs {
				b.Release()
			}
		}
		done <- err
	}()
	held[0].Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	held[1].Release()
}
