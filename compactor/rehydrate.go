package compactor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"time"
	"unsafe"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
)

// RehydrateOptions configure a rehydration.
type RehydrateOptions struct {
	// Slots and Items are the geometry of the IndexFile to write (maxHashSlotNum,
	// maxIndexNum). 0 means the compacted index's own record of the IndexFile it was made
	// from (TixHeader.SourceSlots, SourceItems), which is what the broker had.
	Slots, Items int
	// Pool provides the bulk buffers: Rehydrate holds two, one for the selection window
	// and one for the output. Required.
	Pool *bufpool.Pool
	// Progress, if set, is called after every pass over the compacted index with the
	// passes done and the total the rehydration makes.
	Progress func(done, total int)
}

// RehydrateResult describes a finished rehydration.
type RehydrateResult struct {
	// Header is the IndexFile header written; Slots and Items its geometry.
	Header       index.IndexHeader
	Slots, Items int
	// Size and CRC32C describe the bytes written.
	Size   int64
	CRC32C uint32
	// Entries is the number of items written.
	Entries int
	// Passes counts the reads of the whole compacted index.
	Passes int
	// Time is the time taken.
	Time time.Duration
}

// ErrGeometry is wrapped by Rehydrate's error when the requested geometry cannot hold the
// compacted index's items.
var ErrGeometry = errors.New("geometry too small")

