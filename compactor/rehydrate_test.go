package compactor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
)

// rehydrateMem rehydrates the compacted index tix and returns the IndexFile's bytes.
func rehydrateMem(t testing.TB, tix []byte, opts RehydrateOptions) ([]byte, RehydrateResult, error) {
	t.Helper()
	var w *memWriter
	res, err := Rehydrate(context.Background(), &memFile{b: tix}, int64(len(tix)), opts,
		func(size int64) (segment.Writer, error) {
			w = &memWriter{t: t, size: size, bufSize: opts.Pool.BufferSize()}
			return w, nil
		})
	if err != nil {
		return nil, res, err
	}
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if int64(w.b.Len()) != res.Size || crc32.Checksum(w.b.Bytes(), segment.Castagnoli) != res.CRC32C {
		t.Fatalf("result %+v does not describe the %d bytes written", res, w.b.Len())
	}
	return w.b.Bytes(), res, nil
}

// sameLookups compares two IndexFile lookups field by field (not the item numbers,
// which rehydration may change).
func sameLookups(a, b []index.Item) bool {
	return slices.EqualFunc(a, b, func(x, y index.Item) bool {
		return x.KeyHash == y.KeyHash && x.PhyOffset == y.PhyOffset && x.TimeDiff == y.TimeDiff
	})
}

// TestRehydratedLookupsEqualOriginal is the property: for random broker-like IndexFiles
// (increasing offsets, non-decreasing store times, several keys per message, hot keys,
// keys whose Java hashes collide, many keys per slot, geometries from 1 slot to 500, fill
// levels from empty to full), the IndexFile rehydrated from the compacted index answers
// every lookup — every key of the pool and absent keys, time ranges around, on and
// between the items, max 0, 1 and 3 — exactly as the original does through the broker's
// chain walk (index.IndexFile.Lookup), has the original's header, and is a valid
// IndexFile (every slot head and chain link checked by index.IndexFile.Items); whatever
// the number of selection passes the pool's buffer size makes.
func TestRehydratedLookupsEqualOriginal(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 17))
	pool := keyPool(t)
	absent := []string{"T#absent", "Orders#nope", "x", ""}
	geometries := []struct{ slots, items int }{{1, 2}, {1, 40}, {3, 17}, {7, 300}, {64, 1000}, {97, 513}, {500, 800}, {4, 2000}}
	compactPool := newPool(t, 64<<10, 4)
	lookups, hits, maxPasses := 0, 0, 0
	for _, g := range geometries {
		for _, fill := range []int{0, 1, 2, (g.items - 1) / 2, g.items - 1} {
			if fill >= g.items {
				continue
			}
			name := fmt.Sprintf("slots=%d/items=%d/fill=%d", g.slots, g.items, fill)
			startTs := int64(1_700_000_000_000) + rng.Int64N(1e9)
			puts := randomPuts(rng, pool, fill, startTs)
			var prevPhy, prevTs int64
			if rng.IntN(2) == 0 {
				prevPhy, prevTs = rng.Int64N(1<<30), startTs-rng.Int64N(5000)
			}
			src := buildIndex(t, g.slots, g.items, prevPhy, prevTs, puts)
			tix, _, err := compactMem(t, src, Options{Slots: g.slots, Items: g.items, Pool: compactPool})
			if err != nil {
				t.Fatalf("%s: compact: %v", name, err)
			}
			ix, err := index.OpenIndexFile(src, src.size(), g.slots, g.items)
			if err != nil {
				t.Fatal(err)
			}
			ranges := queryRanges(rng, ix, puts, startTs, 8, 3)
			// 4 KiB buffers hold 170 entries: several passes for the larger files. The
			// output does not depend on the pool: compared once, byte for byte after.
			var first []byte
			for _, bufSize := range []int{4096, 64 << 10} {
				out, res, err := rehydrateMem(t, tix, RehydrateOptions{Pool: newPool(t, bufSize, 2)})
				if err != nil {
					t.Fatalf("%s: rehydrate: %v", name, err)
				}
				if first != nil {
					if !bytes.Equal(out, first) {
						t.Fatalf("%s: %d-byte buffers rehydrate other bytes than 4 KiB ones", name, bufSize)
					}
					continue
				}
				first = out
				maxPasses = max(maxPasses, res.Passes)
				if res.Size != src.size() || res.Entries != fill || res.Slots != g.slots || res.Items != g.items {
					t.Fatalf("%s: result %+v, want %d bytes, %d items", name, res, src.size(), fill)
				}
				rf := &memFile{b: out}
				rx, err := index.OpenIndexFile(rf, rf.size(), g.slots, g.items)
				if err != nil {
					t.Fatalf("%s: open the rehydrated file: %v", name, err)
				}
				if rx.Header() != ix.Header() {
					t.Fatalf("%s: header %+v, want %+v", name, rx.Header(), ix.Header())
				}
				checkChains(t, name, rx)
				for _, key := range append(pool, absent...) {
					for _, r := range ranges {
						for _, maxN := range []int{0, 1, 3} {
							want, err := ix.Lookup(key, r[0], r[1], maxN)
							if err != nil {
								t.Fatal(err)
							}
							got, err := rx.Lookup(key, r[0], r[1], maxN)
							if err != nil {
								t.Fatalf("%s: lookup %q in the rehydrated file: %v", name, key, err)
							}
							if !sameLookups(want, got) {
								t.Fatalf("%s (%d B buffers): lookup %q in [%d, %d] max %d:\noriginal   %v\nrehydrated %v", name, bufSize, key, r[0], r[1], maxN, want, got)
							}
							lookups++
							hits += len(got)
						}
					}
				}
			}
		}
	}
	t.Logf("%d lookups compared, %d items found; up to %d passes", lookups, hits, maxPasses)
	if hits == 0 || maxPasses < 6 {
		t.Fatalf("%d items found, at most %d passes: the test compares too little", hits, maxPasses)
	}
}

