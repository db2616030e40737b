package compactor

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/tierd/tierd/index"
)

// FuzzCompact compacts arbitrary bytes as IndexFiles of small geometries. Compaction
// fails with index.ErrCorruptIndex or produces a valid compacted index holding exactly
// the source's items; it never panics and always gives back its buffers.
func FuzzCompact(f *testing.F) {
	for _, g := range goldenCases {
		src := buildIndex(f, g.slots, g.items, 0, 0, goldenPuts(f, g.name, g.puts, g.items))
		if g.items <= 64 {
			f.Add(src.b, uint8(g.slots-1), uint8(g.items-1), false)
		}
	}
	var puts []put
	for i := range 30 {
		puts = append(puts, put{fmt.Sprintf("T#k%d", i%7), int64(i) * 100, 1_700_000_000_000 + int64(i)*700})
	}
	f.Add(buildIndex(f, 5, 40, 0, 0, puts).b, uint8(4), uint8(39), true)
	f.Fuzz(func(t *testing.T, data []byte, slotSel, itemSel uint8, partitioned bool) {
		slots, items := 1+int(slotSel%8), 2+int(itemSel%63)
		size := int(index.IndexFileSize(slots, items))
		src := &memFile{b: make([]byte, size)}
		copy(src.b, data)
		opts := Options{Slots: slots, Items: items, Pool: newPool(t, 4096, 3)}
		if partitioned {
			defer setScratch(16)()
		}
		out, res, err := compactMem(t, src, opts)
		if err != nil {
			if !errors.Is(err, index.ErrCorruptIndex) {
				t.Fatalf("compact: %v", err)
			}
			return
		}
		ix, err := index.OpenIndexFile(src, src.size(), slots, items)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := index.OpenTix(bytes.NewReader(out), int64(len(out)))
		if err != nil {
			t.Fatalf("compacted output does not open: %v", err)
		}
		want := map[index.TixItem]int{}
		if err := ix.Items(nil, func(_ int, it index.Item) error {
			want[index.TixItem{KeyHash: it.KeyHash, PhyOffset: it.PhyOffset, TimeDiff: it.TimeDiff}]++
			return nil
		}); err != nil {
			t.Fatalf("compaction accepted items the reader refuses: %v", err)
		}
		n := 0
		if err := tx.Items(nil, func(_ int, it index.TixItem) error {
			want[it]--
			n++
			return nil
		}); err != nil {
			t.Fatalf("compacted output is invalid: %v", err)
		}
		for it, c := range want {
			if c != 0 {
				t.Fatalf("item %+v: %d more in the source", it, c)
			}
		}
		if n != ix.Len() || res.Entries != n {
			t.Fatalf("%d items compacted, source has %d", n, ix.Len())
		}
	})
}

// FuzzRehydrate rehydrates arbitrary bytes as compacted indexes into IndexFiles of small
// geometries. Rehydration fails with index.ErrCorruptTix exactly when the bytes are not a
// valid compacted index (index.Tix.Items refuses them), or writes an IndexFile of the
// geometry's size whose slot chains reach every item once and whose items are exactly
// the compacted index's; it never panics and always gives back its buffers.
func FuzzRehydrate(f *testing.F) {
	for _, g := range goldenCases {
		src := buildIndex(f, g.slots, g.items, 0, 0, goldenPuts(f, g.name, g.puts, g.items))
		out, _, err := compactMem(f, src, Options{Slots: g.slots, Items: g.items, Pool: newPool(f, 4096, 2)})
		if err != nil {
			f.Fatal(err)
		}
		if len(out) <= 4096 {
			f.Add(out, uint8(g.slots), uint8(0))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, slotSel, itemSel uint8) {
		tx, err := index.OpenTix(bytes.NewReader(data), int64(len(data)))
		var want map[index.TixItem]int
		if err == nil {
			want = map[index.TixItem]int{}
			err = tx.Items(nil, func(_ int, it index.TixItem) error {
				want[it]++
				return nil
			})
		}
		// Small geometries only: the header's own may be anything up to 2 GiB.
		slots, items := 1+int(slotSel%16), 2+int(itemSel%8)
		if tx != nil {
			items += tx.Len()
		}
		out, res, rerr := rehydrateMem(t, data, RehydrateOptions{Slots: slots, Items: items, Pool: newPool(t, 4096, 2)})
		if err != nil {
			if !errors.Is(rerr, index.ErrCorruptTix) {
				t.Fatalf("invalid compacted index (%v): rehydrate says %v", err, rerr)
			}
			return
		}
		if rerr != nil {
			t.Fatalf("valid compacted index: rehydrate: %v", rerr)
		}
		rf := &memFile{b: out}
		rx, err := index.OpenIndexFile(rf, rf.size(), slots, items)
		if err != nil {
			t.Fatalf("rehydrated file does not open: %v", err)
		}
		if rx.Len() != tx.Len() || res.Entries != tx.Len() {
			t.Fatalf("%d items rehydrated, the compacted index has %d", rx.Len(), tx.Len())
		}
		reached := 0
		if err := rx.SlotHeads(nil, func(slot int, head int32) error {
			for n := head; n > 0; reached++ {
				it, err := rx.Item(n)
				if err != nil {
					return err
				}
				if int(it.KeyHash)%slots != slot || it.PrevIndex >= n {
					return fmt.Errorf("slot %d reaches item %+v", slot, it)
				}
				want[index.TixItem{KeyHash: it.KeyHash, PhyOffset: it.PhyOffset, TimeDiff: it.TimeDiff}]--
				n = it.PrevIndex
			}
			return nil
		}); err != nil {
			t.Fatalf("rehydrated file: %v", err)
		}
		for it, c := range want {
			if c != 0 {
				t.Fatalf("item %+v: %d more in the compacted index", it, c)
			}
		}
		if reached != tx.Len() {
			t.Fatalf("slot chains reach %d of %d items", reached, tx.Len())
		}
	})
}
