package compactor

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"time"
	"unsafe"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
)

// A large window is filled in two sequential steps instead of placing each record at a
// random spot of many MiB (a cache and TLB miss per record):
//
//  1. Partition (during the pass over the items): the window's buckets are cut into
//     partitions, runs of at most 256 buckets whose records take at most
//     partitionScratch bytes (or a single bucket, however large). Each record goes, in
//     the order the items arrive, to the next free record slot of its partition's own
//     range of the window, through a cache-line staging buffer per partition that is
//     flushed whole (software write-combining); the partition map notes in one byte per
//     slot which of the partition's buckets the record belongs to.
//  2. Place (after the pass): each partition, in order, is copied to a scratch buffer
//     and its records are stored at their final slots within the partition's range
//     (cache-sized: the stores hit the L2 cache); a partition of a single bucket only
//     needs its records reversed (newest first).
//
// Records land exactly where the direct fill puts them: within a bucket, items keep the
// order they arrive in, and the slots a partition's buckets take are the partition's.

var (
	// partitionScratch is the most bytes of records a partition of several buckets
	// holds (an eighth of a buffer if that is less): what is permuted at once, a part of
	// the L2 cache. Tests make it small.
	partitionScratch = 512 << 10
	// maxPartitions bounds the partitions of a window (and the staging buffers, 80 bytes
	// each, fewer when they come from the heap); a window that needs more is filled
	// directly.
	maxPartitions = 1024
	// fillChunk is the size of the filling passes' reads (two in flight): the chunk being
	// partitioned stays in the cache next to the staging buffers.
	fillChunk = 256 << 10
)

const (
	// maxPartitionBuckets is the most buckets of a partition: a byte tells them apart.
	maxPartitionBuckets = 256
	// lineBytes is the size of a partition's staging buffer: a cache line.
	lineBytes = 64
	// stagingStride is the room of a staging buffer: a line, and the 16 bytes a record
	// at its end is stored with.
	stagingStride = lineBytes + 16
	// scratchPad precedes the scratch records, so that a record's last 16 bytes can be
	// loaded as two words whatever its width. The scratch holds twice partitionScratch
	// after it: a partition's records as they arrived, and room to permute them into.
	scratchPad = 16
)

// partition is a run of a window's buckets and the range [start, end) of record slots
// they take in it.
type partition struct {
	b0         uint32 // first bucket
	start, end uint32 // record slots
	cur        uint32 // the next slot the partition step fills
	fill       uint32 // records in the staging buffer
	nonEmpty   uint32 // buckets with records in the window
}

// maxHeapRead is the most a compaction takes from the heap for one of its pieces (input
// reads, partitioning state) when the state buffer has no room: the largest per-call
// buffer tierd allocates in I/O paths.
const maxHeapRead = 64 << 10

// arena hands out pieces of a buffer.
type arena struct{ b []byte }

// take returns n bytes (cache-line aligned), or nil when fewer are left.
func (a *arena) take(n int) []byte {
	if n > len(a.b) {
		return nil
	}
	p := a.b[:n:n]
	a.b = a.b[min(len(a.b), (n+lineBytes-1)/lineBytes*lineBytes):]
	return p
}

// takeOrHeap returns n bytes of a, or of the heap when a has no room and n is at most
// maxHeapRead, or nil.
func (a *arena) takeOrHeap(n int) []byte {
	if p := a.take(n); p != nil {
		return p
	}
	if n <= maxHeapRead {
		return make([]byte, n)
	}
	return nil
}

