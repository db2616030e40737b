package posix

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/tierd/tierd/localfile"
)

// mappedReader reads an object through one read-only shared mapping of the whole file.
//
// The mapping is reference-counted, as RocketMQ's MappedFile is: Close drops the owner's
// reference, every ReadAt holds one while it copies, and the mapping is unmapped when the
// count reaches zero, so no read ever touches unmapped memory. A file truncated under the
// mapping by someone else would raise SIGBUS; ReadAt turns that fault into an error
// (debug.SetPanicOnFault) instead of crashing the process.
type mappedReader struct {
	data   []byte
	size   int64
	ctx    context.Context
	refs   atomic.Int64 // 1 for the owner + 1 per ReadAt in flight
	closed atomic.Bool
	fd     int // kept open for fadvise; closed with the mapping
	f      *os.File
	window int64

	mu   sync.Mutex
	read map[int64]int64 // bytes read per window not dropped yet
}

func openMapped(ctx context.Context, path string, window int64) (*mappedReader, error) {
	f, fi, err := localfile.OpenFile(path)
	if err != nil {
		return nil, err
	}
	r := &mappedReader{size: fi.Size(), ctx: ctx, f: f, fd: int(f.Fd()), window: window, read: map[int64]int64{}}
	if r.size > 0 {
		r.data, err = unix.Mmap(r.fd, 0, int(r.size), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("mmap %s: %w", path, err)
		}
	}
	r.refs.Store(1)
	return r, nil
}

func (r *mappedReader) Size() int64 { return r.size }

func (r *mappedReader) acquire() bool {
	for {
		n := r.refs.Load()
		if n == 0 {
			return false
		}
		if r.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (r *mappedReader) release() {
	switch n := r.refs.Add(-1); {
	case n == 0:
		if r.data != nil {
			_ = unix.Munmap(r.data)
		}
		dropCache(r.fd, 0, r.size)
		r.f.Close()
	case n < 0:
		panic("BUG: posix: mapped reader released more often than acquired")
	}
}

func (r *mappedReader) ReadAt(p []byte, off int64) (n int, err error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	if r.closed.Load() || !r.acquire() {
		return 0, fs.ErrClosed
	}
	defer r.release()
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if off >= r.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n, err = r.copyOut(p, off)
	if err != nil {
		return n, err
	}
	r.dropBehind(off, int64(n))
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// copyOut copies from the mapping, turning a memory fault into an error.
func (r *mappedReader) copyOut(p []byte, off int64) (n int, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if e := recover(); e != nil {
			n, err = 0, fmt.Errorf("read mapped object at %d: %v (was the file truncated?)", off, e)
		}
	}()
	return copy(p, r.data[off:]), nil
}

// dropBehind unmaps and drops each window once it has been read through, so reading a
// large object through the mapping neither grows RSS nor fills the page cache.
func (r *mappedReader) dropBehind(off, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for w := off / r.window; w*r.window < off+n; w++ {
		start := w * r.window
		length := min(r.window, r.size-start)
		r.read[w] += min(off+n, start+length) - max(off, start)
		if r.read[w] >= length {
			delete(r.read, w)
			unmapPages(r.data[start : start+length])
			dropCache(r.fd, start, length)
		}
	}
}

func (r *mappedReader) Close() error {
	if r.closed.CompareAndSwap(false, true) {
		r.release()
	}
	return nil
}
