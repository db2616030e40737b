package compactor

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tierd/tierd/index"
)

// keyPool returns keys for random IndexFiles: groups whose Java string hashes collide
// ("Aa" and "BB" hash alike, so every mix of them does), keys whose KeyHash is 0 (their
// hashCode is Integer.MIN_VALUE), and plain keys (which share slots in small files).
func keyPool(t testing.TB) []string {
	var keys []string
	for _, topic := range []string{"T", "Orders"} {
		for i := range 8 {
			k := topic + "#"
			for bit := range 3 {
				if i>>bit&1 == 0 {
					k += "Aa"
				} else {
					k += "BB"
				}
			}
			keys = append(keys, k)
		}
		for i := range 40 {
			keys = append(keys, fmt.Sprintf("%s#key-%d", topic, i))
		}
	}
	zero := []string{"polygenelubricants", "GydZG_", "DESIGNING WORKHOUSES"}
	for _, k := range zero {
		if index.KeyHash(k) != 0 {
			t.Fatalf("KeyHash(%q) = %d, want 0", k, index.KeyHash(k))
		}
	}
	return append(keys, zero...)
}

// randomPuts returns n puts of keys from pool with increasing offsets and non-decreasing
// store times (as a broker assigns them), some steps under a second, some of many.
func randomPuts(rng *rand.Rand, pool []string, n int, startTs int64) []put {
	puts := make([]put, n)
	phy, ts := rng.Int64N(1<<40), startTs
	for i := range puts {
		// Hot keys: a few keys take a large share of the items.
		k := pool[rng.IntN(len(pool))]
		if rng.IntN(4) == 0 {
			k = pool[rng.IntN(3)]
		}
		puts[i] = put{k, phy, ts}
		if rng.IntN(3) > 0 { // several keys of one message share its offset and time
			phy += 1 + rng.Int64N(5000)
			switch rng.IntN(10) {
			case 0:
				ts += rng.Int64N(100_000_000)
			default:
				ts += rng.Int64N(1500)
			}
		}
	}
	return puts
}

