package codec

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/tierd/tierd/segment"
)

// writer encodes one object: frames of the plaintext, compressed and sealed one at a
// time, gathered into whole output buffers for the inner Writer.
type writer struct {
	b     *Backend
	ctx   context.Context
	key   segment.Key
	inner segment.Writer
	h     header
	hdr   []byte
	aead  cipher.AEAD // nil when not encrypting

	e       *encoder  // nil until the first Write
	out     outBuffer // with e
	pulled  bool      // WriteFrom was called
	staged  int       // plaintext bytes of the current frame in e.plain
	outN    int       // bytes in e.out
	frame   int64     // the next frame to encode
	index   []byte
	written int64
	crc     uint32
	err     error // sticky
	done    bool
}

var (
	_ segment.Checksummer  = (*writer)(nil)
	_ segment.SourceWriter = (*writer)(nil)
)

// Create implements segment.Backend: the inner object's size is exact when frames are
// not compressed, and segment.UnknownSize otherwise.
func (b *Backend) Create(ctx context.Context, key segment.Key, size int64) (segment.Writer, error) {
	if err := key.Valid(); err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	if isSidecar(key) {
		return nil, fmt.Errorf("create %s: names ending in %q are the codec's key sidecars", key, sidecarSuffix)
	}
	if (size < 0 && size != segment.UnknownSize) || size > 1<<50 {
		return nil, fmt.Errorf("create %s: size %d is outside [0, 2^50]", key, size)
	}
	w := &writer{b: b, ctx: ctx, key: key}
	w.h = header{Compression: b.cfg.Compression, FrameSize: uint32(b.codecs.frame), Size: size}
	if _, err := rand.Read(w.h.ObjectID[:]); err != nil {
		return nil, fmt.Errorf("create %s: random object id: %w", key, err)
	}
	if keys := b.cfg.Keys; keys != nil {
		w.h.Encryption, w.h.NonceScheme, w.h.KeyID = encAESGCM, nonceFrameCounter, keys.Newest()
		dk := make([]byte, dataKeySize)
		if _, err := rand.Read(dk); err != nil {
			return nil, fmt.Errorf("create %s: random data key: %w", key, err)
		}
		var err error
		if w.aead, err = newGCM(dk); err != nil {
			return nil, fmt.Errorf("create %s: %w", key, err)
		}
		prefix := w.h.marshal()
		if w.h.WrapNonce, w.h.WrappedKey, err = keys.wrap(w.h.KeyID, dk, wrapAAD(prefix, w.h.KeyID, key)); err != nil {
			return nil, fmt.Errorf("create %s: %w", key, err)
		}
		clear(dk)
	}
	w.hdr = w.h.marshal()
	n := max(w.h.frames(), 0)
	w.index = make([]byte, 0, n*IndexEntrySize)
	innerSize := segment.UnknownSize
	if w.h.Compression == CompressNone && size >= 0 {
		innerSize = HeaderSize + w.h.Size + n*IndexEntrySize + FooterSize
		if w.aead != nil {
			innerSize += n * gcmTagSize
		}
	}
	inner, err := b.inner.Create(ctx, key, innerSize)
	if err != nil {
		return nil, err
	}
	w.inner = inner
	return w, nil
}

func (w *writer) usable(op string) error {
	switch {
	case w.done:
		return fmt.Errorf("%s %s: writer already committed or aborted", op, w.key)
	case w.err != nil:
		return w.err
	}
	if err := w.ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, w.key, err)
	}
	return nil
}

// start takes an encoder, then an output buffer (see Codecs), and emits the header.
// Waiting for an encoder, a Writer holds no buffer of its own: the pool stays free for
// the writers that upload.
func (w *writer) start() error {
	if w.e != nil {
		return nil
	}
	c := w.b.codecs
	e, err := c.getEncoder(w.ctx)
	if err != nil {
		return fmt.Errorf("write %s: wait for an encoder: %w", w.key, err)
	}
	w.e = e
	if w.out, err = c.getOut(w.ctx); err != nil {
		return fmt.Errorf("write %s: wait for a buffer: %w", w.key, err)
	}
	return w.emit(w.hdr)
}

// WriteFrom implements segment.SourceWriter: it reads the source frame by frame straight
// into the encoder's frame buffer (page-aligned, for O_DIRECT sources) and returns the
// plaintext's CRC-32C. Call it holding no pool buffer (segment.Copy does).
func (w *writer) WriteFrom(src io.ReaderAt) (uint32, error) {
	if err := w.usable("write"); err != nil {
		return 0, err
	}
	if w.pulled || w.written > 0 || w.h.Size < 0 {
		return 0, fmt.Errorf("write %s: WriteFrom after Write, or of an object of unknown size", w.key)
	}
	w.pulled = true
	if err := w.start(); err != nil {
		w.err = err
		return 0, err
	}
	for w.written < w.h.Size {
		if err := w.ctx.Err(); err != nil {
			w.err = fmt.Errorf("write %s: %w", w.key, err)
			return 0, w.err
		}
		p := w.e.plain[:w.h.frameLen(w.frame)]
		n, err := src.ReadAt(p, w.written)
		if n < len(p) {
			if err == nil || errors.Is(err, io.EOF) {
				err = segment.ErrSourceChanged
			}
			w.err = fmt.Errorf("write %s: read source at %d: %w", w.key, w.written+int64(n), err)
			return 0, w.err
		}
		w.crc = crc32.Update(w.crc, segment.Castagnoli, p)
		if err := w.encode(p); err != nil {
			w.err = err
			return 0, err
		}
		w.written += int64(len(p))
	}
	return w.crc, nil
}

