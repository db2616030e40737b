package localfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/tierd/tierd/segment"
)

// ReadOptions configures a FileReader.
type ReadOptions struct {
	// Direct reads with O_DIRECT whenever the caller's buffer, offset and length allow it
	// (whole pool buffers do), bypassing the page cache entirely; other reads go through
	// the page cache and are dropped behind as below.
	Direct bool
	// Window is the cache-drop granularity (default DefaultWindow).
	Window int64
	// DropAtClose keeps what the reader brings into the page cache until Close, instead of
	// dropping each window once read through: for readers that make several passes over a
	// file (the index compactor), whose later passes then come from memory. What was
	// resident before the first read is kept either way.
	DropAtClose bool
}

// FileReader reads a local file (a broker's sealed segment, or a posix tier object)
// without leaving it in the page cache and without evicting what was there before:
// the first read in each window notes which of its pages were already resident, and once
// the window has been read through, only the pages tierd brought in are dropped
// (FADV_DONTNEED per window, never per small read). A broker's hot pages stay hot.
//
// ReadAt is safe for concurrent use and implements the segment.Reader contract.
type FileReader struct {
	f      *os.File
	df     *os.File // O_DIRECT descriptor, or nil
	size   int64
	ctx    context.Context
	window int64
	keep   bool // DropAtClose

	mu      sync.Mutex
	windows map[int64]*windowState // by window index; only partly read windows
	closed  bool
}

type windowState struct {
	read     int64  // bytes read in this window (reads may overlap: an estimate)
	resident []byte // per page: bit 0 set if it was in the page cache before tierd read it
}

var _ segment.Reader = (*FileReader)(nil)

// Open opens path for reading. ctx governs every ReadAt: once it ends, reads fail with
// its error.
func Open(ctx context.Context, path string, opts ReadOptions) (*FileReader, error) {
	f, fi, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	r := &FileReader{f: f, size: fi.Size(), ctx: ctx, window: roundUp(opts.Window, pageSize), windows: map[int64]*windowState{}, keep: opts.DropAtClose}
	noReadahead(int(f.Fd()))
	if opts.Direct {
		if df, err := os.OpenFile(path, os.O_RDONLY|oDirect, 0); err == nil {
			r.df = df
		}
	}
	return r, nil
}

// ErrIsDir is returned by Open and OpenFile for a directory.
var ErrIsDir = errors.New("is a directory")

// OpenFile opens path for reading, refusing directories (ErrIsDir), and returns its
// FileInfo.
func OpenFile(path string) (*os.File, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = fmt.Errorf("%s: %w", path, ErrIsDir)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// Size returns the file's size when it was opened.
func (r *FileReader) Size() int64 { return r.size }

// ReadAt implements io.ReaderAt.
func (r *FileReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	if off >= r.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	if rest := r.size - off; int64(want) > rest {
		p = p[:rest]
	}
	var n int
	var err error
	if r.df != nil && r.directOK(p, off) {
		n, err = r.readDirect(p, off)
	} else {
		r.beforeRead(off, int64(len(p)))
		n, err = r.f.ReadAt(p, off)
		r.afterRead(off, int64(n))
	}
	if err == nil && n < want {
		err = io.EOF
	}
	return n, err
}

func (r *FileReader) directOK(p []byte, off int64) bool {
	if !isAligned(p) || off%pageSize != 0 {
		return false
	}
	// The last block of the file may be read into spare capacity of p.
	return len(p)%pageSize == 0 || (off+int64(len(p)) == r.size && cap(p) >= int(roundUp(int64(len(p)), pageSize)))
}

func (r *FileReader) readDirect(p []byte, off int64) (int, error) {
	full := p[:roundUp(int64(len(p)), pageSize)]
	n, err := r.df.ReadAt(full, off)
	if n > len(p) {
		n = len(p)
	}
	if errors.Is(err, io.EOF) && n == len(p) {
		err = nil
	}
	return n, err
}

// beforeRead notes, for every window the read touches and the one after it, which pages
// are resident before tierd reads them, and then prefetches that window. The kernel's own
// readahead is off for this descriptor (it would pull pages in before they are noted).
func (r *FileReader) beforeRead(off, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fd := int(r.f.Fd())
	for w := off / r.window; w*r.window < off+n+r.window && w*r.window < r.size; w++ {
		if _, ok := r.windows[w]; ok {
			continue
		}
		start := w * r.window
		length := min(r.window, r.size-start)
		vec := make([]byte, (length+pageSize-1)/pageSize)
		if !residency(fd, start, int(length), vec) {
			clear(vec)
		}
		r.windows[w] = &windowState{resident: vec}
		prefetch(fd, start, length)
	}
}

// afterRead counts the bytes read per window and drops each window read through.
func (r *FileReader) afterRead(off, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for w := off / r.window; w*r.window < off+n; w++ {
		ws := r.windows[w]
		if ws == nil {
			continue
		}
		start := w * r.window
		ws.read += min(off+n, start+r.window) - max(off, start)
		if !r.keep && ws.read >= min(r.window, r.size-start) {
			r.drop(start, ws)
			delete(r.windows, w)
		}
	}
}

// drop evicts the runs of pages of the window at start that were not resident before.
func (r *FileReader) drop(start int64, ws *windowState) {
	fd := int(r.f.Fd())
	run := -1
	for i := 0; i <= len(ws.resident); i++ {
		cold := i < len(ws.resident) && ws.resident[i]&1 == 0
		switch {
		case cold && run < 0:
			run = i
		case !cold && run >= 0:
			dropCache(fd, start+int64(run)*pageSize, int64(i-run)*pageSize)
			run = -1
		}
	}
}

// Close drops what is left of partly read windows (with DropAtClose: of every window)
// and closes the file.
func (r *FileReader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for w, ws := range r.windows {
		r.drop(w*r.window, ws)
		delete(r.windows, w)
	}
	r.mu.Unlock()
	if r.df != nil {
		r.df.Close()
	}
	return r.f.Close()
}
