package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// ErrTimeout is wrapped by the error of a request to the store that did not finish
// within its deadline (Config.RequestTimeout, scaled by size for transfers).
var ErrTimeout = errors.New("the object store did not answer in time")

// Defaults of the request deadlines.
const (
	DefaultRequestTimeout  = 30 * time.Second
	DefaultMinTransferRate = 1 << 20 // bytes per second
)

// deadlines puts a deadline on every request a driver makes, so that a store that hangs
// (a request accepted and never answered, a body that stops flowing) costs a job at most
// its deadline, and the tier is reported failing, instead of holding the job, its buffers
// and its worker until the HTTP client's header timeout or forever:
//   - HEAD, DELETE, create and abort multipart upload: RequestTimeout;
//   - a part, a single PUT or a ranged GET (its body read to the end included) of n bytes:
//     RequestTimeout + n / MinTransferRate;
//   - CompleteMultipartUpload of an object of n bytes: 2 × RequestTimeout + n /
//     (16 × MinTransferRate) (a store assembles big objects for a while);
//   - a listing: RequestTimeout between two entries (each page is one request).
//
// A deadline covers the SDK's own retries of the request. The caller's cancellation is
// passed through as is; an expired deadline is reported as ErrTimeout.
type deadlines struct {
	d    driver
	req  time.Duration
	rate int64 // bytes per second
}

var _ driver = deadlines{}

// transferTimeout is the deadline of a transfer of n bytes.
func (t deadlines) transferTimeout(n int64) time.Duration {
	return t.req + time.Duration(float64(n)/float64(t.rate)*float64(time.Second))
}

// call runs fn under a deadline of d and names a missed deadline.
func (t deadlines) call(ctx context.Context, d time.Duration, what, key string, fn func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := fn(cctx)
	return t.named(ctx, cctx, d, what, key, err)
}

// named turns err into an ErrTimeout if cctx's deadline (d) ended the request and not
// the caller's ctx.
func (t deadlines) named(ctx, cctx context.Context, d time.Duration, what, key string, err error) error {
	if err != nil && ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w (deadline %s): %w", what, key, ErrTimeout, d, err)
	}
	return err
}

func (t deadlines) put(ctx context.Context, key string, body *partBody, crc uint32, cond putCond) (etag string, err error) {
	err = t.call(ctx, t.transferTimeout(body.size), "put", key, func(ctx context.Context) error {
		body.ctx = ctx // the body stops being read when the request is given up
		var err error
		etag, err = t.d.put(ctx, key, body, crc, cond)
		return err
	})
	return etag, err
}

func (t deadlines) createMultipart(ctx context.Context, key string) (id string, err error) {
	err = t.call(ctx, t.req, "create multipart upload of", key, func(ctx context.Context) error {
		var err error
		id, err = t.d.createMultipart(ctx, key)
		return err
	})
	return id, err
}

func (t deadlines) uploadPart(ctx context.Context, key, uploadID string, num int, body *partBody) (etag string, err error) {
	err = t.call(ctx, t.transferTimeout(body.size), fmt.Sprintf("upload part %d of", num), key, func(ctx context.Context) error {
		body.ctx = ctx
		var err error
		etag, err = t.d.uploadPart(ctx, key, uploadID, num, body)
		return err
	})
	return etag, err
}

func (t deadlines) complete(ctx context.Context, key, uploadID string, parts []part, crc uint32, size int64) error {
	d := 2*t.req + time.Duration(float64(size)/float64(16*t.rate)*float64(time.Second))
	return t.call(ctx, d, "complete multipart upload of", key, func(ctx context.Context) error {
		return t.d.complete(ctx, key, uploadID, parts, crc, size)
	})
}

func (t deadlines) abort(ctx context.Context, key, uploadID string) error {
	return t.call(ctx, t.req, "abort multipart upload of", key, func(ctx context.Context) error {
		return t.d.abort(ctx, key, uploadID)
	})
}

func (t deadlines) head(ctx context.Context, key string) (info objectInfo, err error) {
	err = t.call(ctx, t.req, "head", key, func(ctx context.Context) error {
		var err error
		info, err = t.d.head(ctx, key)
		return err
	})
	return info, err
}

func (t deadlines) delete(ctx context.Context, key string) error {
	return t.call(ctx, t.req, "delete", key, func(ctx context.Context) error { return t.d.delete(ctx, key) })
}

// getRange's deadline runs until the body is closed: a body that stops flowing fails the
// read with ErrTimeout.
func (t deadlines) getRange(ctx context.Context, key, etag string, off, n int64) (io.ReadCloser, error) {
	d := t.transferTimeout(n)
	cctx, cancel := context.WithTimeout(ctx, d)
	rc, err := t.d.getRange(cctx, key, etag, off, n)
	if err != nil {
		cancel()
		return nil, t.named(ctx, cctx, d, "get", key, err)
	}
	return &timedBody{rc: rc, cancel: cancel, name: func(err error) error { return t.named(ctx, cctx, d, "get", key, err) }}, nil
}

type timedBody struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
	name   func(error) error
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		err = b.name(err)
	}
	return n, err
}

func (b *timedBody) Close() error {
	err := b.rc.Close()
	b.cancel()
	return err
}

func (t deadlines) list(ctx context.Context, prefix string, fn func(objectInfo) error) error {
	return t.idle(ctx, "list objects under", prefix, func(ctx context.Context, progress func()) error {
		return t.d.list(ctx, prefix, func(o objectInfo) error { progress(); return fn(o) })
	})
}

func (t deadlines) listUploads(ctx context.Context, prefix string, fn func(upload) error) error {
	return t.idle(ctx, "list multipart uploads under", prefix, func(ctx context.Context, progress func()) error {
		return t.d.listUploads(ctx, prefix, func(u upload) error { progress(); return fn(u) })
	})
}

// idle runs a listing whose deadline is RequestTimeout after its start or its last entry.
func (t deadlines) idle(ctx context.Context, what, prefix string, fn func(ctx context.Context, progress func()) error) error {
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	timer := time.AfterFunc(t.req, func() { cancel(ErrTimeout) })
	defer timer.Stop()
	err := fn(cctx, func() {
		mu.Lock()
		timer.Reset(t.req)
		mu.Unlock()
	})
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(cctx), ErrTimeout) {
		return fmt.Errorf("%s %q: %w (nothing for %s): %w", what, prefix, ErrTimeout, t.req, err)
	}
	return err
}

func (t deadlines) classify(err error) errKind { return t.d.classify(err) }
