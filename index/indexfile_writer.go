package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// ErrIndexFileFull is returned by IndexFileWriter.Put when the file holds items-1 items
// (IndexCount has reached the item count), as the broker's putKey refuses then.
var ErrIndexFileFull = errors.New("index file is full")

// slotChunk is the number of slots per dirty-tracking chunk: 64 KiB of slot table.
const slotChunk = maxReadSize / IndexSlotSize

// IndexFileWriter builds a RocketMQ IndexFile as the broker's IndexFile.putKey does.
//
// It is a tool for tests and the broker simulator: it keeps the whole slot table in memory
// (slots*4 bytes: 20 MB with the default 5,000,000 slots) so a put needs no read, buffers
// up to 64 KiB of new items, and writes the header, the buffered items and the changed
// parts of the slot table at Flush. It is not safe for concurrent use.
type IndexFileWriter struct {
	w            io.WriterAt
	slots, items int
	hdr          IndexHeader
	table        []int32
	dirty        []bool // per slotChunk slots: changed since the last Flush
	pend         []byte // items from number pendFirst on, not yet written
	pendFirst    int32
}

// NewIndexFileWriter starts an IndexFile in w with the given slot and item counts, like
// the broker's IndexFile constructor: prevEndPhyOffset and prevEndTimestamp (the previous
// file's end, or 0 for the first file) seed the header's begin and end fields when
// positive. If w has a Truncate method (an *os.File does), the file is first sized to its
// full length, zero-filled and sparse, as the broker preallocates it.
func NewIndexFileWriter(w io.WriterAt, slots, items int, prevEndPhyOffset, prevEndTimestamp int64) (*IndexFileWriter, error) {
	if slots <= 0 || items <= 1 || slots > math.MaxInt32 || items > math.MaxInt32 {
		return nil, fmt.Errorf("new index file: bad settings: %d slots, %d items", slots, items)
	}
	if t, ok := w.(interface{ Truncate(int64) error }); ok {
		if err := t.Truncate(IndexFileSize(slots, items)); err != nil {
			return nil, fmt.Errorf("new index file: preallocate: %w", err)
		}
	}
	iw := &IndexFileWriter{
		w:         w,
		slots:     slots,
		items:     items,
		hdr:       IndexHeader{IndexCount: 1},
		table:     make([]int32, slots),
		dirty:     make([]bool, (slots+slotChunk-1)/slotChunk),
		pendFirst: 1,
	}
	if prevEndPhyOffset > 0 {
		iw.hdr.BeginPhyOffset, iw.hdr.EndPhyOffset = prevEndPhyOffset, prevEndPhyOffset
	}
	if prevEndTimestamp > 0 {
		iw.hdr.BeginTimestamp, iw.hdr.EndTimestamp = prevEndTimestamp, prevEndTimestamp
	}
	return iw, nil
}

// Header returns the header as it stands (written to the file at Flush).
func (w *IndexFileWriter) Header() IndexHeader { return w.hdr }

// Full reports whether the file takes no more items (IndexCount >= items).
func (w *IndexFileWriter) Full() bool { return int64(w.hdr.IndexCount) >= int64(w.items) }

// Put indexes key for the message at phyOffset stored at storeTimestamp (ms): the new item
// gets number IndexCount, links to the slot's previous head and becomes its head; its
// timeDiff is whole seconds since BeginTimestamp, clamped to 0..MaxInt32 (0 while
// BeginTimestamp is not positive). The first item sets BeginPhyOffset and
// BeginTimestamp; every item sets EndPhyOffset and EndTimestamp. It returns
// ErrIndexFileFull when the file is full.
func (w *IndexFileWriter) Put(key string, phyOffset, storeTimestamp int64) error {
	if w.Full() {
		return ErrIndexFileFull
	}
	h := &w.hdr
	keyHash := KeyHash(key)
	slot := int(keyHash) % w.slots
	prev := w.table[slot]
	if prev <= 0 || prev > h.IndexCount {
		prev = 0
	}
	var timeDiff int64
	if h.BeginTimestamp > 0 {
		timeDiff = (storeTimestamp - h.BeginTimestamp) / 1000
		timeDiff = max(0, min(timeDiff, math.MaxInt32))
	}
	n := h.IndexCount
	if len(w.pend)+IndexItemSize > maxReadSize {
		if err := w.flushItems(); err != nil {
			return err
		}
	}
	w.pend = appendItem(w.pend, Item{KeyHash: keyHash, PhyOffset: phyOffset, TimeDiff: int32(timeDiff), PrevIndex: prev})
	w.table[slot] = n
	w.dirty[slot/slotChunk] = true
	if n <= 1 {
		h.BeginPhyOffset = phyOffset
		h.BeginTimestamp = storeTimestamp
	}
	if prev == 0 {
		h.HashSlotCount++
	}
	h.IndexCount++
	h.EndPhyOffset = phyOffset
	h.EndTimestamp = storeTimestamp
	return nil
}

func (w *IndexFileWriter) flushItems() error {
	if len(w.pend) == 0 {
		return nil
	}
	off := IndexHeaderSize + int64(w.slots)*IndexSlotSize + int64(w.pendFirst)*IndexItemSize
	if _, err := w.w.WriteAt(w.pend, off); err != nil {
		return fmt.Errorf("write index items from %d: %w", w.pendFirst, err)
	}
	w.pendFirst += int32(len(w.pend) / IndexItemSize)
	w.pend = w.pend[:0]
	return nil
}

// Flush writes the buffered items, the changed parts of the slot table and the header.
// It does not sync: the caller syncs the file if it needs durability.
func (w *IndexFileWriter) Flush() error {
	if err := w.flushItems(); err != nil {
		return err
	}
	var buf []byte
	for c, d := range w.dirty {
		if !d {
			continue
		}
		first := c * slotChunk
		last := min(first+slotChunk, w.slots)
		buf = buf[:0]
		for _, v := range w.table[first:last] {
			buf = binary.BigEndian.AppendUint32(buf, uint32(v))
		}
		if _, err := w.w.WriteAt(buf, IndexHeaderSize+int64(first)*IndexSlotSize); err != nil {
			return fmt.Errorf("write index slots %d..%d: %w", first, last-1, err)
		}
		w.dirty[c] = false
	}
	if _, err := w.w.WriteAt(AppendIndexHeader(nil, w.hdr), 0); err != nil {
		return fmt.Errorf("write index header: %w", err)
	}
	return nil
}
