//go:build !linux

package bufpool

import (
	"errors"
	"unsafe"
)

// reserve allocates n bytes on the Go heap, aligned by over-allocating one Align.
func reserve(n int, lock bool) ([]byte, func() error, error) {
	if lock {
		return nil, nil, errors.New("memory locking is only supported on Linux")
	}
	raw := make([]byte, n+Align)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&raw[0])) % Align); r != 0 {
		off = Align - r
	}
	return raw[off : off+n : off+n], func() error { return nil }, nil
}
