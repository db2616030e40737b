package s3

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync/atomic"

	"github.com/tierd/tierd/internal/throttle"
	"github.com/tierd/tierd/segment"
)

// partBody is the request body of one part or single PUT: exactly size bytes of a
// section of the source (a file or a pool buffer). It is what every upload hands an SDK,
// so the SDK always knows the exact length and never buffers. While the SDK reads it,
// it computes the CRC-32C of the bytes (for the trailing checksum and the object's CRC),
// charges the tier's rate limit, and turns a source that ends early into
// segment.ErrSourceChanged. It is seekable so that SDK retries can rewind it; the CRC is
// valid once the bytes were read in order from offset 0 to size.
//
// A partBody is used by one request at a time (SDKs read a body from one goroutine).
type partBody struct {
	ctx  context.Context
	src  *io.SectionReader
	size int64
	lim  *throttle.RateLimiter
	read *atomic.Int64 // bytes read from sources by the backend, for tests and benchmarks

	pos    int64  // current offset
	crc    uint32 // CRC-32C of bytes [0, crcEnd)
	crcEnd int64
	srcErr error // the source's own failure, if it failed
}

func newPartBody(ctx context.Context, src io.ReaderAt, off, size int64, lim *throttle.RateLimiter, read *atomic.Int64) *partBody {
	return &partBody{ctx: ctx, src: io.NewSectionReader(src, off, size), size: size, lim: lim, read: read}
}

func (b *partBody) Read(p []byte) (int, error) {
	if b.pos >= b.size {
		return 0, io.EOF
	}
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	p = p[:min(int64(len(p)), b.size-b.pos)]
	n, err := b.src.ReadAt(p, b.pos)
	if n > 0 {
		b.read.Add(int64(n))
		if b.pos == b.crcEnd {
			b.crc = crc32.Update(b.crc, segment.Castagnoli, p[:n])
			b.crcEnd += int64(n)
		}
		b.pos += int64(n)
	}
	if n < len(p) {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("read source at %d: %w", b.pos, segment.ErrSourceChanged)
		} else {
			err = fmt.Errorf("read source at %d: %w", b.pos, err)
		}
		b.srcErr = err
		return n, err
	}
	if n > 0 {
		if werr := b.lim.WaitN(b.ctx, n); werr != nil {
			return n, werr
		}
	}
	if b.pos == b.size {
		return n, io.EOF
	}
	return n, nil
}

func (b *partBody) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.pos
	case io.SeekEnd:
		offset += b.size
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if offset < 0 || offset > b.size {
		return 0, fmt.Errorf("seek to %d outside [0, %d]", offset, b.size)
	}
	b.pos = offset
	if offset == 0 {
		b.crc, b.crcEnd = 0, 0
	}
	return offset, nil
}

// CRC returns the CRC-32C of the whole body, and whether it was read through in order.
func (b *partBody) CRC() (uint32, bool) { return b.crc, b.crcEnd == b.size }

// failure returns why the upload of this body failed when it was the body's fault (a
// source error or a short source), or nil.
func (b *partBody) failure() error { return b.srcErr }
