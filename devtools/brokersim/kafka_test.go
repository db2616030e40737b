package brokersim

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/record"
)

func smallKafka(t *testing.T) KafkaOptions {
	return KafkaOptions{
		Dir:          filepath.Join(t.TempDir(), "kafka"),
		Topics:       2,
		Partitions:   2,
		Records:      3000,
		SegmentBytes: 64 << 10,
		RecordSize:   100,
		BatchRecords: 8,
		MaxIndexSize: 4096,
		Seed:         1,
		Start:        testStart,
		Interval:     3 * time.Millisecond,
		KeepRecords:  true,
	}
}

func TestKafkaStore(t *testing.T) {
	o := smallKafka(t)
	sum, err := Kafka(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != o.Records || len(sum.Written) != int(o.Records) {
		t.Fatalf("%d records, %d listed", sum.Records, len(sum.Written))
	}
	sealed := verifyKafka(t, o, sum)
	if sealed < 4 {
		t.Fatalf("only %d sealed segments", sealed)
	}
}

type batchInfo struct {
	pos, lastOffset, maxTs int64
}

// verifyKafka reads every partition back and checks it against the summary; it returns
// the number of sealed segments.
func verifyKafka(t *testing.T, o KafkaOptions, sum KafkaSummary) int {
	t.Helper()
	o = o.withDefaults()
	type key struct {
		topic string
		part  int
	}
	written := map[key][]KafkaRecord{}
	for _, r := range sum.Written {
		k := key{r.Topic, r.Partition}
		written[k] = append(written[k], r)
	}
	sealed := 0
	total := 0
	for tp := range o.Topics {
		for p := range o.Partitions {
			topic := fmt.Sprintf("%s%d", o.TopicPrefix, tp)
			rel := fmt.Sprintf("%s-%d", topic, p)
			want := written[key{topic, p}]
			logs := filesOf(sum.Files, KindKafkaLog, rel+"/")
			next := int64(0)
			for i, lf := range logs {
				base := next
				name := rel + "/" + offsetName(base)
				if lf.Path != name+".log" || lf.Active != (i == len(logs)-1) || lf.Size > o.SegmentBytes {
					t.Fatalf("segment %d: %+v, want %s.log", i, lf, name)
				}
				f, size := open(t, o.Dir, lf.Path)
				r := record.NewBatchReader(f, 0, size, nil)
				var batches []batchInfo
				maxTs := int64(-1)
				for {
					b, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("%s: %v", lf.Path, err)
					}
					if b.BaseOffset != next || int(b.RecordCount) != len(b.Records) || b.Compression() != record.CompressionNone {
						t.Fatalf("%s: batch at %d: base %d, want %d", lf.Path, r.Position(), b.BaseOffset, next)
					}
					for _, rec := range b.Records {
						w := want[next] // a partition's records are in offset order, from 0
						if w.Offset != next || w.Key != string(rec.Key) || w.Timestamp != b.BaseTimestamp+rec.TimestampDelta ||
							w.Segment != base || w.Position != r.Position() || len(rec.Value) != o.RecordSize {
							t.Fatalf("%s offset %d: %+v, record key %q", lf.Path, next, w, rec.Key)
						}
						next++
					}
					maxTs = max(maxTs, b.MaxTimestamp)
					batches = append(batches, batchInfo{r.Position(), b.LastOffset(), maxTs})
				}
				checkKafkaIndexes(t, o, sum, name, base, batches, lf.Active)
				if !lf.Active {
					sealed++
				}
			}
			if next != int64(len(want)) {
				t.Fatalf("%s: %d records, wrote %d", rel, next, len(want))
			}
			total += len(want)
			for _, m := range []string{"leader-epoch-checkpoint", "partition.metadata"} {
				b, err := os.ReadFile(filepath.Join(o.Dir, rel, m))
				if err != nil {
					t.Fatal(err)
				}
				if m == "partition.metadata" && !strings.HasPrefix(string(b), "version: 0\ntopic_id: ") || len(b) < 8 {
					t.Fatalf("%s/%s: %q", rel, m, b)
				}
			}
		}
	}
	if total != len(sum.Written) {
		t.Fatalf("%d records in partitions, %d written", total, len(sum.Written))
	}
	b, err := os.ReadFile(filepath.Join(o.Dir, "replication-offset-checkpoint"))
	if err != nil || !strings.HasPrefix(string(b), fmt.Sprintf("0\n%d\n", o.Topics*o.Partitions)) {
		t.Fatalf("replication-offset-checkpoint: %q %v", b, err)
	}
	return sealed
}

