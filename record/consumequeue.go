package record

import (
	"encoding/binary"
	"fmt"
)

// CQEntrySize is the size of a RocketMQ consume-queue entry.
const CQEntrySize = 20

// CQEntry is one consume-queue entry: where a message of the queue lives in the commit log.
type CQEntry struct {
	CommitLogOffset int64
	Size            int32
	TagsCode        int64
}

// IsZero reports whether e is all zero: the unused, preallocated tail of a queue file.
func (e CQEntry) IsZero() bool { return e == CQEntry{} }

// AppendCQEntry appends e's 20 bytes to dst.
func AppendCQEntry(dst []byte, e CQEntry) []byte {
	be := binary.BigEndian
	dst = be.AppendUint64(dst, uint64(e.CommitLogOffset))
	dst = be.AppendUint32(dst, uint32(e.Size))
	return be.AppendUint64(dst, uint64(e.TagsCode))
}

// DecodeCQEntry decodes the entry in the first 20 bytes of b.
func DecodeCQEntry(b []byte) (CQEntry, error) {
	if len(b) < CQEntrySize {
		return CQEntry{}, fmt.Errorf("decode consume-queue entry: %d bytes, need %d: %w", len(b), CQEntrySize, errUnexpectedEOF)
	}
	be := binary.BigEndian
	return CQEntry{
		CommitLogOffset: int64(be.Uint64(b)),
		Size:            int32(be.Uint32(b[8:])),
		TagsCode:        int64(be.Uint64(b[12:])),
	}, nil
}
