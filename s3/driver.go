package s3

import (
	"context"
	"errors"
	"io"
	"time"
)

// driver is the protocol part of the backend: one implementation per SDK, each a thin
// translation of these calls. Keys here are full object keys (prefix included). Bodies
// are always partBodies of exact length, sent with an unsigned payload (no SHA-256 pass)
// so that each is read once: parts with their CRC-32C as a trailing checksum, single PUTs
// (whose bytes are in memory and whose CRC is known) with it as a header.
type driver interface {
	// put uploads a whole object in one PUT; crc is the CRC-32C of its bytes. With a
	// condition it fails with errChanged when the condition does not hold; it returns the
	// new object's ETag.
	put(ctx context.Context, key string, body *partBody, crc uint32, cond putCond) (etag string, err error)
	// createMultipart starts a multipart upload whose object carries a FULL_OBJECT
	// CRC-32C checksum.
	createMultipart(ctx context.Context, key string) (uploadID string, err error)
	// uploadPart uploads part num (from 1) and returns its ETag.
	uploadPart(ctx context.Context, key, uploadID string, num int, body *partBody) (etag string, err error)
	// complete assembles parts (in order) into the object; crc is the CRC-32C of the
	// whole object, which the server checks against the parts' checksums.
	complete(ctx context.Context, key, uploadID string, parts []part, crc uint32, size int64) error
	abort(ctx context.Context, key, uploadID string) error
	// head describes the object; errNotFound when there is none.
	head(ctx context.Context, key string) (objectInfo, error)
	// getRange returns n bytes at off of the object, provided its ETag is still etag
	// (errChanged otherwise).
	getRange(ctx context.Context, key, etag string, off, n int64) (io.ReadCloser, error)
	// list calls fn for every object whose key starts with prefix, in key order.
	list(ctx context.Context, prefix string, fn func(objectInfo) error) error
	delete(ctx context.Context, key string) error
	// listUploads calls fn for every incomplete multipart upload whose key starts with
	// prefix (MinIO: "" lists the uploads it knows of since it started, a full object key
	// lists that object's uploads; other prefixes list nothing).
	listUploads(ctx context.Context, prefix string, fn func(upload) error) error
	// classify tells which of the errKinds err is.
	classify(err error) errKind
}

// putCond makes a PUT conditional (S3 conditional writes): ifNoneMatch creates the
// object only if there is none; ifMatch replaces it only if its ETag is still that.
type putCond struct {
	ifNoneMatch bool
	ifMatch     string
}

type part struct {
	num  int
	etag string
	crc  uint32
	size int64
}

type objectInfo struct {
	key     string
	size    int64
	modTime time.Time
	etag    string
	// checksum is the object's CRC-32C checksum header (base64), and checksumType its
	// x-amz-checksum-type ("FULL_OBJECT", "COMPOSITE" or "" when the server says nothing).
	checksum     string
	checksumType string
}

type upload struct {
	key       string
	id        string
	initiated time.Time
}

type errKind int

const (
	errOther    errKind = iota
	errNotFound         // no such key (or bucket)
	errNoUpload         // no such multipart upload
	errChanged          // a precondition (If-Match) failed
)

// errObjectChanged is returned by ReadAt when the object was replaced or deleted since
// Open: the reader never returns bytes of another object.
var errObjectChanged = errors.New("object changed since it was opened")
