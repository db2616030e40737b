package codec

import (
	"context"
	"errors"
	"fmt"
	"math/bits"

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
// An encoder is held by one Writer from its first Write to its Commit or Abort and owns
// the Writer's output buffer (a buffer of its own bufpool, so the tier's backend gets
// whole aligned buffers); a decoder is held for the decoding of one frame. Neither ever
// waits for anything while held but the inner backend's I/O, so waiting for one cannot
// deadlock with the process's buffer pool. A caller must not wait for a pool buffer
// between two Writes of a codec Writer (segment.Copy and the compactor never do).
type Codecs struct {
	frame int
	out   *bufpool.Pool
	enc   chan *encoder
	dec   chan *decoder
	all   []*decoder
}

// encoder is one encoding slot.
type encoder struct {
	z       *zstd.Encoder
	out     *bufpool.Buffer // output staging: whole buffers go to the inner Writer
	plain   []byte          // a frame being gathered from small Writes
	scratch []byte          // compressed or encrypted frame
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
	// BufferSize is the size of each encoder's output buffer: the process pool's buffer
	// size, since a backend's Writer wants whole pool buffers (s3: one part each).
	BufferSize int
	// FrameSize is the plaintext size of a frame (DefaultFrameSize if 0): a multiple of
	// 4 KiB, at most 16 MiB. Objects with larger frames cannot be read by these Codecs.
	FrameSize int
}

// Memory returns the bytes Codecs of cfg holds: the encoders' output buffers and frame
// buffers, the decoders' frame buffers and the zstd state of both (estimated).
func (cfg CodecsConfig) Memory() int64 {
	f := int64(cfg.frameSize())
	win := int64(windowFor(int(f)))
	enc := int64(cfg.BufferSize) + 2*f + 2*win + 512<<10
	dec := 2*f + win + 256<<10
	return int64(cfg.Encoders)*enc + int64(cfg.Decoders)*dec
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
	out, err := bufpool.New(bufpool.Config{Budget: int64(cfg.Encoders) * int64(cfg.BufferSize), BufferSize: int64(cfg.BufferSize)})
	if err != nil {
		return nil, fmt.Errorf("codec: output buffers: %w", err)
	}
	c := &Codecs{frame: f, out: out, enc: make(chan *encoder, cfg.Encoders), dec: make(chan *decoder, cfg.Decoders)}
	win := windowFor(f)
	for range cfg.Encoders {
		z, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(win), zstd.WithLowerEncoderMem(true), zstd.WithSingleSegment(true))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("codec: zstd encoder: %w", err)
		}
		c.enc <- &encoder{z: z, plain: make([]byte, f), scratch: make([]byte, 0, scratchSize(f))}
	}
	for range cfg.Decoders {
		z, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(uint64(win)), zstd.WithDecoderMaxMemory(uint64(f)))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("codec: zstd decoder: %w", err)
		}
		d := &decoder{z: z, stored: make([]byte, scratchSize(f)), plain: make([]byte, f)}
		c.all = append(c.all, d)
		c.dec <- d
	}
	return c, nil
}

// scratchSize holds any frame of f plaintext bytes stored, and zstd's output for it
// (raw blocks: a 3-byte header per 128 KiB, a frame header and checksum).
func scratchSize(f int) int { return f + f/1024 + 64 + gcmTagSize }

// FrameSize returns the frame size new objects are written with.
func (c *Codecs) FrameSize() int { return c.frame }

// Close frees the decoders' state and the output buffers. Every Writer must be done.
func (c *Codecs) Close() error {
	for _, d := range c.all {
		d.z.Close()
	}
	var errs []error
	for {
		select {
		case e := <-c.enc:
			if e.out != nil {
				e.out.Release()
			}
			continue
		default:
		}
		break
	}
	if c.out != nil {
		errs = append(errs, c.out.Close())
	}
	return errors.Join(errs...)
}

// getEncoder waits for a free encoder (with an output buffer).
func (c *Codecs) getEncoder(ctx context.Context) (*encoder, error) {
	select {
	case e := <-c.enc:
		if e.out == nil {
			b := c.out.TryGet()
			if b == nil {
				panic("BUG: codec: an encoder without an output buffer")
			}
			e.out = b
		}
		return e, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Codecs) putEncoder(e *encoder) { c.enc <- e }

// getDecoder waits for a free decoder.
func (c *Codecs) getDecoder(ctx context.Context) (*decoder, error) {
	select {
	case d := <-c.dec:
		return d, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Codecs) putDecoder(d *decoder) { c.dec <- d }
