package s3

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/internal/throttle"
	"github.com/tierd/tierd/segment"
)

// Backend is a tier on an S3 bucket. Keys are stored as "<prefix>/<key>". It implements
// segment.Backend and segment.SourceWriter (through its Writers); see the package doc for
// what it promises beyond that contract. Safe for concurrent use.
type Backend struct {
	d        driver
	prefix   string // "" or the tier prefix with a trailing slash
	node     string
	pool     *bufpool.Pool
	log      *zap.Logger
	partSize int64 // parts WriteFrom streams from a source
	partConc int
	putMax   int64 // the largest object sent in one PUT
	rate     *throttle.RateLimiter
	gate     *Gate
	onUpload func(segment.Key, string)

	// read counts the bytes request bodies read (from a source file or a buffer), so
	// tests and benchmarks can check that SDKs read every byte once.
	read atomic.Int64
	// readRetries counts the GETs that resumed a cut read (Reader.ReadAt).
	readRetries atomic.Int64
	// settled counts the commits whose failure committedAnyway found was only a lost reply.
	settled atomic.Int64

	mu      sync.Mutex
	orphans map[upload]struct{} // multipart uploads whose abort failed; Reap retries them
	live    map[string]struct{} // upload ids of this Backend's open Writers; Reap leaves them alone
	unsure  map[string]struct{} // object names whose CreateMultipartUpload failed: the server may have created it
	// recent are the object names a multipart upload was asked for since the last Reap
	// (recorded before the request), and writing counts the open Writers per name: an
	// SDK that retries a creation whose reply was lost makes a second upload and never
	// tells of the first, so Reap lists each recent name's uploads and aborts those no
	// Writer owns, whatever their age.
	recent  map[string]struct{}
	writing map[string]int
}

var _ segment.Backend = (*Backend)(nil)

