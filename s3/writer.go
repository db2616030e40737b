package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/internal/failpoint"
	"github.com/tierd/tierd/segment"
)

// Writer uploads one object; it implements segment.SourceWriter.
//
// Pushed bytes (Write) go up in parts of exactly one pool buffer. A whole buffer passed
// by the caller is copied into a buffer taken with TryGet and uploaded in the background,
// or, when the pool has none free, uploaded at once from the caller's memory. Smaller
// writes are staged in a buffer taken with Get, which the Writer contract allows (such
// callers hold no buffer). At most PartConcurrency parts are in flight per Writer, and
// every one of them sits in a pool buffer, so the pool budget bounds upload memory.
// Objects no larger than a buffer are staged whole and sent with one PUT at Commit.
//
// Pulled bytes (WriteFrom) go up in parts of Config.PartSize, PartConcurrency at a time,
// each streamed from an io.SectionReader of the source and read exactly once.
type Writer struct {
	b      *Backend
	ctx    context.Context // Create's, cancelled by Abort to stop parts in flight
	cancel context.CancelFunc
	key    segment.Key
	obj    string
	size   int64
	leave  func() // gives back the tier's concurrency slot

	written int64
	stage   *bufpool.Buffer // small writes, or the whole object of a single PUT
	stageN  int
	pulled  bool // WriteFrom was called
	ended   bool // a short Write ended an object of unknown size
	unsure  bool // CreateMultipartUpload failed: the server may have made an upload anyway
	state   int  // open, committed or aborted
	slots   chan struct{}
	wg      sync.WaitGroup
	next    int // next part number

	mu       sync.Mutex // guards what part uploads in flight share with the writer
	uploadID string
	parts    []part
	err      error // the first failed part
}

const (
	open = iota
	committed
	aborted
)

// Create implements segment.Backend. It waits for one of the tier's concurrency slots;
// the Writer holds it until Commit or Abort.
func (b *Backend) Create(ctx context.Context, key segment.Key, size int64) (segment.Writer, error) {
	if err := key.Valid(); err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	if (size < 0 && size != segment.UnknownSize) || size > MaxObjectSize {
		return nil, fmt.Errorf("create %s: size %d is outside [0, %d]", key, size, int64(MaxObjectSize))
	}
	leave, err := b.gate.Enter(ctx)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	obj := b.object(key)
	b.mu.Lock()
	b.writing[obj]++
	b.mu.Unlock()
	return &Writer{
		b: b, ctx: wctx, cancel: cancel, key: key, obj: obj, size: size, leave: leave,
		slots: make(chan struct{}, b.partConc), next: 1,
	}, nil
}

// UploadID returns the id of the writer's multipart upload, or "" while it has none (it
// is created with the first part; small objects never have one). Safe to call from any
// goroutine.
func (w *Writer) UploadID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.uploadID
}

// uploadIDLocked is UploadID for callers holding w.b.mu (w.mu is always taken inside it).
func (w *Writer) uploadIDLocked() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.uploadID
}

