package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/tierd/tierd/record"
)

// RocketMQ IndexFile layout (store/index/IndexFile.java, IndexHeader.java).
const (
	IndexHeaderSize = 40
	IndexSlotSize   = 4
	IndexItemSize   = 20
	// DefaultIndexSlots and DefaultIndexItems are the broker's maxHashSlotNum and
	// maxIndexNum defaults.
	DefaultIndexSlots = 5_000_000
	DefaultIndexItems = 20_000_000
)

// maxReadSize is the largest single read the IndexFile reader makes on its own.
const maxReadSize = 64 << 10

// ErrCorruptIndex is wrapped by every error about an index file whose bytes break its layout.
var ErrCorruptIndex = errors.New("corrupt index file")

// IndexFileSize returns the size of an IndexFile with the given slot and item counts.
func IndexFileSize(slots, items int) int64 {
	return IndexHeaderSize + int64(slots)*IndexSlotSize + int64(items)*IndexItemSize
}

// IndexKey is the key the broker indexes for message key k of topic (topic + "#" + k).
func IndexKey(topic, k string) string { return topic + "#" + k }

// KeyHash is the broker's IndexFile.indexKeyHashMethod: abs(String.hashCode(key)) over
// UTF-16 code units, and 0 when that is still negative (hashCode = Integer.MIN_VALUE).
func KeyHash(key string) int32 {
	h := record.JavaStringHashCode(key)
	if h < 0 {
		h = -h // MinInt32 stays MinInt32, like Math.abs
	}
	if h < 0 {
		h = 0
	}
	return h
}

// IndexHeader is an IndexFile's 40-byte header.
type IndexHeader struct {
	BeginTimestamp int64 // store time (ms) of the first item
	EndTimestamp   int64 // store time (ms) of the last item
	BeginPhyOffset int64 // commit-log offset of the first item's message
	EndPhyOffset   int64 // commit-log offset of the last item's message
	HashSlotCount  int32 // slots in use (older brokers counted every put; not checked)
	IndexCount     int32 // items written + 1; item numbers run from 1 to IndexCount-1
}

// AppendIndexHeader appends h's 40 bytes to dst.
func AppendIndexHeader(dst []byte, h IndexHeader) []byte {
	be := binary.BigEndian
	dst = be.AppendUint64(dst, uint64(h.BeginTimestamp))
	dst = be.AppendUint64(dst, uint64(h.EndTimestamp))
	dst = be.AppendUint64(dst, uint64(h.BeginPhyOffset))
	dst = be.AppendUint64(dst, uint64(h.EndPhyOffset))
	dst = be.AppendUint32(dst, uint32(h.HashSlotCount))
	return be.AppendUint32(dst, uint32(h.IndexCount))
}

// DecodeIndexHeader decodes the header in the first 40 bytes of b.
func DecodeIndexHeader(b []byte) (IndexHeader, error) {
	if len(b) < IndexHeaderSize {
		return IndexHeader{}, fmt.Errorf("decode index header: %d bytes, need %d: %w", len(b), IndexHeaderSize, io.ErrUnexpectedEOF)
	}
	be := binary.BigEndian
	return IndexHeader{
		BeginTimestamp: int64(be.Uint64(b)),
		EndTimestamp:   int64(be.Uint64(b[8:])),
		BeginPhyOffset: int64(be.Uint64(b[16:])),
		EndPhyOffset:   int64(be.Uint64(b[24:])),
		HashSlotCount:  int32(be.Uint32(b[32:])),
		IndexCount:     int32(be.Uint32(b[36:])),
	}, nil
}

// Item is one IndexFile item.
type Item struct {
	Number    int32 // its number, 1..IndexCount-1 (its place in the file)
	KeyHash   int32 // KeyHash of the indexed key
	PhyOffset int64 // commit-log offset of the message
	TimeDiff  int32 // seconds from the header's BeginTimestamp to the message's store time
	PrevIndex int32 // number of the previous (older) item of the same slot, 0 = none
}

func appendItem(dst []byte, it Item) []byte {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(it.KeyHash))
	dst = be.AppendUint64(dst, uint64(it.PhyOffset))
	dst = be.AppendUint32(dst, uint32(it.TimeDiff))
	return be.AppendUint32(dst, uint32(it.PrevIndex))
}

func decodeItem(b []byte, number int32) Item {
	be := binary.BigEndian
	return Item{
		Number:    number,
		KeyHash:   int32(be.Uint32(b)),
		PhyOffset: int64(be.Uint64(b[4:])),
		TimeDiff:  int32(be.Uint32(b[12:])),
		PrevIndex: int32(be.Uint32(b[16:])),
	}
}