// Rehydrate writes the RocketMQ IndexFile that the compacted index src (srcSize bytes)
// stands for: opened with index.IndexFile (or by a broker), it answers every lookup —
// the items found, their order, where the chain walk stops — as the IndexFile src was
// compacted from did, for every IndexFile whose store times do not decrease in item order
// (every IndexFile a broker writes; see index/FORMAT.md, "Rehydrating"). The bytes differ:
// items of different key hashes stored within the same second may change places.
//
// It calls create once with the exact size (40 + 4*slots + 20*items bytes) and writes the
// file front to back, whole pool buffers at a time; it neither commits nor aborts the
// Writer. Memory: two pool buffers and the slot table (4 bytes a slot), never the file.
// Every pass over src checks the whole compacted index (index.Tix.Items): a damaged src
// fails with an error wrapping index.ErrCorruptTix before anything is written or, should
// it change between passes, before the Writer could be committed.
func Rehydrate(ctx context.Context, src io.ReaderAt, srcSize int64, opts RehydrateOptions, create func(size int64) (segment.Writer, error)) (RehydrateResult, error) {
	start := time.Now()
	if opts.Pool == nil {
		return RehydrateResult{}, fmt.Errorf("rehydrate index file: %w", errNoPool)
	}
	tx, err := index.OpenTix(src, srcSize)
	if err != nil {
		return RehydrateResult{}, fmt.Errorf("rehydrate index file: %w", err)
	}
	h := tx.Header()
	slots, items := opts.Slots, opts.Items
	if slots == 0 {
		slots = h.SourceSlots
	}
	if items == 0 {
		items = h.SourceItems
	}
	switch {
	case slots <= 0 || items <= 0 || slots > math.MaxInt32 || items > math.MaxInt32:
		return RehydrateResult{}, fmt.Errorf("rehydrate index file: bad geometry: %d slots, %d items", slots, items)
	case index.IndexFileSize(slots, items) > math.MaxInt32:
		return RehydrateResult{}, fmt.Errorf("rehydrate index file: %w: %d slots and %d items make %d bytes, over the %d a broker maps (sizes are Java ints)", ErrGeometry, slots, items, index.IndexFileSize(slots, items), math.MaxInt32)
	case h.Items >= items:
		return RehydrateResult{}, fmt.Errorf("rehydrate index file: %w: %d items do not fit an IndexFile of %d items (it holds %d)", ErrGeometry, h.Items, items, items-1)
	}
	bufs, err := acquire(ctx, opts.Pool, 2)
	if err != nil {
		return RehydrateResult{}, fmt.Errorf("rehydrate index file: %w", err)
	}
	defer func() {
		for _, b := range bufs {
			b.Release()
		}
	}()
	r := &rehydration{
		ctx: ctx, tx: tx, n: h.Items, slots: slots, progress: opts.Progress,
		win:  rhEntries(bufs[0].Bytes()),
		read: make([]byte, 2*maxHeapRead),
		// The slot table: each slot's newest item in the first run, each slot's latest
		// item so far in the second.
		table: make([]int32, slots),
	}
	if len(r.win) == 0 {
		return RehydrateResult{}, fmt.Errorf("rehydrate index file: pool buffers of %d bytes hold no selection entry", len(bufs[0].Bytes()))
	}
	r.total = 2 * ((r.n + len(r.win) - 1) / len(r.win))
	if r.n <= len(r.win) {
		r.total = min(r.n, 1) // one pass, its window reused by the second run
	}
	// First run: every slot's head, the number of its newest item.
	used := 0
	if err := r.run(func(num int32, e *rhEntry) {
		s := int(e.hash) % slots
		if r.table[s] == 0 {
			used++
		}
		r.table[s] = num
	}); err != nil {
		return RehydrateResult{}, fmt.Errorf("rehydrate index file: %w", err)
	}
	hdr := h.Source
	if slots != h.SourceSlots {
		// The slots in use are others with another slot count: count them as a broker does
		// (a put into an empty slot counts one).
		hdr.HashSlotCount = int32(used)
	}
	size := index.IndexFileSize(slots, items)
	w, err := create(size)
	if err != nil {
		return RehydrateResult{}, err
	}
	out := &rhWriter{w: w, buf: bufs[1].Bytes()}
	r.check = func() error { return out.err }
	out.write(index.AppendIndexHeader(out.tmp[:0], hdr))
	for _, head := range r.table {
		out.write(binary.BigEndian.AppendUint32(out.tmp[:0], uint32(head)))
	}
	// Second run: the items, oldest first, each linked to its slot's previous item.
	clear(r.table)
	out.zeros(index.IndexItemSize) // item 0 is never used
	if err := r.run(func(num int32, e *rhEntry) {
		s := int(e.hash) % slots
		b := binary.BigEndian.AppendUint32(out.tmp[:0], uint32(e.hash))
		b = binary.BigEndian.AppendUint64(b, uint64(e.phy))
		b = binary.BigEndian.AppendUint32(b, uint32(e.td))
		out.write(binary.BigEndian.AppendUint32(b, uint32(r.table[s])))
		r.table[s] = num
	}); err != nil {
		return RehydrateResult{}, fmt.Errorf("rehydrate index file: %w", err)
	}
	out.zeros(int64(items-1-r.n) * index.IndexItemSize)
	if err := out.flush(); err != nil {
		return RehydrateResult{}, fmt.Errorf("rehydrate index file: write: %w", err)
	}
	if out.written != size {
		panic(fmt.Sprintf("BUG: rehydrated %d bytes of %d", out.written, size))
	}
	return RehydrateResult{
		Header: hdr, Slots: slots, Items: items, Size: size, CRC32C: out.crc,
		Entries: r.n, Passes: r.passes, Time: time.Since(start),
	}, nil
}

// rhEntry is an item in the selection window: its order key, then its fields.
type rhEntry struct {
	// key orders the items oldest first: the item's TimeDiff, lowered to the smallest of
	// its bucket's newer items (so that it never decreases in a bucket's oldest-first
	// order), in the high 32 bits; the complement of its record's index in the compacted
	// index (older records of a bucket come later in the file) in the low 32. Keys are
	// distinct.
	key  uint64
	phy  int64
	hash int32
	td   int32
}

// rhEntryBytes is the size of an rhEntry.
const rhEntryBytes = 24

// rhEntries views b (8-byte aligned: pool buffers are page-aligned) as selection entries;
// pool memory holds no Go pointers, so the view is invisible to the garbage collector.
func rhEntries(b []byte) []rhEntry {
	if len(b) < rhEntryBytes {
		return nil
	}
	return unsafe.Slice((*rhEntry)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/rhEntryBytes)
}

type rehydration struct {
	ctx      context.Context
	tx       *index.Tix
	n, slots int
	win      []rhEntry
	read     []byte
	table    []int32
	passes   int
	total    int
	progress func(done, total int)
	// check, if set, is called after every window: an error stops the run.
	check func() error
	// cached: the whole index fit one window in the first run, which holds it sorted.
	cached int
}

