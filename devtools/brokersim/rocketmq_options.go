package brokersim

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/record"
)

// RocketMQOptions configure a RocketMQ store. Zero values take the defaults noted.
type RocketMQOptions struct {
	Dir           string // store root (storePathRootDir); must be missing or empty
	Topics        int    // default 3
	Queues        int    // queues per topic; default 4
	Messages      int64  // written at once, before the continuous phase
	CommitLogSize int64  // mappedFileSizeCommitLog; default 1 GiB
	CQSize        int64  // consume-queue file size, a multiple of 20; default 6,000,000
	IndexSlots    int    // maxHashSlotNum; default 5,000,000
	IndexItems    int    // maxIndexNum; default 20,000,000
	BodySize      int    // message body bytes; default 512, at most 4 MiB
	// TextBodies makes bodies JSON log lines (compressible like real payloads) instead of
	// random bytes.
	TextBodies bool
	Seed       uint64 // content seed; same seed and options, same initial bytes
	// Start is the store time of the first message. Default: Messages*Interval before now,
	// so the initial phase ends about now.
	Start time.Time
	// Interval is the store-time step between messages of the initial phase; default 1ms.
	Interval time.Duration
	// Rate (messages/s) starts a continuous phase after the initial one; 0: none.
	Rate float64
	// Duration bounds the continuous phase; 0: until the context ends.
	Duration time.Duration
	// FlushInterval is how often the continuous phase writes its buffers out; default 100ms.
	FlushInterval time.Duration
	// PreallocateNext also creates the next commit-log file, empty and full-size, whenever
	// a commit-log file is created, as the broker's AllocateMappedFileService does: the
	// last commit-log file is then an empty one and the active file is the one before it.
	PreallocateNext bool
	TopicPrefix     string         // topics are TopicPrefix0, TopicPrefix1, ...; default "SimTopic"
	Location        *time.Location // for IndexFile names; default time.Local
	KeepMessages    bool           // list every message in the Summary
	// MaxOpenFiles bounds the consume-queue files held open at once (a queue has one
	// active file): the others are closed and reopened at their next write, so 10,000
	// queues fit an open-file limit of a few thousand. Default DefaultMaxOpenFiles.
	MaxOpenFiles int
	Logger       *zap.Logger // default: no logging
}

// maxPropertiesLen bounds the properties brokersim writes (keys, id, tags, WAIT).
const maxPropertiesLen = 512

func (o RocketMQOptions) withDefaults() RocketMQOptions {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def64 := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Topics, 3)
	def(&o.Queues, 4)
	def64(&o.CommitLogSize, 1<<30)
	def64(&o.CQSize, 300_000*record.CQEntrySize)
	def(&o.IndexSlots, index.DefaultIndexSlots)
	def(&o.IndexItems, index.DefaultIndexItems)
	def(&o.BodySize, 512)
	if o.Interval == 0 {
		o.Interval = time.Millisecond
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = "SimTopic"
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Start.IsZero() {
		o.Start = time.Now().Add(-time.Duration(o.Messages) * o.Interval)
	}
	return o
}

// Validate reports every problem with the options (after defaults), one per line.
func (o RocketMQOptions) Validate() error {
	o = o.withDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if o.Dir == "" {
		bad("dir", "required")
	}
	if o.Topics < 0 || o.Topics > 10000 {
		bad("topics", "%d outside 1..10000", o.Topics)
	}
	if o.Queues < 0 || o.Queues > 1024 {
		bad("queues", "%d outside 1..1024", o.Queues)
	}
	if o.Messages < 0 {
		bad("messages", "negative (%d)", o.Messages)
	}
	if o.BodySize < 0 || o.BodySize > record.MaxMessageSize {
		bad("body-size", "%d outside 0..%d (maxMessageSize)", o.BodySize, record.MaxMessageSize)
	}
	if maxMsg := int64(o.BodySize) + record.MinMessageSize + int64(len(o.TopicPrefix)) + 8 + maxPropertiesLen; o.CommitLogSize < maxMsg+record.EndFileMinBlankLength {
		bad("commitlog-size", "%d cannot hold a message of up to %d bytes and the 8-byte BLANK", o.CommitLogSize, maxMsg)
	}
	if o.CQSize <= 0 || o.CQSize%record.CQEntrySize != 0 {
		bad("cq-size", "%d is not a positive multiple of %d", o.CQSize, record.CQEntrySize)
	}
	if o.IndexSlots <= 0 || o.IndexSlots > 1<<28 {
		bad("index-slots", "%d outside 1..%d", o.IndexSlots, 1<<28)
	}
	// Each message puts up to 4 keys (UNIQ_KEY and 3 KEYS); a file must take them all.
	if o.IndexItems < 5 || o.IndexItems > 1<<28 {
		bad("index-items", "%d outside 5..%d", o.IndexItems, 1<<28)
	}
	if o.Interval < 0 {
		bad("interval", "negative")
	}
	if o.Rate < 0 || o.Rate > 10_000_000 {
		bad("rate", "%g outside 0..10000000", o.Rate)
	}
	if o.Duration < 0 {
		bad("duration", "negative")
	}
	if o.FlushInterval < 0 {
		bad("flush-interval", "negative")
	}
	if o.MaxOpenFiles < 0 {
		bad("max-open-files", "negative (%d)", o.MaxOpenFiles)
	}
	return errors.Join(errs...)
}