// plan lays out memory once the output's size is known: the filling passes' reads and
// partitioning state in the state buffer after the bucket states, the output window in
// as many buffers as fit (no more than the output needs), and the partition map of the
// window's records, in the state buffer if it fits there or else in a buffer of its own,
// whichever leaves the larger window. It returns the window's buffers, the partition map
// (nil: every window is filled directly) and which of bufs are in use.
func (c *compaction) plan(bufs []*bufpool.Buffer, size int64) ([]*bufpool.Buffer, []byte, []bool) {
	bsize := len(bufs[0].Bytes())
	need := int((size + int64(bsize) - 1) / int64(bsize))
	avail := len(bufs) - 1
	used := make([]bool, len(bufs))
	used[0] = true
	a := arena{c.work}
	if in := a.take(2 * fillChunk); in != nil {
		c.fillRing = splitRing(in, 2)
	} else {
		c.fillRing = splitRing(make([]byte, maxHeapRead), 2)
	}
	c.scratch = a.takeOrHeap(2*min(partitionScratch, bsize/8) + scratchPad)
	c.staging = a.takeOrHeap(maxPartitions * stagingStride)
	if c.staging == nil {
		c.staging = make([]byte, maxHeapRead)
	}
	c.maxParts = min(maxPartitions, len(c.staging)/stagingStride)
	pmap := a.takeOrHeap(2 * c.nb)
	recSize := c.codec.Size()
	// The map holds a byte per record slot of a window of wb buffers.
	sideNeed := func(wb int) int { return int(min(int64(wb*bsize), size)/int64(recSize)) + 2 }
	wb, side := min(need, avail), []byte(nil)
	if c.scratch != nil && pmap != nil && c.n > 0 {
		c.pmap = make16(pmap)
		inWork := min(need, avail)
		for inWork > 0 && sideNeed(inWork) > len(a.b) && sideNeed(inWork) > maxHeapRead {
			inWork--
		}
		own := min(need, avail-1)
		for own > 0 && sideNeed(own) > bsize {
			own--
		}
		switch {
		case inWork > 0 && inWork >= own:
			wb, side = inWork, a.takeOrHeap(sideNeed(inWork))
		case own > 0:
			wb, side = own, bufs[1+own].Bytes()[:sideNeed(own)]
			used[1+own] = true
		}
	}
	for i := 1; i <= wb; i++ {
		used[i] = true
	}
	return bufs[1 : 1+wb], side, used
}

// make16 views b as uint16s (b is 2-byte aligned: it starts a cache line or is from the
// heap); pool memory holds no Go pointers.
func make16(b []byte) []uint16 {
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/2)
}

// partition plans the partitions of the window holding records rLo..rHi-1 of buckets
// bLo..bHi, and reports whether the window is to be partitioned: it is large enough to
// gain from it and the partition map describes it.
func (c *compaction) partition(rLo, rHi int64, bLo, bHi int) bool {
	limit := (len(c.scratch) - scratchPad) / 2 // bytes of records
	if c.side == nil || (rHi-rLo)*int64(c.codec.Size()) <= 2*int64(limit) {
		return false
	}
	rIn0, rIn1 := c.fullRecords()
	scratch := uint32(limit / c.codec.Size()) // records
	c.parts = c.parts[:0]
	var pt *partition
	for b := bLo; b <= bHi; b++ {
		s := max(c.bk[b].first, rIn0)
		e := max(min(c.bucketEnd(b), rIn1), s)
		c.bk[b].cur = e
		if pt == nil || (pt.end > pt.start && pt.end-pt.start+e-s > scratch) || uint32(b)-pt.b0 >= maxPartitionBuckets {
			if len(c.parts) == c.maxParts {
				return false
			}
			c.parts = append(c.parts, partition{b0: uint32(b), start: s, end: s, cur: s})
			pt = &c.parts[len(c.parts)-1]
		}
		pt.end = e
		if e > s {
			pt.nonEmpty++
		}
		c.pmap[b-bLo] = uint16(len(c.parts) - 1)
	}
	return true
}

