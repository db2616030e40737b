package s3

import (
	"fmt"
	"time"

	"github.com/tierd/tierd/segment"
)

// Config configures one S3 tier. It is a plain struct: the config package decodes and
// validates the YAML (keys in parentheses) and New reports any value it cannot use. Zero
// values mean the documented default.
type Config struct {
	Driver    string // (driver) "aws" (aws-sdk-go-v2) or "minio" (minio-go)
	Endpoint  string // (endpoint) URL such as "https://minio:9000"; empty: AWS's endpoint for Region
	Region    string // (region) default "us-east-1"
	Bucket    string // (bucket) must exist
	Prefix    string // (prefix) prepended to every key as "<prefix>/<key>"; slashes trimmed
	PathStyle bool   // (path_style) path-style bucket addressing (MinIO); else virtual-host

	// Credentials. All empty: the SDK's default chain (environment, shared files, IAM role).
	// They never appear in logs, errors or String.
	AccessKey    string // (access_key)
	SecretKey    string // (secret_key)
	SessionToken string // (session_token)

	CAFile string // (ca_file) PEM file of extra root CAs trusted for https endpoints

	SSE         string // (sse) "" or "none", "s3" (SSE-S3), "kms" (SSE-KMS)
	SSEKMSKeyID string // (sse_kms_key_id) key for sse: kms; empty: the bucket's default key

	// PartSize is the size of the parts WriteFrom streams from a source file (part_size):
	// 5 MiB to 5 GiB; default the pool's buffer size. Parts pushed through Write are always
	// one pool buffer. Objects up to min(PartSize, buffer size) go up in one PUT.
	PartSize int64
	// PartConcurrency is how many parts of one object are uploaded at once
	// (part_concurrency); default 4. Pushed parts in flight hold pool buffers, so the pool
	// budget bounds their memory whatever this is.
	PartConcurrency int
	// ReapAfter is the age past which Reap's caller treats an incomplete multipart upload
	// as abandoned (reap_after); default 24h. Reap itself takes the age as an argument.
	ReapAfter time.Duration
	// RateLimit caps the upload rate of the whole tier in bytes per second (rate_limit),
	// shared by all its writers; 0: unlimited.
	RateLimit int64
	// Concurrency caps the tier's concurrent Writers (Create to Commit/Abort) and ranged
	// GETs (concurrency); 0: unlimited.
	Concurrency int

	// RequestTimeout is the deadline of a request to the store (request_timeout): HEAD,
	// DELETE, creating or aborting a multipart upload, each page of a listing; transfers
	// get it plus their size at MinTransferRate (see deadlines). A request past its
	// deadline fails with ErrTimeout, and the job with it. Default 30s.
	RequestTimeout time.Duration
	// MinTransferRate is the slowest transfer rate in bytes per second that a part, PUT or
	// GET may have before it is given up (min_transfer_rate). Default 1 MiB/s, lowered
	// with rate_limit so that a fully loaded tier stays above it.
	MinTransferRate int64

	// OnUpload, if set, is called with the key and upload id right after a multipart
	// upload is created and before any part is sent, so that the caller can journal it
	// (and later abort it with AbortUpload). Not from YAML: wiring sets it.
	OnUpload func(key segment.Key, uploadID string)
}

// Defaults applied by New to zero fields.
const (
	DefaultRegion          = "us-east-1"
	DefaultPartConcurrency = 4
	DefaultReapAfter       = 24 * time.Hour
)

// S3 protocol limits.
const (
	MinPartSize   = 5 << 20 // smallest part but the last
	MaxPartSize   = 5 << 30
	MaxParts      = 10000
	MaxObjectSize = 5 << 40
)

const redacted = "[REDACTED]"

// String describes c with its secrets redacted, so that a Config can be logged or printed
// with %v or %+v.
func (c Config) String() string {
	red := func(s string) string {
		if s == "" {
			return ""
		}
		return redacted
	}
	return fmt.Sprintf("{Driver:%s Endpoint:%s Region:%s Bucket:%s Prefix:%s PathStyle:%t AccessKey:%s SecretKey:%s SessionToken:%s CAFile:%s SSE:%s SSEKMSKeyID:%s PartSize:%d PartConcurrency:%d ReapAfter:%s RateLimit:%d Concurrency:%d RequestTimeout:%s MinTransferRate:%d}",
		c.Driver, c.Endpoint, c.Region, c.Bucket, c.Prefix, c.PathStyle, red(c.AccessKey), red(c.SecretKey), red(c.SessionToken),
		c.CAFile, c.SSE, c.SSEKMSKeyID, c.PartSize, c.PartConcurrency, c.ReapAfter, c.RateLimit, c.Concurrency, c.RequestTimeout, c.MinTransferRate)
}

// GoString is String, so that %#v redacts too.
func (c Config) GoString() string { return "s3.Config" + c.String() }
