package compactor

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/tierd/tierd/index"
)

// directAlign is the alignment O_DIRECT reads need (offset, length, memory).
const directAlign = 4096

// count is the first pass: it reads the whole IndexFile in order, computing its CRC-32C,
// checking every slot head and item as index.IndexFile's reader does, counting the items
// of each bucket and the ranges of their offsets and time diffs. It ends with c.h set and
// every bucket's first record index in c.bk.
//
// Reads outside the items are aligned (offset, length and buffer on 4 KiB) so that a
// source reading with O_DIRECT where it can (localfile.ReadOptions.Direct) keeps the slot
// table and the preallocated tail out of the page cache, and reads holes without filling
// the cache with zero pages; the items are read unaligned, through the page cache, where
// the later passes find them.
func (c *compaction) count() error {
	hdr := c.ix.Header()
	minPhy, maxPhy := int64(math.MaxInt64), int64(math.MinInt64)
	minTD, maxTD := int32(math.MaxInt32), int32(math.MinInt32)
	be := binary.BigEndian
	slotsEnd := c.itemsOffset(0)
	firstItem, itemsEnd := c.itemsOffset(1), c.itemsOffset(c.n+1)
	aligned := len(c.countRing[0]) / directAlign * directAlign
	if aligned == 0 { // buffers too small for O_DIRECT: page cache reads
		aligned = len(c.countRing[0])
	}
	headEnd := firstItem / directAlign * directAlign
	tailStart := min(c.srcSize, (itemsEnd+directAlign-1)/directAlign*directAlign)
	extents := []extent{
		{0, headEnd, aligned}, {headEnd, firstItem, aligned},
		{firstItem, itemsEnd, itemChunk(c.countRing[0])},
		{itemsEnd, tailStart, aligned}, {tailStart, c.srcSize, aligned},
	}
	shift := c.shift()
	number := int32(1)
	var crc uint32
	err := c.readAhead(c.ctx, c.countRing, 0, extents, func(ch *chunk) error {
		p, off := ch.p, ch.off
		if off == firstItem {
			c.itemsSeed = crc // the CRC-32C of everything before the items
		}
		crc = ch.crc
		switch {
		case off < firstItem:
			// Header, slot table and item 0: every slot head is 0 or a written item.
			lo, hi := max(off, index.IndexHeaderSize), min(off+int64(len(p)), slotsEnd)
			for o := lo; o+index.IndexSlotSize <= hi; o += index.IndexSlotSize {
				head := int32(be.Uint32(p[o-off:]))
				if head < 0 || (head > 0 && head >= hdr.IndexCount) {
					slot := (o - index.IndexHeaderSize) / index.IndexSlotSize
					return fmt.Errorf("%w: slot %d points at item %d, items are 1..%d", index.ErrCorruptIndex, slot, head, hdr.IndexCount-1)
				}
			}
		case off < itemsEnd:
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
				c.bk[index.Fmix32(uint32(keyHash))>>shift].first++
				minPhy, maxPhy = min(minPhy, phy), max(maxPhy, phy)
				minTD, maxTD = min(minTD, td), max(maxTD, td)
			}
			c.itemsCRC = crc
		}
		// The preallocated tail: only its checksum matters.
		return nil
	})
	if err != nil {
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
	// Counts to first record indexes (exclusive prefix sums).
	sum := uint32(0)
	for b := range c.bk {
		st := &c.bk[b]
		n := st.first
		st.first = sum
		sum += n
	}
	if int(sum) != c.n {
		panic(fmt.Sprintf("BUG: counted %d items of %d", sum, c.n))
	}
	return nil
}

// shift is the right shift that turns a mixed key hash into its bucket.
func (c *compaction) shift() uint { return uint(32 - c.bits) }
