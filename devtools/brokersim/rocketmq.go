package brokersim

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/record"
)

// RocketMQSummary describes a generated RocketMQ store.
type RocketMQSummary struct {
	Dir          string `json:"dir"`
	Messages     int64  `json:"messages"`      // messages written
	CommitLogEnd int64  `json:"commitlog_end"` // physical offset after the last message
	Files        []File `json:"files"`
	// Written lists every message in commit-log order (only with KeepMessages).
	Written []RocketMQMessage `json:"written,omitempty"`
}

// RocketMQMessage is what a test needs to find a written message again.
type RocketMQMessage struct {
	Topic          string
	QueueID        int32
	QueueOffset    int64
	PhyOffset      int64
	Size           int32
	StoreTimestamp int64 // ms
	Keys           []string
	UniqKey        string
	Tags           string
}

// IndexKeys returns the keys the broker indexes for m: topic#UNIQ_KEY, then topic#k for
// each key.
func (m RocketMQMessage) IndexKeys() []string {
	keys := []string{index.IndexKey(m.Topic, m.UniqKey)}
	for _, k := range m.Keys {
		keys = append(keys, index.IndexKey(m.Topic, k))
	}
	return keys
}

// RocketMQ writes a RocketMQ store into opts.Dir: opts.Messages messages at once, then,
// if opts.Rate > 0, a continuous phase until opts.Duration has passed or ctx ends (a
// normal stop: buffers are flushed and the result has no error). If ctx ends during the
// initial phase, RocketMQ flushes what it wrote and returns ctx's error.
func RocketMQ(ctx context.Context, opts RocketMQOptions) (RocketMQSummary, error) {
	if err := opts.Validate(); err != nil {
		return RocketMQSummary{}, fmt.Errorf("rocketmq options: %w", err)
	}
	o := opts.withDefaults()
	if err := emptyDir(o.Dir); err != nil {
		return RocketMQSummary{}, err
	}
	s := newRocketMQStore(o)
	runErr := s.run(ctx)
	if err := s.close(); runErr == nil {
		runErr = err
	}
	sum := RocketMQSummary{Dir: o.Dir, Messages: s.count, CommitLogEnd: s.cl.end(), Written: s.written}
	if runErr != nil {
		return sum, runErr
	}
	seqs := []*sequence{s.cl.seq, s.idx.seq}
	for _, qs := range s.cqs {
		for _, q := range qs {
			seqs = append(seqs, q.seq)
		}
	}
	files, err := listFiles(o.Dir, seqs, rocketMQMetaFiles)
	if err != nil {
		return sum, err
	}
	sum.Files = files
	o.Logger.Info("rocketmq store written", zap.String("dir", o.Dir), zap.Int64("messages", s.count),
		zap.Int64("commitlog_bytes", sum.CommitLogEnd), zap.Int("files", len(files)))
	return sum, nil
}

type rocketMQStore struct {
	o       RocketMQOptions
	log     *zap.Logger
	rng     *rand.Rand
	topics  []string
	cl      *commitLog
	cqs     [][]*consumeQueue
	idx     *indexFiles
	qoff    [][]int64
	count   int64
	lastTs  int64
	written []RocketMQMessage
	uniqPfx string
	msg     record.Message
	enc     []byte
	keyBuf  []string
	files   *openFiles // the consume-queue files'
}

