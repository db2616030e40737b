package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/devtools/brokersim"
	"github.com/tierd/tierd/index"
)

func newKafkaCmd(g *globalFlags) *cobra.Command {
	o := brokersim.KafkaOptions{}
	segmentBytes := sizeValue(1 << 30)
	maxIndexSize := sizeValue(index.DefaultMaxIndexSize)
	var start string
	cmd := &cobra.Command{
		Use:   "kafka --dir DIR [flags]",
		Short: "Write Kafka log dirs (segments with offset and time indexes)",
		Example: `  brokersim kafka --dir /tmp/kafka --records 100000 --segment-bytes 1MiB
  brokersim kafka --dir /tmp/kafka --segment-bytes 1MiB --rate 2000 --duration 1m
  brokersim kafka --dir /tmp/kafka --static --topics 1 --partitions 10000 --segments 7 \
    --segment-bytes 1KiB --record-size 100 --batch-records 4   # 210,000 segment files`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.SegmentBytes, o.MaxIndexSize = int64(segmentBytes), int64(maxIndexSize)
			if start != "" {
				t, err := time.Parse(time.RFC3339Nano, start)
				if err != nil {
					return usageError{fmt.Errorf("--start: %w", err)}
				}
				o.Start = t
			}
			if err := o.Validate(); err != nil {
				return usageError{err}
			}
			o.Logger = newLogger(g, cmd.ErrOrStderr())
			defer o.Logger.Sync() //nolint:errcheck // stderr
			sum, err := brokersim.Kafka(cmd.Context(), o)
			if err != nil {
				return err
			}
			return printSummary(cmd, g, sum.Dir, fmt.Sprintf("%d records in %d batches", sum.Records, sum.Batches), sum.Files, sum)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "log dir to create (must be missing or empty)")
	f.IntVar(&o.Topics, "topics", 2, "topics")
	f.IntVar(&o.Partitions, "partitions", 3, "partitions per topic")
	f.Int64Var(&o.Records, "records", 10000, "records to write at once")
	f.Var(&segmentBytes, "segment-bytes", "segment size (log.segment.bytes)")
	f.IntVar(&o.RecordSize, "record-size", 256, "record value bytes")
	f.BoolVar(&o.TextBodies, "text-bodies", false, "values are JSON log lines (compressible) instead of random bytes")
	f.IntVar(&o.BatchRecords, "batch-records", 10, "most records per batch")
	f.IntVar(&o.IndexIntervalBytes, "index-interval-bytes", index.DefaultIndexIntervalBytes, "log.index.interval.bytes")
	f.Var(&maxIndexSize, "max-index-size", "preallocated index size of the active segment (log.index.size.max.bytes)")
	f.Uint64Var(&o.Seed, "seed", 1, "content seed")
	f.StringVar(&start, "start", "", "timestamp of the first record, RFC 3339 (default: so that the initial records end now)")
	f.DurationVar(&o.Interval, "interval", time.Millisecond, "timestamp step between initial records")
	f.Float64Var(&o.Rate, "rate", 0, "continuous mode: records per second after the initial ones")
	f.DurationVar(&o.Duration, "duration", 0, "continuous mode: how long (0: until SIGINT/SIGTERM)")
	f.DurationVar(&o.FlushInterval, "flush-interval", 100*time.Millisecond, "continuous mode: how often checkpoints are written")
	f.BoolVar(&o.Static, "static", false, "write each partition in turn to --segments segments (sealed ones dated by their last record), not --records to random partitions: fast stores of many files")
	f.IntVar(&o.Segments, "segments", 7, "with --static: segments per partition, the last one active")
	f.StringVar(&o.TopicPrefix, "topic-prefix", "sim-topic-", "topic name prefix")
	f.IntVar(&o.MaxOpenFiles, "max-open-files", brokersim.DefaultMaxOpenFiles, "most segment files (a partition's active segment has three) open at once: the others are closed and reopened at their next write")
	return cmd
}
