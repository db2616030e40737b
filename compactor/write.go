package compactor

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/internal/failpoint"
	"github.com/tierd/tierd/segment"
)

// write produces the output of size bytes window by window: the header, the item records
// of the window (one pass over the input), the CRC-32C of every bucket the window
// completes, the directory once all buckets are complete. It returns the output's CRC-32C.
func (c *compaction) write(out segment.Writer, size int64) (uint32, error) {
	var (
		crc      uint32
		carry    uint32 // CRC-32C so far of the bucket that runs past the last window
		carryB   = -1
		dirCRC   uint32
		dirReady bool
		hdr      = index.AppendTixHeader(make([]byte, 0, index.TixHeaderSize), c.h)
		span     = c.win.span()
		recSize  = int64(c.codec.Size())
		dirOff   = c.h.DirOffset()
	)
	for ws := int64(0); ws < size; ws += span {
		we := min(ws+span, size)
		c.win.start, c.win.end = ws, we
		c.win.put(0, hdr)
		if c.windowRecords(ws, we) {
			rLo := max(0, (ws-index.TixHeaderSize)/recSize)
			rHi := min(int64(c.n), (we-index.TixHeaderSize+recSize-1)/recSize)
			bLo, bHi := c.bucketOf(rLo), c.bucketOf(rHi-1)
			if err := c.fill(rLo, rHi, bLo, bHi); err != nil {
				return 0, err
			}
			for b := bLo; b <= bHi; b++ {
				lo := index.TixHeaderSize + int64(c.bk[b].first)*recSize
				hi := index.TixHeaderSize + int64(c.bucketEnd(b))*recSize
				bc := uint32(0)
				if b == carryB {
					bc = carry
				}
				bc = c.win.crc(bc, lo, hi)
				if hi <= we {
					c.bk[b].crc = bc
				} else {
					carry, carryB = bc, b
				}
			}
		}
		if we > dirOff {
			if !dirReady {
				dirCRC, dirReady = c.dirCRC(), true
			}
			c.putDir(dirOff, dirCRC)
		}
		var err error
		start := time.Now()
		if crc, err = c.win.flush(out, crc); err != nil {
			return 0, fmt.Errorf("write compacted index: %w", err)
		}
		c.writeTime += time.Since(start)
		failpoint.Hit("compactor.window_written")
	}
	return crc, nil
}

