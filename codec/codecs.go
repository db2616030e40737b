package codec

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/zstd"

	"github.com/tierd/tierd/bufpool"
)

// DefaultFrameSize is the plaintext size of every frame but an object's last.
const DefaultFrameSize = 1 << 20

// Codecs is the process's fixed set of encoders and decoders, shared by every codec tier:
// all the memory compression and encryption use, allocated once by NewCodecs. Work waits
// for a free encoder or decoder as it waits for a pool buffer; nothing grows with the
// number of jobs.
//
// An encoder is held by one Writer from its first Write (or WriteFrom) until its last
// frame is encoded; a decoder for the decoding of one frame. With its encoder a Writer
// takes one output buffer, where frames are gathered into whole buffers for the tier's
// backend (an s3 part each): a free buffer of the process's pool, else the Codecs' one
// reserve buffer (its caller may hold pool buffers: the compactor does). So a goroutine
// holding an encoder or decoder never waits for a pool buffer, one waiting for an encoder
// holds none of its own, and waiting for either cannot deadlock with the pool. A caller
// must not wait for a pool buffer between two Writes of a codec Writer (the compactor
// never does).
type Codecs struct {
	frame   int
	pool    *bufpool.Pool
	own     *bufpool.Pool // holds the reserve buffer
	reserve chan *bufpool.Buffer
	enc     chan *encoder
	dec     chan *decoder

	mu   sync.Mutex
	made int // decoders allocated so far (lazily, up to cap(dec))
	all  []*decoder
}

// encoder is one encoding slot.
type encoder struct {
	z       *zstd.Encoder
	plain   []byte // a frame: read from the source, or gathered from small Writes; page-aligned
	scratch []byte // compressed or encrypted frame
}

// decoder is one decoding slot.
type decoder struct {
	z      *zstd.Decoder
	stored []byte // a stored frame, decrypted in place
	plain  []byte // a decoded frame that only partly falls in the caller's buffer
}

// CodecsConfig sizes Codecs.
type CodecsConfig struct {
	// Encoders is how many objects are encoded at once (across all codec tiers).
	Encoders int
	// Decoders is how many frames are decoded at once.
	Decoders int
	// Pool is the process's buffer pool: Writers' output buffers come from it.
	Pool *bufpool.Pool
	// FrameSize is the plaintext size of a frame (DefaultFrameSize if 0): a multiple of
	// 4 KiB, at most 16 MiB. Objects with larger frames cannot be read by these Codecs.
	FrameSize int
}

func (cfg CodecsConfig) frameSize() int {
	if cfg.FrameSize == 0 {
		return DefaultFrameSize
	}
	return cfg.FrameSize
}

// windowFor is the zstd window for frames of f bytes: the next power of two, at least
// 1 KiB: a frame never refers past its own start.
func windowFor(f int) int {
	return max(zstd.MinWindowSize, 1<<bits.Len(uint(f-1)))
}

// NewCodecs allocates cfg.Encoders encoders and cfg.Decoders decoders.
func NewCodecs(cfg CodecsConfig) (*Codecs, error) {
	f := cfg.frameSize()
	switch {
	case cfg.Encoders < 1 || cfg.Decoders < 1:
		return nil, fmt.Errorf("codec: need at least one encoder and one decoder, got %d and %d", cfg.Encoders, cfg.Decoders)
	case f < MinFrameSize || f > MaxFrameSize || f%MinFrameSize != 0:
		return nil, fmt.Errorf("codec: frame size %d is not a multiple of %d in [%d, %d]", f, MinFrameSize, MinFrameSize, MaxFrameSize)
	}
	if cfg.Pool == nil {
		return nil, fmt.Errorf("codec: no buffer pool")
	}
	bs := int64(cfg.Pool.BufferSize())
	own, err := bufpool.New(bufpool.Config{Budget: bs, BufferSize: bs})
	if err != nil {
		return nil, fmt.Errorf("codec: reserve buffer: %w", err)
	}
	c := &Codecs{frame: f, pool: cfg.Pool, own: own, reserve: make(chan *bufpool.Buffer, 1),
		enc: make(chan *encoder, cfg.Encoders), dec: make(chan *decoder, cfg.Decoders)}
	c.reserve <- own.TryGet()
	win := windowFor(f)
	for range cfg.Encoders {
		z, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(win), zstd.WithLowerEncoderMem(true), zstd.WithSingleSegment(true))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("codec: zstd encoder: %w", err)
		}
		c.enc <- &encoder{z: z, plain: alignedBuffer(f), scratch: make([]byte, 0, scratchSize(f))}
	}
	return c, nil
}

