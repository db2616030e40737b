package compactor

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/tierd/tierd/index"
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
				lo := index.TixHeaderSize + int64(c.first[b])*recSize
				hi := index.TixHeaderSize + int64(c.bucketEnd(b))*recSize
				bc := uint32(0)
				if b == carryB {
					bc = carry
				}
				bc = c.win.crc(bc, lo, hi)
				if hi <= we {
					c.cur[b] = bc
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
		if crc, err = c.win.flush(out, crc); err != nil {
			return 0, fmt.Errorf("write compacted index: %w", err)
		}
	}
	return crc, nil
}

// fill is one pass over the source's items: it places the records rLo..rHi-1, which
// belong to buckets bLo..bHi. Within a bucket, records run newest first: the bucket's
// cursor starts at its end and counts down as its items arrive, oldest first.
func (c *compaction) fill(rLo, rHi int64, bLo, bHi int) error {
	for b := bLo; b <= bHi; b++ {
		c.cur[b] = c.bucketEnd(b)
	}
	var (
		be       = binary.BigEndian
		shift    = uint(32 - c.bits)
		remMask  = uint32(uint64(1)<<shift - 1)
		lo, hi   = uint32(bLo), uint32(bHi)
		minPhy   = c.h.MinPhyOffset
		maxPhy   = c.h.MaxPhyOffset
		minTD    = c.h.MinTimeDiff
		maxTD    = c.h.MaxTimeDiff
		recSize  = int64(c.codec.Size())
		tmp      [index.TixMaxRecordSize]byte
		changed  error
		firstOff = c.itemsOffset(1)
		crc      uint32
	)
	c.passes++
	err := c.read(firstOff, c.itemsOffset(c.n+1), func(p []byte, off int64) error {
		crc = crc32.Update(crc, segment.Castagnoli, p)
		for i := 0; i+index.IndexItemSize <= len(p); i += index.IndexItemSize {
			keyHash := be.Uint32(p[i:])
			m := fmix32(keyHash)
			b := uint32(uint64(m) >> shift)
			if b < lo || b > hi {
				continue
			}
			if c.cur[b] == c.first[b] || int32(keyHash) < 0 {
				changed = fmt.Errorf("item %d: bucket %d has more items than counted", (off+int64(i)-firstOff)/index.IndexItemSize+1, b)
				return changed
			}
			c.cur[b]--
			r := int64(c.cur[b])
			if r < rLo || r >= rHi {
				continue
			}
			phy := int64(be.Uint64(p[i+4:]))
			td := int32(be.Uint32(p[i+12:]))
			if phy < minPhy || phy > maxPhy || td < minTD || td > maxTD {
				changed = fmt.Errorf("item %d: offset %d or time diff %d outside the counted ranges", (off+int64(i)-firstOff)/index.IndexItemSize+1, phy, td)
				return changed
			}
			rec := c.codec.Encode(&tmp, m&remMask, phy, td)
			c.win.putRecord(index.TixHeaderSize+r*recSize, rec)
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
	for b := bLo; b <= bHi; b++ {
		if c.cur[b] != c.first[b] {
			return fmt.Errorf("compact index file: %w: bucket %d has %d fewer items than counted", segment.ErrSourceChanged, b, c.cur[b]-c.first[b])
		}
	}
	return nil
}

// fmix32 is index.TixBucket's mixing function, repeated here so the hot loop inlines it;
// TestFmixMatchesIndex keeps the two equal.
func fmix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// dirCRC returns the CRC-32C of all bucket entries, once every bucket's CRC is in c.cur.
func (c *compaction) dirCRC() uint32 {
	var crc uint32
	var scratch [4096]byte
	for b := 0; b < c.nb; {
		p := scratch[:0]
		for ; b < c.nb && len(p)+index.TixDirEntrySize <= len(scratch); b++ {
			p = index.AppendTixDirEntry(p, index.TixDirEntry{First: c.first[b], CRC32C: c.cur[b]})
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
				ent = index.TixDirEntry{First: c.first[e], CRC32C: c.cur[e]}
			}
			p = index.AppendTixDirEntry(p, ent)
		}
		c.win.put(dirOff+at*index.TixDirEntrySize, p)
	}
}
