package compactor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
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
			start := time.Now()
			if err := c.fill(rLo, rHi, bLo, bHi); err != nil {
				return 0, err
			}
			c.fillTime += time.Since(start)
			for b := bLo; b <= bHi; b++ {
				lo := index.TixHeaderSize + int64(c.bk[b].first)*recSize
				hi := index.TixHeaderSize + int64(c.bucketEnd(b))*recSize
				bc := uint32(0)
				if b == carryB {
					bc = carry
				}
				bc = c.win.crc(bc, lo, hi)
				if hi <= we {
					c.bk[b].cur[0] = bc
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
// belong to buckets bLo..bHi, each part of the items scanned by its own goroutine.
// Within a bucket, records run newest first: a part's cursor starts at the end of the
// bucket's records that are older than the part's items and counts down as the part's
// items of that bucket arrive, oldest first.
func (c *compaction) fill(rLo, rHi int64, bLo, bHi int) error {
	c.passes++
	for b := bLo; b <= bHi; b++ {
		st := &c.bk[b]
		st.cur[0] = c.bucketEnd(b)
		st.cur[1] = st.split
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	errs := make([]error, len(c.parts))
	var wg sync.WaitGroup
	for k := range c.parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[k] = c.fillPart(ctx, k, rLo, rHi, bLo, bHi); errs[k] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs { // a real failure, not the cancel it caused in the other part
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Every part placed exactly the items of each bucket it had in the counting pass.
	for b := bLo; b <= bHi; b++ {
		for k := range c.parts {
			if st := &c.bk[b]; st.cur[k] != c.stop(st, k) {
				return fmt.Errorf("compact index file: %w: bucket %d has fewer items than counted", segment.ErrSourceChanged, b)
			}
		}
	}
	return nil
}

// stop returns where part k's cursor of a bucket stops: the last part's at the bucket's
// first record, the first part's (of two) at the split.
func (c *compaction) stop(st *bucketState, k int) uint32 {
	if k == len(c.parts)-1 {
		return st.first
	}
	return st.split
}

// fillPart scans part k's items for fill.
func (c *compaction) fillPart(ctx context.Context, k int, rLo, rHi int64, bLo, bHi int) error {
	pt := &c.parts[k]
	last := k == len(c.parts)-1
	var (
		be      = binary.BigEndian
		shift   = c.shift()
		remMask = uint32(uint64(1)<<shift - 1)
		lo      = uint32(bLo)
		span    = uint32(bHi - bLo)
		minPhy  = c.h.MinPhyOffset
		maxPhy  = c.h.MaxPhyOffset
		minTD   = c.h.MinTimeDiff
		maxTD   = c.h.MaxTimeDiff
		size    = c.codec.Size()
		start   = c.itemsOffset(pt.first)
		changed error
		crc     uint32
	)
	err := c.readChunks(ctx, pt.in, start, c.itemsOffset(pt.end), itemChunk(pt.in), func(p []byte, off int64) error {
		crc = crc32.Update(crc, segment.Castagnoli, p)
		for i := 0; i+index.IndexItemSize <= len(p); i += index.IndexItemSize {
			q := p[i : i+index.IndexItemSize]
			keyHash := be.Uint32(q)
			m := index.Fmix32(keyHash)
			b := m >> shift
			if b-lo > span { // b < lo wraps around
				continue
			}
			// The part's records of bucket b end where the next (newer) part's begin.
			st := &c.bk[b]
			stop := st.split
			if last {
				stop = st.first
			}
			if st.cur[k] == stop || int32(keyHash) < 0 {
				changed = fmt.Errorf("item %d: bucket %d has more items than counted", pt.first+int((off+int64(i)-start)/index.IndexItemSize), b)
				return changed
			}
			st.cur[k]--
			r := int64(st.cur[k])
			if r < rLo || r >= rHi {
				continue
			}
			phy := int64(be.Uint64(q[4:]))
			td := int32(be.Uint32(q[12:]))
			if phy < minPhy || phy > maxPhy || td < minTD || td > maxTD {
				changed = fmt.Errorf("item %d: offset %d or time diff %d outside the counted ranges", pt.first+int((off+int64(i)-start)/index.IndexItemSize), phy, td)
				return changed
			}
			recHi, recLo := c.codec.Pack(m&remMask, phy, td)
			c.win.putRecord(index.TixHeaderSize+r*int64(size), recHi, recLo, size)
		}
		return nil
	})
	if changed != nil {
		return fmt.Errorf("compact index file: %w: %v", segment.ErrSourceChanged, changed)
	}
	if err != nil {
		return fmt.Errorf("compact index file: %w", err)
	}
	if crc != pt.crc {
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
			p = index.AppendTixDirEntry(p, index.TixDirEntry{First: c.bk[b].first, CRC32C: c.bk[b].cur[0]})
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
				ent = index.TixDirEntry{First: c.bk[e].first, CRC32C: c.bk[e].cur[0]}
			}
			p = index.AppendTixDirEntry(p, ent)
		}
		c.win.put(dirOff+at*index.TixDirEntrySize, p)
	}
}