func checkKafkaIndexes(t *testing.T, o KafkaOptions, sum KafkaSummary, name string, base int64, batches []batchInfo, active bool) {
	t.Helper()
	byPos := map[int64]batchInfo{}
	for _, b := range batches {
		byPos[b.pos] = b
	}
	f, size := open(t, o.Dir, name+".index")
	real := 0
	n, err := index.ScanOffsetIndex(f, size, nil, func(i int, e index.OffsetEntry) error {
		if i == 0 && e == (index.OffsetEntry{}) && active {
			return nil // an empty preallocated index reads as one (0, 0) entry
		}
		real++
		b, ok := byPos[int64(e.Position)]
		if !ok || b.lastOffset != base+int64(e.RelOffset) {
			return fmt.Errorf("entry %d (%d, %d): batch there %+v", i, e.RelOffset, e.Position, b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s.index: %v", name, err)
	}
	wantSize := int64(n) * index.OffsetEntrySize
	if active {
		wantSize = o.MaxIndexSize / index.OffsetEntrySize * index.OffsetEntrySize
	}
	if size != wantSize || len(filesOf(sum.Files, KindKafkaIndex, name+".index")) != 1 {
		t.Fatalf("%s.index: %d bytes for %d entries (active %v)", name, size, n, active)
	}
	// About one entry per IndexIntervalBytes of log: each entry follows more than
	// IndexIntervalBytes and at most that plus one batch.
	if len(batches) > 0 {
		logBytes := batches[len(batches)-1].pos
		lo := logBytes/(int64(o.IndexIntervalBytes)+o.maxBatchSize()) - 1
		hi := logBytes/int64(o.IndexIntervalBytes) + 1
		if int64(real) < lo || int64(real) > hi {
			t.Fatalf("%s.index: %d entries for %d bytes of log, want %d..%d", name, real, logBytes, lo, hi)
		}
	}
	f, size = open(t, o.Dir, name+".timeindex")
	n, err = index.ScanTimeIndex(f, size, nil, func(i int, e index.TimeEntry) error {
		if i == 0 && e == (index.TimeEntry{}) && active {
			return nil
		}
		// the entry holds the largest timestamp up to its offset, in the batch ending there
		for _, b := range batches {
			if b.lastOffset == base+int64(e.RelOffset) {
				if b.maxTs != e.Timestamp {
					return fmt.Errorf("entry %d: timestamp %d, max up to its offset %d", i, e.Timestamp, b.maxTs)
				}
				return nil
			}
		}
		return fmt.Errorf("entry %d: offset %d ends no batch", i, e.RelOffset)
	})
	if err != nil {
		t.Fatalf("%s.timeindex: %v", name, err)
	}
	wantSize = int64(n) * index.TimeEntrySize
	if active {
		wantSize = o.MaxIndexSize / index.TimeEntrySize * index.TimeEntrySize
	} else if n == 0 && len(batches) > 0 {
		t.Fatalf("%s.timeindex: sealed without the final entry", name)
	}
	if size != wantSize {
		t.Fatalf("%s.timeindex: %d bytes for %d entries (active %v)", name, size, n, active)
	}
}

func TestKafkaIndexFullRolls(t *testing.T) {
	// A time index of 3 entries (36 bytes; the offset index takes 4) fills before the
	// segment does: the segment rolls.
	o := smallKafka(t)
	o.MaxIndexSize = 36
	o.IndexIntervalBytes = 100
	o.Records = 400
	sum, err := Kafka(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	verifyKafka(t, o, sum)
	for _, f := range sum.Files {
		if f.Kind == KindKafkaTimeIndex && !f.Active && f.Size != 36 {
			t.Fatalf("%s: %d bytes, want a full 3-entry time index", f.Path, f.Size)
		}
		if f.Kind == KindKafkaLog && f.Size > 10<<10 {
			t.Fatalf("%s: %d bytes: did not roll on a full index", f.Path, f.Size)
		}
	}
}

func TestKafkaContinuous(t *testing.T) {
	o := smallKafka(t)
	o.Records = 20
	o.Start = time.Time{}
	o.Rate = 3000
	o.Duration = 300 * time.Millisecond
	o.FlushInterval = 50 * time.Millisecond
	sum, err := Kafka(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records < 20+400 || sum.Records > 20+900 {
		t.Fatalf("%d records", sum.Records)
	}
	verifyKafka(t, o, sum)

	o = smallKafka(t)
	o.Records = 5
	o.Rate = 100
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if sum, err = Kafka(ctx, o); err != nil {
		t.Fatalf("cancelled continuous run: %v", err)
	}
	verifyKafka(t, o, sum)
}

func TestKafkaEmpty(t *testing.T) {
	// No records: every partition has one empty active segment with preallocated indexes.
	o := smallKafka(t)
	o.Records = 0
	sum, err := Kafka(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	verifyKafka(t, o, sum)
	logs := filesOf(sum.Files, KindKafkaLog, "")
	if len(logs) != o.Topics*o.Partitions {
		t.Fatalf("%d segments", len(logs))
	}
	for _, f := range logs {
		if !f.Active || f.Size != 0 || !strings.HasSuffix(f.Path, "/"+offsetName(0)+".log") {
			t.Fatalf("%+v", f)
		}
	}
}

func TestKafkaOptionErrors(t *testing.T) {
	f := func(mut func(o *KafkaOptions), want ...string) {
		t.Helper()
		o := smallKafka(t)
		mut(&o)
		_, err := Kafka(context.Background(), o)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Fatalf("err = %v, want %q", err, w)
			}
		}
	}
	f(func(o *KafkaOptions) { o.Dir = "" }, "dir: required")
	f(func(o *KafkaOptions) { o.SegmentBytes = 1000 }, "segment-bytes: 1000")
	f(func(o *KafkaOptions) { o.MaxIndexSize = 5; o.Records = -1 }, "max-index-size", "records")
	f(func(o *KafkaOptions) { o.SegmentBytes = 1 << 32 }, "int32")
}

// A static store: every partition has exactly Segments segments, the sealed ones dated by
// their last record (in the past), and reads back as written.
func TestKafkaStatic(t *testing.T) {
	o := KafkaOptions{
		Dir: filepath.Join(t.TempDir(), "kafka"), Topics: 2, Partitions: 3, Static: true, Segments: 4,
		SegmentBytes: 1 << 10, RecordSize: 100, BatchRecords: 4, Seed: 1, KeepRecords: true, MaxOpenFiles: 2,
	}
	sum, err := Kafka(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if sealed := verifyKafka(t, o, sum); sealed != 2*3*3 {
		t.Fatalf("%d sealed segments, want 18 (6 partitions x 3)", sealed)
	}
	now := time.Now()
	for _, f := range sum.Files {
		fi, err := os.Stat(filepath.Join(o.Dir, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if old := now.Sub(fi.ModTime()) > time.Second; f.Kind != KindMeta && old == f.Active {
			t.Errorf("%s (active %v) modified %v ago", f.Path, f.Active, now.Sub(fi.ModTime()))
		}
		if f.Kind == KindKafkaLog && !f.Active && (f.Size == 0 || f.Size > o.SegmentBytes) {
			t.Errorf("%s: sealed .log of %d bytes", f.Path, f.Size)
		}
	}
	o.Dir, o.Rate = filepath.Join(t.TempDir(), "k2"), 10
	if _, err := Kafka(context.Background(), o); err == nil || !strings.Contains(err.Error(), "static") {
		t.Errorf("static with a rate: %v", err)
	}
}
