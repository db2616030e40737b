package compactor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"sync"
	"time"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/internal/failpoint"
	"github.com/tierd/tierd/segment"
)

// Options configure a compaction.
type Options struct {
	// Slots and Items are the IndexFile's geometry, the broker's maxHashSlotNum and
	// maxIndexNum, which the file does not record. 0 means the broker's default.
	Slots, Items int
	// Pool provides every bulk buffer. It must hold at least 2 buffers; its buffer size
	// also bounds the directory (2^bits * 8 bytes fit one buffer).
	Pool *bufpool.Pool
	// MaxBuffers caps the pool buffers a compaction holds at once, at least 2: one for the
	// per-bucket state and input reads, the rest for the output window and the window's
	// partition map. More buffers mean fewer passes over the input. 0: half the pool, at
	// least 2.
	MaxBuffers int
	// Progress, if set, is called after every read of the input with the bytes read so far
	// and the total the compaction reads: until the counting pass ends that is the file's
	// size, then the exact total of all passes. Calls never overlap.
	Progress func(done, total int64)
}

// Result describes a finished compaction (or trim).
type Result struct {
	// Header is the compacted index's header (Compact only).
	Header index.TixHeader
	// Size and CRC32C describe the bytes written.
	Size   int64
	CRC32C uint32
	// LocalSize and LocalCRC32C describe the whole input file.
	LocalSize   int64
	LocalCRC32C uint32
	// Entries is the number of items (IndexFile) or used entries (Kafka index) written.
	Entries int
	// Passes counts the reads of the input: the counting pass, then one per output window
	// holding items (Compact); the scan and the copy (Trim).
	Passes int
	// Buffers is the number of pool buffers held for the output window (Compact).
	Buffers int
	// Partitioned is the number of windows whose records were partitioned before they
	// were placed (Compact; the others were placed straight from the scan).
	Partitioned int
	// CountTime, FillTime and WriteTime split a compaction's time: the counting pass, the
	// passes that fill the output windows, and the Writer's Write calls. FillTime is
	// ScanTime (reading the items again and partitioning the window's records, the reads
	// overlapping the work) plus PlaceTime (placing each partition within its range).
	CountTime, FillTime, WriteTime time.Duration
	ScanTime, PlaceTime            time.Duration
}

var errNoPool = errors.New("no buffer pool")

// ErrTooFewBuffers means the pool cannot ever lend the two buffers a compaction needs.
var ErrTooFewBuffers = errors.New("compaction needs at least 2 pool buffers")

// Compact compacts the RocketMQ IndexFile src of srcSize bytes into tierd's compacted
// index format. After the counting pass it calls create once with the exact output size,
// then writes the output into the Writer create returned, whole pool buffers at a time. It
// neither commits nor aborts that Writer (the caller, who holds it, does; as with
// segment.Copy).
//
// The first pass reads the whole file (its CRC-32C is Result.LocalCRC32C; slot heads and
// items are validated as index.IndexFile's reader does); every further pass reads only
// the used items, best from the page cache (open a posix source with DropAtClose). The
// output depends only on the file and the pool's buffer size, never on how many buffers
// were free.
func Compact(ctx context.Context, src io.ReaderAt, srcSize int64, opts Options, create func(size int64) (segment.Writer, error)) (Result, error) {
	if opts.Slots == 0 {
		opts.Slots = index.DefaultIndexSlots
	}
	if opts.Items == 0 {
		opts.Items = index.DefaultIndexItems
	}
	if opts.Pool == nil {
		return Result{}, fmt.Errorf("compact index file: %w", errNoPool)
	}
	ix, err := index.OpenIndexFile(src, srcSize, opts.Slots, opts.Items)
	if err != nil {
		return Result{}, fmt.Errorf("compact index file: %w", err)
	}
	bsize := opts.Pool.BufferSize()
	nbits := index.TixBits(ix.Len(), maxBits(bsize))
	nb := 1 << nbits
	// The largest output this file can make sizes the window: no more buffers than that
	// (and one more for the window's partition map).
	upper := index.TixHeaderSize + int64(ix.Len())*index.TixMaxRecordSize + int64(nb+1)*index.TixDirEntrySize
	want := 2 + int(min((upper+int64(bsize)-1)/int64(bsize), int64(maxBuffers(opts)-2)))
	bufs, err := acquire(ctx, opts.Pool, want)
	if err != nil {
		return Result{}, fmt.Errorf("compact index file: %w", err)
	}
	defer func() {
		for _, b := range bufs {
			if b != nil {
				b.Release()
			}
		}
	}()
	c := &compaction{
		ctx: ctx, src: src, srcSize: srcSize, ix: ix, n: ix.Len(), bits: nbits, nb: nb,
		progress: opts.Progress, total: srcSize,
	}
	// The state buffer: the per-bucket state (maxBits leaves room for it), then the
	// filling passes' input reads and partitioning state, 4 KiB-aligned for O_DIRECT.
	work := bufs[0].Bytes()
	c.bk = bucketStates(work[:bucketBytes*nb])
	clear(c.bk)
	c.work = work[(bucketBytes*nb+directAlign-1)/directAlign*directAlign:]
	// The counting pass reads through the other buffers, free until the output starts.
	if len(bufs) > 2 {
		for _, b := range bufs[1:] {
			c.countRing = append(c.countRing, b.Bytes())
		}
	} else {
		c.countRing = splitRing(bufs[1].Bytes(), 2)
	}
	start := time.Now()
	if err := c.count(); err != nil {
		return Result{}, fmt.Errorf("compact index file: %w", err)
	}
	c.countTime = time.Since(start)
	failpoint.Hit("compactor.counted")
	size := c.h.Size()
	// The window and the partition map; give back the buffers neither needs.
	win, side, used := c.plan(bufs, size)
	for i, b := range bufs {
		if !used[i] {
			b.Release()
			bufs[i] = nil
		}
	}
	c.win = newWindow(win, bsize)
	c.side = side
	c.planPasses(size)
	w, err := create(size)
	if err != nil {
		return Result{}, err
	}
	crc, err := c.write(w, size)
	if err != nil {
		return Result{}, err
	}
	return Result{
		Header: c.h, Size: size, CRC32C: crc, LocalSize: srcSize, LocalCRC32C: c.h.SourceCRC32C,
		Entries: c.n, Passes: c.passes, Buffers: len(win), Partitioned: c.partitioned,
		CountTime: c.countTime, FillTime: c.scanTime + c.placeTime, WriteTime: c.writeTime,
		ScanTime: c.scanTime, PlaceTime: c.placeTime,
	}, nil
}

