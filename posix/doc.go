// Package posix is the filesystem tier: a segment.Backend on a directory, typically an HDD
// mount. Reading uses localfile, the same reader tierd reads broker files with.
//
// Write modes (Config.WriteMode), all publishing atomically (an unnamed O_TMPFILE inode or
// a hidden temp file, fsync, link/rename into place, fsync of the directory):
//   - direct: O_DIRECT writes from the caller's aligned pool buffers, a small aligned
//     staging buffer for anything unaligned, the tail padded and the file truncated to its
//     real size. Filesystems that refuse O_DIRECT get one warning and buffered mode.
//   - mmap: the file is fallocated to its full size first (a full disk is an error, not a
//     SIGBUS), then written through short-lived mappings of at most 4 MiB.
//   - buffered: pwrite.
//
// mmap and buffered push dirty pages to disk and drop them from the page cache every
// Config.Window bytes, so a copy never fills the page cache with cold data. Readers drop
// what they brought into the page cache behind them, window by window (see localfile.FileReader).
//
// Every object's CRC-32C is stored in the extended attribute user.tierd.crc32c.
package posix
