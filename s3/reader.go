package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/tierd/tierd/segment"
)

// Reader reads one committed object with one ranged GET per ReadAt, into the caller's
// slice. Each GET is conditional on the ETag seen at Open: a replaced or deleted object
// makes ReadAt fail rather than return another object's bytes.
type Reader struct {
	b      *Backend
	ctx    context.Context
	key    segment.Key
	obj    string
	size   int64
	etag   string
	closed atomic.Bool
}

// Size implements segment.Reader.
func (r *Reader) Size() int64 { return r.size }

// Close implements segment.Reader. A Reader holds no resources between calls.
func (r *Reader) Close() error {
	r.closed.Store(true)
	return nil
}

// ReadAt implements segment.Reader.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	switch {
	case r.closed.Load():
		return 0, fmt.Errorf("read %s: reader is closed", r.key)
	case off < 0:
		return 0, fmt.Errorf("read %s: negative offset %d", r.key, off)
	case len(p) == 0:
		return 0, nil
	case off >= r.size:
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.size-off)
	leave, err := r.b.gate.Enter(r.ctx)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", r.key, err)
	}
	defer leave()
	body, err := r.b.d.getRange(r.ctx, r.obj, r.etag, off, n)
	if err != nil {
		if k := r.b.d.classify(err); k == errChanged || k == errNotFound {
			err = fmt.Errorf("%w: %w", errObjectChanged, err)
		}
		return 0, fmt.Errorf("read %s at %d: %w", r.key, off, err)
	}
	defer body.Close()
	m, err := io.ReadFull(body, p[:n])
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return m, fmt.Errorf("read %s at %d: got %d of %d bytes: %w", r.key, off, m, n, err)
	}
	// Reading on to the end of the body lets the connection be reused, and proves the
	// server sent exactly the range asked for.
	var one [1]byte
	if k, _ := body.Read(one[:]); k != 0 {
		return 0, fmt.Errorf("read %s at %d: server sent more than the %d bytes asked for", r.key, off, n)
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}
