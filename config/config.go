package config

import (
	"encoding/json"
)

// Config is tierd's whole configuration. Parse and Load return it with every default
// applied; example.yaml (Example) documents each field. Struct tags: yaml is the key,
// oneof lists an enum's values, when marks keys that exist only for one tier type or
// source layout.
type Config struct {
	Node            string   `yaml:"node" json:"node"`
	StateDir        string   `yaml:"state_dir" json:"state_dir"`
	Memory          Memory   `yaml:"memory" json:"memory"`
	Workers         int      `yaml:"workers" json:"workers"`
	ScanInterval    Duration `yaml:"scan_interval" json:"scan_interval"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"`
	Retry           Retry    `yaml:"retry" json:"retry"`
	Sources         []Source `yaml:"sources" json:"sources"`
	Tiers           []Tier   `yaml:"tiers" json:"tiers"`
	Local           Local    `yaml:"local" json:"local"`
	HTTP            HTTP     `yaml:"http" json:"http"`
	Log             Log      `yaml:"log" json:"log"`
	Pacing          Pacing   `yaml:"pacing" json:"pacing"`
	Scrub           Scrub    `yaml:"scrub" json:"scrub"`
}

// Scrub is the daemon's periodic re-read of every object (off by default).
type Scrub struct {
	Every Duration `yaml:"every" json:"every"`
	Rate  Rate     `yaml:"rate" json:"rate"`
}

// Memory sizes the one buffer pool (package bufpool).
type Memory struct {
	BufferPool Size `yaml:"buffer_pool" json:"buffer_pool"`
	BufferSize Size `yaml:"buffer_size" json:"buffer_size"`
	Lock       bool `yaml:"lock" json:"lock"`
	// Codecs is how many objects are compressed or encrypted at once, and how many frames
	// decoded at once, across the tiers that have compression or encryption (package codec).
	Codecs int `yaml:"codecs" json:"codecs"`
}

// Retry is the exponential backoff (with jitter) between attempts of a failed job.
type Retry struct {
	Initial Duration `yaml:"initial" json:"initial"`
	Max     Duration `yaml:"max" json:"max"`
}

// Layout is the on-disk layout of a broker's data directory.
type Layout string

// Layouts.
const (
	LayoutRocketMQ Layout = "rocketmq"
	LayoutKafka    Layout = "kafka"
)

// ReadMode is how source files are read without polluting the page cache.
type ReadMode string

// Read modes.
const (
	ReadFadvise ReadMode = "fadvise" // buffered reads, FADV_DONTNEED behind the reader
	ReadDirect  ReadMode = "direct"  // O_DIRECT
)

// Source is one broker data directory that tierd offloads from.
type Source struct {
	Name      string   `yaml:"name" json:"name"`
	Layout    Layout   `yaml:"layout" json:"layout" oneof:"rocketmq|kafka"`
	Path      string   `yaml:"path" json:"path"`
	SealGrace Duration `yaml:"seal_grace" json:"seal_grace"`
	ReadMode  ReadMode `yaml:"read_mode" json:"read_mode" oneof:"fadvise|direct"`
	// RocketMQ is set iff Layout is rocketmq.
	RocketMQ *RocketMQSource `yaml:",inline" when:"layout=rocketmq" json:"-"`
}

// RocketMQSource holds the broker settings tierd needs to read a RocketMQ store: its file
// sizes are not recorded in the files themselves.
type RocketMQSource struct {
	CommitLogFileSize    Size `yaml:"commitlog_file_size" json:"commitlog_file_size"`
	ConsumeQueueFileSize Size `yaml:"consumequeue_file_size" json:"consumequeue_file_size"`
	IndexHashSlots       int  `yaml:"index_hash_slots" json:"index_hash_slots"`
	IndexItems           int  `yaml:"index_items" json:"index_items"`
}

// TierType is the kind of storage a tier writes to.
type TierType string

// Tier types.
const (
	TierPosix TierType = "posix"
	TierS3    TierType = "s3"
)

// Tier is one place segments are offloaded to, with its own policy.
type Tier struct {
	Name         string   `yaml:"name" json:"name"`
	Type         TierType `yaml:"type" json:"type" oneof:"posix|s3"`
	OffloadAfter Duration `yaml:"offload_after" json:"offload_after"`
	RetainFor    Duration `yaml:"retain_for" json:"retain_for"`
	// SupersededRetainFor is how long an old version of a segment (one the broker
	// rewrote after tierd offloaded it, e.g. Kafka's log cleaner) stays on this tier
	// once the tier holds a verified copy of a newer version.
	SupersededRetainFor Duration `yaml:"superseded_retain_for" json:"superseded_retain_for"`
	MaxBytes            Size     `yaml:"max_bytes" json:"max_bytes"`
	RateLimit           Rate     `yaml:"rate_limit" json:"rate_limit"`
	Concurrency         int      `yaml:"concurrency" json:"concurrency"`
	// Compression and Encryption of new objects (package codec; its FORMAT.md).
	Compression Compression `yaml:"compression" json:"compression" oneof:"none|zstd"`
	Encryption  Encryption  `yaml:"encryption" json:"encryption"`
	// Posix is set iff Type is posix; S3 iff Type is s3.
	Posix *PosixTier `yaml:",inline" when:"type=posix" json:"-"`
	S3    *S3Tier    `yaml:",inline" when:"type=s3" json:"-"`
}

