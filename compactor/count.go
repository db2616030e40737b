package compactor

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
)

// directAlign is the alignment O_DIRECT reads need (offset, length, memory).
const directAlign = 4096

// count is the first pass: it reads the whole IndexFile in order, computing its CRC-32C,
// checking every slot head and item as index.IndexFile's reader does, counting the items
// of each bucket and the ranges of their offsets and time diffs. It ends with c.h set and
// every bucket's first record index (and split) in c.bk.
//
// Reads outside the items are aligned (offset, length and buffer on 4 KiB) so that a
// source reading with O_DIRECT where it can (localfile.ReadOptions.Direct) keeps the slot
// table and the preallocated tail out of the page cache, and reads holes without filling
// the cache with zero pages; the items are read unaligned, through the page cache, where
// the later passes find them.
func (c *compaction) count() error {
	hdr := c.ix.Header()
	var crc uint32
	minPhy, maxPhy := int64(math.MaxInt64), int64(math.MinInt64)
	minTD, maxTD := int32(math.MaxInt32), int32(math.MinInt32)
	be := binary.BigEndian
	slotsEnd := c.itemsOffset(0)
	firstItem, itemsEnd := c.itemsOffset(1), c.itemsOffset(c.n+1)

	// Header, slot table and item 0: every slot head is 0 or a written item.
	other := func(p []byte, off int64) error {
		crc = crc32.Update(crc, segment.Castagnoli, p)
		lo, hi := max(off, index.IndexHeaderSize), min(off+int64(len(p)), slotsEnd)
		for o := lo; o+index.IndexSlotSize <= hi; o += index.IndexSlotSize {
			head := int32(be.Uint32(p[o-off:]))
			if head < 0 || (head > 0 && head >= hdr.IndexCount) {
				slot := (o - index.IndexHeaderSize) / index.IndexSlotSize
				return fmt.Errorf("%w: slot %d points at item %d, items are 1..%d", index.ErrCorruptIndex, slot, head, hdr.IndexCount-1)
			}
		}
		return nil
	}
	aligned := len(c.in) / directAlign * directAlign
	headEnd := firstItem / directAlign * directAlign
	if err := c.readChunks(c.ctx, c.in, 0, headEnd, aligned, other); err != nil {
		return err
	}
	if err := c.readChunks(c.ctx, c.in, headEnd, firstItem, aligned, other); err != nil {
		return err
	}
	// The written items, part by part; the second part's start is noted per bucket.
	number := int32(1)
	pt := &c.parts[0]
	items := func(p []byte, _ int64) error {
		crc = crc32.Update(crc, segment.Castagnoli, p)
		pt.crc = crc32.Update(pt.crc, segment.Castagnoli, p)
		for i := 0; i+index.IndexItemSize <= len(p); i += index.IndexItemSize {
			n := number
			number++
			q := p[i : i+index.IndexItemSize]
			keyHash := int32(be.Uint32(q))
			phy := int64(be.Uint64(q[4:]))
			td := int32(be.Uint32(q[12:]))
			prev := int32(be.Uint32(q[16:]))
			switch {
			case keyHash < 0:
				return fmt.Errorf("%w: item %d has negative key hash %d", index.ErrCorruptIndex, n, keyHash)
			case td < 0:
				return fmt.Errorf("%w: item %d has negative timeDiff %d", index.ErrCorruptIndex, n, td)
			case prev < 0 || prev >= n:
				return fmt.Errorf("%w: item %d links to item %d, not to an older one", index.ErrCorruptIndex, n, prev)
			}
			c.bk[index.Fmix32(uint32(keyHash))>>c.shift()].first++
			minPhy, maxPhy = min(minPhy, phy), max(maxPhy, phy)
			minTD, maxTD = min(minTD, td), max(maxTD, td)
		}
		return nil
	}
	for k := range c.parts {
		pt = &c.parts[k]
		if k == 1 {
			for b := range c.bk {
				c.bk[b].split = c.bk[b].first
			}
		}
		if err := c.readChunks(c.ctx, c.in, c.itemsOffset(pt.first), c.itemsOffset(pt.end), itemChunk(c.in), items); err != nil {
			return err
		}
	}
	// The preallocated tail: only its checksum matters.
	tail := func(p []byte, _ int64) error {
		crc = crc32.Update(crc, segment.Castagnoli, p)
		return nil
	}
	tailStart := min(c.srcSize, (itemsEnd+directAlign-1)/directAlign*directAlign)
	if err := c.readChunks(c.ctx, c.in, itemsEnd, tailStart, aligned, tail); err != nil {
		return err
	}
	if err := c.readChunks(c.ctx, c.in, tailStart, c.srcSize, aligned, tail); err != nil {
		return err
	}
	if c.n == 0 {
		minPhy, maxPhy, minTD, maxTD = 0, 0, 0, 0
	}
	h, err := index.TixHeader{
		Bits: c.bits, Items: c.n,
		MinPhyOffset: minPhy, MaxPhyOffset: maxPhy, MinTimeDiff: minTD, MaxTimeDiff: maxTD,
		SourceSlots: c.ix.SlotNum(), SourceItems: c.ix.ItemNum(), SourceCRC32C: crc, Source: hdr,
	}.WithWidths()
	if err != nil {
		return fmt.Errorf("BUG: %w", err)
	}
	c.h, c.codec = h, h.Codec()
	// Counts to first record indexes (exclusive prefix sums); the first part's items per
	// bucket to where its records start.
	sum := uint32(0)
	for b := range c.bk {
		st := &c.bk[b]
		n := st.first
		st.first = sum
		sum += n
		st.split = sum - st.split
	}
	if int(sum) != c.n {
		panic(fmt.Sprintf("BUG: counted %d items of %d", sum, c.n))
	}
	return nil
}

// shift is the right shift that turns a mixed key hash into its bucket.
func (c *compaction) shift() uint { return uint(32 - c.bits) }
