package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/source"
)

// Source is one broker data directory.
type Source struct {
	Name   string
	Root   string
	Layout source.Layout
	// SealGrace is how old a closed file must be before it counts as sealed.
	SealGrace time.Duration
	// ReadDirect reads the source's files with O_DIRECT (read_mode: direct) instead of
	// through the page cache with drop-behind (read_mode: fadvise). Compaction reads an
	// IndexFile's items through the page cache either way (its later passes read them
	// again) and drops what it brought in when it is done.
	ReadDirect bool
	// IndexSlots and IndexItems are the RocketMQ broker's maxHashSlotNum and maxIndexNum
	// (index_hash_slots, index_items), which IndexFiles do not record and compaction
	// needs. 0 means the broker's default.
	IndexSlots, IndexItems int
}

// Tier is one destination and its policy.
type Tier struct {
	Name    string
	Type    string // "posix" or "s3", for status output
	Backend segment.Backend
	// OffloadAfter is how long after its last write a sealed segment becomes due here.
	OffloadAfter time.Duration
	// Concurrency caps the jobs writing to this tier at once (>= 1).
	Concurrency int
	// MaxUsed pauses the tier while its filesystem is at least this full (0..1; 0 = no
	// guard). Needs Usage.
	MaxUsed float64
	// Usage reports the tier filesystem's used and total bytes; nil for object stores.
	Usage func() (used, total uint64, err error)
	// Cleanup removes leftovers of interrupted writes older than the given age (posix
	// temp files, S3 incomplete multipart uploads) and says how many. May be nil.
	Cleanup func(ctx context.Context, olderThan time.Duration) (int, error)
	// CleanupAge is the age passed to Cleanup at start (e.g. the S3 tier's reap_after).
	// When it is above 0, a running daemon also calls Cleanup with it every few scans, so
	// Cleanup must then leave alone what jobs in flight are writing (anything younger
	// than CleanupAge); posix temp files (age 0: of a dead process) are cleaned at start
	// only.
	CleanupAge time.Duration
	// AbortUpload aborts an incomplete upload a crashed job journaled (S3 multipart
	// upload id); with id "" (the job died before journaling one), every incomplete
	// upload of key. nil where writes have no such state.
	AbortUpload func(ctx context.Context, key segment.Key, uploadID string) error
	// RetainFor deletes objects from this tier once their segment is this old (0 = keep
	// forever), but never the last copy of a segment another tier still wants.
	RetainFor time.Duration
	// MaxBytes caps this node's bytes on the tier (0 = no cap): the oldest objects go
	// first, under the same last-copy rule.
	MaxBytes int64
	// SupersededRetainFor is how long an older version of a segment (the broker rewrote
	// the file after it was offloaded) stays here once this tier holds a verified copy of
	// a newer version; 0 = delete it then; < 0 = keep it (retain_for still applies).
	SupersededRetainFor time.Duration
	// Fence is the node's lease on a tier shared by many sidecars (s3.Lease); nil for
	// tiers no other installation can write to under this node's name.
	Fence Fence
}

// Fence is a node's fencing lease on a tier: only its holder may offload.
type Fence interface {
	// Acquire takes the lease, renews it if held, or takes over an expired one; it fails
	// while another installation holds it.
	Acquire(ctx context.Context) error
	// Renew extends the lease; it fails when another installation took it over.
	Renew(ctx context.Context) error
	// Release gives the lease up if this installation holds it.
	Release(ctx context.Context) error
	// TTL is how long the lease lasts without renewal.
	TTL() time.Duration
}

// Pacer slows reads of the broker's disk (see internal/pacing). WaitN blocks until n
// more bytes may be read.
type Pacer interface {
	WaitN(ctx context.Context, n int) error
}

// Config is everything the daemon needs, already built (cmd/tierd wires it from YAML).
type Config struct {
	Node    string
	Sources []Source
	Tiers   []Tier
	Catalog *catalog.Catalog
	Pool    *bufpool.Pool
	// Workers caps concurrent jobs over all tiers.
	Workers int
	// ScanInterval is the time between scans of the sources.
	ScanInterval time.Duration
	// ShutdownTimeout bounds how long in-flight jobs may run after a stop is asked for;
	// then they are aborted.
	ShutdownTimeout time.Duration
	Backoff         Backoff
	// Attempts is how many times a job is tried in a row before it waits for a later
	// pass (with backoff). Default 3.
	Attempts int
	// LocalDelete lets tierd delete sealed local segments (off by default: the broker owns
	// its files). A segment is deleted LocalDeleteAfter after its last write (0: as soon
	// as it can be), once every tier that must hold it (those whose OffloadAfter is at
	// most LocalDeleteAfter; the first tier if none) has a copy whose size and CRC-32C, and
	// the local file's, are re-checked just before. A Kafka segment's files (.log, .index,
	// .timeindex, .txnindex, .snapshot) are deleted together or not at all.
	LocalDelete      bool
	LocalDeleteAfter time.Duration
	// Scrub, if Every > 0, re-reads every object once per Every (see ScrubPass).
	Scrub Scrub
	// Pacer, if set, paces reads of local files (adaptive pacing on the broker's disk).
	Pacer Pacer
	// Listen is the HTTP address for /healthz, /readyz, /status and /metrics ("" = none).
	Listen  string
	Version string
	Log     *zap.Logger
	// Now is the clock (tests move it); default time.Now.
	Now func() time.Time
}

func (c *Config) check() error {
	var errs []error
	if c.Node == "" {
		errs = append(errs, errors.New("no node name"))
	}
	if len(c.Sources) == 0 {
		errs = append(errs, errors.New("no sources"))
	}
	if len(c.Tiers) == 0 {
		errs = append(errs, errors.New("no tiers"))
	}
	if c.Catalog == nil || c.Pool == nil {
		errs = append(errs, errors.New("BUG: daemon config without catalog or pool"))
	}
	seen := map[string]bool{}
	for _, t := range c.Tiers {
		if seen[t.Name] {
			errs = append(errs, fmt.Errorf("tier %q defined twice", t.Name))
		}
		seen[t.Name] = true
		if t.Backend == nil {
			errs = append(errs, fmt.Errorf("tier %q has no backend", t.Name))
		}
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.ScanInterval <= 0 {
		c.ScanInterval = 30 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Backoff.Initial <= 0 {
		c.Backoff.Initial = time.Second
	}
	if c.Backoff.Max < c.Backoff.Initial {
		c.Backoff.Max = max(c.Backoff.Initial, 5*time.Minute)
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	for i := range c.Tiers {
		if c.Tiers[i].Concurrency <= 0 {
			c.Tiers[i].Concurrency = 2
		}
	}
	return errors.Join(errs...)
}