// bucketState is what a compaction holds per bucket: 16 bytes.
type bucketState struct {
	// first holds the bucket's item count during the counting pass, then the index of its
	// first record.
	first uint32
	// cur is the bucket's cursor while a window is filled: the next record index to fill,
	// counting down (records run newest first, items arrive oldest first).
	cur uint32
	// crc is the CRC-32C of the bucket's records once they are written out.
	crc uint32
	_   uint32
}

// bucketBytes is the size of a bucketState.
const bucketBytes = 16

// bucketStates views b (16-byte aligned: pool buffers are page-aligned) as bucket states;
// pool memory holds no Go pointers, so the view is invisible to the garbage collector.
func bucketStates(b []byte) []bucketState { return poolView[bucketState](b) }

// maxBits returns the most bucket bits whose per-bucket arrays fit a buffer of bsize
// bytes. It depends on nothing but bsize, so the output does not depend on how many
// buffers a compaction holds.
func maxBits(bsize int) int { return bits.Len(uint(bsize/bucketBytes)) - 1 }

func maxBuffers(opts Options) int {
	n := opts.MaxBuffers
	if n <= 0 {
		n = opts.Pool.Capacity() / 2
	}
	return max(n, 2)
}

// compaction is the state of one Compact call.
type compaction struct {
	ctx     context.Context
	src     io.ReaderAt
	srcSize int64
	ix      *index.IndexFile
	n       int // items
	bits    int
	nb      int // buckets
	bk      []bucketState
	work    []byte // the state buffer after bk
	win     window // the output window
	side    []byte // the partition map of the window's records, or nil
	h       index.TixHeader
	codec   index.TixCodec

	countRing [][]byte // the counting pass's read buffers
	fillRing  [][]byte // the filling passes' read buffers
	// The partitioning state (partition.go): scratch for one partition, a staging line
	// per partition, the window's partition of each bucket (from its first bucket).
	scratch, staging []byte
	pmap             []uint16
	parts            []partition
	maxParts         int
	// itemsSeed is the CRC-32C of the file before its items, itemsCRC with its items: the
	// filling passes must read the same items.
	itemsSeed, itemsCRC uint32

	mu          sync.Mutex // serialises progress reports
	progress    func(done, total int64)
	done, total int64
	passes      int
	partitioned int

	countTime, scanTime, placeTime, writeTime time.Duration
}

// bucketEnd returns the index after bucket b's last item.
func (c *compaction) bucketEnd(b int) uint32 {
	if b+1 < c.nb {
		return c.bk[b+1].first
	}
	return uint32(c.n)
}

// bucketOf returns the bucket holding record r (0 <= r < n): the last bucket starting at
// or before r, which is never empty.
func (c *compaction) bucketOf(r int64) int {
	return sort.Search(c.nb, func(b int) bool { return int64(c.bk[b].first) > r }) - 1
}

func (c *compaction) report(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done += n
	if c.progress != nil {
		c.progress(c.done, c.total)
	}
}

// itemChunk is the size of item reads into buf: whole items, never a multiple of 4 KiB,
// so that a source reading with O_DIRECT where it can still reads them through the page
// cache.
func itemChunk(buf []byte) int {
	chunk := len(buf) / index.IndexItemSize * index.IndexItemSize
	if chunk%directAlign == 0 {
		chunk -= index.IndexItemSize
	}
	return chunk
}

// itemsOffset returns where item n of the source lives.
func (c *compaction) itemsOffset(n int) int64 {
	return index.IndexHeaderSize + int64(c.ix.SlotNum())*index.IndexSlotSize + int64(n)*index.IndexItemSize
}

// planPasses counts the windows that hold items (each is one pass over the input) and
// fixes the total the progress reports.
func (c *compaction) planPasses(size int64) {
	c.passes = 1
	span := c.win.span()
	for ws := int64(0); ws < size; ws += span {
		if c.windowRecords(ws, min(ws+span, size)) {
			c.total += int64(c.n) * index.IndexItemSize
		}
	}
}

// windowRecords reports whether the window [ws, we) of the output holds item records.
func (c *compaction) windowRecords(ws, we int64) bool {
	return c.n > 0 && ws < c.h.DirOffset() && we > index.TixHeaderSize
}
