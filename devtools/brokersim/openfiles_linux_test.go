package brokersim

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count open files: %v", err)
	}
	return len(entries)
}

// watchFDs samples the open descriptors every millisecond until the returned function is
// called, which returns the most seen.
func watchFDs(t *testing.T) func() int {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	peak := openFDs(t)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
					peak = max(peak, len(entries))
				}
			}
		}
	})
	return func() int {
		close(stop)
		wg.Wait()
		return peak
	}
}

// The open-file bound: stores with more active files than the open-file limit allows
// (12,000 Kafka partitions hold 36,000 active segment files; 10,240 RocketMQ queues as
// many consume-queue files) are written with at most MaxOpenFiles segment files open.
// Without the bound the Kafka run fails with "too many open files" here (limit 20,000),
// and on a machine with a higher limit the descriptor count grows past the bound.
func TestOpenFilesBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 60,000 small files")
	}
	const maxOpen = 64
	// Descriptors besides the segment files: the test binary's own, a meta file being
	// written, the sampler's ReadDir, the commit log and IndexFile of a RocketMQ store.
	const slack = 16
	base := openFDs(t)

	t.Run("kafka", func(t *testing.T) {
		o := KafkaOptions{
			Dir: filepath.Join(t.TempDir(), "kafka"), Topics: 2, Partitions: 6000, Records: 6000,
			SegmentBytes: 4 << 10, RecordSize: 16, BatchRecords: 4, MaxIndexSize: 1 << 10, Seed: 1,
			Start: testStart, MaxOpenFiles: maxOpen,
		}
		done := watchFDs(t)
		sum, err := Kafka(context.Background(), o)
		peak := done()
		if err != nil {
			t.Fatal(err)
		}
		active := 0
		for _, f := range sum.Files {
			if f.Active {
				active++
			}
		}
		if active != 3*12000 {
			t.Fatalf("%d active segment files, want %d (12,000 partitions)", active, 3*12000)
		}
		if peak > base+maxOpen+slack {
			t.Fatalf("%d descriptors open at the peak: %d before the run + %d segment files allowed + %d", peak, base, maxOpen, slack)
		}
		if now := openFDs(t); now > base+1 {
			t.Fatalf("%d descriptors open after the run, %d before", now, base)
		}
	})

	t.Run("rocketmq", func(t *testing.T) {
		o := RocketMQOptions{
			Dir: filepath.Join(t.TempDir(), "store"), Topics: 10, Queues: 1024, Messages: 25000,
			CommitLogSize: 1 << 20, CQSize: 3 * 20, IndexSlots: 64, IndexItems: 4096, BodySize: 16,
			Seed: 1, Start: testStart, MaxOpenFiles: maxOpen,
		}
		done := watchFDs(t)
		sum, err := RocketMQ(context.Background(), o)
		peak := done()
		if err != nil {
			t.Fatal(err)
		}
		cq := 0
		for _, f := range sum.Files {
			if f.Kind == KindConsumeQueue {
				cq++
			}
		}
		if cq < 10240 {
			t.Fatalf("%d consume-queue files, want 10,240 or more", cq)
		}
		if peak > base+maxOpen+slack {
			t.Fatalf("%d descriptors open at the peak: %d before the run + %d segment files allowed + %d", peak, base, maxOpen, slack)
		}
		if now := openFDs(t); now > base+1 {
			t.Fatalf("%d descriptors open after the run, %d before", now, base)
		}
	})
}