// checkChains checks the rehydrated file as a broker would read it: every item valid and
// reached from its slot's head exactly once, by a chain that goes to older items.
func checkChains(t *testing.T, name string, ix *index.IndexFile) {
	t.Helper()
	slotOf := make([]int, ix.Len()+1)
	if err := ix.Items(nil, func(slot int, it index.Item) error {
		slotOf[it.Number] = slot
		return nil
	}); err != nil {
		t.Fatalf("%s: rehydrated items: %v", name, err)
	}
	seen := make([]bool, ix.Len()+1)
	reached := 0
	if err := ix.SlotHeads(nil, func(slot int, head int32) error {
		for n := head; n > 0; {
			if slotOf[n] != slot || seen[n] {
				return fmt.Errorf("slot %d's chain reaches item %d of slot %d (seen %v)", slot, n, slotOf[n], seen[n])
			}
			seen[n] = true
			reached++
			it, err := ix.Item(n)
			if err != nil {
				return err
			}
			n = it.PrevIndex
		}
		return nil
	}); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if reached != ix.Len() {
		t.Fatalf("%s: the slot chains reach %d of %d items", name, reached, ix.Len())
	}
}

// TestRehydrateOtherGeometry: rehydrated into another slot count (a broker whose
// maxHashSlotNum changed), the file still answers every lookup as the original, and its
// header counts the slots in use; too few items is refused.
func TestRehydrateOtherGeometry(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	pool := keyPool(t)
	startTs := int64(1_700_000_000_000)
	puts := randomPuts(rng, pool, 299, startTs)
	src := buildIndex(t, 7, 300, 0, 0, puts)
	tix, _, err := compactMem(t, src, Options{Slots: 7, Items: 300, Pool: newPool(t, 4096, 2)})
	if err != nil {
		t.Fatal(err)
	}
	ix, _ := index.OpenIndexFile(src, src.size(), 7, 300)
	out, res, err := rehydrateMem(t, tix, RehydrateOptions{Slots: 13, Items: 400, Pool: newPool(t, 4096, 2)})
	if err != nil {
		t.Fatal(err)
	}
	rf := &memFile{b: out}
	rx, err := index.OpenIndexFile(rf, rf.size(), 13, 400)
	if err != nil {
		t.Fatal(err)
	}
	used := 0
	if err := rx.SlotHeads(nil, func(int, int32) error { used++; return nil }); err != nil {
		t.Fatal(err)
	}
	if res.Header.HashSlotCount != int32(used) || rx.Header().IndexCount != ix.Header().IndexCount {
		t.Fatalf("header %+v: want hashSlotCount %d and indexCount %d", rx.Header(), used, ix.Header().IndexCount)
	}
	checkChains(t, "13 slots", rx)
	for _, key := range pool {
		for _, r := range queryRanges(rng, ix, puts, startTs, 8, 3) {
			want, _ := ix.Lookup(key, r[0], r[1], 0)
			got, err := rx.Lookup(key, r[0], r[1], 0)
			if err != nil || !sameLookups(want, got) {
				t.Fatalf("lookup %q in [%d, %d]: original %v, rehydrated %v (%v)", key, r[0], r[1], want, got, err)
			}
		}
	}
	if _, _, err := rehydrateMem(t, tix, RehydrateOptions{Items: 299, Pool: newPool(t, 4096, 2)}); !errors.Is(err, ErrGeometry) {
		t.Fatalf("299 items for 299 entries: %v, want ErrGeometry", err)
	}
}

