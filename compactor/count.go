package compactor

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
)

// count is the first pass: it reads the whole IndexFile in order, computing its CRC-32C,
// checking every slot head and item as index.IndexFile's reader does, counting the items
// of each bucket and the ranges of their offsets and time diffs. It ends with c.h set and
// c.first holding every bucket's first item index.
func (c *compaction) count() error {
	hdr := c.ix.Header()
	var crc uint32
	minPhy, maxPhy := int64(math.MaxInt64), int64(math.MinInt64)
	minTD, maxTD := int32(math.MaxInt32), int32(math.MinInt32)
	be := binary.BigEndian

	// Header and slot table: every head is 0 or a written item.
	slotsEnd := int64(index.IndexHeaderSize) + int64(c.ix.SlotNum())*index.IndexSlotSize
	err := c.read(0, slotsEnd, func(p []byte, off int64) error {
		crc = crc32.Update(crc, segment.Castagnoli, p)
		for i := max(0, index.IndexHeaderSize-off); i+index.IndexSlotSize <= int64(len(p)); i += index.IndexSlotSize {
			head := int32(be.Uint32(p[i:]))
			if head < 0 || (head > 0 && head >= hdr.IndexCount) {
				slot := (off + i - index.IndexHeaderSize) / index.IndexSlotSize
				return fmt.Errorf("%w: slot %d points at item %d, items are 1..%d", index.ErrCorruptIndex, slot, head, hdr.IndexCount-1)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Item 0 (never written) and the written items.
	itemsEnd := c.itemsOffset(c.n + 1)
	firstItem := c.itemsOffset(1)
	number := int32(0)
	err = c.read(c.itemsOffset(0), itemsEnd, func(p []byte, off int64) error {
		crc = crc32.Update(crc, segment.Castagnoli, p)
		c.itemsCRC = crc32.Update(c.itemsCRC, segment.Castagnoli, p[min(int64(len(p)), max(0, firstItem-off)):])
		for i := 0; i+index.IndexItemSize <= len(p); i += index.IndexItemSize {
			n := number
			number++
			if n == 0 {
				continue
			}
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
			b, _ := index.TixBucket(keyHash, c.bits)
			c.first[b]++
			minPhy, maxPhy = min(minPhy, phy), max(maxPhy, phy)
			minTD, maxTD = min(minTD, td), max(maxTD, td)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The preallocated tail: only its checksum matters.
	err = c.read(itemsEnd, c.srcSize, func(p []byte, _ int64) error {
		crc = crc32.Update(crc, segment.Castagnoli, p)
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
	// Counts to first item indexes (exclusive prefix sums).
	sum := uint32(0)
	for b, n := range c.first {
		c.first[b] = sum
		sum += n
	}
	if int(sum) != c.n {
		panic(fmt.Sprintf("BUG: counted %d items of %d", sum, c.n))
	}
	return nil
}