// Write implements segment.Writer.
func (w *writer) Write(p []byte) (int, error) {
	if err := w.usable("write"); err != nil {
		return 0, err
	}
	if w.h.Size >= 0 && int64(len(p)) > w.h.Size-w.written {
		w.err = fmt.Errorf("write %s: %d bytes at offset %d overrun the object's %d bytes", w.key, len(p), w.written, w.h.Size)
		return 0, w.err
	}
	if w.pulled {
		return 0, fmt.Errorf("write %s: Write after WriteFrom", w.key)
	}
	if err := w.start(); err != nil {
		w.err = err
		return 0, err
	}
	total := len(p)
	for len(p) > 0 {
		fl := w.h.frameLen(w.frame)
		var n int
		if w.staged == 0 && len(p) >= fl {
			n = fl
			w.err = w.encode(p[:n])
		} else {
			n = copy(w.e.plain[w.staged:fl], p)
			w.staged += n
			if w.staged == fl {
				w.err = w.encode(w.e.plain[:fl])
				w.staged = 0
			}
		}
		w.crc = crc32.Update(w.crc, segment.Castagnoli, p[:n])
		w.written += int64(n)
		p = p[n:]
		if w.err != nil {
			return total - len(p), w.err
		}
	}
	return total, nil
}

// encode compresses and seals frame w.frame (plaintext pt) and emits it.
func (w *writer) encode(pt []byte) error {
	e := w.e
	payload, compressed := pt, false
	if w.h.Compression == CompressZstd {
		c := e.z.EncodeAll(pt, e.scratch[:0])
		if len(c) < len(pt) {
			payload, compressed = c, true
		}
		if cap(c) > cap(e.scratch) {
			panic("BUG: codec: zstd grew the scratch buffer")
		}
	}
	if w.aead != nil {
		if !compressed {
			payload = append(e.scratch[:0], pt...)
		}
		payload = w.aead.Seal(payload[:0], frameNonce(w.frame), payload, frameAAD(w.h.ObjectID, w.frame, len(payload)+gcmTagSize, compressed))
	}
	w.index = appendEntry(w.index, len(payload), compressed)
	w.frame++
	return w.emit(payload)
}

// emit appends p to the output buffer, handing it to the inner Writer whenever it is full.
func (w *writer) emit(p []byte) error {
	out := w.out.Bytes()
	for len(p) > 0 {
		n := copy(out[w.outN:], p)
		w.outN += n
		p = p[n:]
		if w.outN == len(out) {
			if _, err := w.inner.Write(out); err != nil {
				return err
			}
			w.outN = 0
		}
	}
	return nil
}

// CRC32C implements segment.Checksummer: the CRC-32C of the plaintext written so far.
func (w *writer) CRC32C() uint32 { return w.crc }

// Commit implements segment.Writer: it encodes the last frame, the index and the footer,
// and commits the inner object.
func (w *writer) Commit(ctx context.Context) error {
	if err := w.usable("commit"); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit %s: %w", w.key, err)
	}
	if w.h.Size >= 0 && w.written != w.h.Size {
		return fmt.Errorf("commit %s: %d of %d bytes written", w.key, w.written, w.h.Size)
	}
	if err := w.finish(ctx); err != nil {
		w.err = fmt.Errorf("commit %s: %w", w.key, err)
		return w.err
	}
	w.done = true
	w.release()
	return nil
}

func (w *writer) finish(ctx context.Context) error {
	if err := w.start(); err != nil {
		return err
	}
	if w.staged != 0 { // the last frame of an object of unknown size
		if err := w.encode(w.e.plain[:w.staged]); err != nil {
			return err
		}
		w.staged = 0
	}
	f := footer{Size: w.written, CRC32C: w.crc, Frames: uint32(w.frame), IndexCRC: crc32.Checksum(w.index, segment.Castagnoli)}
	if err := w.emit(w.index); err != nil {
		return err
	}
	if err := w.emit(f.marshal()); err != nil {
		return err
	}
	// Encoded: the encoder can serve another object while this one's tail uploads.
	w.b.codecs.putEncoder(w.e)
	w.e = nil
	if w.outN > 0 {
		if _, err := w.inner.Write(w.out.Bytes()[:w.outN]); err != nil {
			return err
		}
		w.outN = 0
	}
	w.release()
	return w.inner.Commit(ctx)
}

// Abort implements segment.Writer.
func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.release()
	return w.inner.Abort()
}

func (w *writer) release() {
	if w.out.Buffer != nil {
		w.b.codecs.putOut(w.out)
		w.out = outBuffer{}
	}
	if w.e != nil {
		w.b.codecs.putEncoder(w.e)
		w.e = nil
	}
}

// frameNonce is the GCM nonce of frame i: the data key is the object's own, so the frame
// number alone never repeats under it.
func frameNonce(i int64) []byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], uint64(i))
	return n[:]
}

// frameAAD binds a sealed frame to its object, its number and its index entry, so frames
// cannot be swapped, moved between objects or relabelled raw/compressed.
func frameAAD(objectID [16]byte, i int64, stored int, compressed bool) []byte {
	aad := make([]byte, 0, 28)
	aad = append(aad, objectID[:]...)
	aad = binary.BigEndian.AppendUint64(aad, uint64(i))
	return appendEntry(aad, stored, compressed)
}
