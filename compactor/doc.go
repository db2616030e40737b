// Package compactor turns sealed index files into what tierd stores on a tier: a RocketMQ
// IndexFile into tierd's compacted index format (index/FORMAT.md), a Kafka offset or time
// index into its used entries without the zero-filled preallocated tail.
//
// Compaction is a stream with memory bounded independently of the input size: a counting
// pass over the IndexFile learns the exact output size, then the output is produced in
// windows of pool buffers, each filled by one more pass over the IndexFile's items (from
// the page cache when the source keeps them there) and written straight into a
// segment.Writer as whole pool buffers. No full-size temporary exists, in memory or on
// disk; a smaller pool means smaller windows and more passes. Every pass reads ahead on a
// goroutine of its own (which also computes the CRC-32C of what it read), so reading
// overlaps the work on what was read. A large window is filled in two sequential steps
// (partition.go): the pass partitions its records, write-combined, into cache-sized runs
// of buckets in the window itself, then each run is permuted into place in the cache. A
// compaction holds one pool buffer for the per-bucket state (16 bytes a bucket), its input
// reads and partitioning state, one or more for the output window (Options.MaxBuffers),
// possibly one for the window's partition map (a byte per record), and a few KiB of heap.
//
// Rehydrate goes the other way: from a compacted index back to a RocketMQ IndexFile that
// answers every lookup as the original did (index/FORMAT.md, "Rehydrating"), written
// front to back from pool buffers, the slot table and a bounded histogram.
//
// Input is untrusted: an IndexFile that breaks its layout fails with an error wrapping
// index.ErrCorruptIndex, a source that changes between passes with one wrapping
// segment.ErrSourceChanged; nothing panics, and every buffer goes back to the pool.
package compactor
