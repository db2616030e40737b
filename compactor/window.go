package compactor

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
)

// window is a run of pool buffers standing for the output bytes [start, end): the
// compaction fills it from several sources (header, item records in any order, directory)
// and writes it out whole. Pieces may span buffers; put splits them.
type window struct {
	bufs       [][]byte
	bsize      int64
	pow2       bool // bsize is a power of two: shift and mask instead of / and %
	shift      uint
	mask       int64
	start, end int64
}

func newWindow(bufs []*bufpool.Buffer, bsize int) window {
	w := window{bsize: int64(bsize)}
	for _, b := range bufs {
		w.bufs = append(w.bufs, b.Bytes())
	}
	if bsize&(bsize-1) == 0 {
		w.pow2 = true
		w.mask = int64(bsize - 1)
		for int64(1)<<w.shift < w.bsize {
			w.shift++
		}
	}
	return w
}

// span is the number of output bytes one window covers.
func (w *window) span() int64 { return int64(len(w.bufs)) * w.bsize }

func (w *window) locate(rel int64) (int, int64) {
	if w.pow2 {
		return int(rel >> w.shift), rel & w.mask
	}
	return int(rel / w.bsize), rel % w.bsize
}

// put copies the part of p, which belongs at output offset off, that lies in the window.
func (w *window) put(off int64, p []byte) {
	if off < w.start {
		skip := w.start - off
		if skip >= int64(len(p)) {
			return
		}
		p, off = p[skip:], w.start
	}
	if off >= w.end {
		return
	}
	if rest := w.end - off; int64(len(p)) > rest {
		p = p[:rest]
	}
	for len(p) > 0 {
		bi, bo := w.locate(off - w.start)
		n := copy(w.bufs[bi][bo:], p)
		p, off = p[n:], off+int64(n)
	}
}

// putSlot copies p, which lies wholly in the window, to output offset off.
func (w *window) putSlot(off int64, p []byte) {
	bi, bo := w.locate(off - w.start)
	if b := w.bufs[bi]; bo+int64(len(p)) <= int64(len(b)) {
		copy(b[bo:], p)
		return
	}
	w.put(off, p)
}

// get copies the window's bytes at output offset off (which lie wholly in it) into p.
func (w *window) get(off int64, p []byte) {
	for len(p) > 0 {
		bi, bo := w.locate(off - w.start)
		n := copy(p, w.bufs[bi][bo:])
		p, off = p[n:], off+int64(n)
	}
}

// getRecord returns record r (of size bytes, lying wholly in the window) as putRecord
// takes it.
func (w *window) getRecord(r int64, size int) (hi, lo uint64) {
	var tmp [16]byte
	w.get(index.TixHeaderSize+r*int64(size), tmp[16-size:])
	return binary.BigEndian.Uint64(tmp[:8]), binary.BigEndian.Uint64(tmp[8:])
}

// putRecord puts the record hi:lo (its last size bytes, big-endian; see
// index.TixCodec.Pack) at output offset off. Inside one buffer it stores exactly the
// record's bytes with word stores: this is the compaction's hottest store, and goroutines
// filling neighbouring records must not touch each other's bytes.
func (w *window) putRecord(off int64, hi, lo uint64, size int) {
	rel := off - w.start
	if rel >= 0 && rel+int64(size) <= w.end-w.start {
		bi, bo := w.locate(rel)
		if b := w.bufs[bi]; bo+int64(size) <= int64(len(b)) {
			storeBE(b[bo:bo+int64(size)], hi, lo)
			return
		}
	}
	var tmp [16]byte
	binary.BigEndian.PutUint64(tmp[:8], hi)
	binary.BigEndian.PutUint64(tmp[8:], lo)
	w.put(off, tmp[16-size:])
}

// storeBE stores the last len(b) (1..16) bytes of the 128-bit number hi:lo into b,
// big-endian.
func storeBE(b []byte, hi, lo uint64) {
	be := binary.BigEndian
	switch len(b) {
	case 1:
		b[0] = byte(lo)
	case 2:
		be.PutUint16(b, uint16(lo))
	case 3:
		be.PutUint16(b, uint16(lo>>8))
		b[2] = byte(lo)
	case 4:
		be.PutUint32(b, uint32(lo))
	case 5:
		be.PutUint32(b, uint32(lo>>8))
		b[4] = byte(lo)
	case 6:
		be.PutUint32(b, uint32(lo>>16))
		be.PutUint16(b[4:], uint16(lo))
	case 7:
		be.PutUint32(b, uint32(lo>>24))
		be.PutUint16(b[4:], uint16(lo>>8))
		b[6] = byte(lo)
	case 8:
		be.PutUint64(b, lo)
	default:
		n := len(b) - 8
		storeBE(b[:n], 0, hi)
		be.PutUint64(b[n:], lo)
	}
}

// crc continues crc over the output bytes [lo, hi) ∩ [start, end).
func (w *window) crc(crc uint32, lo, hi int64) uint32 {
	lo, hi = max(lo, w.start), min(hi, w.end)
	for lo < hi {
		bi, bo := w.locate(lo - w.start)
		n := min(w.bsize-bo, hi-lo)
		crc = crc32.Update(crc, segment.Castagnoli, w.bufs[bi][bo:bo+n])
		lo += n
	}
	return crc
}

// flush writes the window's bytes to out, whole buffers but for the last piece of the
// output, and continues crc over them.
func (w *window) flush(out segment.Writer, crc uint32) (uint32, error) {
	for i, b := range w.bufs {
		lo := w.start + int64(i)*w.bsize
		if lo >= w.end {
			break
		}
		p := b[:min(w.bsize, w.end-lo)]
		crc = crc32.Update(crc, segment.Castagnoli, p)
		if _, err := out.Write(p); err != nil {
			return 0, err
		}
	}
	return crc, nil
}

// acquire takes between 2 and want (>= 2) buffers of pool without breaking bufpool's
// deadlock rule: it blocks in Get only while it holds none, takes the rest with TryGet,
// and when that leaves it with a single buffer it gives it back and tries again after a
// pause (at most 100ms), until ctx ends.
func acquire(ctx context.Context, pool *bufpool.Pool, want int) ([]*bufpool.Buffer, error) {
	if pool.Capacity() < 2 {
		return nil, fmt.Errorf("%w; the pool has %d (memory.buffer_pool / memory.buffer_size)", ErrTooFewBuffers, pool.Capacity())
	}
	want = max(want, 2)
	pause := time.Millisecond
	for {
		first, err := pool.Get(ctx)
		if err != nil {
			return nil, err
		}
		bufs := []*bufpool.Buffer{first}
		for len(bufs) < want {
			b := pool.TryGet()
			if b == nil {
				break
			}
			bufs = append(bufs, b)
		}
		if len(bufs) >= 2 {
			return bufs, nil
		}
		first.Release()
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}
