package compactor

import (
	"cmp"
	"hash/crc32"
	"math"
	"slices"
	"testing"

	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
)

// reference compacts src the obvious way, everything in memory, straight from
// index/FORMAT.md: the streaming compactor must produce exactly these bytes.
func reference(t testing.TB, src *memFile, slots, items, bufSize int) []byte {
	t.Helper()
	ix, err := index.OpenIndexFile(src, src.size(), slots, items)
	if err != nil {
		t.Fatal(err)
	}
	bits := index.TixBits(ix.Len(), maxBits(bufSize))
	type rec struct {
		bucket, rem uint32
		it          index.Item
	}
	var recs []rec
	minPhy, maxPhy := int64(math.MaxInt64), int64(math.MinInt64)
	minTD, maxTD := int32(math.MaxInt32), int32(math.MinInt32)
	if err := ix.Items(nil, func(_ int, it index.Item) error {
		b, r := index.TixBucket(it.KeyHash, bits)
		recs = append(recs, rec{b, r, it})
		minPhy, maxPhy = min(minPhy, it.PhyOffset), max(maxPhy, it.PhyOffset)
		minTD, maxTD = min(minTD, it.TimeDiff), max(maxTD, it.TimeDiff)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		minPhy, maxPhy, minTD, maxTD = 0, 0, 0, 0
	}
	h, err := index.TixHeader{
		Bits: bits, Items: len(recs), MinPhyOffset: minPhy, MaxPhyOffset: maxPhy, MinTimeDiff: minTD, MaxTimeDiff: maxTD,
		SourceSlots: slots, SourceItems: items, SourceCRC32C: crc32.Checksum(src.b, segment.Castagnoli), Source: ix.Header(),
	}.WithWidths()
	if err != nil {
		t.Fatal(err)
	}
	// Buckets in order; newest (highest item number) first within a bucket.
	slices.SortFunc(recs, func(a, b rec) int {
		return cmp.Or(cmp.Compare(a.bucket, b.bucket), cmp.Compare(b.it.Number, a.it.Number))
	})
	out := index.AppendTixHeader(nil, h)
	codec := h.Codec()
	var tmp [index.TixMaxRecordSize]byte
	dir := make([]index.TixDirEntry, h.Buckets())
	i := 0
	for b := range dir {
		dir[b].First = uint32(i)
		start := len(out)
		for ; i < len(recs) && recs[i].bucket == uint32(b); i++ {
			out = append(out, codec.Encode(&tmp, recs[i].rem, recs[i].it.PhyOffset, recs[i].it.TimeDiff)...)
		}
		dir[b].CRC32C = crc32.Checksum(out[start:], segment.Castagnoli)
	}
	dirStart := len(out)
	for _, e := range dir {
		out = index.AppendTixDirEntry(out, e)
	}
	out = index.AppendTixDirEntry(out, index.TixDirEntry{First: uint32(len(recs)), CRC32C: crc32.Checksum(out[dirStart:], segment.Castagnoli)})
	if int64(len(out)) != h.Size() {
		t.Fatalf("reference: %d bytes, header says %d", len(out), h.Size())
	}
	return out
}
