package localfile

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// oDirect is O_DIRECT: page-cache-bypassing reads, which keep source reads from evicting
// the broker's hot pages.
const oDirect = unix.O_DIRECT

// dropCache evicts the clean pages of [off, off+n) from the page cache.
func dropCache(fd int, off, n int64) {
	_ = unix.Fadvise(fd, off, n, unix.FADV_DONTNEED)
}

// noReadahead turns the kernel's readahead off for one open file (the setting belongs to
// this descriptor, not to the file: the broker's own reads keep theirs).
func noReadahead(fd int) { _ = unix.Fadvise(fd, 0, 0, unix.FADV_RANDOM) }

// prefetch starts reading [off, off+n) into the page cache without waiting.
func prefetch(fd int, off, n int64) { _ = unix.Fadvise(fd, off, n, unix.FADV_WILLNEED) }

// residency reports, one byte per page (bit 0 set = resident), which pages of
// [off, off+n) of fd are in the page cache. off is page-aligned. ok is false when it
// cannot tell (then the caller assumes nothing was resident).
func residency(fd int, off int64, n int, vec []byte) (ok bool) {
	if n <= 0 {
		return false
	}
	m, err := unix.Mmap(fd, off, n, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return false
	}
	defer unix.Munmap(m)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0])))
	return errno == 0
}
