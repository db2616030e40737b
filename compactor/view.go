package compactor

import "unsafe"

// poolView views b as a slice of T, as many as fit. b must be aligned for T (pool buffers
// are page-aligned) and T must hold no Go pointers: pool memory is invisible to the
// garbage collector.
func poolView[T any](b []byte) []T {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if len(b) < size {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/size)
}
