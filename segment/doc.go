// Package segment holds tierd's domain types and the Backend contract every tier implements.
//
// A Segment is one sealed broker file (a commit-log, consume-queue or index file) and Kind
// says which; the source package finds them. A Key names its copy on a tier; keys are
// computed in one place (this package) so every backend, the catalog and the CLI agree. A
// Backend stores immutable objects under keys with atomic publication (Writer.Commit),
// parallel-safe ranged reads (Reader.ReadAt), CRC-32C on every object (Stat), and one
// not-found error (ErrNotFound). Copy moves one object between backends. segmenttest is
// the conformance suite every backend runs.
package segment