// IndexFile reads a RocketMQ IndexFile through an io.ReaderAt. It holds only the header;
// every other read goes to the ReaderAt. Its methods are safe for concurrent use if the
// ReaderAt is.
type IndexFile struct {
	r            io.ReaderAt
	slots, items int
	hdr          IndexHeader
}

// OpenIndexFile opens the IndexFile r of size bytes, written with the broker settings
// slots (maxHashSlotNum) and items (maxIndexNum), which the file itself does not record.
// It checks the size against the layout and reads the header; an IndexCount outside
// 0..items is an error (0 is a file whose header was never flushed: it has no items).
func OpenIndexFile(r io.ReaderAt, size int64, slots, items int) (*IndexFile, error) {
	if slots <= 0 || items <= 0 || slots > math.MaxInt32 || items > math.MaxInt32 {
		return nil, fmt.Errorf("open index file: bad settings: %d slots, %d items", slots, items)
	}
	if want := IndexFileSize(slots, items); size != want {
		return nil, fmt.Errorf("open index file: size %d, but %d slots and %d items make %d bytes (40 + slots*4 + items*20): check the maxHashSlotNum/maxIndexNum settings", size, slots, items, want)
	}
	var b [IndexHeaderSize]byte
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return nil, fmt.Errorf("open index file: read header: %w", err)
	}
	h, _ := DecodeIndexHeader(b[:])
	if h.IndexCount < 0 || int64(h.IndexCount) > int64(items) {
		return nil, fmt.Errorf("open index file: %w: header indexCount %d outside 0..%d", ErrCorruptIndex, h.IndexCount, items)
	}
	return &IndexFile{r: r, slots: slots, items: items, hdr: h}, nil
}

// Header returns the file's header.
func (f *IndexFile) Header() IndexHeader { return f.hdr }

// SlotNum returns the number of hash slots (maxHashSlotNum).
func (f *IndexFile) SlotNum() int { return f.slots }

// ItemNum returns the number of item places (maxIndexNum).
func (f *IndexFile) ItemNum() int { return f.items }

// Len returns the number of items written: IndexCount-1, or 0.
func (f *IndexFile) Len() int { return max(int(f.hdr.IndexCount)-1, 0) }

// ItemTime returns an item's store time in ms: BeginTimestamp + TimeDiff seconds.
func (f *IndexFile) ItemTime(it Item) int64 {
	return f.hdr.BeginTimestamp + int64(it.TimeDiff)*1000
}

func (f *IndexFile) itemOffset(n int32) int64 {
	return IndexHeaderSize + int64(f.slots)*IndexSlotSize + int64(n)*IndexItemSize
}

// Slot returns slot's head: the number of its newest item, 0 if the slot is empty.
func (f *IndexFile) Slot(slot int) (int32, error) {
	if slot < 0 || slot >= f.slots {
		return 0, fmt.Errorf("index slot %d outside 0..%d", slot, f.slots-1)
	}
	var b [IndexSlotSize]byte
	if _, err := f.r.ReadAt(b[:], IndexHeaderSize+int64(slot)*IndexSlotSize); err != nil {
		return 0, fmt.Errorf("read index slot %d: %w", slot, err)
	}
	head := int32(binary.BigEndian.Uint32(b[:]))
	if err := f.checkHead(slot, head); err != nil {
		return 0, err
	}
	return head, nil
}

func (f *IndexFile) checkHead(slot int, head int32) error {
	if head < 0 || (head > 0 && head >= f.hdr.IndexCount) {
		return fmt.Errorf("%w: slot %d points at item %d, items are 1..%d", ErrCorruptIndex, slot, head, f.hdr.IndexCount-1)
	}
	return nil
}

// Item reads item number n (1..IndexCount-1).
func (f *IndexFile) Item(n int32) (Item, error) {
	if n < 1 || n >= f.hdr.IndexCount {
		return Item{}, fmt.Errorf("index item %d outside 1..%d", n, f.hdr.IndexCount-1)
	}
	var b [IndexItemSize]byte
	if _, err := f.r.ReadAt(b[:], f.itemOffset(n)); err != nil {
		return Item{}, fmt.Errorf("read index item %d: %w", n, err)
	}
	return decodeItem(b[:], n), nil
}

// checkItem reports an item no broker writes: a negative hash or time, or a chain link
// that does not point at an older item.
func checkItem(it Item) error {
	switch {
	case it.KeyHash < 0:
		return fmt.Errorf("%w: item %d has negative key hash %d", ErrCorruptIndex, it.Number, it.KeyHash)
	case it.TimeDiff < 0:
		return fmt.Errorf("%w: item %d has negative timeDiff %d", ErrCorruptIndex, it.Number, it.TimeDiff)
	case it.PrevIndex < 0 || it.PrevIndex >= it.Number:
		return fmt.Errorf("%w: item %d links to item %d, not to an older one", ErrCorruptIndex, it.Number, it.PrevIndex)
	}
	return nil
}

