package segment

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is the one not-found error of every backend: errors.Is(err, ErrNotFound)
// holds for Open, Stat (and nothing else) of a key that has no committed object.
var ErrNotFound = errors.New("segment: not found")

// Entry describes a committed object as List returns it.
type Entry struct {
	Key     Key
	Size    int64
	ModTime time.Time
}

// Info describes a committed object as Stat returns it.
type Info struct {
	Entry
	// CRC32C is the CRC-32C (Castagnoli) of the object's bytes, computed by the Writer
	// that committed it and stored with the object.
	CRC32C uint32
}

// UnknownSize, passed to Create as the size, starts an object whose length is only known
// once it is written (package codec's compressed objects): the object is exactly the bytes
// written before Commit. Every Write but the last must then be exactly the pool's buffer
// size (whole buffers: an s3 part); a shorter Write ends the object, and a backend may
// fail any Write after it (s3 does). WriteFrom (SourceWriter) is not available for such an object.
const UnknownSize int64 = -1

// Backend is a tier: immutable objects under Keys.
//
// Concurrency: every method may be called concurrently, on the same or different keys.
// Two Writers for the same key may exist at once; the last Commit wins and readers see
// either whole object, never a mix.
//
// Durability: an object is durable and visible from the moment Commit returns nil; a
// crash before that leaves the previous object (or none) under the key. Delete is durable
// when it returns.
//
// Memory: a backend allocates no per-call buffer larger than 64 KiB; bulk bytes come from
// the process's bufpool.Pool or are streamed from the source.
type Backend interface {
	// Create starts a new object of exactly size bytes (or UnknownSize) under key. Nothing is visible
	// under key until the Writer's Commit succeeds. ctx governs every call on the Writer
	// but Abort: once ctx is done, Write and Commit fail with ctx's error.
	Create(ctx context.Context, key Key, size int64) (Writer, error)
	// Open opens the committed object under key for reading. ctx governs every call on
	// the Reader: once it is done, ReadAt fails.
	Open(ctx context.Context, key Key) (Reader, error)
	// Stat describes the committed object under key.
	Stat(ctx context.Context, key Key) (Info, error)
	// List returns every committed object whose key starts with prefix (a plain string
	// prefix; "" lists all), sorted by key. Objects being written are not listed.
	List(ctx context.Context, prefix Key) ([]Entry, error)
	// Delete removes the object under key. Deleting a missing key is not an error.
	// Readers opened before Delete may go on reading or fail, but never see other bytes.
	Delete(ctx context.Context, key Key) error
}

// Writer writes one object. A Writer ends with a successful Commit or with an Abort, after
// which it must not be used; after a failed Write or Commit the caller aborts it, and
// Abort is safe after any failure. A Writer is used by one goroutine at a time.
//
// Pool buffers: Create takes none. A caller that holds pool buffers while writing must pass
// whole buffers (len(p) == the pool's buffer size for every Write but the last); backends
// then never wait for the pool inside Write (they may take extra buffers with TryGet only),
// which keeps bufpool's deadlock rule. A caller holding no pool buffer may write any sizes;
// a backend that must stage small writes (s3: parts of at least 5 MiB) may then wait for
// a buffer.
type Writer interface {
	// Write appends p. Writing more than the size given to Create is an error. Passing
	// whole bufpool buffers is fastest: backends that need aligned memory (posix direct)
	// write them straight through and stage anything else through a small buffer.
	Write(p []byte) (int, error)
	// Commit makes the object durable and atomically visible. It fails, leaving nothing
	// visible, if fewer bytes than the size given to Create were written; the Writer
	// must then still be Aborted.
	Commit(ctx context.Context) error
	// Abort discards the object: nothing becomes visible and temporary state (files,
	// multipart uploads) is removed. It is safe to call after a failed Commit or Write.
	Abort() error
}

// SourceWriter is implemented by Writers that do better pulling bytes from a
// random-access source themselves than being pushed them through Write; the s3 backend
// uploads parts in parallel, each from an io.SectionReader of the source. Copy uses it
// when present.
type SourceWriter interface {
	Writer
	// WriteFrom writes all bytes of src from offset 0 up to the size given to Create,
	// and returns their CRC-32C. It is called at most once, instead of Write.
	WriteFrom(src io.ReaderAt) (crc uint32, err error)
}

// Checksummer is implemented by Writers that compute the CRC-32C of the bytes they are
// given, as every tierd backend does to store it. Copy then takes the CRC from the Writer
// instead of computing it a second time over the same memory (which, on the pipeline's
// critical path, costs a direct-mode copy about 15% of its throughput).
type Checksummer interface {
	// CRC32C returns the CRC-32C of everything written so far.
	CRC32C() uint32
}

// Reader reads one committed object.
//
// ReadAt may be called concurrently. It never returns fewer than len(p) bytes without an
// error; at the end of the object it returns io.EOF with the bytes there were. After
// Close, ReadAt fails with an error wrapping fs.ErrClosed and never touches released
// memory.
type Reader interface {
	io.ReaderAt
	// Size is the object's size in bytes.
	Size() int64
	// Close releases the reader. It waits for nothing: ReadAt calls in flight finish
	// safely and the reader's resources are freed after the last of them.
	Close() error
}

// GroupSyncer is implemented by backends whose Commit ends with a step several commits
// can share (posix: the fsync of the object's directory). A caller committing many small
// objects (tierd's batches of small segments) commits them through a Deferred view and
// pays that step once per directory instead of once per object.
type GroupSyncer interface {
	// Deferred returns a view of the backend whose Writers' Commit makes the object
	// visible but leaves its last durability step to the view's Sync.
	Deferred() DeferredBackend
}

// DeferredBackend is a view of a Backend (GroupSyncer.Deferred) whose Commit does not
// make objects durable by itself: an object committed through it is durable only once
// Sync has returned nil. Nothing may be recorded as stored before that. Everything but
// Commit keeps the Backend contract. Safe for concurrent use.
type DeferredBackend interface {
	Backend
	// Sync makes every object committed through the view so far durable.
	Sync(ctx context.Context) error
}
