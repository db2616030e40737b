//go:build !linux

package localfile

// The Linux page-cache knobs do not exist here: tierd's production target is Linux, and
// these fallbacks only keep the package building and correct elsewhere (reads go through
// the page cache and nothing is dropped).

const oDirect = 0

func dropCache(fd int, off, n int64) {}

func noReadahead(fd int) {}

func prefetch(fd int, off, n int64) {}

func residency(fd int, off int64, n int, vec []byte) bool { return false }
