package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzTix feeds arbitrary bytes to the compacted-index decoder. With fixCRC set the
// header's CRC is recomputed first, so mutated header fields reach the checks behind it.
// Nothing may panic; every error about the bytes wraps ErrCorruptTix; an index that
// passes Items is self-consistent: each of its items is found by its own lookup.
func FuzzTix(f *testing.F) {
	for _, name := range []string{"small", "medium"} {
		b, err := os.ReadFile(filepath.Join("testdata", "tix", name+".tix"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, fixCRC bool) {
		if fixCRC && len(b) >= TixHeaderSize {
			b = bytes.Clone(b)
			binary.BigEndian.PutUint32(b[92:], crc32.Checksum(b[:92], castagnoli))
		}
		tx, err := OpenTix(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrCorruptTix) {
				t.Fatalf("open: %v", err)
			}
			return
		}
		for _, h := range []int32{0, 1, 31, 1 << 20, math.MaxInt32} {
			found, err := tx.LookupHash(h, math.MinInt64, math.MaxInt64, 0, make([]byte, 24))
			if err != nil && !errors.Is(err, ErrCorruptTix) {
				t.Fatalf("lookup: %v", err)
			}
			if len(found) > tx.Len() {
				t.Fatalf("%d found in %d items", len(found), tx.Len())
			}
		}
		var items []TixItem
		err = tx.Items(make([]byte, 48), func(_ int, it TixItem) error {
			items = append(items, it)
			return nil
		})
		if err != nil {
			if !errors.Is(err, ErrCorruptTix) {
				t.Fatalf("items: %v", err)
			}
			return
		}
		if len(items) != tx.Len() {
			t.Fatalf("%d items, header says %d", len(items), tx.Len())
		}
		for i, it := range items {
			if i == 32 { // enough to check consistency; keeps each run fast
				break
			}
			found, err := tx.LookupHash(it.KeyHash, math.MinInt64, math.MaxInt64, 0, nil)
			if err != nil {
				t.Fatalf("lookup of a checked index: %v", err)
			}
			ok := false
			for _, f := range found {
				ok = ok || f == it
			}
			if !ok {
				t.Fatalf("item %+v not found by its own lookup (%v)", it, found)
			}
		}
	})
}
