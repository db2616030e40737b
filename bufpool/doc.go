// Package bufpool is the one bounded pool of I/O buffers in a tierd process.
//
// Every bulk byte tierd moves passes through a buffer from this pool or is streamed
// straight from a source file, so the process's I/O memory is bounded by construction:
// the pool's byte budget is reserved once at start (outside the Go heap, page-aligned)
// and never grows. Work that finds no free buffer waits for one instead of allocating.
//
// There is no per-goroutine cache and no sync.Pool: a buffer that is not in use is in the
// pool's free list and nowhere else, so Stats().InUse is exact and Check can prove that
// every buffer came back.
package bufpool
