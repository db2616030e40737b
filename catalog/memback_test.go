package catalog

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tierd/tierd/segment"
)

// memBackend is a segment.Backend in memory, for the catalog's tests only.
type memBackend struct {
	mu   sync.Mutex
	objs map[segment.Key]memObject
	// failOpen, if set, is returned by Open of every key (to test backend failures).
	failOpen error
}

type memObject struct {
	data    []byte
	crc     uint32
	modTime time.Time
}

var _ segment.Backend = (*memBackend)(nil)

func newMemBackend() *memBackend { return &memBackend{objs: map[segment.Key]memObject{}} }

// put stores data under key at once.
func (m *memBackend) put(key segment.Key, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = memObject{bytes.Clone(data), crc32.Checksum(data, segment.Castagnoli), time.Now()}
}

func (m *memBackend) Create(ctx context.Context, key segment.Key, size int64) (segment.Writer, error) {
	if err := key.Valid(); err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("negative size %d", size)
	}
	return &memWriter{m: m, ctx: ctx, key: key, size: size}, ctx.Err()
}

func (m *memBackend) Open(ctx context.Context, key segment.Key) (segment.Reader, error) {
	if m.failOpen != nil {
		return nil, m.failOpen
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", key, segment.ErrNotFound)
	}
	return memReader{bytes.NewReader(o.data)}, ctx.Err()
}

func (m *memBackend) Stat(ctx context.Context, key segment.Key) (segment.Info, error) {
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
	var es []segment.Entry
	for k, o := range m.objs {
		if k.HasPrefix(prefix) {
			es = append(es, segment.Entry{Key: k, Size: int64(len(o.data)), ModTime: o.modTime})
		}
	}
	slices.SortFunc(es, func(a, b segment.Entry) int { return strings.Compare(string(a.Key), string(b.Key)) })
	return es, ctx.Err()
}

func (m *memBackend) Delete(ctx context.Context, key segment.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	return ctx.Err()
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
	if int64(w.buf.Len()+len(p)) > w.size {
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
	if int64(w.buf.Len()) != w.size {
		return fmt.Errorf("wrote %d of %d bytes", w.buf.Len(), w.size)
	}
	w.done = true
	w.m.put(w.key, w.buf.Bytes())
	return nil
}

func (w *memWriter) Abort() error { w.done = true; return nil }

type memReader struct{ r *bytes.Reader }

func (r memReader) ReadAt(p []byte, off int64) (int, error) { return r.r.ReadAt(p, off) }
func (r memReader) Size() int64                             { return r.r.Size() }
func (r memReader) Close() error                            { return nil }

var _ io.ReaderAt = memReader{}