// Lookup returns the items of key stored between begin and end (ms, inclusive), newest
// first, at most max of them (max <= 0: no limit), as the broker's
// IndexFile.selectPhyOffset finds them: it walks key's slot chain from the newest item,
// keeps items whose KeyHash equals KeyHash(key) and whose time is in range (different keys
// share hashes: the caller checks the message), and stops at the chain's end or at the
// first item older than begin. Each step reads one 20-byte item. A chain that leaves
// 1..IndexCount-1 or does not go strictly to older items is an error, so the walk takes at
// most IndexCount steps.
func (f *IndexFile) Lookup(key string, begin, end int64, max int) ([]Item, error) {
	return f.LookupHash(KeyHash(key), begin, end, max)
}

// LookupHash is Lookup for a key whose KeyHash is hash.
func (f *IndexFile) LookupHash(hash int32, begin, end int64, max int) ([]Item, error) {
	if hash < 0 {
		return nil, fmt.Errorf("index lookup: negative key hash %d", hash)
	}
	slot := int(hash) % f.slots
	head, err := f.Slot(slot)
	if err != nil {
		return nil, fmt.Errorf("index lookup: %w", err)
	}
	var found []Item
	for n := head; n > 0; {
		if max > 0 && len(found) >= max {
			break
		}
		it, err := f.Item(n)
		if err != nil {
			return nil, fmt.Errorf("index lookup in slot %d: %w", slot, err)
		}
		if err := checkItem(it); err != nil {
			return nil, fmt.Errorf("index lookup in slot %d: %w", slot, err)
		}
		t := f.ItemTime(it)
		if it.KeyHash == hash && t >= begin && t <= end {
			found = append(found, it)
		}
		if t < begin {
			break
		}
		n = it.PrevIndex
	}
	return found, nil
}

// SlotHeads calls fn for every non-empty slot, in slot order, with its head item number.
// It reads the slot table in chunks of len(buf) bytes (at most 64 KiB when buf is nil).
// A head outside 1..IndexCount-1 is an error. An error from fn stops the walk and is
// returned as is.
func (f *IndexFile) SlotHeads(buf []byte, fn func(slot int, head int32) error) error {
	buf, err := chunkBuffer(buf, IndexSlotSize)
	if err != nil {
		return fmt.Errorf("index slot heads: %w", err)
	}
	for slot := 0; slot < f.slots; {
		n := min(len(buf)/IndexSlotSize, f.slots-slot)
		b := buf[:n*IndexSlotSize]
		if _, err := f.r.ReadAt(b, IndexHeaderSize+int64(slot)*IndexSlotSize); err != nil {
			return fmt.Errorf("read index slots %d..%d: %w", slot, slot+n-1, err)
		}
		for i := range n {
			head := int32(binary.BigEndian.Uint32(b[i*IndexSlotSize:]))
			if head == 0 {
				continue
			}
			if err := f.checkHead(slot+i, head); err != nil {
				return err
			}
			if err := fn(slot+i, head); err != nil {
				return err
			}
		}
		slot += n
	}
	return nil
}

// Items calls fn for every written item (1..IndexCount-1) in file order, with the slot
// its KeyHash maps to. It reads in chunks of len(buf) bytes (at most 64 KiB when buf is
// nil). An item no broker writes (negative hash or timeDiff, or a PrevIndex that is not
// an older item) is an error. An error from fn stops the walk and is returned as is.
func (f *IndexFile) Items(buf []byte, fn func(slot int, it Item) error) error {
	buf, err := chunkBuffer(buf, IndexItemSize)
	if err != nil {
		return fmt.Errorf("index items: %w", err)
	}
	last := f.hdr.IndexCount - 1
	for next := int32(1); next <= last; {
		n := int32(min(int64(len(buf)/IndexItemSize), int64(last-next+1)))
		b := buf[:int(n)*IndexItemSize]
		if _, err := f.r.ReadAt(b, f.itemOffset(next)); err != nil {
			return fmt.Errorf("read index items %d..%d: %w", next, next+n-1, err)
		}
		for i := range n {
			it := decodeItem(b[int(i)*IndexItemSize:], next+i)
			if err := checkItem(it); err != nil {
				return err
			}
			if err := fn(int(it.KeyHash)%f.slots, it); err != nil {
				return err
			}
		}
		next += n
	}
	return nil
}

// chunkBuffer returns buf, or a new buffer of at most maxReadSize, holding whole units.
func chunkBuffer(buf []byte, unit int) ([]byte, error) {
	if buf == nil {
		return make([]byte, maxReadSize/unit*unit), nil
	}
	if len(buf) < unit {
		return nil, fmt.Errorf("buffer of %d bytes holds no %d-byte entry", len(buf), unit)
	}
	return buf, nil
}
