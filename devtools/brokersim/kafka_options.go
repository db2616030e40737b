package brokersim

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/record"
)

// KafkaOptions configure Kafka log dirs. Zero values take the defaults noted.
type KafkaOptions struct {
	Dir          string // the log.dir; must be missing or empty
	Topics       int    // default 2
	Partitions   int    // partitions per topic; default 3
	Records      int64  // written at once, before the continuous phase
	SegmentBytes int64  // log.segment.bytes; default 1 GiB
	RecordSize   int    // value bytes per record; default 256
	// TextBodies makes values JSON log lines (compressible like real payloads) instead of
	// random bytes.
	TextBodies bool
	// BatchRecords is the most records per batch (each batch has 1..BatchRecords); default 10.
	BatchRecords int
	// IndexIntervalBytes is log.index.interval.bytes; default 4096.
	IndexIntervalBytes int
	// MaxIndexSize is log.index.size.max.bytes, the preallocated size of an active
	// segment's .index and .timeindex; default 10 MiB.
	MaxIndexSize int64
	Seed         uint64
	// Start is the timestamp of the first record. Default: Records*Interval before now.
	Start time.Time
	// Interval is the timestamp step between records of the initial phase; default 1ms.
	Interval time.Duration
	// Rate (records/s) starts a continuous phase after the initial one; 0: none.
	Rate float64
	// Duration bounds the continuous phase; 0: until the context ends.
	Duration time.Duration
	// FlushInterval is how often the continuous phase updates the checkpoints; default 100ms.
	FlushInterval time.Duration
	TopicPrefix   string // topics are TopicPrefix0, ...; default "sim-topic-"
	KeepRecords   bool   // list every record in the Summary
	// Static writes the partitions one after the other, each to exactly Segments segments
	// (Segments-1 sealed ones of about SegmentBytes, then the active one holding the batch
	// that did not fit), instead of Records records to random partitions: a fast way to
	// write stores of 10^4..10^6 files for scale benchmarks. Sealed segments get the
	// modification time of their last record, so that they are past seal_grace. Records,
	// Rate and Duration are ignored; Start defaults to Topics*Partitions*Segments seconds
	// and an hour before now, so the newest sealed segment is about an hour old.
	Static   bool
	Segments int // segments per partition with Static; default 7
	// MaxOpenFiles bounds the segment files held open at once (a partition's active
	// segment has three): the others are closed and reopened at their next write, so
	// 10,000 partitions fit an open-file limit of a few thousand. Default DefaultMaxOpenFiles.
	MaxOpenFiles int
	Logger       *zap.Logger // default: no logging
}

// maxRecordOverhead bounds a record's bytes beyond its value: varints, key, header.
const maxRecordOverhead = 96

func (o KafkaOptions) withDefaults() KafkaOptions {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Topics, 2)
	def(&o.Partitions, 3)
	def(&o.RecordSize, 256)
	def(&o.BatchRecords, 10)
	def(&o.IndexIntervalBytes, index.DefaultIndexIntervalBytes)
	if o.SegmentBytes == 0 {
		o.SegmentBytes = 1 << 30
	}
	if o.MaxIndexSize == 0 {
		o.MaxIndexSize = index.DefaultMaxIndexSize
	}
	if o.Interval == 0 {
		o.Interval = time.Millisecond
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = "sim-topic-"
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	def(&o.Segments, 7)
	if o.Start.IsZero() {
		if o.Static {
			o.Start = time.Now().Add(-time.Duration(o.Topics*o.Partitions*o.Segments)*time.Second - time.Hour)
		} else {
			o.Start = time.Now().Add(-time.Duration(o.Records) * o.Interval)
		}
	}
	return o
}

// maxBatchSize is the largest batch the options can produce.
func (o KafkaOptions) maxBatchSize() int64 {
	return record.BatchHeaderSize + int64(o.BatchRecords)*int64(o.RecordSize+maxRecordOverhead)
}

// Validate reports every problem with the options (after defaults).
func (o KafkaOptions) Validate() error {
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
	if o.Partitions < 0 || o.Partitions > 10000 {
		bad("partitions", "%d outside 1..10000", o.Partitions)
	}
	if o.Records < 0 {
		bad("records", "negative (%d)", o.Records)
	}
	if o.RecordSize < 0 || o.RecordSize > 1<<20 {
		bad("record-size", "%d outside 0..%d", o.RecordSize, 1<<20)
	}
	if o.BatchRecords < 0 || o.BatchRecords > 10000 {
		bad("batch-records", "%d outside 1..10000", o.BatchRecords)
	}
	if o.BatchRecords > 0 && o.RecordSize >= 0 && o.SegmentBytes < o.maxBatchSize() {
		bad("segment-bytes", "%d cannot hold a batch of up to %d bytes", o.SegmentBytes, o.maxBatchSize())
	}
	if o.SegmentBytes > 1<<31-1 {
		bad("segment-bytes", "%d above Kafka's limit %d (positions are int32)", o.SegmentBytes, int64(1<<31-1))
	}
	if o.IndexIntervalBytes < 0 {
		bad("index-interval-bytes", "negative")
	}
	if o.MaxIndexSize < index.TimeEntrySize || o.MaxIndexSize > 1<<31-1 {
		bad("max-index-size", "%d outside %d..%d", o.MaxIndexSize, index.TimeEntrySize, int64(1<<31-1))
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
	if o.Segments < 1 || o.Segments > 1_000_000 {
		bad("segments", "%d outside 1..1000000", o.Segments)
	}
	if o.Static && o.Rate > 0 {
		bad("rate", "a static store has no continuous phase")
	}
	if o.MaxOpenFiles < 0 {
		bad("max-open-files", "negative (%d)", o.MaxOpenFiles)
	}
	return errors.Join(errs...)
}
