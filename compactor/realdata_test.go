package compactor

import (
	"bytes"
	"hash/crc32"
	"math"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/tierd/tierd/devtools/realdata"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
)

// realFile copies the file at rel under the shared real-broker data into a temp dir and
// returns the copy's bytes (realdata.Dir skips, or fails under CI=true, without it).
func realFile(t *testing.T, rel string) []byte {
	t.Helper()
	dst := filepath.Join(t.TempDir(), path.Base(rel))
	realdata.CopyFile(t, rel, dst)
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRealIndexFileRehydrates: the RocketMQ 5.1 IndexFile R2 (100 slots, 400 items; one
// item, key "0" without a topic prefix, hash 48) compacts and rehydrates into a file with
// its header that answers every lookup as it does: key "0" and absent keys over time
// ranges around its item, and every key hash from 0 to 9,999 (every slot, 100 times).
func TestRealIndexFileRehydrates(t *testing.T) {
	orig := realFile(t, "rocketmq/r2/store/index/20230320133000025")
	const slots, items = 100, 400
	src := &memFile{b: orig}
	ix, err := index.OpenIndexFile(src, src.size(), slots, items)
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 1 || index.KeyHash("0") != 48 {
		t.Fatalf("R2 holds %d items, KeyHash(\"0\") = %d: not the file the README describes", ix.Len(), index.KeyHash("0"))
	}
	tix, _, err := compactMem(t, src, Options{Slots: slots, Items: items, Pool: newPool(t, 4096, 2)})
	if err != nil {
		t.Fatal(err)
	}
	out, res, err := rehydrateMem(t, tix, RehydrateOptions{Pool: newPool(t, 4096, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != int64(len(orig)) || res.Slots != slots || res.Items != items {
		t.Fatalf("rehydrated %+v, want %d bytes of %d slots, %d items", res, len(orig), slots, items)
	}
	rf := &memFile{b: out}
	rx, err := index.OpenIndexFile(rf, rf.size(), slots, items)
	if err != nil {
		t.Fatal(err)
	}
	if rx.Header() != ix.Header() {
		t.Fatalf("header %+v, original %+v", rx.Header(), ix.Header())
	}
	checkChains(t, "R2", rx)
	h := ix.Header()
	ranges := [][2]int64{{math.MinInt64, math.MaxInt64}, {h.BeginTimestamp, h.EndTimestamp}, {h.BeginTimestamp + 1000, math.MaxInt64},
		{math.MinInt64, h.BeginTimestamp - 1}, {h.EndTimestamp + 1000, math.MaxInt64}}
	found := 0
	for _, key := range []string{"0", "1", "T#0", "absent"} {
		for _, r := range ranges {
			want, _ := ix.Lookup(key, r[0], r[1], 0)
			got, err := rx.Lookup(key, r[0], r[1], 0)
			if err != nil || !sameLookups(want, got) {
				t.Fatalf("lookup %q in [%d, %d]: original %v, rehydrated %v (%v)", key, r[0], r[1], want, got, err)
			}
			found += len(got)
		}
	}
	for hash := int32(0); hash < 10_000; hash++ {
		want, _ := ix.LookupHash(hash, math.MinInt64, math.MaxInt64, 0)
		got, err := rx.LookupHash(hash, math.MinInt64, math.MaxInt64, 0)
		if err != nil || !sameLookups(want, got) {
			t.Fatalf("lookup of hash %d: original %v, rehydrated %v (%v)", hash, want, got, err)
		}
	}
	got, _ := rx.Lookup("0", math.MinInt64, math.MaxInt64, 0)
	if found == 0 || len(got) != 1 || got[0].KeyHash != 48 {
		t.Fatalf("key \"0\" found %v in the rehydrated file, want its one item (hash 48)", got)
	}
	t.Logf("R2: %d bytes -> %d-byte .tix -> %d bytes (crc32c %08x; original's %08x, identical: %v); key \"0\": %+v",
		len(orig), len(tix), len(out), res.CRC32C, crc32.Checksum(orig, segment.Castagnoli), bytes.Equal(orig, out), got[0])
}
