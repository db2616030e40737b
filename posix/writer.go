package posix

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/tierd/tierd/internal/failpoint"
	"github.com/tierd/tierd/segment"
)

const pageSize = 4096

// sink puts a writer's bytes into its file; one per write mode.
type sink interface {
	// write stores p at offset off (the bytes written so far).
	write(p []byte, off int64) error
	// flush stores anything staged and leaves the file exactly size bytes long, with all
	// data handed to the kernel (fsync follows).
	flush(size int64) error
	// synced is called after the file's fsync.
	synced(size int64)
	// close releases the sink's resources (not the file).
	close()
}

type writer struct {
	b       *Backend
	ctx     context.Context
	key     segment.Key
	path    string
	f       *os.File
	tmpName string // the file's temp name; "" for an unnamed O_TMPFILE inode
	size    int64
	off     int64
	crc     uint32
	sink    sink
	err     error // sticky: the first failure
	done    bool  // committed or aborted
}

func (b *Backend) newWriter(ctx context.Context, key segment.Key, path string, size int64) (*writer, error) {
	flags := 0
	if b.mode == Direct {
		flags = oDirect
	}
	dir := filepath.Dir(path)
	f, tmpName, err := createTemp(dir, flags, b.tmpfile)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	w := &writer{b: b, ctx: ctx, key: key, path: path, f: f, tmpName: tmpName, size: size}
	fail := func(err error) (*writer, error) {
		w.removeTemp()
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	// Reserve the space now: a full disk fails here, before any byte is copied, and the
	// mmap writer can never fault on a hole.
	allocated := false
	if size != segment.UnknownSize {
		if allocated, err = preallocate(f, roundUp(size, pageSize)); err != nil {
			return fail(err)
		}
	}
	fd := int(f.Fd())
	mode := b.mode
	if mode == Mmap && size == segment.UnknownSize {
		mode = Buffered // a mapping needs the file's size up front
	}
	switch mode {
	case Direct:
		w.sink = newDirectSink(f)
	case Mmap:
		if !allocated {
			return fail(errors.New("filesystem cannot preallocate (fallocate), which mmap mode needs; use write_mode direct or buffered"))
		}
		w.sink = &mmapSink{fd: fd, f: f, wb: writeback{fd: fd, window: b.window}}
	case Buffered:
		w.sink = &bufferedSink{f: f, wb: writeback{fd: fd, window: b.window}}
	default:
		return fail(fmt.Errorf("BUG: write mode %q", b.mode))
	}
	return w, nil
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write %s: writer already finished", w.key)
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if w.size != segment.UnknownSize && w.off+int64(len(p)) > w.size {
		w.err = fmt.Errorf("write %s: %d bytes would exceed the declared size %d", w.key, w.off+int64(len(p)), w.size)
		return 0, w.err
	}
	if err := w.sink.write(p, w.off); err != nil {
		w.err = fmt.Errorf("write %s at %d: %w", w.key, w.off, err)
		return 0, w.err
	}
	w.crc = crc32.Update(w.crc, segment.Castagnoli, p)
	w.off += int64(len(p))
	return len(p), nil
}

// CRC32C implements segment.Checksummer.
func (w *writer) CRC32C() uint32 { return w.crc }

func (w *writer) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("commit %s: writer already finished", w.key)
	}
	if w.err != nil {
		return w.err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.size == segment.UnknownSize {
		w.size = w.off
	}
	if w.off != w.size {
		return fmt.Errorf("commit %s: %d of %d bytes written", w.key, w.off, w.size)
	}
	if err := w.commit(); err != nil {
		w.err = fmt.Errorf("commit %s: %w", w.key, err)
		return w.err
	}
	w.done = true
	return nil
}

func (w *writer) commit() error {
	if err := w.sink.flush(w.size); err != nil {
		return err
	}
	if err := setCRC(w.f, formatCRC(w.crc)); err != nil && !isNoAttrSupport(err) {
		return fmt.Errorf("store CRC: %w", err)
	} else if err != nil {
		w.b.log.Warn("filesystem has no user xattrs: CRC-32C will be recomputed on every Stat", zap.Error(err))
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	w.sink.synced(w.size)
	failpoint.Hit("posix.synced") // written and fsynced, not yet linked or renamed into place
	if err := w.publish(); err != nil {
		return err
	}
	w.sink.close()
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	if w.b.deferDirSync(filepath.Dir(w.path)) {
		return nil // a Deferred view: its Sync makes the name durable
	}
	return syncDir(filepath.Dir(w.path))
}

// publish gives the fully written, fsynced file its name in one atomic step.
func (w *writer) publish() error {
	if w.tmpName != "" {
		if err := os.Rename(w.tmpName, w.path); err != nil {
			return err
		}
		w.tmpName = ""
		return nil
	}
	err := linkTmpfile(w.f, w.path)
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Overwrite: link under a temp name, then rename over the old object.
	tmp := filepath.Join(filepath.Dir(w.path), tmpPrefix+randomSuffix())
	if err := linkTmpfile(w.f, tmp); err != nil {
		return err
	}
	failpoint.Hit("posix.temp_linked")
	if err := os.Rename(tmp, w.path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

func (w *writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.sink.close()
	if err := w.removeTemp(); err != nil {
		return fmt.Errorf("abort %s: %w", w.key, err)
	}
	return nil
}

// removeTemp closes the file (if still open) and removes its temp name (if any).
func (w *writer) removeTemp() error {
	err := w.f.Close()
	if errors.Is(err, os.ErrClosed) {
		err = nil
	}
	if w.tmpName != "" {
		if rerr := os.Remove(w.tmpName); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = rerr
		}
		w.tmpName = ""
	}
	return err
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// writeback keeps the page cache clean behind a buffered or mapped writer: every window
// it starts writeback of the newest full window, waits for the one before it and drops it
// from the page cache. At most two windows of dirty or in-flight pages exist per file,
// and the disk always has one window to write while the next is being filled.
type writeback struct {
	fd      int
	window  int64
	started int64 // writeback was started for [0, started)
	dropped int64 // [0, dropped) is on disk and out of the page cache
}

// advance records that [0, end) has been written to the page cache.
func (wb *writeback) advance(end int64) error {
	for end-wb.started >= wb.window {
		if err := startWriteback(wb.fd, wb.started, wb.window); err != nil {
			return fmt.Errorf("start writeback: %w", err)
		}
		wb.started += wb.window
		if prev := wb.started - wb.window; prev > wb.dropped {
			if err := finishWriteback(wb.fd, wb.dropped, prev-wb.dropped); err != nil {
				return fmt.Errorf("writeback: %w", err)
			}
			dropCache(wb.fd, wb.dropped, prev-wb.dropped)
			wb.dropped = prev
		}
	}
	return nil
}

// synced drops everything not dropped yet; the file has been fsynced, so it is clean.
func (wb *writeback) synced(size int64) {
	if size > wb.dropped {
		dropCache(wb.fd, wb.dropped, size-wb.dropped)
		wb.dropped = size
	}
}

// bufferedSink writes with pwrite through the page cache.
type bufferedSink struct {
	f  *os.File
	wb writeback
}

func (s *bufferedSink) write(p []byte, off int64) error {
	if _, err := s.f.WriteAt(p, off); err != nil {
		return err
	}
	return s.wb.advance(off + int64(len(p)))
}

func (s *bufferedSink) flush(size int64) error {
	// fallocate rounded the file up to a page; give it back its real size.
	return s.f.Truncate(size)
}

func (s *bufferedSink) synced(size int64) { s.wb.synced(size) }
func (s *bufferedSink) close()            {}
