package bufpool

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// reserve maps n bytes of anonymous memory: page-aligned (so every buffer is O_DIRECT
// ready), outside the Go heap (the GC neither scans nor counts it), and committed lazily
// by the kernel, so untouched buffers cost no RSS.
func reserve(n int, lock bool) ([]byte, func() error, error) {
	mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, err
	}
	if lock {
		if err := unix.Mlock(mem); err != nil {
			_ = unix.Munmap(mem)
			return nil, nil, fmt.Errorf("mlock (raise RLIMIT_MEMLOCK or set memory.lock: false): %w", err)
		}
	}
	return mem, func() error { return unix.Munmap(mem) }, nil
}