// Compression is how a tier compresses objects.
type Compression string

// Compressions.
const (
	CompressionNone Compression = "none"
	CompressionZstd Compression = "zstd"
)

// Encryption is a tier's client-side encryption.
type Encryption struct {
	// KeyFile holds the key-encryption keys, one "ID BASE64" a line; "" = no encryption.
	KeyFile string `yaml:"key_file" json:"key_file"`
}

// Codec reports whether the tier compresses or encrypts, so its backend is wrapped by
// package codec.
func (t *Tier) Codec() bool {
	return t.Compression == CompressionZstd || t.Encryption.KeyFile != ""
}

// WriteMode is how a posix tier writes files.
type WriteMode string

// Write modes.
const (
	WriteDirect   WriteMode = "direct"
	WriteMmap     WriteMode = "mmap"
	WriteBuffered WriteMode = "buffered"
)

// PosixTier is a tier on a filesystem path.
type PosixTier struct {
	Path      string    `yaml:"path" json:"path"`
	WriteMode WriteMode `yaml:"write_mode" json:"write_mode" oneof:"direct|mmap|buffered"`
	MaxUsed   Percent   `yaml:"max_used" json:"max_used"`
}

// Driver is the client library an s3 tier uses.
type Driver string

// Drivers.
const (
	DriverAWS   Driver = "aws"   // aws-sdk-go-v2
	DriverMinIO Driver = "minio" // minio-go
)

// SSE is an s3 tier's server-side encryption.
type SSE string

// Server-side encryption modes.
const (
	SSENone SSE = "none"
	SSES3   SSE = "s3"  // SSE-S3 (AES256)
	SSEKMS  SSE = "kms" // SSE-KMS with SSEKMSKeyID
)

// S3Tier is a tier on S3-compatible object storage.
type S3Tier struct {
	Driver   Driver `yaml:"driver" json:"driver" oneof:"aws|minio"`
	Endpoint string `yaml:"endpoint" json:"endpoint"`
	Region   string `yaml:"region" json:"region"`
	Bucket   string `yaml:"bucket" json:"bucket"`
	Prefix   string `yaml:"prefix" json:"prefix"`
	// PathStyle is never nil after Parse: unset, it is true exactly when Endpoint is set.
	PathStyle       *bool    `yaml:"path_style" json:"path_style"`
	AccessKey       Secret   `yaml:"access_key" json:"access_key"`
	SecretKey       Secret   `yaml:"secret_key" json:"secret_key"`
	SessionToken    Secret   `yaml:"session_token" json:"session_token"`
	CAFile          string   `yaml:"ca_file" json:"ca_file"`
	SSE             SSE      `yaml:"sse" json:"sse" oneof:"none|s3|kms"`
	SSEKMSKeyID     string   `yaml:"sse_kms_key_id" json:"sse_kms_key_id"`
	PartSize        Size     `yaml:"part_size" json:"part_size"`
	PartConcurrency int      `yaml:"part_concurrency" json:"part_concurrency"`
	ReapAfter       Duration `yaml:"reap_after" json:"reap_after"`
	// RequestTimeout is the deadline of one request to the store; transfers add their
	// size at MinTransferRate.
	RequestTimeout  Duration `yaml:"request_timeout" json:"request_timeout"`
	MinTransferRate Rate     `yaml:"min_transfer_rate" json:"min_transfer_rate"`
}

// UsePathStyle reports whether requests address the bucket in the path rather than the
// host name: PathStyle if set, else whether a custom endpoint is configured.
func (s *S3Tier) UsePathStyle() bool {
	if s.PathStyle != nil {
		return *s.PathStyle
	}
	return s.Endpoint != ""
}

// Local is the policy for the broker's own sealed files.
type Local struct {
	DeleteAfter Duration `yaml:"delete_after" json:"delete_after"`
}

// HTTP is the metrics and status endpoint.
type HTTP struct {
	Listen string `yaml:"listen" json:"listen"`
}

// Log configures the zap logger.
type Log struct {
	Level  string `yaml:"level" json:"level" oneof:"debug|info|warn|error"`
	Format string `yaml:"format" json:"format" oneof:"auto|json|console"`
}

// Pacing slows offloading down while the broker's disk is busy.
type Pacing struct {
	DiskBusy Percent `yaml:"disk_busy" json:"disk_busy"`
	Device   string  `yaml:"device" json:"device"`
}

// MarshalJSON renders t flat, with its type's settings beside the common ones, as in YAML.
func (t Tier) MarshalJSON() ([]byte, error) {
	type plain Tier // drops this method
	return json.Marshal(struct {
		plain
		*PosixTier
		*S3Tier
	}{plain(t), t.Posix, t.S3})
}

// MarshalJSON renders s flat, with its layout's settings beside the common ones, as in YAML.
func (s Source) MarshalJSON() ([]byte, error) {
	type plain Source // drops this method
	return json.Marshal(struct {
		plain
		*RocketMQSource
	}{plain(s), s.RocketMQ})
}

// Source returns the source named name, or nil.
func (c *Config) Source(name string) *Source {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return &c.Sources[i]
		}
	}
	return nil
}

// Tier returns the tier named name, or nil.
func (c *Config) Tier(name string) *Tier {
	for i := range c.Tiers {
		if c.Tiers[i].Name == name {
			return &c.Tiers[i]
		}
	}
	return nil
}
