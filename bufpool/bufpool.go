package bufpool

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Align is the alignment of every buffer's first byte and of every buffer size:
// the logical block size O_DIRECT needs on the filesystems tierd writes to.
const Align = 4096

// Config sizes a Pool.
type Config struct {
	// Budget is the total number of bytes the pool may ever hold. It is rounded down to a
	// whole number of buffers, and must hold at least one.
	Budget int64
	// BufferSize is the size of every buffer: a positive multiple of Align.
	BufferSize int64
	// Lock pins the pool's memory (mlock) so it is never swapped out, as RocketMQ's
	// TransientStorePool does. It needs RLIMIT_MEMLOCK of at least Budget.
	Lock bool
}

// Pool is a fixed set of equally sized, Align-aligned buffers carved out of one region
// reserved at New. All methods are safe for concurrent use.
//
// Deadlock rule: a goroutine may block in Get only while it holds no other buffer of the
// same pool. Code that wants a second buffer while holding one (double buffering) uses
// TryGet and carries on with one buffer when it gets none.
type Pool struct {
	bufSize int
	region  []byte
	release func() error // returns region to the OS
	free    chan *Buffer
	bufs    []*Buffer

	inUse     atomic.Int64
	waits     atomic.Int64
	waitNanos atomic.Int64
	gets      atomic.Int64

	closeOnce sync.Once
}

// Buffer is one pool buffer. Its memory stays valid until Release; using it after
// Release is a bug. A Buffer is owned by one goroutine at a time.
type Buffer struct {
	pool *Pool
	data []byte
	out  atomic.Bool
	// caller of Get, for leak reports (program counters only: cheap to take).
	pcs [8]uintptr
	n   int
}

// Stats is a snapshot of a Pool's counters.
type Stats struct {
	Capacity   int64         // buffers in the pool
	BufferSize int64         // bytes per buffer
	InUse      int64         // buffers handed out and not yet released
	Gets       int64         // successful Get/TryGet calls
	Waits      int64         // Get calls that had to wait for a free buffer
	WaitTime   time.Duration // total time Get calls spent waiting
}

// New reserves cfg.Budget bytes and splits them into buffers.
func New(cfg Config) (*Pool, error) {
	if cfg.BufferSize <= 0 || cfg.BufferSize%Align != 0 {
		return nil, fmt.Errorf("bufpool: buffer size %d is not a positive multiple of %d", cfg.BufferSize, Align)
	}
	n := cfg.Budget / cfg.BufferSize
	if n < 1 {
		return nil, fmt.Errorf("bufpool: budget %d holds no buffer of %d bytes", cfg.Budget, cfg.BufferSize)
	}
	if uint64(n)*uint64(cfg.BufferSize) > uint64(maxInt) {
		return nil, fmt.Errorf("bufpool: budget %d is too large", cfg.Budget)
	}
	region, release, err := reserve(int(n*cfg.BufferSize), cfg.Lock)
	if err != nil {
		return nil, fmt.Errorf("bufpool: reserve %d bytes: %w", n*cfg.BufferSize, err)
	}
	p := &Pool{
		bufSize: int(cfg.BufferSize),
		region:  region,
		release: release,
		free:    make(chan *Buffer, n),
		bufs:    make([]*Buffer, n),
	}
	for i := range p.bufs {
		off := i * p.bufSize
		b := &Buffer{pool: p, data: region[off : off+p.bufSize : off+p.bufSize]}
		p.bufs[i] = b
		p.free <- b
	}
	return p, nil
}

const maxInt = int(^uint(0) >> 1)

// BufferSize returns the size of every buffer.
func (p *Pool) BufferSize() int { return p.bufSize }

// Capacity returns the number of buffers.
func (p *Pool) Capacity() int { return len(p.bufs) }

// Get returns a free buffer, waiting until one is released or ctx ends (then it returns
// ctx's error). See the deadlock rule on Pool.
func (p *Pool) Get(ctx context.Context) (*Buffer, error) {
	select {
	case b := <-p.free:
		return p.hand(b, 2), nil
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.waits.Add(1)
	start := time.Now()
	select {
	case b := <-p.free:
		p.waitNanos.Add(int64(time.Since(start)))
		return p.hand(b, 2), nil
	case <-ctx.Done():
		p.waitNanos.Add(int64(time.Since(start)))
		return nil, ctx.Err()
	}
}

// TryGet returns a free buffer, or nil at once when none is free.
func (p *Pool) TryGet() *Buffer {
	select {
	case b := <-p.free:
		return p.hand(b, 2)
	default:
		return nil
	}
}

func (p *Pool) hand(b *Buffer, skip int) *Buffer {
	if b.out.Swap(true) {
		panic("BUG: bufpool: free list held a buffer that is in use")
	}
	b.n = runtime.Callers(skip+1, b.pcs[:])
	p.inUse.Add(1)
	p.gets.Add(1)
	return b
}

// Bytes returns the whole buffer: BufferSize bytes, Align-aligned.
func (b *Buffer) Bytes() []byte { return b.data }

// Release returns the buffer to its pool. Releasing twice is a bug and panics.
func (b *Buffer) Release() {
	if !b.out.Swap(false) {
		panic("BUG: bufpool: buffer released twice")
	}
	b.pool.inUse.Add(-1)
	b.pool.free <- b
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{
		Capacity:   int64(len(p.bufs)),
		BufferSize: int64(p.bufSize),
		InUse:      p.inUse.Load(),
		Gets:       p.gets.Load(),
		Waits:      p.waits.Load(),
		WaitTime:   time.Duration(p.waitNanos.Load()),
	}
}

// Check reports every buffer that is still out, with the stack of the Get that took it.
// Tests call it when all work is done to prove that every buffer came back.
func (p *Pool) Check() error {
	var leaks []string
	for i, b := range p.bufs {
		if !b.out.Load() {
			continue
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "buffer %d taken at:", i)
		frames := runtime.CallersFrames(b.pcs[:b.n])
		for {
			f, more := frames.Next()
			fmt.Fprintf(&sb, "\n\t%s (%s:%d)", f.Function, f.File, f.Line)
			if !more {
				break
			}
		}
		leaks = append(leaks, sb.String())
	}
	if len(leaks) == 0 {
		return nil
	}
	return fmt.Errorf("bufpool: %d of %d buffers not released:\n%s", len(leaks), len(p.bufs), strings.Join(leaks, "\n"))
}

// ErrInUse is returned by Close while buffers are out.
var ErrInUse = errors.New("bufpool: buffers still in use")

// Close returns the pool's memory to the operating system. It fails with ErrInUse (and
// releases nothing) while any buffer is out.
func (p *Pool) Close() error {
	if p.inUse.Load() != 0 {
		return ErrInUse
	}
	var err error
	p.closeOnce.Do(func() { err = p.release() })
	return err
}