func newRocketMQStore(o RocketMQOptions) *rocketMQStore {
	s := &rocketMQStore{
		o:   o,
		log: o.Logger.Named("brokersim.rocketmq"),
		rng: rand.New(rand.NewPCG(o.Seed, 0x5eed_0f_b40c3e5)),
		cl:  newCommitLog(o.Dir, o.CommitLogSize, o.PreallocateNext),
		idx: newIndexFiles(o.Dir, o.IndexSlots, o.IndexItems, o.Location),
		// The commit log and IndexFiles hold one file each (two with PreallocateNext).
		files: newOpenFiles(o.MaxOpenFiles),
	}
	s.cl.onRoll = func(name string) { s.log.Debug("commit-log file", zap.String("name", name)) }
	s.idx.onRoll = func(name string) { s.log.Debug("index file", zap.String("name", name)) }
	for t := range o.Topics {
		topic := o.TopicPrefix + strconv.Itoa(t)
		s.topics = append(s.topics, topic)
		var qs []*consumeQueue
		for q := range o.Queues {
			qs = append(qs, newConsumeQueue(s.files, o.Dir, topic, q, o.CQSize))
		}
		s.cqs = append(s.cqs, qs)
		s.qoff = append(s.qoff, make([]int64, o.Queues))
	}
	// UNIQ_KEY: 32 hex digits like MessageClientIDSetter's (client ip, pid, class-loader
	// hash, then a time and counter part).
	s.uniqPfx = fmt.Sprintf("%08X%04X%08X", s.rng.Uint32(), s.rng.Uint32()&0xFFFF, s.rng.Uint32())
	s.msg.Body = make([]byte, o.BodySize)
	return s
}

func (s *rocketMQStore) run(ctx context.Context) error {
	o := s.o
	if err := writeRocketMQMeta(o.Dir, s.topics, o.Queues, time.Now().UnixMilli()); err != nil {
		return err
	}
	if err := writeCheckpoint(o.Dir, 0, 0); err != nil {
		return err
	}
	start := o.Start.UnixMilli()
	step := o.Interval.Milliseconds()
	for i := range o.Messages {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ts := start + i*step
		if err := s.append(ts, ts); err != nil {
			return err
		}
	}
	if o.Rate <= 0 {
		return nil
	}
	if err := s.flush(); err != nil {
		return err
	}
	s.log.Info("continuous phase", zap.Float64("rate", o.Rate), zap.Duration("duration", o.Duration))
	return pace(ctx, o.Rate, o.Duration, o.FlushInterval, func(n int64) error {
		for i := range n {
			if i%1024 == 0 && ctx.Err() != nil {
				return nil
			}
			now := time.Now().UnixMilli()
			if err := s.append(max(now, s.lastTs), now); err != nil {
				return err
			}
		}
		return nil
	}, s.flush)
}