// TestRehydrateNonMonotonicTimes: for a file whose store times go backwards (no broker
// writes one), the rehydrated file holds exactly the compacted index's items: a lookup
// from the beginning of time returns what the compacted lookup returns, in its order.
func TestRehydrateNonMonotonicTimes(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 23))
	pool := keyPool(t)
	const base = 1_700_000_000_000
	puts := make([]put, 500)
	for i := range puts {
		puts[i] = put{pool[rng.IntN(len(pool))], int64(1000 + i*10), base + rng.Int64N(100_000)}
	}
	puts[0].ts = base
	src := buildIndex(t, 5, 600, 0, 0, puts)
	tixBytes, _, err := compactMem(t, src, Options{Slots: 5, Items: 600, Pool: newPool(t, 4096, 2)})
	if err != nil {
		t.Fatal(err)
	}
	out, res, err := rehydrateMem(t, tixBytes, RehydrateOptions{Pool: newPool(t, 4096, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passes < 4 {
		t.Fatalf("%d passes: the test should need several", res.Passes)
	}
	rf := &memFile{b: out}
	rx, err := index.OpenIndexFile(rf, rf.size(), 5, 600)
	if err != nil {
		t.Fatal(err)
	}
	checkChains(t, "non-monotonic", rx)
	tx, err := index.OpenTix(&memFile{b: tixBytes}, int64(len(tixBytes)))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range pool {
		want, err := tx.Lookup(key, math.MinInt64, math.MaxInt64, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rx.Lookup(key, math.MinInt64, math.MaxInt64, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !sameItems(got, want) {
			t.Fatalf("lookup %q: compacted %v, rehydrated %v", key, want, got)
		}
	}
}

// TestRehydrateRefusesDamage: a compacted index damaged anywhere fails with
// index.ErrCorruptTix and no Writer is created when the damage is seen before the first
// write; every pool buffer comes back (newPool checks).
func TestRehydrateRefusesDamage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	src := buildIndex(t, 7, 300, 0, 0, randomPuts(rng, keyPool(t), 250, 1_700_000_000_000))
	tix, _, err := compactMem(t, src, Options{Slots: 7, Items: 300, Pool: newPool(t, 4096, 2)})
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{0, 20, index.TixHeaderSize + 3, len(tix) / 2, len(tix) - 5} {
		bad := slices.Clone(tix)
		bad[off] ^= 0x40
		created := false
		_, err := Rehydrate(context.Background(), &memFile{b: bad}, int64(len(bad)), RehydrateOptions{Pool: newPool(t, 4096, 2)},
			func(size int64) (segment.Writer, error) {
				created = true
				return &memWriter{t: t, size: size, bufSize: 4096}, nil
			})
		if !errors.Is(err, index.ErrCorruptTix) || created {
			t.Fatalf("byte %d flipped: err %v, writer created %v; want ErrCorruptTix before any write", off, err, created)
		}
	}
}

// discardWriter counts what it is given and keeps nothing.
type discardWriter struct{ n, size int64 }

func (w *discardWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }
func (w *discardWriter) Commit(context.Context) error {
	if w.n != w.size {
		return fmt.Errorf("commit after %d of %d bytes", w.n, w.size)
	}
	return nil
}
func (w *discardWriter) Abort() error { return nil }

// TestRehydrateMemoryBound: what a rehydration allocates beyond its pool buffers is the
// slot table, the histogram (at most 2 MiB) and a fixed read buffer, whatever the number
// of items: 10 times the items (and 10 times the output) allocate no more.
func TestRehydrateMemoryBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	pool := keyPool(t)
	const slots = 1000
	var allocs []uint64
	for _, n := range []int{10_000, 100_000} {
		puts := randomPuts(rng, pool, n, 1_700_000_000_000)
		for i := range puts {
			puts[i].key = fmt.Sprintf("T#k%d", rng.IntN(n))
		}
		src := buildIndex(t, slots, n+1, 0, 0, puts)
		tix, _, err := compactMem(t, src, Options{Slots: slots, Items: n + 1, Pool: newPool(t, 64<<10, 4)})
		if err != nil {
			t.Fatal(err)
		}
		bp := newPool(t, 64<<10, 2)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		w := &discardWriter{}
		res, err := Rehydrate(context.Background(), &memFile{b: tix}, int64(len(tix)), RehydrateOptions{Pool: bp},
			func(size int64) (segment.Writer, error) { w.size = size; return w, nil })
		runtime.ReadMemStats(&after)
		if err == nil {
			err = w.Commit(context.Background())
		}
		if err != nil {
			t.Fatal(err)
		}
		got := after.TotalAlloc - before.TotalAlloc
		allocs = append(allocs, got)
		t.Logf("%d items, %d-byte output, %d passes: %d bytes allocated", n, res.Size, res.Passes, got)
		if limit := uint64(4*slots + 8*maxBins + 512<<10); got > limit {
			t.Fatalf("%d items: %d bytes allocated, over %d (slot table + histogram + read buffer + slack)", n, got, limit)
		}
	}
	if allocs[1] > allocs[0]+64<<10 {
		t.Fatalf("allocations grow with the items: %v", allocs)
	}
}

// TestRehydrateWindowShapes covers the three ways a window is filled: bins of one second
// placed in order (a file spanning minutes), bins wider than a second sorted after placing
// (a file spanning months), and a second holding more items than the window, selected in
// parts by a heap — each against the original's lookups, with a window of 170 items.
func TestRehydrateWindowShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	pool := keyPool(t)
	const base = 1_700_000_000_000
	for _, c := range []struct {
		name string
		step func(i int) int64 // ms from the previous put
	}{
		{"minutes", func(int) int64 { return rng.Int64N(300) }},
		{"months", func(int) int64 { return rng.Int64N(30_000_000) }},
		{"hot second", func(i int) int64 { return int64(i % 700 / 699 * 1000) }},
		{"mixed", func(i int) int64 {
			if i%500 == 0 {
				return 40_000_000
			}
			return 0
		}},
	} {
		puts := make([]put, 1999)
		phy, ts := int64(5000), int64(base)
		for i := range puts {
			ts += c.step(i)
			phy += 1 + rng.Int64N(300)
			puts[i] = put{pool[rng.IntN(len(pool))], phy, ts}
		}
		src := buildIndex(t, 37, 2000, 0, 0, puts)
		tix, _, err := compactMem(t, src, Options{Slots: 37, Items: 2000, Pool: newPool(t, 64<<10, 2)})
		if err != nil {
			t.Fatal(err)
		}
		out, res, err := rehydrateMem(t, tix, RehydrateOptions{Pool: newPool(t, 4096, 2)})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		rf := &memFile{b: out}
		rx, err := index.OpenIndexFile(rf, rf.size(), 37, 2000)
		if err != nil {
			t.Fatal(err)
		}
		checkChains(t, c.name, rx)
		ix, _ := index.OpenIndexFile(src, src.size(), 37, 2000)
		if rx.Header() != ix.Header() {
			t.Fatalf("%s: header %+v, want %+v", c.name, rx.Header(), ix.Header())
		}
		span := (puts[len(puts)-1].ts - puts[0].ts) / 1000
		for _, key := range pool {
			for _, r := range queryRanges(rng, ix, puts, base, 8, 3) {
				for _, maxN := range []int{0, 2} {
					want, _ := ix.Lookup(key, r[0], r[1], maxN)
					got, err := rx.Lookup(key, r[0], r[1], maxN)
					if err != nil || !sameLookups(want, got) {
						t.Fatalf("%s: lookup %q in [%d, %d] max %d: original %v, rehydrated %v (%v)", c.name, key, r[0], r[1], maxN, want, got, err)
					}
				}
			}
		}
		t.Logf("%s: items span %d s, %d passes", c.name, span, res.Passes)
	}
}
