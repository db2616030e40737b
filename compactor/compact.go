package compactor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"sort"
	"sync"
	"time"
	"unsafe"

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
	// directory and input reads, the rest for the output window. More buffers mean fewer
	// passes over the input. 0: half the pool, at least 2.
	MaxBuffers int
	// Parallel is the number of goroutines that fill an output window, each scanning its
	// own half of the items: 1 or 2 (0: 2 when GOMAXPROCS allows and the file is large
	// enough to gain from it). The output is the same either way.
	Parallel int
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
	// CountTime, FillTime and WriteTime split a compaction's time: the counting pass, the
	// passes that fill the output windows, and the Writer's Write calls.
	CountTime, FillTime, WriteTime time.Duration
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
	// The largest output this file can make sizes the window: no more buffers than that.
	upper := index.TixHeaderSize + int64(ix.Len())*index.TixMaxRecordSize + int64(nb+1)*index.TixDirEntrySize
	want := 1 + int(min((upper+int64(bsize)-1)/int64(bsize), int64(maxBuffers(opts)-1)))
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
	// The directory buffer: the per-bucket state (maxBits leaves room for it), then input
	// reads, 4 KiB-aligned for O_DIRECT; 64 KiB of heap per part when the directory
	// leaves less room than that.
	dir := bufs[0].Bytes()
	c.bk = bucketStates(dir[:bucketBytes*nb])
	clear(c.bk)
	c.parts = c.splitParts(opts.Parallel)
	in := dir[(bucketBytes*nb+directAlign-1)/directAlign*directAlign:]
	for k := range c.parts {
		if per := len(in) / len(c.parts) / directAlign * directAlign; per >= maxHeapRead {
			c.parts[k].in = in[k*per : (k+1)*per]
		} else {
			c.parts[k].in = make([]byte, maxHeapRead)
		}
	}
	// The counting pass reads through the first part's buffer and the second's, when they
	// are adjacent: twice the room.
	c.in = c.parts[0].in
	if len(c.parts) == 2 && len(in) >= 2*maxHeapRead {
		c.in = in[:len(c.parts[0].in)+len(c.parts[1].in)]
	}
	start := time.Now()
	if err := c.count(); err != nil {
		return Result{}, fmt.Errorf("compact index file: %w", err)
	}
	c.countTime = time.Since(start)
	failpoint.Hit("compactor.counted")
	size := c.h.Size()
	// Give back window buffers the exact size does not need.
	keep := 1 + int(min(int64(len(bufs)-1), (size+int64(bsize)-1)/int64(bsize)))
	for i := keep; i < len(bufs); i++ {
		bufs[i].Release()
		bufs[i] = nil
	}
	c.win = newWindow(bufs[1:keep], bsize)
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
		Entries: c.n, Passes: c.passes, Buffers: keep - 1,
		CountTime: c.countTime, FillTime: c.fillTime, WriteTime: c.writeTime,
	}, nil
}

// maxHeapRead is the input buffer taken from the heap when the directory buffer has no
// room for one: the largest per-call buffer tierd allocates in I/O paths.
const maxHeapRead = 64 << 10

// bucketState is what a compaction holds per bucket: 16 bytes, so that the one cache line
// a record's placement touches holds all of it.
type bucketState struct {
	// first holds the bucket's item count during the counting pass, then the index of its
	// first record.
	first uint32
	// split holds the bucket's items in the first part during the counting pass, then the
	// index where the first part's records start (the second part's items are newer, so
	// their records come first: [first, split) is the second part's, [split, end) the
	// first part's). Unused with one part.
	split uint32
	// cur holds each part's cursor while a window is filled: the next record index to
	// fill, counting down. Once the bucket is written out, cur[0] holds its CRC-32C.
	cur [2]uint32
}

// bucketBytes is the size of a bucketState.
const bucketBytes = 16

// bucketStates views b (16-byte aligned: pool buffers are page-aligned) as bucket states;
// pool memory holds no Go pointers, so the view is invisible to the garbage collector.
func bucketStates(b []byte) []bucketState {
	if len(b) < bucketBytes {
		return nil
	}
	return unsafe.Slice((*bucketState)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/bucketBytes)
}

// maxBits returns the most bucket bits whose per-bucket arrays fit a buffer of bsize
// bytes. It depends on nothing but bsize, so the output does not depend on Parallel.
func maxBits(bsize int) int { return bits.Len(uint(bsize/bucketBytes)) - 1 }

// minParallelItems is the smallest file whose windows are filled by two goroutines.
const minParallelItems = 1 << 16

// splitParts splits the items into the parts the filling passes scan in parallel.
func (c *compaction) splitParts(parallel int) []part {
	if parallel <= 0 {
		parallel = 1
		if runtime.GOMAXPROCS(0) >= 2 && c.n >= minParallelItems {
			parallel = 2
		}
	}
	if parallel >= 2 && c.n >= 2 {
		mid := 1 + c.n/2
		return []part{{first: 1, end: mid}, {first: mid, end: c.n + 1}}
	}
	return []part{{first: 1, end: c.n + 1}}
}

// part is a run of the source's items [first, end) (item numbers) that one goroutine
// scans in each filling pass, with its own input buffer.
type part struct {
	first, end int
	in         []byte
	// crc is the CRC-32C of the part's items as the counting pass read them: every later
	// pass must read the same bytes.
	crc uint32
}

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
	parts   []part
	in      []byte // the counting pass's reads
	win     window
	h       index.TixHeader
	codec   index.TixCodec

	mu          sync.Mutex // serialises progress reports of parallel parts
	progress    func(done, total int64)
	done, total int64
	passes      int

	countTime, fillTime, writeTime time.Duration
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

// readChunks reads [off, end) of the source in pieces of chunk bytes (at most len(buf))
// and hands each to fn.
func (c *compaction) readChunks(ctx context.Context, buf []byte, off, end int64, chunk int, fn func(p []byte, off int64) error) error {
	for off < end {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := buf[:min(int64(chunk), end-off)]
		n, err := c.src.ReadAt(p, off)
		if n < len(p) {
			if err == nil || errors.Is(err, io.EOF) {
				return fmt.Errorf("read index file at %d: %w", off+int64(n), segment.ErrSourceChanged)
			}
			return fmt.Errorf("read index file at %d: %w", off+int64(n), err)
		}
		c.report(int64(len(p)))
		if err := fn(p, off); err != nil {
			return err
		}
		off += int64(len(p))
	}
	return nil
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
