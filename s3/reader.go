package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

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
		return 0, fmt.Errorf("read %s: %w", r.key, fs.ErrClosed)
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
	var got int64
	for try := 1; ; try++ {
		m, err := r.readRange(p[got:n], off+got)
		got += int64(m)
		if err == nil {
			break
		}
		if errors.Is(err, errObjectChanged) || errors.Is(err, errLongBody) || r.ctx.Err() != nil || try == readTries {
			if try > 1 {
				err = fmt.Errorf("%w (after %d tries)", err, try)
			}
			return int(got), err
		}
		// A cut body, a reset connection, a 503 or a store past its deadline: ask again for
		// what is still missing, from the last byte received.
		r.b.readRetries.Add(1)
		r.b.log.Info("read cut short; resuming with a ranged GET from the last byte received", zap.String("key", string(r.key)),
			zap.Int64("offset", off+got), zap.Int64("left", n-got), zap.Int("try", try), zap.Error(err))
		select {
		case <-r.ctx.Done():
			return int(got), fmt.Errorf("read %s at %d: %w", r.key, off+got, r.ctx.Err())
		case <-time.After(readBackoff << (try - 1)):
		}
	}
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// errLongBody: the server sent more than the range asked for (asking again would not help).
var errLongBody = errors.New("server sent more than the bytes asked for")

// A ReadAt whose GET fails or whose body is cut is resumed readTries - 1 times, from the
// last byte received, after readBackoff, doubled each time.
const (
	readTries   = 5
	readBackoff = 100 * time.Millisecond
)

// readRange reads len(p) bytes at off with one ranged GET; it returns how many it got.
func (r *Reader) readRange(p []byte, off int64) (int, error) {
	n := int64(len(p))
	body, err := r.b.d.getRange(r.ctx, r.obj, r.etag, off, n)
	if err != nil {
		if k := r.b.d.classify(err); k == errChanged || k == errNotFound {
			err = fmt.Errorf("%w: %w", errObjectChanged, err)
		}
		return 0, fmt.Errorf("read %s at %d: %w", r.key, off, err)
	}
	defer body.Close()
	m, err := io.ReadFull(body, p)
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
		return 0, fmt.Errorf("read %s at %d: %w (%d bytes)", r.key, off, errLongBody, n)
	}
	return m, nil
}