// append writes one message stored at ts (ms); now (ms) names any IndexFile it creates.
func (s *rocketMQStore) append(ts, now int64) error {
	t := s.rng.IntN(len(s.topics))
	q := s.rng.IntN(s.o.Queues)
	m := &s.msg
	seq := s.count
	m.Topic = s.topics[t]
	m.QueueID = int32(q)
	m.QueueOffset = s.qoff[t][q]
	m.BornTimestamp = ts - int64(s.rng.IntN(5))
	m.StoreTimestamp = ts
	m.BornHost = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(t), byte(1 + s.rng.IntN(200))}), uint16(30000+s.rng.IntN(30000)))
	m.StoreHost = netip.MustParseAddrPort("10.0.0.1:10911")
	fillBody(s.rng, m.Body, s.o.TextBodies)

	// 1-3 keys: an order id unique to the message, sometimes a shared customer id, and
	// sometimes a non-ASCII key (BMP or beyond) to exercise the UTF-16 hash.
	keys := append(s.keyBuf[:0], "ord-"+strconv.FormatInt(seq, 10))
	if s.rng.IntN(2) == 0 {
		keys = append(keys, "cust-"+strconv.Itoa(s.rng.IntN(997)))
	}
	switch s.rng.IntN(8) {
	case 0:
		keys = append(keys, "订单-"+strconv.FormatInt(seq, 10))
	case 1:
		keys = append(keys, "📦"+strconv.FormatInt(seq, 10))
	}
	s.keyBuf = keys
	uniq := fmt.Sprintf("%s%08X%04X", s.uniqPfx, uint32(seq>>16), uint16(seq))
	tags := "Tag" + string(rune('A'+s.rng.IntN(4)))
	m.Properties = append(m.Properties[:0],
		record.Property{Name: record.PropertyKeys, Value: strings.Join(keys, record.KeySeparator)},
		record.Property{Name: record.PropertyUniqKey, Value: uniq},
		record.Property{Name: record.PropertyTags, Value: tags},
		record.Property{Name: "WAIT", Value: "true"},
	)

	size, err := record.EncodedSize(m)
	if err != nil {
		return fmt.Errorf("message %d: %w", seq, err)
	}
	phy, err := s.cl.reserve(size)
	if err != nil {
		return err
	}
	m.PhysicalOffset = phy
	if s.enc, err = record.AppendMessage(s.enc[:0], m); err != nil {
		return fmt.Errorf("message %d: %w", seq, err)
	}
	if err := s.cl.write(s.enc); err != nil {
		return err
	}
	if err := s.cqs[t][q].append(record.CQEntry{CommitLogOffset: phy, Size: int32(size), TagsCode: record.TagsCode(tags)}); err != nil {
		return err
	}
	// IndexService.buildIndex: UNIQ_KEY first, then each key, as topic#key.
	if err := s.idx.put(index.IndexKey(m.Topic, uniq), phy, ts, now); err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.idx.put(index.IndexKey(m.Topic, k), phy, ts, now); err != nil {
			return err
		}
	}
	s.qoff[t][q]++
	s.count++
	s.lastTs = ts
	if s.o.KeepMessages {
		s.written = append(s.written, RocketMQMessage{
			Topic: m.Topic, QueueID: m.QueueID, QueueOffset: m.QueueOffset, PhyOffset: phy,
			Size: int32(size), StoreTimestamp: ts, Keys: append([]string(nil), keys...),
			UniqKey: uniq, Tags: tags,
		})
	}
	return nil
}

// flush writes every buffer out and updates the checkpoint, so other processes see the
// store as it stands.
func (s *rocketMQStore) flush() error {
	if err := s.cl.flush(); err != nil {
		return err
	}
	for _, qs := range s.cqs {
		for _, q := range qs {
			if err := q.flush(); err != nil {
				return err
			}
		}
	}
	if err := s.idx.flush(); err != nil {
		return err
	}
	return writeCheckpoint(s.o.Dir, s.lastTs, s.cl.end())
}

// close flushes and closes every file, keeping the first error.
func (s *rocketMQStore) close() error {
	err := s.flush()
	keep := func(e error) {
		if err == nil {
			err = e
		}
	}
	keep(s.cl.close())
	for _, qs := range s.cqs {
		for _, q := range qs {
			keep(q.close())
		}
	}
	keep(s.idx.close())
	return err
}

// fillBody fills b with random bytes, or with JSON log lines if text.
func fillBody(rng *rand.Rand, b []byte, text bool) {
	if !text {
		fillRandom(rng, b)
		return
	}
	levels := [...]string{"info", "info", "info", "warn", "debug", "error"}
	events := [...]string{"order created", "payment accepted", "item shipped", "cart updated", "login", "refund requested"}
	var line []byte
	for i := 0; i < len(b); {
		line = fmt.Appendf(line[:0], `{"ts":"2026-12-03T%02d:%02d:%02d.%03dZ","level":"%s","user":"user-%06d","order":%d,"event":"%s","amount":%d.%02d,"region":"eu-west-%d"}`+"\n",
			rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000), levels[rng.IntN(len(levels))], rng.IntN(1000000),
			rng.Int64N(1<<40), events[rng.IntN(len(events))], rng.IntN(100000), rng.IntN(100), 1+rng.IntN(3))
		i += copy(b[i:], line)
	}
}

// fillRandom fills b from rng.
func fillRandom(rng *rand.Rand, b []byte) {
	var w [8]byte
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(w[:], rng.Uint64())
		copy(b[i:], w[:])
	}
}
