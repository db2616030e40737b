// Package record encodes and decodes the records brokers keep in their segment files:
// RocketMQ commit-log messages (store encoding) and consume-queue entries, and Kafka
// record batches (magic 2).
//
// Decoders treat their input as untrusted: every length is checked against the bytes
// actually available before anything is sliced or allocated, checksums are verified, and
// bad input yields an error wrapping ErrCorrupt (or ErrBlank for RocketMQ's end-of-file
// filler), never a panic. Decoded byte slices (message bodies, record keys and values)
// alias the input; strings are copies.
//
// MessageReader and BatchReader stream a commit-log or Kafka .log file through one buffer
// whose size is bounded by the largest record allowed, reading with io.ReaderAt.
//
// The byte layouts are those of docs/FORMATS.md (Apache RocketMQ store/, Apache
// Kafka clients' DefaultRecordBatch and DefaultRecord).
package record
