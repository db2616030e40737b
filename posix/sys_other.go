//go:build !linux

package posix

import (
	"errors"
	"os"
	"syscall"
)

// The Linux page-cache and allocation knobs do not exist here: tierd's production target
// is Linux, and these fallbacks only keep the package building and correct elsewhere
// (named temp files, no preallocation, no cache dropping, CRCs computed on Stat).

const oDirect = 0

var errUnsupported = errors.New("not supported on this platform")

func openTmpfile(dir string, flags int) (*os.File, error) { return nil, errUnsupported }

func linkTmpfile(f *os.File, path string) error { return errUnsupported }

func preallocate(f *os.File, size int64) (bool, error) { return false, nil }

func startWriteback(fd int, off, n int64) error { return nil }

func finishWriteback(fd int, off, n int64) error { return nil }

func dropCache(fd int, off, n int64) {}

func setCRC(f *os.File, v []byte) error { return errUnsupported }

func getCRC(path string, dst []byte) (int, error) { return 0, errUnsupported }

func isNoAttr(err error) bool { return false }

func isNoAttrSupport(err error) bool { return errors.Is(err, errUnsupported) }

func unmapPages(m []byte) {}

func statfs(path string) (used, total uint64, err error) {
	return 0, 0, &os.PathError{Op: "statfs", Path: path, Err: syscall.ENOTSUP}
}
