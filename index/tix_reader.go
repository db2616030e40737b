package index

import (
	"fmt"
	"hash/crc32"
	"io"
)

// Tix reads a compacted index through an io.ReaderAt (a tier object, a local file). It
// holds only the header; every lookup reads what it needs, checks every count and offset
// against the header and the object's size before using it, and verifies the CRC-32C of
// every bucket it reads. Its methods are safe for concurrent use if the ReaderAt is.
type Tix struct {
	r     io.ReaderAt
	size  int64
	h     TixHeader
	codec TixCodec
}

// TixItem is an item of a compacted index.
type TixItem struct {
	KeyHash   int32 // KeyHash of the indexed key
	PhyOffset int64 // commit-log offset of the message
	TimeDiff  int32 // seconds from the source header's BeginTimestamp to the store time
}

// OpenTix opens the compacted index r of size bytes: one read of the header, which must
// be intact (magic, version, CRC-32C) and describe an object of exactly size bytes.
func OpenTix(r io.ReaderAt, size int64) (*Tix, error) {
	var b [TixHeaderSize]byte
	if size < TixHeaderSize {
		return nil, fmt.Errorf("open compacted index: %w: %d bytes, the header alone is %d", ErrCorruptTix, size, TixHeaderSize)
	}
	if err := readFullAt(r, b[:], 0, "header"); err != nil {
		return nil, fmt.Errorf("open compacted index: %w", err)
	}
	h, err := DecodeTixHeader(b[:])
	if err != nil {
		return nil, fmt.Errorf("open compacted index: %w", err)
	}
	if want := h.Size(); size != want {
		return nil, fmt.Errorf("open compacted index: %w: %d bytes, the header describes %d", ErrCorruptTix, size, want)
	}
	return &Tix{r: r, size: size, h: h, codec: h.Codec()}, nil
}

// Header returns the header.
func (t *Tix) Header() TixHeader { return t.h }

// Len returns the number of items.
func (t *Tix) Len() int { return t.h.Items }

// ItemTime returns an item's store time in ms, as IndexFile.ItemTime does.
func (t *Tix) ItemTime(it TixItem) int64 { return t.h.ItemTime(it.TimeDiff) }

// Lookup returns the items of key stored between begin and end (ms, inclusive), newest
// first, at most max of them (max <= 0: no limit). Items whose KeyHash equals
// KeyHash(key) match: different keys share hashes, so the caller checks the message, as
// with the IndexFile. See LookupHash.
func (t *Tix) Lookup(key string, begin, end int64, max int, buf []byte) ([]TixItem, error) {
	return t.LookupHash(KeyHash(key), begin, end, max, buf)
}

