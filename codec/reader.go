package codec

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync/atomic"

	"github.com/tierd/tierd/segment"
)

// tailRead is how much of an object's end Open reads at once: the footer and, for objects
// of up to about 4,000 frames, the whole index.
const tailRead = 16 << 10

// reader decodes the frames a ReadAt needs, each with a decoder of its own.
type reader struct {
	b      *Backend
	ctx    context.Context
	key    segment.Key
	inner  segment.Reader
	h      header
	ix     frameIndex
	aead   cipher.AEAD
	closed atomic.Bool
}

// object is what Open learns from an object's header, index and footer.
type object struct {
	h      header
	hdr    []byte
	f      footer
	ix     frameIndex
	legacy bool // not in this format: a plain object written without the codec
}

// readObject reads and checks the header, index and footer of the object r holds.
func readObject(r segment.Reader, key segment.Key) (object, error) {
	var o object
	size := r.Size()
	tail := make([]byte, min(size, tailRead))
	if err := readFull(r, tail, size-int64(len(tail))); err != nil {
		return o, fmt.Errorf("open %s: read footer: %w", key, err)
	}
	var head []byte
	if int64(len(tail)) == size { // a small object: the tail is all of it
		head = tail[:min(size, HeaderSize)]
	} else {
		head = make([]byte, HeaderSize)
		if err := readFull(r, head, 0); err != nil {
			return o, fmt.Errorf("open %s: read header: %w", key, err)
		}
	}
	if !hasFooterMagic(tail) && (len(head) < 8 || string(head[:8]) != string(headerMagic[:])) {
		o.legacy = true
		return o, nil
	}
	var err error
	if o.h, err = parseHeader(head); err != nil {
		return o, fmt.Errorf("open %s: %w", key, err)
	}
	o.hdr = head
	if o.f, err = parseFooter(tail); err != nil {
		return o, fmt.Errorf("open %s: %w", key, err)
	}
	if o.h.Size < 0 {
		o.h.Size = o.f.Size
	}
	n := int64(o.f.Frames) * IndexEntrySize
	if n+FooterSize > size-HeaderSize {
		return o, fmt.Errorf("open %s: %w", key, formatErr("%d frames do not fit in %d bytes", o.f.Frames, size))
	}
	var idx []byte
	if n+FooterSize <= int64(len(tail)) {
		idx = tail[int64(len(tail))-FooterSize-n : len(tail)-FooterSize]
	} else {
		idx = make([]byte, n)
		if err := readFull(r, idx, size-FooterSize-n); err != nil {
			return o, fmt.Errorf("open %s: read index: %w", key, err)
		}
	}
	if o.ix, err = parseIndex(idx, &o.h, &o.f, size); err != nil {
		return o, fmt.Errorf("open %s: %w", key, err)
	}
	return o, nil
}

// Open implements segment.Backend. An object that is not in the codec's format (written
// to the tier before it had compression or encryption) is read as it is.
func (b *Backend) Open(ctx context.Context, key segment.Key) (segment.Reader, error) {
	if isSidecar(key) {
		return nil, fmt.Errorf("open %s: %w", key, segment.ErrNotFound)
	}
	ir, err := b.inner.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	o, err := readObject(ir, key)
	if err == nil && o.legacy {
		return ir, nil
	}
	var aead cipher.AEAD
	if err == nil && o.h.Encryption == encAESGCM {
		var dk []byte
		if dk, err = b.dataKey(ctx, key, &o); err == nil {
			aead, err = newGCM(dk)
			clear(dk)
		}
	}
	if err != nil {
		ir.Close()
		return nil, err
	}
	return &reader{b: b, ctx: ctx, key: key, inner: ir, h: o.h, ix: o.ix, aead: aead}, nil
}

