package index

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Kafka index constants (storage's OffsetIndex, TimeIndex, LogConfig defaults).
const (
	OffsetEntrySize = 8  // relativeOffset int32 | position int32
	TimeEntrySize   = 12 // timestamp int64 | relativeOffset int32
	// DefaultMaxIndexSize is log.index.size.max.bytes: the size an active segment's index
	// files are preallocated to (rounded down to whole entries).
	DefaultMaxIndexSize = 10 << 20
	// DefaultIndexIntervalBytes is log.index.interval.bytes: an offset-index entry is added
	// once more than this many log bytes were appended since the last one.
	DefaultIndexIntervalBytes = 4096
	// noTimestamp is Kafka's RecordBatch.NO_TIMESTAMP.
	noTimestamp = -1
)

// OffsetEntry is a .index entry: the batch ending at BaseOffset+RelOffset starts at
// Position in the .log file.
type OffsetEntry struct {
	RelOffset int32
	Position  int32
}

// TimeEntry is a .timeindex entry: Timestamp is the largest record timestamp the segment
// held when the entry was added, first reached in the batch ending at BaseOffset+RelOffset.
type TimeEntry struct {
	Timestamp int64
	RelOffset int32
}

// ScanOffsetIndex calls fn for each used entry of the .index file r of size bytes, in
// order, and returns how many there are. The used part ends at the first all-zero entry
// after entry 0 (entry 0 may be (0,0)), or at the end of the file: the zero-filled tail of
// a preallocated index is not read past that entry. It checks that size is a whole number
// of entries (an all-zero file thus reads as one (0,0) entry: the format cannot tell it
// from an empty index), that offsets and positions are not negative, that offsets strictly increase
// and that positions do not decrease; errors name the entry. Reads are len(buf) bytes
// (at most 64 KiB when buf is nil). An error from fn stops the scan and is returned as is.
func ScanOffsetIndex(r io.ReaderAt, size int64, buf []byte, fn func(i int, e OffsetEntry) error) (int, error) {
	var last OffsetEntry
	return scanIndex(r, size, buf, OffsetEntrySize, "offset index", func(i int, b []byte) (bool, error) {
		e := OffsetEntry{RelOffset: int32(binary.BigEndian.Uint32(b)), Position: int32(binary.BigEndian.Uint32(b[4:]))}
		if i > 0 && e == (OffsetEntry{}) {
			return true, nil
		}
		switch {
		case e.RelOffset < 0 || e.Position < 0:
			return false, fmt.Errorf("%w: offset index entry %d: negative offset or position (%d, %d)", ErrCorruptIndex, i, e.RelOffset, e.Position)
		case i > 0 && e.RelOffset <= last.RelOffset:
			return false, fmt.Errorf("%w: offset index entry %d: relative offset %d not above the previous %d", ErrCorruptIndex, i, e.RelOffset, last.RelOffset)
		case i > 0 && e.Position < last.Position:
			return false, fmt.Errorf("%w: offset index entry %d: position %d below the previous %d", ErrCorruptIndex, i, e.Position, last.Position)
		}
		last = e
		return false, fn(i, e)
	})
}

// ScanTimeIndex is ScanOffsetIndex for a .timeindex file: it checks that relative offsets
// are not negative and that timestamps and offsets do not decrease.
func ScanTimeIndex(r io.ReaderAt, size int64, buf []byte, fn func(i int, e TimeEntry) error) (int, error) {
	var last TimeEntry
	return scanIndex(r, size, buf, TimeEntrySize, "time index", func(i int, b []byte) (bool, error) {
		e := TimeEntry{Timestamp: int64(binary.BigEndian.Uint64(b)), RelOffset: int32(binary.BigEndian.Uint32(b[8:]))}
		if i > 0 && e == (TimeEntry{}) {
			return true, nil
		}
		switch {
		case e.RelOffset < 0:
			return false, fmt.Errorf("%w: time index entry %d: negative relative offset %d", ErrCorruptIndex, i, e.RelOffset)
		case i > 0 && e.Timestamp < last.Timestamp:
			return false, fmt.Errorf("%w: time index entry %d: timestamp %d below the previous %d", ErrCorruptIndex, i, e.Timestamp, last.Timestamp)
		case i > 0 && e.RelOffset < last.RelOffset:
			return false, fmt.Errorf("%w: time index entry %d: relative offset %d below the previous %d", ErrCorruptIndex, i, e.RelOffset, last.RelOffset)
		}
		last = e
		return false, fn(i, e)
	})
}

// scanIndex reads fixed-size entries in chunks and hands each to entry, which reports
// whether the used part ended before it.
func scanIndex(r io.ReaderAt, size int64, buf []byte, unit int, what string, entry func(i int, b []byte) (bool, error)) (int, error) {
	if size < 0 || size%int64(unit) != 0 {
		return 0, fmt.Errorf("%w: %s of %d bytes is not a whole number of %d-byte entries", ErrCorruptIndex, what, size, unit)
	}
	if size/int64(unit) > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %s of %d bytes is too large", ErrCorruptIndex, what, size)
	}
	buf, err := chunkBuffer(buf, unit)
	if err != nil {
		return 0, fmt.Errorf("scan %s: %w", what, err)
	}
	buf = buf[:len(buf)/unit*unit]
	total := int(size / int64(unit))
	for i := 0; i < total; {
		n := min(len(buf)/unit, total-i)
		b := buf[:n*unit]
		if _, err := r.ReadAt(b, int64(i)*int64(unit)); err != nil {
			return i, fmt.Errorf("read %s entries %d..%d: %w", what, i, i+n-1, err)
		}
		for k := range n {
			end, err := entry(i+k, b[k*unit:])
			if err != nil {
				return i + k, err
			}
			if end {
				return i + k, nil
			}
		}
		i += n
	}
	return total, nil
}

