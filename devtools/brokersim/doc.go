// Package brokersim writes realistic broker stores — a RocketMQ store (commit log,
// consume queues, IndexFiles, checkpoint, abort, config) and Kafka log dirs (segments with
// offset and time indexes, checkpoints) — for demos, tests and benchmarks of tierd.
//
// Every byte is in the brokers' own formats (package record and index encode them), laid
// out and rolled as the brokers do: files named by offset or creation time, preallocated
// to full size where the broker preallocates, a BLANK filler ending each full commit-log
// file, Kafka indexes trimmed when a segment rolls and zero-tailed while active. The last
// file of each sequence stays active.
//
// A run first writes a number of messages at once (store times spaced by an interval),
// then, optionally, appends at a steady rate for a duration (continuous mode), flushing
// as it goes so another process sees the files grow. With the same options and seed, the
// initial phase writes the same bytes. Memory is bounded: messages are streamed through
// small buffers; only the active IndexFile's slot table (slots*4 bytes) is held whole.
// The Summary lists every file written and, on request, every message, so tests can check
// what a store holds.
package brokersim
