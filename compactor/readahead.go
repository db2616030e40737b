package compactor

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/tierd/tierd/segment"
)

// extent is a run [off, end) of the source read in chunks of chunk bytes.
type extent struct {
	off, end int64
	chunk    int
}

// chunk is one read of the source: p holds the bytes at off; crc is the CRC-32C of every
// chunk read so far, this one included, continued from readAhead's seed (the reading
// goroutine computes it while the bytes are still in its cache).
type chunk struct {
	p   []byte
	off int64
	crc uint32
	err error
	buf int // index of the ring buffer p is in
}

// readAhead reads the extents in order into the ring buffers (each at least as long as
// the largest chunk) on a goroutine of its own, while fn processes the chunks before them:
// with two or more buffers the source's reads overlap the compaction's work on the bytes
// already read. fn sees every chunk in order; readAhead returns the first error of a read
// or of fn, and returns only once the reading goroutine is done with the buffers.
func (c *compaction) readAhead(ctx context.Context, ring [][]byte, seed uint32, extents []extent, fn func(ch *chunk) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan int, len(ring))
	for i := range ring {
		free <- i
	}
	full := make(chan chunk, len(ring))
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(full)
		crc := seed
		for _, e := range extents {
			if e.chunk <= 0 && e.off < e.end {
				panic(fmt.Sprintf("BUG: reads of %d bytes", e.chunk))
			}
			for off := e.off; off < e.end; {
				var i int
				select {
				case i = <-free:
				case <-ctx.Done():
					return
				}
				p := ring[i][:min(int64(e.chunk), e.end-off)]
				n, err := c.src.ReadAt(p, off)
				ch := chunk{p: p, off: off, buf: i}
				if n < len(p) {
					if err == nil || errors.Is(err, io.EOF) {
						err = fmt.Errorf("read index file at %d: %w", off+int64(n), segment.ErrSourceChanged)
					} else {
						err = fmt.Errorf("read index file at %d: %w", off+int64(n), err)
					}
					ch.err = err
				} else if err := ctx.Err(); err != nil {
					ch.err = err
				} else {
					crc = crc32.Update(crc, segment.Castagnoli, p)
					ch.crc = crc
				}
				full <- ch // never blocks: at most len(ring) chunks are out
				if ch.err != nil {
					return
				}
				off += int64(len(p))
			}
		}
	}()
	var err error
	for ch := range full {
		if err == nil {
			if err = ch.err; err == nil {
				c.report(int64(len(ch.p)))
				err = fn(&ch)
			}
			if err != nil {
				cancel()
			}
		}
		free <- ch.buf // never blocks: the ring has room for every buffer
	}
	<-done
	if err == nil {
		err = ctx.Err() // the caller's context ended: the reader stopped early
	}
	return err
}

// splitRing splits mem into n buffers of size bytes each, 4 KiB-aligned (mem must be) and
// size rounded down to a multiple of 4 KiB when it is at least that.
func splitRing(mem []byte, n int) [][]byte {
	size := len(mem) / n
	if size >= directAlign {
		size = size / directAlign * directAlign
	}
	r := make([][]byte, n)
	for i := range r {
		r[i] = mem[i*size : (i+1)*size : (i+1)*size]
	}
	return r
}