// New returns the tier described by cfg for node (the first component of the keys it
// reaps). It contacts no server; Check does. Bulk bytes of pushed writes come from pool,
// whose buffers must be at least MinPartSize. log is used as given (the caller names it).
func New(ctx context.Context, cfg Config, node string, pool *bufpool.Pool, log *zap.Logger) (*Backend, error) {
	if pool == nil || log == nil {
		return nil, errors.New("s3: New needs a pool and a logger")
	}
	if node == "" || strings.Contains(node, "/") || segment.Key(node).Valid() != nil {
		return nil, fmt.Errorf("s3: node %q is not a single key component", node)
	}
	bs := int64(pool.BufferSize())
	if bs < MinPartSize {
		return nil, fmt.Errorf("s3: pool buffers of %d bytes are smaller than S3's minimum part of %d", bs, MinPartSize)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("s3: no bucket")
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = bs
	}
	if cfg.PartSize < MinPartSize || cfg.PartSize > MaxPartSize {
		return nil, fmt.Errorf("s3: part_size %d is outside [%d, %d]", cfg.PartSize, MinPartSize, MaxPartSize)
	}
	if cfg.PartConcurrency == 0 {
		cfg.PartConcurrency = DefaultPartConcurrency
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MinTransferRate == 0 {
		cfg.MinTransferRate = DefaultMinTransferRate
		if cfg.RateLimit > 0 {
			// Every transfer of the tier shares rate_limit: keep the deadline of one well
			// above what the limit allows it when all of them run at once.
			cfg.MinTransferRate = max(min(cfg.MinTransferRate, cfg.RateLimit/int64(2*max(cfg.Concurrency, 1)*max(cfg.PartConcurrency, 1))), 1)
		}
	}
	if cfg.RequestTimeout < 0 || cfg.MinTransferRate < 0 {
		return nil, fmt.Errorf("s3: request_timeout %s and min_transfer_rate %d must not be negative", cfg.RequestTimeout, cfg.MinTransferRate)
	}
	if cfg.PartConcurrency < 0 || cfg.Concurrency < 0 || cfg.RateLimit < 0 {
		return nil, fmt.Errorf("s3: part_concurrency %d, concurrency %d and rate_limit %d must not be negative",
			cfg.PartConcurrency, cfg.Concurrency, cfg.RateLimit)
	}
	switch cfg.SSE {
	case "", "none":
		cfg.SSE = ""
		if cfg.SSEKMSKeyID != "" {
			return nil, errors.New("s3: sse_kms_key_id is set but sse is not kms")
		}
	case "s3":
		if cfg.SSEKMSKeyID != "" {
			return nil, errors.New("s3: sse_kms_key_id is set but sse is not kms")
		}
	case "kms":
	default:
		return nil, fmt.Errorf("s3: sse %q is not one of none, s3, kms", cfg.SSE)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		if err := segment.Key(prefix).Valid(); err != nil {
			return nil, fmt.Errorf("s3: prefix: %w", err)
		}
		prefix += "/"
	}
	roots, err := loadRoots(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	// Keep a connection for every part that can be in flight, so that none is closed and
	// redialled between parts (with no writer limit, assume 16 writers).
	writers := cfg.Concurrency
	if writers == 0 {
		writers = 16
	}
	tc := transportConfig{roots: roots, conns: cfg.PartConcurrency * writers}
	b := &Backend{
		prefix: prefix, node: node, pool: pool, log: log,
		partSize: cfg.PartSize, partConc: cfg.PartConcurrency, putMax: min(cfg.PartSize, bs),
		rate: throttle.NewRateLimiter(cfg.RateLimit), gate: NewGate(cfg.Concurrency), onUpload: cfg.OnUpload,
		orphans: map[upload]struct{}{}, live: map[string]struct{}{}, unsure: map[string]struct{}{},
		recent: map[string]struct{}{}, writing: map[string]int{},
	}
	switch cfg.Driver {
	case "aws":
		b.d, err = newAWSDriver(ctx, cfg, tc)
	case "minio":
		b.d, err = newMinioDriver(cfg, tc)
	default:
		return nil, fmt.Errorf("s3: driver %q is not one of aws, minio", cfg.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("s3: %s driver: %w", cfg.Driver, err)
	}
	b.d = deadlines{d: b.d, req: cfg.RequestTimeout, rate: cfg.MinTransferRate}
	b.log = b.log.With(zap.String("driver", cfg.Driver), zap.String("endpoint", cfg.Endpoint),
		zap.String("bucket", cfg.Bucket), zap.String("prefix", prefix))
	b.log.Debug("tier ready", zap.Int64("part_size", cfg.PartSize), zap.Int("part_concurrency", cfg.PartConcurrency),
		zap.Int64("rate_limit", cfg.RateLimit), zap.Int("concurrency", cfg.Concurrency), zap.String("sse", cfg.SSE))
	return b, nil
}

// ReadRetries returns how many times a read of this Backend was resumed after a GET
// failed or its body was cut.
func (b *Backend) ReadRetries() int64 { return b.readRetries.Load() }

// CommitsSettled returns how many failed commits were found done by looking (see
// Writer.Commit): the store committed the object, its reply was lost.
func (b *Backend) CommitsSettled() int64 { return b.settled.Load() }

// Check lists at most one object to prove that the endpoint, credentials and bucket work.
func (b *Backend) Check(ctx context.Context) error {
	errStop := errors.New("stop")
	err := b.d.list(ctx, b.prefix, func(objectInfo) error { return errStop })
	if err != nil && !errors.Is(err, errStop) {
		return fmt.Errorf("check s3 tier: %w", err)
	}
	return nil
}

func (b *Backend) object(k segment.Key) string { return b.prefix + string(k) }

// mapErr adds segment.ErrNotFound to a driver's not-found error.
func (b *Backend) mapErr(err error) error {
	if b.d.classify(err) == errNotFound {
		return fmt.Errorf("%w: %w", segment.ErrNotFound, err)
	}
	return err
}

// Open implements segment.Backend. Each ReadAt is one ranged GET, conditional on the
// ETag seen here, so a reader never returns bytes of a newer object under the key.
func (b *Backend) Open(ctx context.Context, key segment.Key) (segment.Reader, error) {
	if err := key.Valid(); err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	o, err := b.d.head(ctx, b.object(key))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, b.mapErr(err))
	}
	return &Reader{b: b, ctx: ctx, key: key, obj: b.object(key), size: o.size, etag: o.etag}, nil
}

// Stat implements segment.Backend. The CRC-32C is the object's full-object checksum;
// an object without one (written by another tool) is read once to compute it.
func (b *Backend) Stat(ctx context.Context, key segment.Key) (segment.Info, error) {
	if err := key.Valid(); err != nil {
		return segment.Info{}, fmt.Errorf("stat %s: %w", key, err)
	}
	o, err := b.d.head(ctx, b.object(key))
	if err != nil {
		return segment.Info{}, fmt.Errorf("stat %s: %w", key, b.mapErr(err))
	}
	info := segment.Info{Entry: segment.Entry{Key: key, Size: o.size, ModTime: o.modTime}}
	switch {
	case o.size == 0:
		info.CRC32C = 0
	case o.checksum != "" && o.checksumType != "COMPOSITE" && !strings.Contains(o.checksum, "-"):
		if info.CRC32C, err = decodeCRC(o.checksum); err != nil {
			return segment.Info{}, fmt.Errorf("stat %s: %w", key, err)
		}
	default:
		b.log.Warn("object has no full-object CRC-32C; computing it by reading the object",
			zap.String("key", string(key)), zap.Int64("size", o.size))
		if info.CRC32C, err = b.readCRC(ctx, b.object(key), o); err != nil {
			return segment.Info{}, fmt.Errorf("stat %s: compute CRC-32C of an object stored without one: %w", key, err)
		}
	}
	return info, nil
}

// readCRC streams the whole object through a 64 KiB buffer into a CRC-32C.
func (b *Backend) readCRC(ctx context.Context, obj string, o objectInfo) (uint32, error) {
	body, err := b.d.getRange(ctx, obj, o.etag, 0, o.size)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	h := crc32.New(segment.Castagnoli)
	n, err := io.CopyBuffer(h, body, make([]byte, 64<<10))
	if err != nil {
		return 0, err
	}
	if n != o.size {
		return 0, fmt.Errorf("read %d of %d bytes: %w", n, o.size, io.ErrUnexpectedEOF)
	}
	return h.Sum32(), nil
}

// List implements segment.Backend. Objects under the tier prefix whose names are not
// valid keys (put there by other tools) are skipped.
func (b *Backend) List(ctx context.Context, prefix segment.Key) ([]segment.Entry, error) {
	var es []segment.Entry
	err := b.d.list(ctx, b.prefix+string(prefix), func(o objectInfo) error {
		k, ok := strings.CutPrefix(o.key, b.prefix)
		if !ok || segment.Key(k).Valid() != nil {
			b.log.Debug("list: skipping an object that is not a tierd key", zap.String("object", o.key))
			return nil
		}
		es = append(es, segment.Entry{Key: segment.Key(k), Size: o.size, ModTime: o.modTime})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	slices.SortFunc(es, func(a, b segment.Entry) int { return strings.Compare(string(a.Key), string(b.Key)) })
	return es, nil
}

// Delete implements segment.Backend.
func (b *Backend) Delete(ctx context.Context, key segment.Key) error {
	if err := key.Valid(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := b.d.delete(ctx, b.object(key)); err != nil && b.d.classify(err) != errNotFound {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// AbortUpload aborts the multipart upload uploadID of key, as journaled from OnUpload or
// Writer.UploadID by an earlier run; with uploadID "" (the run died before it journaled
// the id, or before the upload was created), every upload of key no open Writer owns. An
// upload that no longer exists is not an error.
func (b *Backend) AbortUpload(ctx context.Context, key segment.Key, uploadID string) error {
	if err := key.Valid(); err != nil {
		return fmt.Errorf("abort upload of %s: %w", key, err)
	}
	if uploadID == "" {
		_, err := b.abortAllOf(ctx, b.object(key))
		return err
	}
	if err := b.d.abort(ctx, b.object(key), uploadID); err != nil {
		if k := b.d.classify(err); k != errNoUpload && k != errNotFound {
			return fmt.Errorf("abort upload %s of %s: %w", uploadID, key, err)
		}
	}
	return nil
}

// abortAllOf aborts every incomplete upload of the object obj that no open Writer of this
// Backend owns, listing them by the object's whole name (which MinIO answers even for
// uploads it does not list bucket-wide). It returns how many it aborted.
func (b *Backend) abortAllOf(ctx context.Context, obj string) (int, error) {
	var found []upload
	err := b.d.listUploads(ctx, obj, func(u upload) error {
		if u.key == obj && !b.isLive(u.id) {
			found = append(found, u)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list multipart uploads of %s: %w", obj, err)
	}
	n := 0
	for _, u := range found {
		if err := b.d.abort(ctx, u.key, u.id); err != nil && b.d.classify(err) != errNoUpload {
			return n, fmt.Errorf("abort upload %s of %s: %w", u.id, u.key, err)
		}
		n++
		b.log.Info("aborted an upload of an interrupted write", zap.String("object", u.key), zap.String("upload_id", u.id))
	}
	return n, nil
}

// settleUnsure aborts the uploads of an object whose upload creation failed in this
// process (see Backend.unsure), and forgets the object once that worked.
func (b *Backend) settleUnsure(ctx context.Context, obj string) (int, error) {
	n, err := b.abortAllOf(ctx, obj)
	if err == nil {
		b.mu.Lock()
		delete(b.unsure, obj)
		b.mu.Unlock()
	}
	return n, err
}

// isLive reports whether upload id belongs to an open Writer of this Backend.
func (b *Backend) isLive(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.live[id]
	return ok
}

// abortTimeout bounds the abort of a Writer's upload (Abort has no context).
const abortTimeout = 30 * time.Second

// abandon aborts an upload on behalf of a Writer; when that fails the upload is
// remembered for Reap.
func (b *Backend) abandon(ctx context.Context, u upload) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	err := b.d.abort(ctx, u.key, u.id)
	if err == nil || b.d.classify(err) == errNoUpload {
		return nil
	}
	b.mu.Lock()
	b.orphans[u] = struct{}{}
	b.mu.Unlock()
	b.log.Warn("abort of a multipart upload failed; Reap will retry it", zap.String("object", u.key), zap.String("upload_id", u.id), zap.Error(err))
	return fmt.Errorf("abort upload %s of %s (Reap will retry): %w", u.id, u.key, err)
}
