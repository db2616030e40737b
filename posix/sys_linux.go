package posix

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// oDirect is O_DIRECT: page-cache-bypassing I/O, which keeps cold tier writes from
// evicting the broker's hot pages.
const oDirect = unix.O_DIRECT

// openTmpfile opens an unnamed file in dir (O_TMPFILE): if tierd dies before publishing
// it, the kernel frees it and no orphan is left behind.
func openTmpfile(dir string, flags int) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC|flags, 0o640)
	if err != nil {
		return nil, &os.PathError{Op: "open O_TMPFILE in", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir+"/(unnamed)"), nil
}

// linkTmpfile gives an O_TMPFILE inode the name path. It fails with EEXIST if path exists.
func linkTmpfile(f *os.File, path string) error {
	err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: path, Err: err}
	}
	return nil
}

// preallocate reserves [0, size) on disk so that running out of space is an error now and
// never a SIGBUS in a mapped write later. ok is false where the filesystem cannot do it.
func preallocate(f *os.File, size int64) (ok bool, err error) {
	if size == 0 {
		return true, nil
	}
	for {
		err = unix.Fallocate(int(f.Fd()), 0, 0, size)
		if err != unix.EINTR {
			break
		}
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("fallocate %d bytes: %w", size, err)
	}
	return true, nil
}

// startWriteback asks the kernel to begin writing [off, off+n) to disk without waiting.
func startWriteback(fd int, off, n int64) error {
	return unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// finishWriteback waits until [off, off+n) is on disk (data only; fsync at Commit makes
// the metadata durable).
func finishWriteback(fd int, off, n int64) error {
	return unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
}

// dropCache evicts the clean pages of [off, off+n) from the page cache.
func dropCache(fd int, off, n int64) {
	_ = unix.Fadvise(fd, off, n, unix.FADV_DONTNEED)
}

const (
	xattrCRC = "user.tierd.crc32c"
)

func setCRC(f *os.File, v []byte) error {
	return unix.Fsetxattr(int(f.Fd()), xattrCRC, v, 0)
}

func getCRC(path string, dst []byte) (int, error) {
	return unix.Getxattr(path, xattrCRC, dst)
}

// errNoAttr tells a missing attribute; errNoAttrSupport a filesystem without user xattrs.
func isNoAttr(err error) bool { return errors.Is(err, unix.ENODATA) }
func isNoAttrSupport(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}

// unmapPages drops a read mapping's pages from the process (they stay in the page cache),
// so a long read through a mapping does not grow RSS.
func unmapPages(m []byte) {
	_ = unix.Madvise(m, unix.MADV_DONTNEED)
}

func statfs(path string) (used, total uint64, err error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return 0, 0, err
	}
	// Like df: space reserved for root counts as used.
	used = (s.Blocks - s.Bfree) * uint64(s.Bsize)
	avail := s.Bavail * uint64(s.Bsize)
	return used, used + avail, nil
}