// dataKey unwraps the data key of an encrypted object: with the key its header names if
// the key file has it, else with the key of its sidecar (written by Rekey).
func (b *Backend) dataKey(ctx context.Context, key segment.Key, o *object) ([]byte, error) {
	keys := b.cfg.Keys
	if keys == nil {
		return nil, fmt.Errorf("open %s: %w: the object is encrypted (key %q) and the tier has no encryption.key_file", key, ErrKey, o.h.KeyID)
	}
	var dk []byte
	var err error
	if _, ok := keys.get(o.h.KeyID); ok {
		dk, err = keys.unwrap(o.h.KeyID, o.h.WrapNonce, o.h.WrappedKey, wrapAAD(o.hdr, o.h.KeyID, key))
	} else {
		s, serr := b.readSidecar(ctx, key)
		switch {
		case serr == nil && s.ObjectID == o.h.ObjectID:
			dk, err = keys.unwrap(s.KeyID, s.WrapNonce, s.WrappedKey, wrapAAD(o.hdr, s.KeyID, key))
		case serr != nil && !errors.Is(serr, segment.ErrNotFound):
			return nil, fmt.Errorf("open %s: %w", key, serr)
		default: // no sidecar for this object: the header's key is the only one
			dk, err = keys.unwrap(o.h.KeyID, o.h.WrapNonce, o.h.WrappedKey, nil)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return dk, nil
}

// Size implements segment.Reader: the plaintext size.
func (r *reader) Size() int64 { return r.h.Size }

// Close implements segment.Reader.
func (r *reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	return r.inner.Close()
}

// ReadAt implements segment.Reader: it reads and decodes only the frames [off, off+len(p))
// falls in, one ranged read of the inner object each.
func (r *reader) ReadAt(p []byte, off int64) (int, error) {
	if r.closed.Load() {
		return 0, fmt.Errorf("read %s: %w", r.key, fs.ErrClosed)
	}
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", r.key, off)
	}
	if off >= r.h.Size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.h.Size-off))
	f := int64(r.h.FrameSize)
	done := 0
	for done < n {
		pos := off + int64(done)
		i := pos / f
		in := int(pos - i*f) // offset inside the frame
		var m int
		var err error
		if j := r.wholeFrames(i, in, n-done); j-i >= 2 {
			m, err = r.readRun(p[done:n], i, j)
		}
		if m == 0 && err == nil {
			m, err = r.readFrame(p[done:n], i, in)
		}
		done += m
		if err != nil {
			return done, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// wholeFrames returns the end j of the run of frames [i, j) that a read of n bytes from
// offset in of frame i covers whole (j == i when in > 0).
func (r *reader) wholeFrames(i int64, in, n int) int64 {
	j := i
	if in != 0 {
		return j
	}
	for j < int64(len(r.ix.zstd)) && n >= r.h.frameLen(j) {
		n -= r.h.frameLen(j)
		j++
	}
	return j
}

// readRun reads frames [i, j), which p covers whole, with one ranged read of the inner
// object into a pool buffer taken with TryGet (restore and verify read 8 MiB at a time:
// one request instead of eight). It returns 0 and no error, having read nothing, when no
// buffer is free or the run does not fit one; the caller then reads frame by frame.
func (r *reader) readRun(p []byte, i, j int64) (int, error) {
	c := r.b.codecs
	stored := r.ix.off[j] - r.ix.off[i]
	if stored > int64(c.pool.BufferSize()) {
		j = i + 1
		for j < int64(len(r.ix.zstd)) && r.ix.off[j+1]-r.ix.off[i] <= int64(c.pool.BufferSize()) {
			j++
		}
		if j-i < 2 {
			return 0, nil
		}
		stored = r.ix.off[j] - r.ix.off[i]
	}
	b := c.pool.TryGet()
	if b == nil {
		return 0, nil
	}
	defer b.Release()
	buf := b.Bytes()[:stored]
	if err := readFull(r.inner, buf, r.ix.off[i]); err != nil {
		return 0, fmt.Errorf("read %s: frames %d-%d: %w", r.key, i, j-1, err)
	}
	done := 0
	for k := i; k < j; k++ {
		fl := r.h.frameLen(k)
		m, err := r.decode(p[done:done+fl], buf[r.ix.off[k]-r.ix.off[i]:r.ix.off[k+1]-r.ix.off[i]], k, 0)
		done += m
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// readFrame copies frame i's plaintext from offset in into p and returns how much it copied.
func (r *reader) readFrame(p []byte, i int64, in int) (int, error) {
	fl := r.h.frameLen(i)
	want := min(len(p), fl-in)
	// A raw, unencrypted frame is read straight into p.
	if r.aead == nil && !r.ix.zstd[i] {
		if err := readFull(r.inner, p[:want], r.ix.off[i]+int64(in)); err != nil {
			return 0, fmt.Errorf("read %s: frame %d: %w", r.key, i, err)
		}
		return want, nil
	}
	return r.decode(p[:want], nil, i, in)
}

// decode authenticates and decompresses frame i and copies its plaintext from offset in
// into p (at most the frame's rest). stored holds the frame's stored bytes, or is nil: it
// is then read into the decoder's buffer. stored is decrypted in place.
func (r *reader) decode(p, stored []byte, i int64, in int) (int, error) {
	fl := r.h.frameLen(i)
	want := min(len(p), fl-in)
	d, err := r.b.codecs.getDecoder(r.ctx)
	if err != nil {
		return 0, fmt.Errorf("read %s: wait for a decoder: %w", r.key, err)
	}
	defer r.b.codecs.putDecoder(d)
	if fl > len(d.plain) {
		return 0, fmt.Errorf("read %s: frame %d of %d bytes is larger than this tierd's frames of %d", r.key, i, fl, len(d.plain))
	}
	if stored == nil {
		n := int(r.ix.off[i+1] - r.ix.off[i])
		if n > len(d.stored) {
			return 0, fmt.Errorf("read %s: frame %d of %d bytes is larger than this tierd's frames of %d", r.key, i, fl, len(d.plain))
		}
		stored = d.stored[:n]
		if err := readFull(r.inner, stored, r.ix.off[i]); err != nil {
			return 0, fmt.Errorf("read %s: frame %d: %w", r.key, i, err)
		}
	}
	payload := stored
	if r.aead != nil {
		payload, err = r.aead.Open(stored[:0], frameNonce(i), stored, frameAAD(r.h.ObjectID, i, len(stored), r.ix.zstd[i]))
		if err != nil {
			return 0, fmt.Errorf("read %s: frame %d fails authentication: the object was altered or its frames were moved", r.key, i)
		}
	}
	if !r.ix.zstd[i] {
		if len(payload) != fl {
			return 0, fmt.Errorf("read %s: %w", r.key, formatErr("frame %d holds %d bytes, want %d", i, len(payload), fl))
		}
		return copy(p[:want], payload[in:]), nil
	}
	dst := d.plain[:0]
	whole := in == 0 && want == fl
	if whole {
		dst = p[:0:fl]
	}
	out, err := d.z.DecodeAll(payload, dst)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", r.key, formatErr("frame %d: zstd: %v", i, err))
	}
	if len(out) != fl {
		return 0, fmt.Errorf("read %s: %w", r.key, formatErr("frame %d decodes to %d bytes, want %d", i, len(out), fl))
	}
	if whole {
		return fl, nil
	}
	return copy(p[:want], out[in:]), nil
}

// readFull reads len(p) bytes at off; a short read is an error.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %d of %d bytes at %d", io.ErrUnexpectedEOF, n, len(p), off)
	}
	return err
}
