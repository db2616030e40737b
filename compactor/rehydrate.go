package compactor

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"sort"
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
	// Pool provides the bulk buffers. Required; at least 2 buffers.
	Pool *bufpool.Pool
	// MaxBuffers caps the pool buffers a rehydration holds at once, at least 2: one for
	// the output, the rest for the window of items ordered per pass (24 bytes an item).
	// More buffers mean fewer passes. 0: half the pool, at least 2.
	MaxBuffers int
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
// Writer. Memory: pool buffers (one for the output, the rest for the window of items
// ordered per pass), the slot table (4 bytes a slot) and a histogram of at most 2 MiB,
// never the file.
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
	bsize := opts.Pool.BufferSize()
	per := bsize / rhEntryBytes
	if per == 0 {
		return RehydrateResult{}, fmt.Errorf("rehydrate index file: pool buffers of %d bytes hold no window entry", bsize)
	}
	limit := max(opts.MaxBuffers, 0)
	if limit == 0 {
		limit = opts.Pool.Capacity() / 2
	}
	want := 1 + min(max(limit, 2)-1, max((h.Items+per-1)/per, 1))
	bufs, err := acquire(ctx, opts.Pool, want)
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
		per:  per,
		read: make([]byte, 2*maxHeapRead),
		// The slot table: each slot's newest item in the first run, each slot's latest
		// item so far in the second.
		table: make([]int32, slots),
	}
	for _, b := range bufs[1:] {
		r.chunks = append(r.chunks, rhEntries(b.Bytes()))
	}
	r.capacity = per * len(r.chunks)
	if err := r.count(); err != nil {
		return RehydrateResult{}, fmt.Errorf("rehydrate index file: %w", err)
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
	out := &rhWriter{w: w, buf: bufs[0].Bytes()}
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

// rhEntryBytes is the size of an rhEntry: 24 bytes.
const rhEntryBytes = int(unsafe.Sizeof(rhEntry{}))

// rhEntries views b (8-byte aligned: pool buffers are page-aligned) as selection entries;
// pool memory holds no Go pointers, so the view is invisible to the garbage collector.
func rhEntries(b []byte) []rhEntry { return poolView[rhEntry](b) }

type rehydration struct {
	ctx      context.Context
	tx       *index.Tix
	n, slots int
	read     []byte
	table    []int32
	progress func(done, total int)
	// check, if set, is called after every window: an error stops the run.
	check func() error

	// The window: chunks of per entries each, capacity in all.
	chunks        [][]rhEntry
	per, capacity int

	// The histogram of the items' order keys by their time part t': bin k holds
	// t' in [minTD + k*width, minTD + (k+1)*width); start[k] is the number of items in
	// the bins before k (start[bins] = n), cur[k] a placement cursor.
	minTD      int32
	width      int64
	start, cur []uint32

	sorter        windowRange
	passes, total int
	// cached: the whole index fit one window in the first run, which holds it ordered.
	cached bool
}

// maxBins bounds the histogram: 2^18 bins (2 MiB with the cursors), one second each for an
// IndexFile that spans up to 3 days.
const maxBins = 1 << 18

// at returns window entry i.
func (r *rehydration) at(i int) *rhEntry { return &r.chunks[i/r.per][i%r.per] }

// walk reads the whole compacted index once (index.Tix.Items checks all of it) and calls
// fn for every item, in the index's order, with its order key (see rhEntry.key).
func (r *rehydration) walk(fn func(key uint64, it index.TixItem)) error {
	r.passes++
	var (
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
		fn(uint64(uint32(minTD))<<32|uint64(^g), it)
		g++
		if g&(1<<20-1) == 0 {
			return r.ctx.Err()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if int(g) != r.n {
		return fmt.Errorf("%w: %d items, the header says %d", index.ErrCorruptTix, g, r.n)
	}
	if r.progress != nil {
		r.progress(r.passes, r.total)
	}
	return nil
}

// bin returns the histogram bin of an order key.
func (r *rehydration) bin(key uint64) int {
	return int((int64(key>>32) - int64(r.minTD)) / r.width)
}

// count makes the histogram (one pass) and plans the passes.
func (r *rehydration) count() error {
	h := r.tx.Header()
	span := int64(h.MaxTimeDiff) - int64(h.MinTimeDiff) + 1
	r.minTD, r.width = h.MinTimeDiff, (span+maxBins-1)/maxBins
	bins := int((span + r.width - 1) / r.width)
	r.start, r.cur = make([]uint32, bins+1), make([]uint32, bins)
	if r.n == 0 {
		return nil
	}
	r.total = 1 + 2*((r.n+r.capacity-1)/r.capacity)
	if err := r.walk(func(key uint64, _ index.TixItem) { r.start[r.bin(key)+1]++ }); err != nil {
		return err
	}
	for k := 1; k <= bins; k++ {
		r.start[k] += r.start[k-1]
	}
	return nil
}

// run calls fn for every item in the order the rehydrated file numbers them (oldest
// first), with its number (1..n). Consecutive bins holding at most the window's capacity
// are read in one pass each, placed straight into their ordered places (items of a bin
// arrive newest first and fill it from its end) and, for bins wider than a second, sorted
// bin by bin. A bin larger than the window is selected in parts (selectBin).
func (r *rehydration) run(fn func(num int32, e *rhEntry)) error {
	bins := len(r.cur)
	if r.cached {
		for i := range r.n {
			fn(int32(i+1), r.at(i))
		}
		return nil
	}
	for a := 0; a < bins; {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if int(r.start[a+1]-r.start[a]) > r.capacity {
			if err := r.selectBin(a, fn); err != nil {
				return err
			}
			a++
			continue
		}
		b := a + 1
		for b < bins && int(r.start[b+1]-r.start[a]) <= r.capacity {
			b++
		}
		if k := int(r.start[b] - r.start[a]); k > 0 {
			if err := r.place(a, b); err != nil {
				return err
			}
			for i := range k {
				fn(int32(int(r.start[a])+i+1), r.at(i))
			}
			r.cached = k == r.n
			if r.check != nil {
				if err := r.check(); err != nil {
					return err
				}
			}
		}
		a = b
	}
	return nil
}

// place fills the window with the items of bins [a, b), in order.
func (r *rehydration) place(a, b int) error {
	copy(r.cur[a:b], r.start[a+1:b+1])
	base := r.start[a]
	err := r.walk(func(key uint64, it index.TixItem) {
		k := r.bin(key)
		if k < a || k >= b {
			return
		}
		r.cur[k]--
		*r.at(int(r.cur[k] - base)) = rhEntry{key: key, phy: it.PhyOffset, hash: it.KeyHash, td: it.TimeDiff}
	})
	if err != nil {
		return err
	}
	for k := a; k < b; k++ {
		if r.cur[k] != r.start[k] {
			return fmt.Errorf("%w: bin %d got %d items, the counting pass saw %d (the object changed?)", index.ErrCorruptTix, k, r.start[k+1]-r.cur[k], r.start[k+1]-r.start[k])
		}
		if lo, hi := int(r.start[k]-base), int(r.start[k+1]-base); r.width > 1 && hi-lo > 1 {
			r.sortRange(lo, hi)
		}
	}
	return nil
}

// sortRange sorts window entries [lo, hi) by key: in place when they lie in one chunk,
// else through the chunks.
func (r *rehydration) sortRange(lo, hi int) {
	if c := lo / r.per; (hi-1)/r.per == c {
		slices.SortFunc(r.chunks[c][lo%r.per:lo%r.per+hi-lo], compareKeys)
		return
	}
	r.sorter = windowRange{r, lo, hi}
	sort.Sort(&r.sorter)
}

func compareKeys(a, b rhEntry) int { return cmp.Compare(a.key, b.key) }

// windowRange sorts window entries [lo, hi) by key.
type windowRange struct {
	r      *rehydration
	lo, hi int
}

func (w *windowRange) Len() int           { return w.hi - w.lo }
func (w *windowRange) Less(i, j int) bool { return w.r.at(w.lo+i).key < w.r.at(w.lo+j).key }
func (w *windowRange) Swap(i, j int) {
	x, y := w.r.at(w.lo+i), w.r.at(w.lo+j)
	*x, *y = *y, *x
}

// selectBin calls fn for the items of bin k, which the window cannot hold at once, in
// order: each pass keeps, in a max-heap in the window's first chunk, the smallest keys of
// the bin above the previous part's largest.
func (r *rehydration) selectBin(k int, fn func(num int32, e *rhEntry)) error {
	heap := r.chunks[0]
	total := int(r.start[k+1] - r.start[k])
	var last uint64
	for done := 0; done < total; {
		n := 0
		after := done > 0
		err := r.walk(func(key uint64, it index.TixItem) {
			if r.bin(key) != k || (after && key <= last) {
				return
			}
			e := rhEntry{key: key, phy: it.PhyOffset, hash: it.KeyHash, td: it.TimeDiff}
			if n < len(heap) {
				heap[n] = e
				n++
				heapUp(heap[:n], n-1)
			} else if key < heap[0].key {
				heap[0] = e
				heapDown(heap[:n], 0)
			}
		})
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: bin %d: a pass found no item after %d of %d (the object changed?)", index.ErrCorruptTix, k, done, total)
		}
		part := heap[:n]
		slices.SortFunc(part, compareKeys)
		for i := range part {
			fn(int32(int(r.start[k])+done+i+1), &part[i])
		}
		done += n
		last = part[n-1].key
		if r.check != nil {
			if err := r.check(); err != nil {
				return err
			}
		}
	}
	return nil
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
