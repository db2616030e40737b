package brokersim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/record"
)

// KafkaSummary describes generated Kafka log dirs.
type KafkaSummary struct {
	Dir     string `json:"dir"`
	Records int64  `json:"records"` // records written
	Batches int64  `json:"batches"` // batches written
	Files   []File `json:"files"`
	// Written lists every record in write order (only with KeepRecords).
	Written []KafkaRecord `json:"written,omitempty"`
}

// KafkaRecord is what a test needs to find a written record again.
type KafkaRecord struct {
	Topic     string
	Partition int
	Offset    int64
	Key       string
	Timestamp int64 // ms, CreateTime
	Segment   int64 // base offset of the segment holding it
	Position  int64 // position of its batch in the segment's .log
}

// Kafka writes Kafka log dirs into opts.Dir: opts.Records records at once (in batches of
// 1..BatchRecords to random partitions), then, if opts.Rate > 0, a continuous phase until
// opts.Duration has passed or ctx ends (a normal stop, no error). If ctx ends during the
// initial phase, Kafka closes what it wrote and returns ctx's error.
func Kafka(ctx context.Context, opts KafkaOptions) (KafkaSummary, error) {
	if err := opts.Validate(); err != nil {
		return KafkaSummary{}, fmt.Errorf("kafka options: %w", err)
	}
	o := opts.withDefaults()
	if err := emptyDir(o.Dir); err != nil {
		return KafkaSummary{}, err
	}
	s := newKafkaStore(&o)
	runErr := s.run(ctx)
	if err := s.close(); runErr == nil {
		runErr = err
	}
	sum := KafkaSummary{Dir: o.Dir, Records: s.records, Batches: s.batches, Written: s.written}
	if runErr != nil {
		return sum, runErr
	}
	var seqs []*sequence
	meta := append([]string(nil), kafkaTopMetaFiles...)
	for _, p := range s.parts {
		if p.segCount > 0 {
			seqs = append(seqs, p.logs, p.idxs, p.tidxs)
		}
		meta = append(meta, partitionMetaFiles(p)...)
	}
	files, err := listFiles(o.Dir, seqs, meta)
	if err != nil {
		return sum, err
	}
	sum.Files = files
	o.Logger.Info("kafka log dir written", zap.String("dir", o.Dir), zap.Int64("records", s.records),
		zap.Int64("batches", s.batches), zap.Int("files", len(files)))
	return sum, nil
}

type kafkaStore struct {
	o       *KafkaOptions
	log     *zap.Logger
	rng     *rand.Rand
	parts   []*partition
	records int64
	batches int64
	lastTs  int64
	written []KafkaRecord
	batch   record.Batch
	values  []byte // RecordSize bytes per record of the batch being built
	enc     []byte
	files   *openFiles
}

func newKafkaStore(o *KafkaOptions) *kafkaStore {
	s := &kafkaStore{
		o:      o,
		log:    o.Logger.Named("brokersim.kafka"),
		rng:    rand.New(rand.NewPCG(o.Seed, 0x6b61_666b_61)),
		values: make([]byte, o.BatchRecords*o.RecordSize),
		files:  newOpenFiles(o.MaxOpenFiles),
	}
	for t := range o.Topics {
		topic := o.TopicPrefix + strconv.Itoa(t)
		id := kafkaUUID(s.rng)
		for p := range o.Partitions {
			part := newPartition(o, s.files, topic, p, id)
			part.onRoll = func(p *partition, base int64) {
				s.log.Debug("segment", zap.String("partition", p.rel), zap.Int64("base", base))
			}
			s.parts = append(s.parts, part)
		}
	}
	return s
}

