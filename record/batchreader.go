package record

import (
	"encoding/binary"
	"fmt"
	"io"
)

// BatchReader reads the batches of a Kafka .log file region in order, through one buffer.
// It is not safe for concurrent use.
type BatchReader struct {
	fr   frameReader
	last int64
	err  error
}

// NewBatchReader reads the batches in [start, end) of r (typically 0 and the file's
// size). buf is the only buffer it reads into, and its length is the largest batch it
// accepts; a nil buf makes the reader start with 64 KiB and grow up to DefaultMaxBatchSize.
func NewBatchReader(r io.ReaderAt, start, end int64, buf []byte) *BatchReader {
	return &BatchReader{fr: newFrameReader(r, start, end, buf, DefaultMaxBatchSize), last: -1}
}

// Next returns the next batch; its slices alias the reader's buffer and stay valid only
// until the next call. It returns io.EOF at the end of the region or at a zero-filled tail
// (a preallocated log file), and after any error every later call returns it again.
func (r *BatchReader) Next() (Batch, error) {
	if r.err != nil {
		return Batch{}, r.err
	}
	b, err := r.next()
	if err != nil {
		r.err = err
	}
	return b, err
}

func (r *BatchReader) next() (Batch, error) {
	fr := &r.fr
	pos := fr.pos
	avail, err := fr.ensure(BatchOverhead)
	if err != nil {
		return Batch{}, err
	}
	if avail < BatchOverhead {
		if allZero(fr.bytes(avail)) {
			return Batch{}, io.EOF
		}
		return Batch{}, fmt.Errorf("batch at position %d: %d bytes left, need %d: %w", pos, avail, BatchOverhead, io.ErrUnexpectedEOF)
	}
	hdr := fr.bytes(BatchOverhead)
	if allZero(hdr) {
		return Batch{}, io.EOF
	}
	length := int32(binary.BigEndian.Uint32(hdr[8:]))
	if length < BatchHeaderSize-BatchOverhead {
		return Batch{}, fmt.Errorf("batch at position %d: %w: batchLength %d is below the header's %d", pos, ErrCorrupt, length, BatchHeaderSize-BatchOverhead)
	}
	size := int64(BatchOverhead) + int64(length)
	if size > int64(fr.max) {
		return Batch{}, fmt.Errorf("batch at position %d: %w: %d bytes, limit %d", pos, ErrTooLarge, size, fr.max)
	}
	avail, err = fr.ensure(int(size))
	if err != nil {
		return Batch{}, fmt.Errorf("batch at position %d: %w", pos, err)
	}
	if int64(avail) < size {
		return Batch{}, fmt.Errorf("batch at position %d: %d bytes but %d left: %w", pos, size, avail, io.ErrUnexpectedEOF)
	}
	b, n, err := DecodeBatch(fr.bytes(int(size)))
	if err != nil {
		return Batch{}, fmt.Errorf("batch at position %d: %w", pos, err)
	}
	r.last = pos
	fr.advance(int64(n))
	return b, nil
}

// Position returns the file position of the batch Next returned last, or -1.
func (r *BatchReader) Position() int64 { return r.last }

// Pos returns the file position where the next read begins.
func (r *BatchReader) Pos() int64 { return r.fr.pos }
