package posix

import (
	"os"
	"unsafe"

	"github.com/ncw/directio"
)

// stageSize is the direct writer's staging buffer: within the 64 KiB a backend may
// allocate per call, and enough to keep unaligned writes from being tiny I/Os.
const stageSize = 64 << 10

// directSink writes with O_DIRECT. Aligned memory at an aligned file offset (whole pool
// buffers, the common case) goes straight to disk; anything else is gathered in an
// aligned staging buffer. The last partial block is padded with zeros and the file is
// truncated to its real size before fsync.
type directSink struct {
	f     *os.File
	pos   int64  // bytes on disk; always a multiple of pageSize
	stage []byte // aligned staging buffer
	n     int    // bytes staged
}

func newDirectSink(f *os.File) *directSink {
	return &directSink{f: f, stage: alignedBlock(stageSize)}
}

func alignedBlock(n int) []byte { return directio.AlignedBlock(n) }

func isAligned(p []byte) bool {
	return len(p) > 0 && uintptr(unsafe.Pointer(&p[0]))%pageSize == 0
}

func (s *directSink) write(p []byte, _ int64) error {
	for len(p) > 0 {
		if s.n == 0 && len(p) >= pageSize && isAligned(p) {
			m := len(p) &^ (pageSize - 1)
			if _, err := s.f.WriteAt(p[:m], s.pos); err != nil {
				return err
			}
			s.pos += int64(m)
			p = p[m:]
			continue
		}
		c := copy(s.stage[s.n:], p)
		s.n += c
		p = p[c:]
		if s.n == len(s.stage) {
			if _, err := s.f.WriteAt(s.stage, s.pos); err != nil {
				return err
			}
			s.pos += int64(s.n)
			s.n = 0
		}
	}
	return nil
}

func (s *directSink) flush(size int64) error {
	if s.n > 0 {
		padded := int(roundUp(int64(s.n), pageSize))
		clear(s.stage[s.n:padded])
		if _, err := s.f.WriteAt(s.stage[:padded], s.pos); err != nil {
			return err
		}
		s.pos += int64(padded)
		s.n = 0
	}
	return s.f.Truncate(size)
}

func (s *directSink) synced(int64) {}
func (s *directSink) close()       {}