// run calls fn for every item in the order the rehydrated file numbers them (oldest
// first), with its number (1..n). It selects the items window by window: each pass over
// the compacted index keeps, in a max-heap as large as the window, the smallest keys
// above the last window's largest.
func (r *rehydration) run(fn func(num int32, e *rhEntry)) error {
	if r.cached > 0 {
		for i := range r.win[:r.cached] {
			fn(int32(i+1), &r.win[i])
		}
		return nil
	}
	done := 0
	var last uint64
	for done < r.n {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		k, err := r.pass(done > 0, last)
		if err != nil {
			return err
		}
		if k == 0 {
			return fmt.Errorf("%w: pass %d found no item after %d of %d (the object changed?)", index.ErrCorruptTix, r.passes, done, r.n)
		}
		win := r.win[:k]
		slices.SortFunc(win, func(a, b rhEntry) int {
			switch {
			case a.key < b.key:
				return -1
			case a.key > b.key:
				return 1
			}
			return 0
		})
		for i := range win {
			fn(int32(done+i+1), &win[i])
		}
		done += k
		last = win[k-1].key
		if r.check != nil {
			if err := r.check(); err != nil {
				return err
			}
		}
		if done == r.n && r.passes == 1 {
			r.cached = k
		}
	}
	return nil
}

// pass reads the whole compacted index once and leaves in the window (unsorted) the
// smallest keys above last (any keys when !after); it returns how many.
func (r *rehydration) pass(after bool, last uint64) (int, error) {
	r.passes++
	var (
		win    = r.win
		n      = 0
		g      = uint32(0)
		bucket = -1
		minTD  int32
	)
	err := r.tx.Items(r.read, func(b int, it index.TixItem) error {
		if b != bucket {
			bucket, minTD = b, it.TimeDiff
		} else {
			minTD = min(minTD, it.TimeDiff)
		}
		key := uint64(uint32(minTD))<<32 | uint64(^g)
		g++
		if g&(1<<20-1) == 0 {
			if err := r.ctx.Err(); err != nil {
				return err
			}
		}
		if after && key <= last {
			return nil
		}
		e := rhEntry{key: key, phy: it.PhyOffset, hash: it.KeyHash, td: it.TimeDiff}
		if n < len(win) {
			win[n] = e
			n++
			heapUp(win[:n], n-1)
		} else if key < win[0].key {
			win[0] = e
			heapDown(win[:n], 0)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if int(g) != r.n {
		return 0, fmt.Errorf("%w: %d items, the header says %d", index.ErrCorruptTix, g, r.n)
	}
	if r.progress != nil {
		r.progress(r.passes, r.total)
	}
	return n, nil
}

// heapUp and heapDown keep h a max-heap by key.
func heapUp(h []rhEntry, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].key >= h[i].key {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func heapDown(h []rhEntry, i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h[c+1].key > h[c].key {
			c++
		}
		if h[i].key >= h[c].key {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// rhWriter writes the IndexFile through one pool buffer, whole buffers at a time (the
// last write may be short).
type rhWriter struct {
	w       segment.Writer
	buf     []byte
	n       int
	written int64
	crc     uint32
	err     error
	tmp     [index.IndexHeaderSize]byte
}

// write appends p.
func (o *rhWriter) write(p []byte) {
	for len(p) > 0 {
		if o.n == len(o.buf) {
			_ = o.flush()
		}
		c := copy(o.buf[o.n:], p)
		o.n += c
		p = p[c:]
	}
}

// zeros appends k zero bytes.
func (o *rhWriter) zeros(k int64) {
	for k > 0 {
		if o.n == len(o.buf) {
			_ = o.flush()
		}
		m := int(min(k, int64(len(o.buf)-o.n)))
		clear(o.buf[o.n : o.n+m])
		o.n += m
		k -= int64(m)
	}
}

// flush writes the buffered bytes; the first error sticks and later writes are dropped.
func (o *rhWriter) flush() error {
	if o.err == nil && o.n > 0 {
		o.crc = crc32.Update(o.crc, segment.Castagnoli, o.buf[:o.n])
		_, o.err = o.w.Write(o.buf[:o.n])
		o.written += int64(o.n)
	}
	o.n = 0
	return o.err
}