// alignedBuffer returns n bytes starting on a page (bufpool.Align), for O_DIRECT reads.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+bufpool.Align)
	skip := int(bufpool.Align-uintptr(unsafe.Pointer(unsafe.SliceData(b)))%bufpool.Align) % bufpool.Align
	return b[skip : skip+n : skip+n]
}

func (c *Codecs) newDecoder() (*decoder, error) {
	win := windowFor(c.frame)
	z, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(uint64(win)), zstd.WithDecoderMaxMemory(uint64(c.frame)))
	if err != nil {
		return nil, fmt.Errorf("codec: zstd decoder: %w", err)
	}
	return &decoder{z: z, stored: make([]byte, scratchSize(c.frame)), plain: make([]byte, c.frame)}, nil
}

// scratchSize holds any frame of f plaintext bytes stored, and zstd's output for it
// (raw blocks: a 3-byte header per 128 KiB, a frame header and checksum).
func scratchSize(f int) int { return f + f/1024 + 64 + gcmTagSize }

// FrameSize returns the frame size new objects are written with.
func (c *Codecs) FrameSize() int { return c.frame }

// Close frees the decoders' state and the reserve buffer. Every Writer must be done.
func (c *Codecs) Close() error {
	c.mu.Lock()
	for _, d := range c.all {
		d.z.Close()
	}
	c.all = nil
	c.mu.Unlock()
	select {
	case b := <-c.reserve:
		b.Release()
	default:
		return errors.New("codec: Close while a Writer holds the reserve buffer")
	}
	return c.own.Close()
}

// getEncoder waits for a free encoder.
func (c *Codecs) getEncoder(ctx context.Context) (*encoder, error) {
	select {
	case e := <-c.enc:
		return e, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// outBuffer is a Writer's output buffer: a pool buffer, or the Codecs' reserve.
type outBuffer struct {
	*bufpool.Buffer
	reserve bool
}

// getOut takes an output buffer for a Writer whose caller may hold pool buffers: a free
// pool buffer, else the reserve (waiting for it).
func (c *Codecs) getOut(ctx context.Context) (outBuffer, error) {
	if b := c.pool.TryGet(); b != nil {
		return outBuffer{Buffer: b}, nil
	}
	select {
	case b := <-c.reserve:
		return outBuffer{Buffer: b, reserve: true}, nil
	case <-ctx.Done():
		return outBuffer{}, ctx.Err()
	}
}

func (c *Codecs) putOut(b outBuffer) {
	if b.reserve {
		c.reserve <- b.Buffer
	} else {
		b.Release()
	}
}

func (c *Codecs) putEncoder(e *encoder) { c.enc <- e }

// getDecoder waits for a free decoder; decoders are made on first need, up to the number
// configured.
func (c *Codecs) getDecoder(ctx context.Context) (*decoder, error) {
	select {
	case d := <-c.dec:
		return d, nil
	default:
	}
	c.mu.Lock()
	if c.made < cap(c.dec) {
		c.made++
		d, err := c.newDecoder()
		if err != nil {
			c.made--
		} else {
			c.all = append(c.all, d)
		}
		c.mu.Unlock()
		return d, err
	}
	c.mu.Unlock()
	select {
	case d := <-c.dec:
		return d, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Codecs) putDecoder(d *decoder) { c.dec <- d }