func (w *Writer) usable(op string) error {
	switch {
	case w.state != open:
		return fmt.Errorf("%s %s: writer already committed or aborted", op, w.key)
	case w.ctx.Err() != nil:
		return fmt.Errorf("%s %s: %w", op, w.key, w.ctx.Err())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Write implements segment.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.usable("write"); err != nil {
		return 0, err
	}
	if w.pulled {
		return 0, fmt.Errorf("write %s: Write after WriteFrom", w.key)
	}
	bs := int64(w.b.pool.BufferSize())
	if w.size == segment.UnknownSize {
		return w.writeUnsized(p, bs)
	}
	if int64(len(p)) > w.size-w.written {
		return 0, fmt.Errorf("write %s: %d bytes at offset %d overrun the object's %d bytes", w.key, len(p), w.written, w.size)
	}
	if w.size > bs && (w.size+bs-1)/bs > MaxParts {
		return 0, fmt.Errorf("write %s: %d bytes need more than %d parts of %d bytes (WriteFrom uses larger parts)", w.key, w.size, MaxParts, bs)
	}
	total := len(p)
	for len(p) > 0 {
		last := w.written+int64(len(p)) == w.size // p ends the object
		var n int
		var err error
		switch {
		case w.size <= bs && w.stage == nil && last:
			// The whole small object in one Write from a caller that may hold buffers.
			n, err = w.tail(p)
		case w.size > bs && w.stageN == 0 && (int64(len(p)) >= bs || last):
			// A whole part, or the object's tail, in the caller's memory.
			n = int(min(int64(len(p)), bs))
			err = w.sendCaller(p[:n])
		default:
			n, err = w.fill(p, bs)
		}
		w.written += int64(n)
		p = p[n:]
		if err != nil {
			return total - len(p), err
		}
	}
	return total, nil
}

// writeUnsized writes to an object of unknown size: whole buffers go up as parts from
// the caller's memory; a shorter p ends the object, as its last part or, when nothing was
// sent yet, as the whole object (see tail). It never waits for a pool buffer.
func (w *Writer) writeUnsized(p []byte, bs int64) (int, error) {
	if w.ended && len(p) > 0 {
		return 0, fmt.Errorf("write %s: %d bytes after a short write ended an object of unknown size", w.key, len(p))
	}
	total := len(p)
	for len(p) > 0 {
		n := int(min(int64(len(p)), bs))
		if int64(n) < bs {
			w.ended = true
		}
		if w.written+int64(n) > MaxObjectSize || (int64(n) == bs && w.next > MaxParts) {
			return total - len(p), fmt.Errorf("write %s: object of unknown size grows past %d bytes or %d parts", w.key, int64(MaxObjectSize), MaxParts)
		}
		var err error
		if w.ended && w.written == 0 {
			_, err = w.tail(p[:n])
		} else {
			err = w.sendCaller(p[:n])
		}
		w.written += int64(n)
		p = p[n:]
		if err != nil {
			return total - len(p), err
		}
	}
	return total, nil
}

// tail handles an object of at most one buffer written in one piece: staged for a PUT at
// Commit when a buffer is free at once, else sent now from the caller's memory as the
// only part of a multipart upload (invisible until Commit).
func (w *Writer) tail(p []byte) (int, error) {
	if buf := w.b.pool.TryGet(); buf != nil {
		w.stage = buf
		w.stageN = copy(buf.Bytes(), p)
		return len(p), nil
	}
	return len(p), w.sendCaller(p)
}

// fill stages p into the staging buffer (taking one with Get if needed) and sends the
// buffer as a part once it is full or ends the object.
func (w *Writer) fill(p []byte, bs int64) (int, error) {
	if w.stage == nil {
		buf, err := w.b.pool.Get(w.ctx)
		if err != nil {
			return 0, fmt.Errorf("write %s: wait for a buffer: %w", w.key, err)
		}
		w.stage = buf
	}
	n := copy(w.stage.Bytes()[w.stageN:], p)
	w.stageN += n
	if w.size > bs && (int64(w.stageN) == bs || w.written+int64(n) == w.size) {
		buf, m := w.stage, w.stageN
		w.stage, w.stageN = nil, 0
		if err := w.sendAsync(buf, m); err != nil {
			return n, err
		}
	}
	return n, nil
}

// sendCaller sends p, which the caller owns, as the next part: from a copy in a TryGet
// buffer in the background, or from p itself before returning.
func (w *Writer) sendCaller(p []byte) error {
	if err := w.acquireSlot(); err != nil {
		return err
	}
	if buf := w.b.pool.TryGet(); buf != nil {
		n := copy(buf.Bytes(), p)
		return w.goSend(buf, n)
	}
	defer w.releaseSlot()
	num, id, err := w.nextPart()
	if err != nil {
		return err
	}
	pt, err := w.uploadPart(w.ctx, id, num, bytes.NewReader(p), 0, int64(len(p)))
	return w.record(pt, err)
}

// sendAsync sends the first n bytes of buf, which the writer owns, as the next part in
// the background; buf is released when the part is done.
func (w *Writer) sendAsync(buf *bufpool.Buffer, n int) error {
	if err := w.acquireSlot(); err != nil {
		buf.Release()
		return err
	}
	return w.goSend(buf, n)
}

// goSend uploads buf[:n] as the next part in a goroutine that owns buf and one slot.
func (w *Writer) goSend(buf *bufpool.Buffer, n int) error {
	num, id, err := w.nextPart()
	if err != nil {
		buf.Release()
		w.releaseSlot()
		return err
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer w.releaseSlot()
		defer buf.Release()
		pt, err := w.uploadPart(w.ctx, id, num, bytes.NewReader(buf.Bytes()[:n]), 0, int64(n))
		_ = w.record(pt, err)
	}()
	return nil
}

func (w *Writer) acquireSlot() error {
	select {
	case w.slots <- struct{}{}:
		return nil
	case <-w.ctx.Done():
		return fmt.Errorf("write %s: %w", w.key, w.ctx.Err())
	}
}

func (w *Writer) releaseSlot() { <-w.slots }

// nextPart numbers the next part, creating the multipart upload for the first.
func (w *Writer) nextPart() (int, string, error) {
	id, err := w.ensureUpload()
	if err != nil {
		return 0, "", err
	}
	num := w.next
	w.next++
	return num, id, nil
}

func (w *Writer) ensureUpload() (string, error) {
	if id := w.UploadID(); id != "" {
		return id, nil
	}
	w.b.mu.Lock()
	w.b.recent[w.obj] = struct{}{}
	w.b.mu.Unlock()
	id, err := w.b.d.createMultipart(w.ctx, w.obj)
	if err != nil {
		// The request may have reached the server and only its reply been lost (an outage):
		// an upload nothing knows the id of. Reap looks for it by the object's name.
		w.b.mu.Lock()
		w.b.unsure[w.obj] = struct{}{}
		w.b.mu.Unlock()
		w.unsure = true
		return "", fmt.Errorf("create multipart upload of %s: %w", w.key, w.ctxErr(err))
	}
	failpoint.Hit("s3.upload_created") // not journaled yet: only a reap finds it
	w.mu.Lock()
	w.uploadID = id
	w.mu.Unlock()
	w.b.mu.Lock()
	w.b.live[id] = struct{}{}
	w.b.mu.Unlock()
	w.b.log.Debug("multipart upload started", zap.String("key", string(w.key)), zap.String("upload_id", id))
	if w.b.onUpload != nil {
		w.b.onUpload(w.key, id)
	}
	failpoint.Hit("s3.upload_journaled")
	return id, nil
}

// uploadPart uploads bytes [off, off+n) of src as part num.
func (w *Writer) uploadPart(ctx context.Context, id string, num int, src io.ReaderAt, off, n int64) (part, error) {
	body := newPartBody(ctx, src, off, n, w.b.rate, &w.b.read)
	etag, err := w.b.d.uploadPart(ctx, w.obj, id, num, body)
	if err != nil {
		if f := body.failure(); f != nil {
			err = f
		}
		return part{}, fmt.Errorf("upload part %d of %s: %w", num, w.key, w.ctxErr(err))
	}
	crc, ok := body.CRC()
	if !ok {
		return part{}, fmt.Errorf("BUG: s3: part %d of %s was sent without being read through", num, w.key)
	}
	return part{num: num, etag: etag, crc: crc, size: n}, nil
}

// ctxErr prefers the writer's cancellation to whatever an SDK made of it.
func (w *Writer) ctxErr(err error) error {
	if cerr := w.ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

func (w *Writer) record(pt part, err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		if w.err == nil {
			w.err = err
		}
		return err
	}
	w.parts = append(w.parts, pt)
	failpoint.Hit("s3.part_uploaded")
	return nil
}

// WriteFrom implements segment.SourceWriter: it uploads src[0:size) and returns its
// CRC-32C. An object of at most one part (and one pool buffer) is read into a buffer taken
// with Get, so call WriteFrom holding no pool buffer; larger ones stream each part from
// src. It reads every byte of src once.
func (w *Writer) WriteFrom(src io.ReaderAt) (uint32, error) {
	if err := w.usable("write"); err != nil {
		return 0, err
	}
	if w.pulled || w.written > 0 {
		return 0, fmt.Errorf("write %s: WriteFrom after Write or WriteFrom", w.key)
	}
	if w.size == segment.UnknownSize {
		return 0, fmt.Errorf("write %s: WriteFrom needs the object's size, given as unknown", w.key)
	}
	w.pulled = true
	if w.size <= w.b.putMax {
		return w.stageAll(src)
	}
	ps := w.b.partSize
	if (w.size+ps-1)/ps > MaxParts {
		ps = ((w.size+MaxParts-1)/MaxParts + 1<<20 - 1) &^ (1<<20 - 1) // whole MiB
	}
	nparts := int((w.size + ps - 1) / ps)
	id, err := w.ensureUpload()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(w.b.partConc, nparts) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				num := int(next.Add(1))
				if num > nparts || ctx.Err() != nil {
					return
				}
				off := int64(num-1) * ps
				pt, err := w.uploadPart(ctx, id, num, src, off, min(ps, w.size-off))
				if w.record(pt, err) != nil {
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	w.mu.Lock()
	err = w.err
	w.mu.Unlock()
	if err != nil {
		return 0, err
	}
	w.written = w.size
	return w.wholeCRC(), nil
}

// stageAll reads all of a small source into a buffer for the PUT at Commit.
func (w *Writer) stageAll(src io.ReaderAt) (uint32, error) {
	if w.size == 0 {
		return 0, nil
	}
	buf, err := w.b.pool.Get(w.ctx)
	if err != nil {
		return 0, fmt.Errorf("write %s: wait for a buffer: %w", w.key, err)
	}
	w.stage = buf
	p := buf.Bytes()[:w.size]
	n, err := src.ReadAt(p, 0)
	if n < len(p) {
		if err == nil || errors.Is(err, io.EOF) {
			err = segment.ErrSourceChanged
		}
		return 0, fmt.Errorf("write %s: read source at %d: %w", w.key, n, err)
	}
	w.stageN = n
	w.written = w.size
	return crc32.Checksum(p, segment.Castagnoli), nil
}

// wholeCRC combines the parts' CRCs in order. Call with every part recorded.
func (w *Writer) wholeCRC() uint32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	slices.SortFunc(w.parts, func(a, b part) int { return a.num - b.num })
	var crc uint32
	for _, p := range w.parts {
		crc = crc32cCombine(crc, p.crc, p.size)
	}
	return crc
}

// Commit implements segment.Writer: CompleteMultipartUpload, or the single PUT of a
// staged small object.
func (w *Writer) Commit(ctx context.Context) error {
	if err := w.usable("commit"); err != nil {
		return err
	}
	if w.size == segment.UnknownSize {
		w.size = w.written
	}
	if w.written != w.size {
		return fmt.Errorf("commit %s: %d of %d bytes written", w.key, w.written, w.size)
	}
	if w.stageN > 0 && w.UploadID() != "" {
		return fmt.Errorf("BUG: s3: commit %s with %d staged bytes not sent", w.key, w.stageN)
	}
	w.wg.Wait()
	w.mu.Lock()
	err, id := w.err, w.uploadID
	w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("commit %s: %w", w.key, err)
	}
	if id == "" {
		var p []byte
		if w.stage != nil {
			p = w.stage.Bytes()[:w.stageN]
		}
		body := newPartBody(ctx, bytes.NewReader(p), 0, w.size, w.b.rate, &w.b.read)
		crc := crc32.Checksum(p, segment.Castagnoli)
		if _, err := w.b.d.put(ctx, w.obj, body, crc, putCond{}); err != nil {
			if f := body.failure(); f != nil {
				err = f
			}
			if f := body.failure(); f != nil || !w.b.committedAnyway(ctx, w.obj, w.size, crc, err) {
				return fmt.Errorf("commit %s: put: %w", w.key, err)
			}
		}
	} else {
		crc := w.wholeCRC()
		var sum int64
		for i, p := range w.parts {
			if p.num != i+1 {
				return fmt.Errorf("BUG: s3: commit %s: part %d missing", w.key, i+1)
			}
			sum += p.size
		}
		if sum != w.size {
			return fmt.Errorf("BUG: s3: commit %s: parts hold %d of %d bytes", w.key, sum, w.size)
		}
		failpoint.Hit("s3.completing")
		if err := w.b.d.complete(ctx, w.obj, id, w.parts, crc, w.size); err != nil && !w.b.committedAnyway(ctx, w.obj, w.size, crc, err) {
			return fmt.Errorf("commit %s: complete multipart upload %s: %w", w.key, id, err)
		}
	}
	w.state = committed
	w.finish()
	return nil
}

