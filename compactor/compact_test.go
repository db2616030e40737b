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
	// pass and the first window), filled directly and partitioned: an item moves to another
	// bucket, its offset leaves the counted range, its offset or time changes within it.
	for _, scratch := range []int{0, 16} {
		for _, change := range []struct {
			name string
			at   int
			xor  byte
		}{{"bucket", 3, 1}, {"hash sign", 0, 0x80}, {"offset range", 4, 0x40}, {"offset", 11, 1}, {"time", 15, 1}} {
			for _, item := range []int{1, 5, 50, 99} {
				changing := good()
				restore := setScratch(scratch)
				f(fmt.Sprintf("source changed: %s of item %d, scratch %d", change.name, item, scratch), changing, Options{MaxBuffers: 2}, func(size int64) (segment.Writer, error) {
					changing.mu.Lock()
					changing.b[itemAt(item)+change.at] ^= change.xor
					changing.mu.Unlock()
					return &memWriter{t: t, size: size, bufSize: 4096}, nil
				}, segment.ErrSourceChanged)
				restore()
			}
		}
	}

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

// TestPartitionEdges: the partitioned fill against the reference where its bookkeeping is
// thin: no items, a full file, every item of one key (one bucket across every window, cut
// at both ends; a single-bucket partition larger than the scratch), two hot keys among
// many, pools so small that every window is a single buffer and the partition map lives
// on the heap, and one where it takes a buffer of its own.
func TestPartitionEdges(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const slots, items = 97, 6000
	var many []string
	for i := range 2000 {
		many = append(many, fmt.Sprintf("T#m%d", i))
	}
	hot := func(n int) []put {
		puts := randomPuts(rng, many, n, 1_700_000_000_000)
		for i := range puts {
			if i%3 != 0 {
				puts[i].key = []string{"T#hot1", "T#hot2"}[i%2]
			}
		}
		return puts
	}
	oneKey := func(n int) []put {
		puts := randomPuts(rng, many, n, 1_700_000_000_000)
		for i := range puts {
			puts[i].key = "T#only"
		}
		return puts
	}
	cases := []struct {
		name string
		puts []put
	}{
		{"empty", nil},
		{"full", randomPuts(rng, many, items-1, 1_700_000_000_000)},
		{"one key", oneKey(items - 1)},
		{"hot keys", hot(4000)},
	}
	defer func(n int) { maxPartitions = n }(maxPartitions)
	pools := []struct{ bufSize, n, max int }{{4096, 2, 2}, {4096, 3, 3}, {8192, 5, 5}, {1 << 20, 4, 4}}
	for _, tc := range cases {
		src := buildIndex(t, slots, items, 0, 0, tc.puts)
		for _, p := range pools {
			want := reference(t, src, slots, items, p.bufSize)
			for _, scratch := range []int{16, 200, 3000} {
				restore := setScratch(scratch)
				maxPartitions = 1024
				if scratch == 200 && p.bufSize == 4096 {
					maxPartitions = 3 // too few: such windows are filled directly
				}
				got, res, err := compactMem(t, src, Options{Slots: slots, Items: items, Pool: newPool(t, p.bufSize, p.n), MaxBuffers: p.max})
				restore()
				if err != nil {
					t.Fatalf("%s, %d x %d B, scratch %d: %v", tc.name, p.n, p.bufSize, scratch, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s, %d x %d B, scratch %d (%d passes, %d partitioned): output differs from the reference", tc.name, p.n, p.bufSize, scratch, res.Passes, res.Partitioned)
				}
				if span := min(len(got), res.Buffers*p.bufSize); maxPartitions > 3 && len(tc.puts) > 0 && res.Partitioned == 0 && span > 2*scratch+2*index.TixMaxRecordSize {
					t.Fatalf("%s, %d x %d B, scratch %d: no window partitioned", tc.name, p.n, p.bufSize, scratch)
				}
			}
		}
	}
}

// TestPartitionMapBuffer: with the default scratch, a pool whose state buffer has no room
// for the window's partition map gives the map a buffer of its own; the output is still
// the reference's.
func TestPartitionMapBuffer(t *testing.T) {
	const slots, items = 5000, 300_001
	rng := rand.New(rand.NewPCG(23, 24))
	var keys []string
	for i := range 100_000 {
		keys = append(keys, fmt.Sprintf("T#k%d", i))
	}
	src := buildIndex(t, slots, items, 0, 0, randomPuts(rng, keys, items-1, 1_700_000_000_000))
	const bsize = 256 << 10
	want := reference(t, src, slots, items, bsize)
	got, res, err := compactMem(t, src, Options{Slots: slots, Items: items, Pool: newPool(t, bsize, 8), MaxBuffers: 8})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%d passes, %d partitioned: output differs from the reference", res.Passes, res.Partitioned)
	}
	// 7 buffers besides the state buffer: 6 for the window, 1 for its map.
	if res.Buffers != 6 || res.Partitioned != res.Passes-1 {
		t.Fatalf("%d window buffers, %d of %d windows partitioned; want 6 and all", res.Buffers, res.Partitioned, res.Passes-1)
	}
}
