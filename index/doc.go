// Package index reads and writes brokers' index files and (in its own files) tierd's
// compacted index format.
//
// Broker formats (layouts in docs/FORMATS.md):
//   - RocketMQ IndexFile (indexfile.go): OpenIndexFile reads one on any io.ReaderAt in
//     bounded memory: lookups walk a hash chain item by item, and SlotHeads/Items stream
//     the file in chunks of at most 64 KiB (or a caller's buffer), never the whole file.
//     IndexFileWriter builds one the way the broker's IndexFile.putKey does.
//   - Kafka offset (.index) and time (.timeindex) indexes (kafka.go): scanners that stop
//     at the zero-filled preallocated tail and check monotonicity, and writers.
//
// tierd's compacted index ("tix", tix.go and tix_reader.go; byte layout in FORMAT.md):
// the header codec, bucketing (TixBucket) and record codec a writer needs, and Tix, which
// answers a key lookup on any io.ReaderAt in at most two reads and verifies what it reads.
//
// Readers treat files and objects as untrusted: a size, count or chain that does not fit the layout
// is an error naming what was wrong and where, never a panic or an endless walk.
package index