// committedAnyway settles a commit whose request failed by looking: the store may have
// committed the object and only its reply been lost (a cut connection; an SDK retry of a
// completed upload then fails with NoSuchUpload). When the object under obj has the size
// and full-object CRC-32C just written, the commit is done. A cancelled caller settles
// nothing.
func (b *Backend) committedAnyway(ctx context.Context, obj string, size int64, crc uint32, cerr error) bool {
	if ctx.Err() != nil {
		return false
	}
	o, err := b.d.head(ctx, obj)
	if err != nil || o.size != size || o.checksum == "" || o.checksumType == "COMPOSITE" || strings.Contains(o.checksum, "-") {
		return false
	}
	if got, err := decodeCRC(o.checksum); err != nil || got != crc {
		return false
	}
	b.settled.Add(1)
	b.log.Warn("commit failed but the store has the object with the size and CRC-32C written (its reply was lost): committed",
		zap.String("object", obj), zap.Int64("size", size), zap.NamedError("commit_error", cerr))
	return true
}

// finish releases what the writer holds; parts in flight must be done.
func (w *Writer) finish() {
	if w.stage != nil {
		w.stage.Release()
		w.stage, w.stageN = nil, 0
	}
	w.b.mu.Lock()
	if id := w.uploadIDLocked(); id != "" {
		delete(w.b.live, id)
	}
	if w.b.writing[w.obj]--; w.b.writing[w.obj] <= 0 {
		delete(w.b.writing, w.obj)
	}
	w.b.mu.Unlock()
	w.cancel()
	w.leave()
}

// Abort implements segment.Writer: it stops parts in flight and aborts the multipart
// upload. If the server cannot be reached the upload is remembered and Reap retries it.
func (w *Writer) Abort() error {
	switch w.state {
	case committed:
		return fmt.Errorf("abort %s: writer already committed", w.key)
	case aborted:
		return nil
	}
	w.state = aborted
	w.cancel()
	w.wg.Wait()
	w.finish()
	if id := w.UploadID(); id != "" {
		if err := w.b.abandon(w.ctx, upload{key: w.obj, id: id}); err != nil {
			return fmt.Errorf("abort %s: %w", w.key, err)
		}
	}
	if w.unsure {
		// A creation whose reply was lost (a cancelled or failed request) may have left an
		// upload: look for it now; if that fails too, Reap will.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), abortTimeout)
		defer cancel()
		_, _ = w.b.settleUnsure(ctx, w.obj)
	}
	return nil
}
