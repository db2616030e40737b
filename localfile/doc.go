// Package localfile is how tierd reads local files — a broker's sealed segments, and the
// objects of a posix tier — without disturbing the broker's page cache.
//
// Open returns a FileReader (a segment.Reader). What it promises:
//   - What was in the page cache before tierd read a file is still there afterwards; what
//     tierd's reads brought in is dropped behind them, one Window at a time (never per
//     small read), or at Close with ReadOptions.DropAtClose (multi-pass readers).
//   - With ReadOptions.Direct, reads whose buffer, offset and length are aligned (whole pool
//     buffers are) use O_DIRECT and do not touch the page cache at all; other reads fall
//     back to the cached path above.
//   - The kernel's readahead is off for tierd's descriptor only (the broker keeps its own);
//     tierd prefetches the window it is about to read instead.
//   - It never writes, and ReadAt is safe for concurrent use.
//
// Linux specifics (fadvise, mincore, O_DIRECT) live in sys_linux.go; elsewhere reads go
// through the page cache and nothing is dropped.
package localfile