// LookupHash is Lookup for a key whose KeyHash is hash. It makes at most two reads of
// the object when len(buf) holds the key's bucket (FORMAT.md): the bucket's two directory
// entries (12 bytes), then the bucket's records, which are read in pieces of len(buf)
// otherwise (buf nil: pieces of at most 64 KiB). An empty bucket takes the first read
// only. The whole bucket is read and its CRC-32C checked before anything is returned.
func (t *Tix) LookupHash(hash int32, begin, end int64, max int, buf []byte) ([]TixItem, error) {
	if hash < 0 {
		return nil, fmt.Errorf("compacted index lookup: negative key hash %d", hash)
	}
	bucket, rem := TixBucket(hash, t.h.Bits)
	first, n, crc, err := t.bucket(bucket)
	if err != nil {
		return nil, fmt.Errorf("compacted index lookup: %w", err)
	}
	var found []TixItem
	got := uint32(0)
	err = t.records(first, n, buf, func(p []byte) {
		got = crc32.Update(got, castagnoli, p)
		for i := 0; i+t.codec.size <= len(p); i += t.codec.size {
			r, phy, td := t.codec.Decode(p[i:])
			if r != rem || (max > 0 && len(found) >= max) {
				continue
			}
			if tm := t.h.ItemTime(td); tm >= begin && tm <= end {
				found = append(found, TixItem{KeyHash: hash, PhyOffset: phy, TimeDiff: td})
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("compacted index lookup in bucket %d: %w", bucket, err)
	}
	if got != crc {
		return nil, fmt.Errorf("compacted index lookup: %w: bucket %d has CRC-32C %08x, its directory entry says %08x", ErrCorruptTix, bucket, got, crc)
	}
	return found, nil
}

// bucket reads bucket b's directory entry and the next one (one 12-byte read) and returns
// the index of its first item, its item count and its CRC-32C, checked against the
// header.
func (t *Tix) bucket(b uint32) (first, n int, crc uint32, err error) {
	var p [TixDirEntrySize + 4]byte
	off := t.h.DirOffset() + int64(b)*TixDirEntrySize
	if err := readFullAt(t.r, p[:], off, "directory entry"); err != nil {
		return 0, 0, 0, err
	}
	e := decodeTixDirEntry(p[:])
	next := int64(uint32(p[8])<<24 | uint32(p[9])<<16 | uint32(p[10])<<8 | uint32(p[11]))
	if int64(e.First) > next || next > int64(t.h.Items) {
		return 0, 0, 0, fmt.Errorf("%w: bucket %d spans items %d..%d of %d", ErrCorruptTix, b, e.First, next, t.h.Items)
	}
	if next == int64(e.First) && e.CRC32C != 0 {
		return 0, 0, 0, fmt.Errorf("%w: empty bucket %d has CRC-32C %08x", ErrCorruptTix, b, e.CRC32C)
	}
	return int(e.First), int(next - int64(e.First)), e.CRC32C, nil
}

// records reads the n records from item first on, in pieces of whole records, and hands
// each piece to fn.
func (t *Tix) records(first, n int, buf []byte, fn func(p []byte)) error {
	size := t.codec.size
	if n == 0 || size == 0 {
		return nil
	}
	total := int64(n) * int64(size)
	if buf == nil {
		buf = make([]byte, min(total, maxReadSize/int64(size)*int64(size)))
	}
	if len(buf) < size {
		return fmt.Errorf("buffer of %d bytes holds no %d-byte record", len(buf), size)
	}
	chunk := int64(len(buf) / size * size)
	off := TixHeaderSize + int64(first)*int64(size)
	for done := int64(0); done < total; {
		p := buf[:min(chunk, total-done)]
		if err := readFullAt(t.r, p, off+done, "bucket records"); err != nil {
			return err
		}
		fn(p)
		done += int64(len(p))
	}
	return nil
}

// Items calls fn for every item, bucket by bucket and newest first within a bucket, and
// checks the whole index on the way: every directory entry against the header and its
// neighbours, every bucket's CRC-32C, the directory's CRC-32C in the closing entry, every
// remainder and value against the header. It reads the items and the directory
// sequentially in pieces of len(buf)/2 bytes (buf nil: 64 KiB pieces). An error from fn
// stops the walk and is returned as is.
func (t *Tix) Items(buf []byte, fn func(bucket int, it TixItem) error) error {
	size := t.codec.size
	if buf == nil {
		buf = make([]byte, 2*maxReadSize)
	}
	half := len(buf) / 2
	if half < TixDirEntrySize || (size > 0 && half < size) {
		return fmt.Errorf("compacted index items: buffer of %d bytes is too small", len(buf))
	}
	dirBuf := buf[:half/TixDirEntrySize*TixDirEntrySize]
	recBuf := buf[half:]
	if size > 0 {
		recBuf = recBuf[:len(recBuf)/size*size]
	}
	var (
		dir      = seqReader{r: t.r, off: t.h.DirOffset(), end: t.size, buf: dirBuf, what: "directory"}
		recs     = seqReader{r: t.r, off: TixHeaderSize, end: t.h.DirOffset(), buf: recBuf, what: "records"}
		dirCRC   uint32
		next     TixDirEntry
		buckets  = t.h.Buckets()
		remLimit = uint64(1) << uint(32-t.h.Bits)
	)
	p, err := dir.next(TixDirEntrySize)
	if err != nil {
		return err
	}
	next = decodeTixDirEntry(p)
	if next.First != 0 {
		return fmt.Errorf("%w: bucket 0 starts at item %d", ErrCorruptTix, next.First)
	}
	for b := 0; b < buckets; b++ {
		e := next
		dirCRC = crc32.Update(dirCRC, castagnoli, p)
		if p, err = dir.next(TixDirEntrySize); err != nil {
			return err
		}
		next = decodeTixDirEntry(p)
		if next.First < e.First || int64(next.First) > int64(t.h.Items) {
			return fmt.Errorf("%w: bucket %d spans items %d..%d of %d", ErrCorruptTix, b, e.First, next.First, t.h.Items)
		}
		var crc uint32
		for k := e.First; k < next.First; k++ {
			rec, err := recs.next(size)
			if err != nil {
				return err
			}
			crc = crc32.Update(crc, castagnoli, rec)
			rem, phy, td := t.codec.Decode(rec)
			hash := TixKeyHash(uint32(b), rem, t.h.Bits)
			switch {
			case uint64(rem) >= remLimit:
				return fmt.Errorf("%w: bucket %d item %d: remainder %d has more than %d bits", ErrCorruptTix, b, k, rem, 32-t.h.Bits)
			case hash < 0:
				return fmt.Errorf("%w: bucket %d item %d: negative key hash %d", ErrCorruptTix, b, k, hash)
			case phy > t.h.MaxPhyOffset || td > t.h.MaxTimeDiff:
				return fmt.Errorf("%w: bucket %d item %d: offset %d or time diff %d beyond the header's %d, %d", ErrCorruptTix, b, k, phy, td, t.h.MaxPhyOffset, t.h.MaxTimeDiff)
			}
			if err := fn(b, TixItem{KeyHash: hash, PhyOffset: phy, TimeDiff: td}); err != nil {
				return err
			}
		}
		if crc != e.CRC32C {
			return fmt.Errorf("%w: bucket %d has CRC-32C %08x, its directory entry says %08x", ErrCorruptTix, b, crc, e.CRC32C)
		}
	}
	if int(next.First) != t.h.Items || next.CRC32C != dirCRC {
		return fmt.Errorf("%w: closing directory entry (%d, %08x), want (%d, %08x)", ErrCorruptTix, next.First, next.CRC32C, t.h.Items, dirCRC)
	}
	return nil
}

// seqReader hands out consecutive pieces of [off, end) of r, reading len(buf) bytes at a
// time. Pieces are at most unit bytes and never span two reads: len(buf) is a multiple of
// every unit asked for.
type seqReader struct {
	r        io.ReaderAt
	off, end int64
	buf      []byte
	lo, hi   int
	what     string
}

func (s *seqReader) next(unit int) ([]byte, error) {
	if s.hi-s.lo < unit {
		n := int64(len(s.buf))
		if rest := s.end - s.off; rest < n {
			n = rest
		}
		if n < int64(unit) {
			return nil, fmt.Errorf("%w: %s end early at %d", ErrCorruptTix, s.what, s.off)
		}
		if err := readFullAt(s.r, s.buf[:n], s.off, s.what); err != nil {
			return nil, err
		}
		s.off += n
		s.lo, s.hi = 0, int(n)
	}
	p := s.buf[s.lo : s.lo+unit]
	s.lo += unit
	return p, nil
}
