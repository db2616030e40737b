package codec

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tierd/tierd/segment"
)

// memBackend is a segment.Backend in memory that counts the bytes its readers are asked
// for, for the codec's tests.
type memBackend struct {
	mu   sync.Mutex
	objs map[segment.Key]memObject
	// requested counts the bytes asked for by ReadAt calls on every reader.
	requested atomic.Int64
	reads     atomic.Int64
	// stored counts the bytes written (discard's Writers only).
	stored atomic.Int64
}

type memObject struct {
	data    []byte
	crc     uint32
	modTime time.Time
}

var _ segment.Backend = (*memBackend)(nil)

func newMemBackend() *memBackend { return &memBackend{objs: map[segment.Key]memObject{}} }

func (m *memBackend) Create(ctx context.Context, key segment.Key, size int64) (segment.Writer, error) {
	if err := key.Valid(); err != nil {
		return nil, err
	}
	if size < 0 && size != segment.UnknownSize {
		return nil, fmt.Errorf("negative size %d", size)
	}
	return &memWriter{m: m, ctx: ctx, key: key, size: size}, ctx.Err()
}

func (m *memBackend) Open(ctx context.Context, key segment.Key) (segment.Reader, error) {
	if err := key.Valid(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", key, segment.ErrNotFound)
	}
	return &memReader{m: m, ctx: ctx, data: o.data}, ctx.Err()
}

func (m *memBackend) Stat(ctx context.Context, key segment.Key) (segment.Info, error) {
	if err := key.Valid(); err != nil {
		return segment.Info{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return segment.Info{}, fmt.Errorf("stat %s: %w", key, segment.ErrNotFound)
	}
	return segment.Info{Entry: segment.Entry{Key: key, Size: int64(len(o.data)), ModTime: o.modTime}, CRC32C: o.crc}, ctx.Err()
}

func (m *memBackend) List(ctx context.Context, prefix segment.Key) ([]segment.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	es := []segment.Entry{}
	for k, o := range m.objs {
		if k.HasPrefix(prefix) {
			es = append(es, segment.Entry{Key: k, Size: int64(len(o.data)), ModTime: o.modTime})
		}
	}
	slices.SortFunc(es, func(a, b segment.Entry) int { return strings.Compare(string(a.Key), string(b.Key)) })
	return es, ctx.Err()
}

func (m *memBackend) Delete(ctx context.Context, key segment.Key) error {
	if err := key.Valid(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	return ctx.Err()
}

// raw returns the stored bytes of key.
func (m *memBackend) raw(key segment.Key) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.objs[key].data
}

func (m *memBackend) put(key segment.Key, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = memObject{data, crc32.Checksum(data, segment.Castagnoli), time.Now()}
}

type memWriter struct {
	m    *memBackend
	ctx  context.Context
	key  segment.Key
	size int64
	buf  bytes.Buffer
	done bool
}

func (w *memWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if w.done {
		return 0, fmt.Errorf("writer already finished")
	}
	if w.size != segment.UnknownSize && int64(w.buf.Len()+len(p)) > w.size {
		return 0, fmt.Errorf("write past size %d", w.size)
	}
	return w.buf.Write(p)
}

func (w *memWriter) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("writer already finished")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.size != segment.UnknownSize && int64(w.buf.Len()) != w.size {
		return fmt.Errorf("wrote %d of %d bytes", w.buf.Len(), w.size)
	}
	w.done = true
	w.m.put(w.key, bytes.Clone(w.buf.Bytes()))
	return nil
}

func (w *memWriter) Abort() error { w.done = true; return nil }

type memReader struct {
	m      *memBackend
	ctx    context.Context
	data   []byte
	closed atomic.Bool
}

func (r *memReader) ReadAt(p []byte, off int64) (int, error) {
	if r.closed.Load() {
		return 0, fs.ErrClosed
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	r.m.requested.Add(int64(len(p)))
	r.m.reads.Add(1)
	return bytes.NewReader(r.data).ReadAt(p, off)
}
func (r *memReader) Size() int64  { return int64(len(r.data)) }
func (r *memReader) Close() error { r.closed.Store(true); return nil }
