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
