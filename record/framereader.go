package record

import (
	"errors"
	"fmt"
	"io"
)

// initialReadSize is the buffer a reader starts with when the caller gives none.
const initialReadSize = 64 << 10

// frameReader reads consecutive frames from the region [start, end) of r through one
// buffer. buf[lo:hi] holds the file bytes [pos, pos+hi-lo).
type frameReader struct {
	r      io.ReaderAt
	pos    int64 // file offset of buf[lo]
	end    int64 // end of the region (or of the file, if that comes first)
	buf    []byte
	lo, hi int
	max    int  // largest frame accepted
	grow   bool // buf may be replaced by a larger one, up to max
}

func newFrameReader(r io.ReaderAt, start, end int64, buf []byte, defaultMax int) frameReader {
	fr := frameReader{r: r, pos: start, end: end, buf: buf, max: len(buf)}
	if buf == nil {
		fr.buf = make([]byte, min(initialReadSize, defaultMax))
		fr.max = defaultMax
		fr.grow = true
	}
	return fr
}

// ensure tries to have n bytes buffered at lo and returns how many are (fewer than n only
// at the end of the region or file).
func (fr *frameReader) ensure(n int) (int, error) {
	if fr.hi-fr.lo >= n {
		return fr.hi - fr.lo, nil
	}
	if n > len(fr.buf) {
		if !fr.grow || n > fr.max {
			return fr.hi - fr.lo, fmt.Errorf("%w: %d bytes at offset %d, limit %d", ErrTooLarge, n, fr.pos, fr.max)
		}
		nb := make([]byte, min(max(2*len(fr.buf), n), fr.max))
		fr.hi = copy(nb, fr.buf[fr.lo:fr.hi])
		fr.lo = 0
		fr.buf = nb
	} else if fr.lo+n > len(fr.buf) {
		fr.hi = copy(fr.buf, fr.buf[fr.lo:fr.hi])
		fr.lo = 0
	}
	for fr.hi-fr.lo < n {
		next := fr.pos + int64(fr.hi-fr.lo)
		room := int64(len(fr.buf) - fr.hi)
		if left := fr.end - next; left < room {
			room = left
		}
		if room <= 0 {
			break
		}
		k, err := fr.r.ReadAt(fr.buf[fr.hi:fr.hi+int(room)], next)
		fr.hi += k
		if errors.Is(err, io.EOF) {
			fr.end = next + int64(k) // the file ends before the region does
			break
		}
		if err != nil {
			return fr.hi - fr.lo, fmt.Errorf("read at offset %d: %w", next, err)
		}
	}
	return fr.hi - fr.lo, nil
}

func (fr *frameReader) bytes(n int) []byte { return fr.buf[fr.lo : fr.lo+n] }

func (fr *frameReader) advance(n int64) {
	if n <= int64(fr.hi-fr.lo) {
		fr.lo += int(n)
	} else {
		fr.lo, fr.hi = 0, 0 // skipping past the buffered bytes (a BLANK filler)
	}
	fr.pos += n
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
