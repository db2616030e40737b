package brokersim

import (
	"container/list"
	"errors"
	"fmt"
	"os"
)

// DefaultMaxOpenFiles is how many segment files a run keeps open at once unless told
// otherwise: far below common open-file limits (1,024 soft, 20,000 here), while a store
// of 10,000 Kafka partitions has 30,000 files of active segments.
const DefaultMaxOpenFiles = 512

// openFiles bounds the segment files a run holds open. A broker keeps every active file
// open; brokersim keeps the most recently written max of them open and closes the least
// recently written one to make room, reopening it (O_RDWR, never creating) at its next
// write. Writes go straight to the file (no buffering here), so closing one loses nothing.
//
// Concurrency: not safe for concurrent use; a run writes from one goroutine.
type openFiles struct {
	max  int
	lru  list.List // of *handle with an open file, most recently used at the front
	peak int       // most files open at once
}

func newOpenFiles(max int) *openFiles {
	if max <= 0 {
		max = DefaultMaxOpenFiles
	}
	return &openFiles{max: max}
}

// handle is a segment file that may or may not be open right now.
type handle struct {
	of     *openFiles
	path   string
	f      *os.File      // nil while closed to make room
	elem   *list.Element // in of.lru while f is open
	closed bool          // Close was called
}

// create creates a new file sized to size bytes (see createFile) and returns its handle.
func (of *openFiles) create(path string, size int64) (*handle, error) {
	if err := of.makeRoom(); err != nil {
		return nil, err
	}
	f, err := createFile(path, size)
	if err != nil {
		return nil, err
	}
	h := &handle{of: of, path: path}
	h.opened(f)
	return h, nil
}

// makeRoom closes least recently used files until one more may be opened.
func (of *openFiles) makeRoom() error {
	var err error
	for of.lru.Len() >= of.max {
		h := of.lru.Remove(of.lru.Back()).(*handle)
		if cerr := h.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %q to stay within %d open files: %w", h.path, of.max, cerr)
		}
		h.f, h.elem = nil, nil
	}
	return err
}

func (h *handle) opened(f *os.File) {
	h.f = f
	h.elem = h.of.lru.PushFront(h)
	h.of.peak = max(h.of.peak, h.of.lru.Len())
}

// file returns the open file, reopening it if it was closed to make room.
func (h *handle) file() (*os.File, error) {
	switch {
	case h.closed:
		return nil, fmt.Errorf("BUG: write to %q after Close: %w", h.path, os.ErrClosed)
	case h.f != nil:
		h.of.lru.MoveToFront(h.elem)
		return h.f, nil
	}
	if err := h.of.makeRoom(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(h.path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("reopen %q: %w", h.path, err)
	}
	h.opened(f)
	return f, nil
}

// WriteAt writes p at off (io.WriterAt).
func (h *handle) WriteAt(p []byte, off int64) (int, error) {
	f, err := h.file()
	if err != nil {
		return 0, err
	}
	return f.WriteAt(p, off)
}

// Truncate changes the file's size.
func (h *handle) Truncate(size int64) error {
	f, err := h.file()
	if err != nil {
		return err
	}
	return f.Truncate(size)
}

// Name returns the file's path.
func (h *handle) Name() string { return h.path }

// Close closes the file if it is open; the handle cannot be written after.
func (h *handle) Close() error {
	if h.closed {
		return errors.New("close " + h.path + ": already closed")
	}
	h.closed = true
	if h.f == nil {
		return nil
	}
	h.of.lru.Remove(h.elem)
	f := h.f
	h.f, h.elem = nil, nil
	return f.Close()
}
