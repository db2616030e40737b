package posix

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapChunk is the most a mmap writer maps at once. Mapped pages count towards the
// process's RSS, so mappings are short-lived and small: with every pool buffer being
// written at once, mappings add at most capacity x 1 MiB to RSS.
const mapChunk = 1 << 20

// mmapSink writes through shared mappings of the (fallocated) file: map a chunk, copy,
// unmap, and let writeback push the dirty pages to disk window by window.
type mmapSink struct {
	fd int
	f  *os.File
	wb writeback
}

func (s *mmapSink) write(p []byte, off int64) error {
	for len(p) > 0 {
		base := off &^ (pageSize - 1)
		lead := int(off - base)
		n := min(len(p), mapChunk-lead)
		m, err := unix.Mmap(s.fd, base, lead+n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return err
		}
		populateWrite(m)
		copy(m[lead:], p[:n])
		if err := unix.Munmap(m); err != nil {
			return err
		}
		p = p[n:]
		off += int64(n)
		if err := s.wb.advance(off); err != nil {
			return err
		}
	}
	return nil
}

func (s *mmapSink) flush(size int64) error { return s.f.Truncate(size) }
func (s *mmapSink) synced(size int64)      { s.wb.synced(size) }
func (s *mmapSink) close()                 {}