// TestCompactedLookupsEqualChainWalk is the property: for random IndexFiles (several
// geometries, fill levels from empty to full, colliding key hashes and slots, time ranges)
// every lookup on the compacted form returns exactly what the broker's chain walk on the
// original returns, with at most two reads; and the streaming compactor writes the same
// bytes as the in-memory reference whatever number of buffers and passes it uses.
func TestCompactedLookupsEqualChainWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	pool := keyPool(t)
	absent := []string{"T#absent", "Orders#nope", "x"}
	geometries := []struct{ slots, items int }{{1, 2}, {1, 40}, {3, 17}, {7, 300}, {64, 1000}, {97, 513}, {500, 800}}
	// scratch > 0 partitions the windows (partitions of a few records, single buckets
	// larger than the scratch); 0 keeps the default, which fills windows this small directly.
	pools := []struct{ bufSize, n, max, scratch int }{{4096, 2, 2, 0}, {4096, 4, 3, 24}, {4096, 2, 2, 100}, {8192, 3, 0, 600}, {64 << 10, 8, 8, 0}, {64 << 10, 3, 3, 4096}}
	lookups, hits, maxPasses, partitioned := 0, 0, 0, 0
	for _, g := range geometries {
		for _, fill := range []int{0, 1, (g.items - 1) / 2, g.items - 1} {
			name := fmt.Sprintf("slots=%d/items=%d/fill=%d", g.slots, g.items, fill)
			startTs := int64(1_700_000_000_000) + rng.Int64N(1e9)
			puts := randomPuts(rng, pool, fill, startTs)
			var prevPhy, prevTs int64
			if rng.IntN(2) == 0 {
				prevPhy, prevTs = rng.Int64N(1<<30), startTs-rng.Int64N(5000)
			}
			src := buildIndex(t, g.slots, g.items, prevPhy, prevTs, puts)
			var outs [][]byte
			for _, p := range pools {
				bp := newPool(t, p.bufSize, p.n)
				restore := setScratch(p.scratch)
				out, res, err := compactMem(t, src, Options{Slots: g.slots, Items: g.items, Pool: bp, MaxBuffers: p.max})
				restore()
				partitioned += res.Partitioned
				if err != nil {
					t.Fatalf("%s: compact with %d x %d B buffers: %v", name, p.n, p.bufSize, err)
				}
				if want := reference(t, src, g.slots, g.items, p.bufSize); !bytes.Equal(out, want) {
					t.Fatalf("%s: %d x %d B buffers (%d passes): output differs from the reference", name, p.n, p.bufSize, res.Passes)
				}
				if res.Entries != fill || res.Size != int64(len(out)) || res.LocalSize != src.size() {
					t.Fatalf("%s: result %+v", name, res)
				}
				outs = append(outs, out)
				maxPasses = max(maxPasses, res.Passes)
			}
			ix, err := index.OpenIndexFile(src, src.size(), g.slots, g.items)
			if err != nil {
				t.Fatal(err)
			}
			tf := &memFile{b: outs[0]}
			tx, err := index.OpenTix(tf, tf.size())
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ranges := queryRanges(rng, ix, puts, startTs, 6, 1)
			buf := make([]byte, 64<<10)
			for _, key := range append(pool, absent...) {
				for _, r := range ranges {
					for _, maxN := range []int{0, 1, 3} {
						want, err := ix.Lookup(key, r[0], r[1], maxN)
						if err != nil {
							t.Fatal(err)
						}
						tf.reads = 0
						got, err := tx.Lookup(key, r[0], r[1], maxN, buf)
						if err != nil {
							t.Fatalf("%s: lookup %q: %v", name, key, err)
						}
						if tf.reads > 2 {
							t.Fatalf("%s: lookup %q took %d reads", name, key, tf.reads)
						}
						if !sameItems(want, got) {
							t.Fatalf("%s: lookup %q in [%d, %d] max %d:\nchain walk %v\ncompacted  %v", name, key, r[0], r[1], maxN, want, got)
						}
						lookups++
						hits += len(got)
					}
				}
			}
			// Every item is in the compacted form, and nothing else.
			var all []index.TixItem
			if err := tx.Items(make([]byte, 256), func(_ int, it index.TixItem) error {
				all = append(all, it)
				return nil
			}); err != nil {
				t.Fatalf("%s: items: %v", name, err)
			}
			if len(all) != fill {
				t.Fatalf("%s: %d items in the compacted form, want %d", name, len(all), fill)
			}
		}
	}
	t.Logf("%d lookups compared, %d items found; up to %d passes, %d windows partitioned", lookups, hits, maxPasses, partitioned)
	if hits == 0 || maxPasses < 3 || partitioned == 0 {
		t.Fatalf("%d items found, at most %d passes, %d windows partitioned: the test compares too little", hits, maxPasses, partitioned)
	}
}

func sameItems(want []index.Item, got []index.TixItem) bool {
	if len(want) != len(got) {
		return false
	}
	for i, w := range want {
		g := got[i]
		if w.KeyHash != g.KeyHash || w.PhyOffset != g.PhyOffset || w.TimeDiff != g.TimeDiff {
			return false
		}
	}
	return true
}

// TestNonMonotonicTimes documents the one difference from the broker's chain walk: the
// walk stops at the first item older than begin, whatever its key, so with store times
// that go backwards it can miss matches the compacted lookup finds. The compacted lookup
// returns every item in range, newest first: a superset, in the same order.
func TestNonMonotonicTimes(t *testing.T) {
	const base = 1_700_000_000_000
	puts := []put{
		{"T#c", 50, base},           // sets the file's BeginTimestamp
		{"T#a", 100, base + 50_000}, // in [base+40s, base+100s]
		{"T#b", 200, base + 10_000}, // stored later, but older than begin: the walk stops here
		{"T#a", 300, base + 60_000},
	}
	src := buildIndex(t, 1, 10, 0, 0, puts) // one slot: one chain
	out, _, err := compactMem(t, src, Options{Slots: 1, Items: 10, Pool: newPool(t, 4096, 2)})
	if err != nil {
		t.Fatal(err)
	}
	ix, _ := index.OpenIndexFile(src, src.size(), 1, 10)
	tx, err := index.OpenTix(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	begin, end := int64(base+40_000), int64(base+100_000)
	walk, _ := ix.Lookup("T#a", begin, end, 0)
	got, err := tx.Lookup("T#a", begin, end, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(walk) != 1 || walk[0].PhyOffset != 300 {
		t.Fatalf("chain walk found %+v, want only offset 300 (it stops at T#b)", walk)
	}
	if len(got) != 2 || got[0].PhyOffset != 300 || got[1].PhyOffset != 100 {
		t.Fatalf("compacted lookup found %+v, want offsets 300 then 100", got)
	}
}