// fullRecords returns the record slots [rIn0, rIn1) that lie wholly in the window: the
// partitions' ranges. The (at most two) records the window's edges cut are stored
// straight from the scan.
func (c *compaction) fullRecords() (uint32, uint32) {
	size := int64(c.codec.Size())
	lo := max(0, (c.win.start-index.TixHeaderSize+size-1)/size)
	hi := min(int64(c.n), max(0, (c.win.end-index.TixHeaderSize)/size))
	return uint32(lo), uint32(max(lo, hi))
}

// fillPartitioned fills the window of records rLo..rHi-1 (buckets bLo..bHi) as the
// partitions c.partition planned: one pass over the items partitions the records, then
// each partition is placed.
func (c *compaction) fillPartitioned(rLo, rHi int64, bLo, bHi int) error {
	start := time.Now()
	rIn0, rIn1 := c.fullRecords()
	shift, remMask, lo, span := c.bucketFilter(bLo, bHi)
	var (
		be      = binary.BigEndian
		size    = c.codec.Size()
		perLine = uint32(lineBytes / size)
		parts   = c.parts
		pmap    = c.pmap
		side    = c.side
		staging = c.staging
		// The edge buckets (bLo and bHi) may have records outside the window: their
		// arrivals are counted to find each one's slot.
		edgeSeen [2]uint32
	)
	for i := range parts {
		parts[i].cur, parts[i].fill = parts[i].start, 0
	}
	flush := func(k int) {
		pt := &parts[k]
		n := int(pt.fill) * size
		c.win.putSlot(index.TixHeaderSize+int64(pt.cur-pt.fill)*int64(size), staging[k*stagingStride:k*stagingStride+n])
		pt.fill = 0
	}
	// Records are staged top-aligned in 16 bytes (the rest is overwritten by the next
	// record, or never flushed): two word stores whatever the width. A record of at most
	// 8 bytes is packed here (as index.TixCodec.Pack does) and shifted by align-64.
	align := uint(16-size) * 8
	if size <= 8 {
		align -= 64
	}
	var (
		h                  = c.h
		minPhy, maxPhy     = h.MinPhyOffset, h.MaxPhyOffset
		minTD, maxTD       = h.MinTimeDiff, h.MaxTimeDiff
		remShift, offShift = uint(8 * (h.OffWidth + h.TimeWidth)), uint(8 * h.TimeWidth)
	)
	err := c.scan(func(p []byte, first int) error {
		for i := 0; i+index.IndexItemSize <= len(p); i += index.IndexItemSize {
			keyHash := be.Uint32(p[i:])
			m := index.Fmix32(keyHash)
			d := m>>shift - lo
			if d > span { // b < lo wraps around
				continue
			}
			phy := int64(be.Uint64(p[i+4:]))
			td := int32(be.Uint32(p[i+12:]))
			if int32(keyHash) < 0 || phy < minPhy || phy > maxPhy || td < minTD || td > maxTD {
				_, _, err := c.pack(p[i:i+index.IndexItemSize], 0, first+i/index.IndexItemSize)
				return cmp.Or(err, fmt.Errorf("item %d: negative key hash", first+i/index.IndexItemSize))
			}
			if d == 0 || d == span {
				b := int(lo + d)
				e := 0
				if d != 0 {
					e = 1
				}
				r := int64(c.bucketEnd(b)) - 1 - int64(edgeSeen[e])
				edgeSeen[e]++
				if r < int64(c.bk[b].first) {
					return fmt.Errorf("item %d: bucket %d has more items than counted", first+i/index.IndexItemSize, b)
				}
				if r < rLo || r >= rHi {
					continue
				}
				if r < int64(rIn0) || r >= int64(rIn1) { // cut by the window's edge
					recHi, recLo := c.codec.Pack(m&remMask, phy, td)
					c.win.putRecord(index.TixHeaderSize+r*int64(size), recHi, recLo, size)
					continue
				}
			}
			k := int(pmap[d])
			pt := &parts[k]
			if pt.cur == pt.end {
				return fmt.Errorf("item %d: buckets %d.. have more items than counted", first+i/index.IndexItemSize, pt.b0)
			}
			side[pt.cur-rIn0] = byte(lo + d - pt.b0)
			var recHi, recLo uint64
			if size <= 8 { // the record in one word: pack it here, top-aligned
				recHi = (uint64(m&remMask)<<remShift | uint64(phy-minPhy)<<offShift | uint64(uint32(td-minTD))) << align
			} else if recHi, recLo = c.codec.Pack(m&remMask, phy, td); align > 0 {
				recHi, recLo = recHi<<align|recLo>>(64-align), recLo<<align
			}
			o := k*stagingStride + int(pt.fill)*size
			slot := staging[o : o+16]
			be.PutUint64(slot, recHi)
			be.PutUint64(slot[8:], recLo)
			pt.cur++
			if pt.fill++; pt.fill == perLine {
				flush(k)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k := range parts {
		if parts[k].fill > 0 {
			flush(k)
		}
		if parts[k].cur != parts[k].end {
			return fmt.Errorf("compact index file: %w: buckets %d.. have fewer items than counted", segment.ErrSourceChanged, parts[k].b0)
		}
	}
	for e, b := range []int{bLo, bHi} {
		if want := c.bucketEnd(b) - c.bk[b].first; edgeSeen[e] != want && (e == 0 || bHi != bLo) {
			return fmt.Errorf("compact index file: %w: bucket %d has %d items, counted %d", segment.ErrSourceChanged, b, edgeSeen[e], want)
		}
	}
	c.scanTime += time.Since(start)
	start = time.Now()
	defer func() { c.placeTime += time.Since(start) }()
	for k := range parts {
		if err := c.place(&parts[k], rIn0); err != nil {
			return err
		}
	}
	return nil
}

// place stores the records of partition pt, which arrived in item order, at their slots.
func (c *compaction) place(pt *partition, rIn0 uint32) error {
	n := int(pt.end - pt.start)
	size := c.codec.Size()
	if pt.nonEmpty <= 1 {
		// One bucket: its items arrived oldest first, its records run newest first.
		for i, j := pt.start, pt.end-1; i < j; i, j = i+1, j-1 {
			ahi, alo := c.win.getRecord(int64(i), size)
			bhi, blo := c.win.getRecord(int64(j), size)
			c.win.putRecord(index.TixHeaderSize+int64(i)*int64(size), bhi, blo, size)
			c.win.putRecord(index.TixHeaderSize+int64(j)*int64(size), ahi, alo, size)
		}
		return nil
	}
	// The records go from the scratch's first half to the partition's range, or, when the
	// range spans two buffers (a few partitions do), to the scratch's second half first.
	half := (len(c.scratch) - scratchPad) / 2
	scratch := c.scratch[:scratchPad+n*size]
	off := index.TixHeaderSize + int64(pt.start)*int64(size)
	c.win.get(off, scratch[scratchPad:])
	bi, bo := c.win.locate(off - c.win.start)
	var region []byte
	split := bo+int64(n*size) > int64(len(c.win.bufs[bi]))
	if split {
		region = c.scratch[scratchPad+half : scratchPad+half+n*size]
	} else {
		region = c.win.bufs[bi][bo : bo+int64(n*size)]
	}
	side := c.side[pt.start-rIn0 : pt.end-rIn0]
	be := binary.BigEndian
	for i, d := range side {
		b := pt.b0 + uint32(d)
		st := &c.bk[b]
		if st.cur <= max(st.first, rIn0) {
			return fmt.Errorf("compact index file: %w: bucket %d has more items than counted", segment.ErrSourceChanged, b)
		}
		st.cur--
		o := scratchPad + i*size
		at := int(st.cur-pt.start) * size
		storeBE(region[at:at+size], be.Uint64(scratch[o+size-16:]), be.Uint64(scratch[o+size-8:]))
	}
	if split {
		c.win.put(off, region)
	}
	return nil
}
