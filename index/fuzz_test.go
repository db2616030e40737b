package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"
)

func FuzzIndexFile(f *testing.F) {
	var puts []put
	for i := range 12 {
		puts = append(puts, put{fmt.Sprintf("T#k%d", i%5), int64(i) * 100, 1_000_000 + int64(i)*700})
	}
	for _, sz := range [][2]int{{3, 16}, {1, 4}, {7, 13}} {
		slots, items := sz[0], sz[1]
		n := min(len(puts), items-1)
		f.Add(buildIndex(f, slots, items, puts[:n]).b, uint8(slots-1), uint8(items-1))
	}
	f.Fuzz(func(t *testing.T, data []byte, slotSel, itemSel uint8) {
		slots, items := 1+int(slotSel%8), 1+int(itemSel%16)
		size := int(IndexFileSize(slots, items))
		b := make([]byte, size)
		copy(b, data)
		ix, err := OpenIndexFile(bytes.NewReader(b), int64(size), slots, items)
		if err != nil {
			if !errors.Is(err, ErrCorruptIndex) {
				t.Fatalf("open: %v", err)
			}
			return
		}
		n := 0
		itemsErr := ix.Items(nil, func(slot int, it Item) error {
			n++
			if slot < 0 || slot >= slots || it.PrevIndex >= it.Number || int(it.Number) != n {
				t.Fatalf("item %+v in slot %d", it, slot)
			}
			return nil
		})
		if itemsErr == nil && n != ix.Len() {
			t.Fatalf("%d items, Len %d", n, ix.Len())
		}
		heads := 0
		_ = ix.SlotHeads(make([]byte, 8), func(slot int, head int32) error {
			heads++
			if head < 1 || int(head) > ix.Len() {
				t.Fatalf("slot %d head %d", slot, head)
			}
			return nil
		})
		for s := range slots {
			// keys hashing to each slot, through their hash
			found, err := ix.LookupHash(int32(s), math.MinInt64, math.MaxInt64, 0)
			if err != nil && !errors.Is(err, ErrCorruptIndex) {
				t.Fatalf("lookup: %v", err)
			}
			if len(found) > ix.Len() {
				t.Fatalf("%d found in %d items", len(found), ix.Len())
			}
		}
		if _, err := ix.Lookup("T#k1", 0, math.MaxInt64, 2); err != nil && !errors.Is(err, ErrCorruptIndex) {
			t.Fatalf("lookup: %v", err)
		}
	})
}

func FuzzKafkaIndex(f *testing.F) {
	mf := &memFile{}
	w, _ := NewOffsetIndexWriter(mf, 80)
	for i := range 5 {
		_ = w.Append(OffsetEntry{int32(i * 3), int32(i * 4100)})
	}
	f.Add(mf.b)
	f.Add(mf.b[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		var last OffsetEntry
		n, err := ScanOffsetIndex(bytes.NewReader(b), int64(len(b)), make([]byte, 16), func(i int, e OffsetEntry) error {
			if i > 0 && (e.RelOffset <= last.RelOffset || e.Position < last.Position) {
				t.Fatalf("entry %d %+v after %+v", i, e, last)
			}
			last = e
			return nil
		})
		if err != nil && !errors.Is(err, ErrCorruptIndex) {
			t.Fatal(err)
		}
		if n < 0 || n*OffsetEntrySize > len(b) {
			t.Fatalf("n = %d", n)
		}
		if err == nil && n*OffsetEntrySize < len(b) {
			// the used part ends at an all-zero entry
			if e := b[n*OffsetEntrySize : (n+1)*OffsetEntrySize]; binary.BigEndian.Uint64(e) != 0 {
				t.Fatalf("stopped at non-zero entry %d", n)
			}
		}
	})
}

func FuzzKafkaTimeIndex(f *testing.F) {
	mf := &memFile{}
	w, _ := NewTimeIndexWriter(mf, 120)
	for i := range 5 {
		_ = w.MaybeAppend(int64(1000+i*10), int32(i*3), false)
	}
	f.Add(mf.b)
	f.Add(mf.b[:36])
	f.Fuzz(func(t *testing.T, b []byte) {
		var last TimeEntry
		n, err := ScanTimeIndex(bytes.NewReader(b), int64(len(b)), make([]byte, 24), func(i int, e TimeEntry) error {
			if i > 0 && (e.Timestamp < last.Timestamp || e.RelOffset < last.RelOffset) {
				t.Fatalf("entry %d %+v after %+v", i, e, last)
			}
			last = e
			return nil
		})
		if err != nil && !errors.Is(err, ErrCorruptIndex) {
			t.Fatal(err)
		}
		if n < 0 || n*TimeEntrySize > len(b) {
			t.Fatalf("n = %d", n)
		}
	})
}