// File is what the Kafka index writers write to; *os.File is one.
type File interface {
	io.WriterAt
	Truncate(size int64) error
}

// maxEntries returns the entry count of an index preallocated to maxIndexSize.
func maxEntries(maxIndexSize int64, unit int) (int, error) {
	n := maxIndexSize / int64(unit)
	if n < 1 || n > math.MaxInt32 {
		return 0, fmt.Errorf("max index size %d holds %d entries of %d bytes", maxIndexSize, n, unit)
	}
	return int(n), nil
}

// OffsetIndexWriter appends entries to a .index file the way Kafka's OffsetIndex does.
// It is not safe for concurrent use.
type OffsetIndexWriter struct {
	f    File
	max  int
	n    int
	last OffsetEntry
}

// NewOffsetIndexWriter preallocates f to maxIndexSize rounded down to whole entries
// (zero-filled), as Kafka does for an active segment's index.
func NewOffsetIndexWriter(f File, maxIndexSize int64) (*OffsetIndexWriter, error) {
	n, err := maxEntries(maxIndexSize, OffsetEntrySize)
	if err != nil {
		return nil, fmt.Errorf("new offset index: %w", err)
	}
	if err := f.Truncate(int64(n) * OffsetEntrySize); err != nil {
		return nil, fmt.Errorf("new offset index: preallocate: %w", err)
	}
	return &OffsetIndexWriter{f: f, max: n}, nil
}

// Entries returns the number of entries written.
func (w *OffsetIndexWriter) Entries() int { return w.n }

// Full reports whether the preallocated file has no room for another entry (a reason for
// Kafka to roll the segment).
func (w *OffsetIndexWriter) Full() bool { return w.n >= w.max }

