package localfile

import "unsafe"

// DefaultWindow is the default cache-drop window (ReadOptions.Window): large enough that
// fadvise calls are rare, small enough that little of the file is cached at any time.
const DefaultWindow = 8 << 20

// pageSize is the unit of the page cache and of O_DIRECT alignment.
const pageSize = 4096

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

func isAligned(p []byte) bool {
	return len(p) > 0 && uintptr(unsafe.Pointer(&p[0]))%pageSize == 0
}