func (s *kafkaStore) run(ctx context.Context) error {
	o := s.o
	// A new partition starts with an empty active segment, as Kafka creates it.
	for _, p := range s.parts {
		if err := writePartitionMeta(p); err != nil {
			return err
		}
		if err := p.roll(); err != nil {
			return err
		}
	}
	if err := writeMetaProperties(o.Dir, kafkaUUID(s.rng), kafkaUUID(s.rng)); err != nil {
		return err
	}
	start := o.Start.UnixMilli()
	step := o.Interval.Milliseconds()
	if o.Static {
		return s.static(ctx, start)
	}
	for s.records < o.Records {
		if s.batches%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		n := min(int64(1+s.rng.IntN(o.BatchRecords)), o.Records-s.records)
		if err := s.appendBatch(nil, int(n), func(i int64) int64 { return start + i*step }); err != nil {
			return err
		}
	}
	if err := writeKafkaCheckpoints(o.Dir, s.parts); err != nil {
		return err
	}
	if o.Rate <= 0 {
		return nil
	}
	s.log.Info("continuous phase", zap.Float64("rate", o.Rate), zap.Duration("duration", o.Duration))
	return pace(ctx, o.Rate, o.Duration, o.FlushInterval, func(n int64) error {
		for n > 0 {
			if ctx.Err() != nil {
				return nil
			}
			k := min(int64(1+s.rng.IntN(o.BatchRecords)), n)
			now := max(time.Now().UnixMilli(), s.lastTs)
			if err := s.appendBatch(nil, int(k), func(int64) int64 { return now }); err != nil {
				return err
			}
			n -= k
		}
		return nil
	}, func() error { return writeKafkaCheckpoints(o.Dir, s.parts) })
}

// static writes each partition in turn to o.Segments segments (KafkaOptions.Static),
// the records of the store spread evenly from start to about now, and closes each
// partition's active segment before the next partition.
func (s *kafkaStore) static(ctx context.Context, start int64) error {
	o := s.o
	// Segments*len(parts) seconds from start to now, as withDefaults chose, split among
	// the batches of about SegmentBytes/maxBatchSize each.
	perSeg := max(o.SegmentBytes/max(o.maxBatchSize()/2, 1)*int64(1+o.BatchRecords)/2, 1) // records
	step := max(time.Second.Milliseconds()/perSeg, 1)
	for _, p := range s.parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		for p.segCount < o.Segments {
			n := int64(1 + s.rng.IntN(o.BatchRecords))
			if err := s.appendBatch(p, int(n), func(i int64) int64 { return start + i*step }); err != nil {
				return err
			}
		}
		if err := p.closeActive(); err != nil {
			return err
		}
	}
	return writeKafkaCheckpoints(o.Dir, s.parts)
}

// appendBatch writes a batch of n records to p (a random partition if nil); ts gives the
// timestamp of the store's i-th record.
func (s *kafkaStore) appendBatch(p *partition, n int, ts func(i int64) int64) error {
	if p == nil {
		p = s.parts[s.rng.IntN(len(s.parts))]
	}
	b := &s.batch
	base := ts(s.records)
	*b = record.Batch{
		BaseOffset: p.next, LastOffsetDelta: int32(n - 1), BaseTimestamp: base, MaxTimestamp: base,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Records: b.Records[:0],
	}
	fillBody(s.rng, s.values[:n*s.o.RecordSize], s.o.TextBodies)
	for i := range n {
		t := ts(s.records + int64(i))
		b.MaxTimestamp = max(b.MaxTimestamp, t)
		r := record.Record{
			TimestampDelta: t - base,
			OffsetDelta:    int32(i),
			Key:            []byte("key-" + strconv.FormatInt(s.records+int64(i), 10)),
			Value:          s.values[i*s.o.RecordSize : (i+1)*s.o.RecordSize],
		}
		if s.rng.IntN(5) == 0 {
			r.Headers = []record.Header{{Key: "trace-id", Value: []byte(strconv.FormatUint(s.rng.Uint64(), 16))}}
		}
		b.Records = append(b.Records, r)
	}
	var err error
	if s.enc, err = record.AppendBatch(s.enc[:0], *b); err != nil {
		return fmt.Errorf("batch for %s: %w", p.rel, err)
	}
	segBase, pos, err := p.append(s.enc, b.LastOffset(), b.MaxTimestamp)
	if err != nil {
		return err
	}
	if s.o.KeepRecords {
		for _, r := range b.Records {
			s.written = append(s.written, KafkaRecord{
				Topic: p.topic, Partition: p.id, Offset: b.BaseOffset + int64(r.OffsetDelta),
				Key: string(r.Key), Timestamp: base + r.TimestampDelta, Segment: segBase, Position: pos,
			})
		}
	}
	s.records += int64(n)
	s.batches++
	s.lastTs = b.MaxTimestamp
	return nil
}

// close closes every active segment's files, leaving their indexes preallocated
// (active segments are not trimmed), and writes the checkpoints.
func (s *kafkaStore) close() error {
	var err error
	for _, p := range s.parts {
		if cerr := p.closeActive(); err == nil {
			err = cerr
		}
	}
	if cerr := writeKafkaCheckpoints(s.o.Dir, s.parts); err == nil {
		err = cerr
	}
	return err
}
