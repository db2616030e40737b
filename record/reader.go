package record

import (
	"encoding/binary"
	"fmt"
	"io"
)

// MessageReader reads the messages of a commit-log file region in order, through one
// buffer. It is not safe for concurrent use.
type MessageReader struct {
	fr   frameReader
	last int64
	err  error
}

// NewMessageReader reads the messages in [start, end) of r (typically a whole commit-log
// file: 0 and its size). buf is the only buffer it reads into, and its length is the
// largest message it accepts; a nil buf makes the reader start with 64 KiB and grow, for a
// large message, up to MaxMessageSize+MaxMessageOverhead.
func NewMessageReader(r io.ReaderAt, start, end int64, buf []byte) *MessageReader {
	return &MessageReader{fr: newFrameReader(r, start, end, buf, MaxMessageSize+MaxMessageOverhead), last: -1}
}

// Next returns the next message. Its Body aliases the reader's buffer and stays valid only
// until the next call.
//
// Next returns ErrBlank when it reaches a BLANK filler (the file's messages end there;
// Pos is then the filler's end, the file's size in a sealed file), and io.EOF at the end
// of the region or at a zero TOTALSIZE and magic (the unwritten, zero-filled tail of the
// active file). After ErrBlank, io.EOF or any error, every later call returns io.EOF or
// that error.
func (r *MessageReader) Next() (Message, error) {
	if r.err != nil {
		return Message{}, r.err
	}
	m, err := r.next()
	if err != nil {
		r.err = err
		if err == ErrBlank {
			r.err = io.EOF
		}
	}
	return m, err
}

func (r *MessageReader) next() (Message, error) {
	fr := &r.fr
	pos := fr.pos
	avail, err := fr.ensure(8)
	if err != nil {
		return Message{}, err
	}
	if avail < 8 {
		if allZero(fr.bytes(avail)) {
			return Message{}, io.EOF
		}
		return Message{}, fmt.Errorf("message at offset %d: %d bytes left, need 8: %w", pos, avail, io.ErrUnexpectedEOF)
	}
	hdr := fr.bytes(8)
	size := int32(binary.BigEndian.Uint32(hdr))
	magic := int32(binary.BigEndian.Uint32(hdr[4:]))
	switch {
	case size == 0 && magic == 0:
		return Message{}, io.EOF
	case magic == MagicBlank:
		if size < 8 {
			return Message{}, fmt.Errorf("message at offset %d: %w: BLANK of %d bytes", pos, ErrCorrupt, size)
		}
		r.last = pos
		fr.advance(int64(size))
		return Message{}, ErrBlank
	case magic != MagicV1 && magic != MagicV2:
		return Message{}, fmt.Errorf("message at offset %d: %w: bad magic %#08x", pos, ErrCorrupt, uint32(magic))
	case size < MinMessageSize:
		return Message{}, fmt.Errorf("message at offset %d: %w: TOTALSIZE %d is below the minimum %d", pos, ErrCorrupt, size, MinMessageSize)
	}
	avail, err = fr.ensure(int(size))
	if err != nil {
		return Message{}, fmt.Errorf("message at offset %d: %w", pos, err)
	}
	if avail < int(size) {
		return Message{}, fmt.Errorf("message at offset %d: TOTALSIZE %d but %d bytes left: %w", pos, size, avail, io.ErrUnexpectedEOF)
	}
	m, n, err := DecodeMessage(fr.bytes(int(size)))
	if err != nil {
		return Message{}, fmt.Errorf("message at offset %d: %w", pos, err)
	}
	r.last = pos
	fr.advance(int64(n))
	return m, nil
}

// Offset returns the file offset of the message (or BLANK) Next returned last, or -1.
func (r *MessageReader) Offset() int64 { return r.last }

// Pos returns the file offset where the next read begins.
func (r *MessageReader) Pos() int64 { return r.fr.pos }