// Append writes e after the last entry. Like Kafka's OffsetIndex.append it refuses an
// offset not above the last one; it also refuses a position below the last one and a
// full index.
func (w *OffsetIndexWriter) Append(e OffsetEntry) error {
	switch {
	case w.Full():
		return fmt.Errorf("append to offset index: full (%d entries)", w.n)
	case e.RelOffset < 0 || e.Position < 0:
		return fmt.Errorf("append to offset index: negative offset or position (%d, %d)", e.RelOffset, e.Position)
	case w.n > 0 && (e.RelOffset <= w.last.RelOffset || e.Position < w.last.Position):
		return fmt.Errorf("append to offset index: entry (%d, %d) after (%d, %d)", e.RelOffset, e.Position, w.last.RelOffset, w.last.Position)
	}
	var b [OffsetEntrySize]byte
	binary.BigEndian.PutUint32(b[:], uint32(e.RelOffset))
	binary.BigEndian.PutUint32(b[4:], uint32(e.Position))
	if _, err := w.f.WriteAt(b[:], int64(w.n)*OffsetEntrySize); err != nil {
		return fmt.Errorf("append to offset index: %w", err)
	}
	w.n++
	w.last = e
	return nil
}

// Trim truncates the file to the entries written, as Kafka does when a segment rolls.
func (w *OffsetIndexWriter) Trim() error {
	if err := w.f.Truncate(int64(w.n) * OffsetEntrySize); err != nil {
		return fmt.Errorf("trim offset index: %w", err)
	}
	w.max = w.n
	return nil
}

// TimeIndexWriter appends entries to a .timeindex file the way Kafka's TimeIndex does.
// It is not safe for concurrent use.
type TimeIndexWriter struct {
	f    File
	max  int
	n    int
	last TimeEntry
}

// NewTimeIndexWriter preallocates f to maxIndexSize rounded down to whole entries.
func NewTimeIndexWriter(f File, maxIndexSize int64) (*TimeIndexWriter, error) {
	n, err := maxEntries(maxIndexSize, TimeEntrySize)
	if err != nil {
		return nil, fmt.Errorf("new time index: %w", err)
	}
	if err := f.Truncate(int64(n) * TimeEntrySize); err != nil {
		return nil, fmt.Errorf("new time index: preallocate: %w", err)
	}
	return &TimeIndexWriter{f: f, max: n, last: TimeEntry{Timestamp: noTimestamp}}, nil
}

// Entries returns the number of entries written.
func (w *TimeIndexWriter) Entries() int { return w.n }

// Full reports whether the preallocated file has no room for another entry.
func (w *TimeIndexWriter) Full() bool { return w.n >= w.max }

// MaybeAppend is Kafka's TimeIndex.maybeAppend: it writes (timestamp, relOffset) only if
// timestamp is above the last entry's, and refuses a timestamp or offset below the last
// entry's. With skipFull (as on a segment roll) a full index is no error: nothing is
// written.
func (w *TimeIndexWriter) MaybeAppend(timestamp int64, relOffset int32, skipFull bool) error {
	switch {
	case w.n > 0 && relOffset < w.last.RelOffset:
		return fmt.Errorf("append to time index: offset %d below the last %d", relOffset, w.last.RelOffset)
	case w.n > 0 && timestamp < w.last.Timestamp:
		return fmt.Errorf("append to time index: timestamp %d below the last %d", timestamp, w.last.Timestamp)
	case relOffset < 0:
		return fmt.Errorf("append to time index: negative offset %d", relOffset)
	case timestamp <= w.last.Timestamp:
		return nil
	case w.Full():
		if skipFull {
			return nil
		}
		return fmt.Errorf("append to time index: full (%d entries)", w.n)
	}
	var b [TimeEntrySize]byte
	binary.BigEndian.PutUint64(b[:], uint64(timestamp))
	binary.BigEndian.PutUint32(b[8:], uint32(relOffset))
	if _, err := w.f.WriteAt(b[:], int64(w.n)*TimeEntrySize); err != nil {
		return fmt.Errorf("append to time index: %w", err)
	}
	w.n++
	w.last = TimeEntry{Timestamp: timestamp, RelOffset: relOffset}
	return nil
}

// Trim truncates the file to the entries written.
func (w *TimeIndexWriter) Trim() error {
	if err := w.f.Truncate(int64(w.n) * TimeEntrySize); err != nil {
		return fmt.Errorf("trim time index: %w", err)
	}
	w.max = w.n
	return nil
}
