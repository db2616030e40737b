package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/devtools/brokersim"
)

func newRocketMQCmd(g *globalFlags) *cobra.Command {
	o := brokersim.RocketMQOptions{}
	commitLogSize := sizeValue(1 << 30)
	cqSize := sizeValue(6_000_000)
	var start string
	cmd := &cobra.Command{
		Use:   "rocketmq --dir DIR [flags]",
		Short: "Write a RocketMQ store (commit log, consume queues, IndexFiles)",
		Example: `  brokersim rocketmq --dir /tmp/store --messages 100000
  brokersim rocketmq --dir /tmp/store --commitlog-size 64MiB --messages 1000 --rate 500 --duration 1m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.CommitLogSize, o.CQSize = int64(commitLogSize), int64(cqSize)
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
			sum, err := brokersim.RocketMQ(cmd.Context(), o)
			if err != nil {
				return err
			}
			return printSummary(cmd, g, sum.Dir, fmt.Sprintf("%d messages, %d commit-log bytes", sum.Messages, sum.CommitLogEnd), sum.Files, sum)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "store directory to create (must be missing or empty)")
	f.IntVar(&o.Topics, "topics", 3, "topics")
	f.IntVar(&o.Queues, "queues", 4, "queues per topic")
	f.Int64Var(&o.Messages, "messages", 10000, "messages to write at once")
	f.Var(&commitLogSize, "commitlog-size", "commit-log file size (mappedFileSizeCommitLog)")
	f.Var(&cqSize, "cq-size", "consume-queue file size, a multiple of 20")
	f.IntVar(&o.IndexSlots, "index-slots", 5_000_000, "IndexFile hash slots (maxHashSlotNum)")
	f.IntVar(&o.IndexItems, "index-items", 20_000_000, "IndexFile items (maxIndexNum)")
	f.IntVar(&o.BodySize, "body-size", 512, "message body bytes")
	f.BoolVar(&o.TextBodies, "text-bodies", false, "bodies are JSON log lines (compressible) instead of random bytes")
	f.Uint64Var(&o.Seed, "seed", 1, "content seed")
	f.StringVar(&start, "start", "", "store time of the first message, RFC 3339 (default: so that the initial messages end now)")
	f.DurationVar(&o.Interval, "interval", time.Millisecond, "store-time step between initial messages")
	f.Float64Var(&o.Rate, "rate", 0, "continuous mode: messages per second after the initial ones")
	f.DurationVar(&o.Duration, "duration", 0, "continuous mode: how long (0: until SIGINT/SIGTERM)")
	f.DurationVar(&o.FlushInterval, "flush-interval", 100*time.Millisecond, "continuous mode: how often buffers are written out")
	f.BoolVar(&o.PreallocateNext, "preallocate-next", false, "also create the next commit-log file ahead, empty, as the broker's AllocateMappedFileService does")
	f.StringVar(&o.TopicPrefix, "topic-prefix", "SimTopic", "topic name prefix")
	f.IntVar(&o.MaxOpenFiles, "max-open-files", brokersim.DefaultMaxOpenFiles, "most consume-queue files open at once: the others are closed and reopened at their next write")
	return cmd
}