// fill is one pass over the source's items: it places the records rLo..rHi-1, which
// belong to buckets bLo..bHi, in the window. Within a bucket, records run newest first: a
// bucket's cursor starts at the end of its records and counts down as its items arrive,
// oldest first. A large window is partitioned first (see partition.go); a small one, or
// one the partition map cannot describe, is filled straight from the scan.
func (c *compaction) fill(rLo, rHi int64, bLo, bHi int) error {
	c.passes++
	if c.partition(rLo, rHi, bLo, bHi) {
		c.partitioned++
		return c.fillPartitioned(rLo, rHi, bLo, bHi)
	}
	start := time.Now()
	defer func() { c.scanTime += time.Since(start) }()
	for b := bLo; b <= bHi; b++ {
		c.bk[b].cur = c.bucketEnd(b)
	}
	shift, remMask, lo, span := c.bucketFilter(bLo, bHi)
	be, size := binary.BigEndian, c.codec.Size()
	err := c.scan(func(p []byte, first int) error {
		for i := 0; i+index.IndexItemSize <= len(p); i += index.IndexItemSize {
			q := p[i : i+index.IndexItemSize]
			keyHash := be.Uint32(q)
			m := index.Fmix32(keyHash)
			b := m >> shift
			if b-lo > span { // b < lo wraps around
				continue
			}
			st := &c.bk[b]
			if st.cur == st.first || int32(keyHash) < 0 {
				return fmt.Errorf("item %d: bucket %d has more items than counted", first+i/index.IndexItemSize, b)
			}
			st.cur--
			r := int64(st.cur)
			if r < rLo || r >= rHi {
				continue
			}
			recHi, recLo, err := c.pack(q, m&remMask, first+i/index.IndexItemSize)
			if err != nil {
				return err
			}
			c.win.putRecord(index.TixHeaderSize+r*int64(size), recHi, recLo, size)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for b := bLo; b <= bHi; b++ {
		if st := &c.bk[b]; st.cur != st.first {
			return fmt.Errorf("compact index file: %w: bucket %d has fewer items than counted", segment.ErrSourceChanged, b)
		}
	}
	return nil
}

// bucketFilter returns what a pass's loop needs to find the items of buckets bLo..bHi:
// the shift from a mixed key hash to its bucket, the mask of its remainder, and lo and span
// such that bucket b is in the range if b-lo <= span (unsigned: b < lo wraps around).
func (c *compaction) bucketFilter(bLo, bHi int) (shift uint, remMask, lo, span uint32) {
	shift = c.shift()
	return shift, uint32(uint64(1)<<shift - 1), uint32(bLo), uint32(bHi - bLo)
}

// pack returns the record of the item q (item number n, remainder rem), after checking
// that its offset and time diff lie in the counted ranges.
func (c *compaction) pack(q []byte, rem uint32, n int) (hi, lo uint64, err error) {
	be := binary.BigEndian
	phy := int64(be.Uint64(q[4:]))
	td := int32(be.Uint32(q[12:]))
	if phy < c.h.MinPhyOffset || phy > c.h.MaxPhyOffset || td < c.h.MinTimeDiff || td > c.h.MaxTimeDiff {
		return 0, 0, fmt.Errorf("item %d: offset %d or time diff %d outside the counted ranges", n, phy, td)
	}
	hi, lo = c.codec.Pack(rem, phy, td)
	return hi, lo, nil
}

// scan reads the source's items once more, through the filling passes' read-ahead
// ring, and hands fn each chunk of whole items with the number of its first item. An
// error of fn means the source changed since the counting pass; so do items whose
// CRC-32C differs from the counting pass's.
func (c *compaction) scan(fn func(p []byte, first int) error) error {
	start := c.itemsOffset(1)
	crc := c.itemsSeed
	var changed error
	err := c.readAhead(c.ctx, c.fillRing, c.itemsSeed, []extent{{start, c.itemsOffset(c.n + 1), itemChunk(c.fillRing[0])}}, func(ch *chunk) error {
		crc = ch.crc
		if err := fn(ch.p, 1+int((ch.off-start)/index.IndexItemSize)); err != nil {
			changed = err
			return err
		}
		return nil
	})
	if changed != nil {
		return fmt.Errorf("compact index file: %w: %v", segment.ErrSourceChanged, changed)
	}
	if err != nil {
		return fmt.Errorf("compact index file: %w", err)
	}
	if crc != c.itemsCRC {
		return fmt.Errorf("compact index file: %w: its items changed since the counting pass", segment.ErrSourceChanged)
	}
	return nil
}

// dirCRC returns the CRC-32C of all bucket entries, once every bucket's CRC is in place.
func (c *compaction) dirCRC() uint32 {
	var crc uint32
	var scratch [4096]byte
	for b := 0; b < c.nb; {
		p := scratch[:0]
		for ; b < c.nb && len(p)+index.TixDirEntrySize <= len(scratch); b++ {
			p = index.AppendTixDirEntry(p, index.TixDirEntry{First: c.bk[b].first, CRC32C: c.bk[b].crc})
		}
		crc = crc32.Update(crc, segment.Castagnoli, p)
	}
	return crc
}

// putDir puts the directory entries that lie in the window: one per bucket, then the
// closing entry (item count, dirCRC).
func (c *compaction) putDir(dirOff int64, dirCRC uint32) {
	eLo := max(0, (c.win.start-dirOff)/index.TixDirEntrySize)
	eHi := min(int64(c.nb)+1, (c.win.end-dirOff+index.TixDirEntrySize-1)/index.TixDirEntrySize)
	var scratch [4096]byte
	for e := eLo; e < eHi; {
		p, at := scratch[:0], e
		for ; e < eHi && len(p)+index.TixDirEntrySize <= len(scratch); e++ {
			ent := index.TixDirEntry{First: uint32(c.n), CRC32C: dirCRC}
			if e < int64(c.nb) {
				ent = index.TixDirEntry{First: c.bk[e].first, CRC32C: c.bk[e].crc}
			}
			p = index.AppendTixDirEntry(p, ent)
		}
		c.win.put(dirOff+at*index.TixDirEntrySize, p)
	}
}
