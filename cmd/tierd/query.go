package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/daemon"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/localfile"
	"github.com/tierd/tierd/record"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/source"
)

// queryMessage is one message `tierd query` found.
type queryMessage struct {
	Topic          string    `json:"topic"`
	QueueID        int32     `json:"queue_id"`
	QueueOffset    int64     `json:"queue_offset"`
	PhyOffset      int64     `json:"phy_offset"`
	StoreTimestamp int64     `json:"store_timestamp"` // ms
	StoreTime      time.Time `json:"store_time"`
	Keys           []string  `json:"keys"`
	UniqKey        string    `json:"uniq_key,omitempty"`
	BodySize       int       `json:"body_size"`
	From           string    `json:"from"` // "local" or the tier the commit log was read from
	Index          string    `json:"index"`
}

// queryReport is what `tierd query --json` prints.
type queryReport struct {
	Messages   []queryMessage `json:"messages"`
	Indexes    int            `json:"indexes"`    // compacted indexes on the tiers
	Searched   int            `json:"searched"`   // of those, whose time range met the query's
	Hits       int            `json:"hits"`       // index items of the key's hash
	Collisions int            `json:"collisions"` // hits whose message has another topic or key
}

func newQueryCmd(g *globals) *cobra.Command {
	var topic, key, since, until, tier string
	var maxN int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "query --topic T --key K",
		Short: "Find messages by key through the compacted indexes on the tiers",
		Long: `Find the messages of a RocketMQ topic whose KEYS (or UNIQ_KEY, the message id) include
K, through the compacted IndexFiles the daemon offloaded: each index is asked with two
ranged reads (after its header, which also lets indexes outside --since/--until be skipped),
then each message is read with ranged reads from its commit-log file, locally while the
broker still has it, else from a tier. Messages of other keys with the same hash are
filtered out. Prints topic, queue id, queue offset, store time, keys and body size, newest
first. --since and --until take RFC 3339 times, "2006-01-02 15:04:05" (local time),
dates, or Unix milliseconds. Works beside a running daemon.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" || key == "" {
				return usagef("--topic and --key are required")
			}
			begin, err := parseQueryTime(since, math.MinInt64)
			if err != nil {
				return usagef("--since: %v", err)
			}
			end, err := parseQueryTime(until, math.MaxInt64)
			if err != nil {
				return usagef("--until: %v", err)
			}
			if maxN <= 0 {
				return usagef("--max must be positive")
			}
			a, err := openReader(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer a.close()
			if tier != "" {
				if _, err := a.tier(tier); err != nil {
					return err
				}
			}
			q := &query{a: a, topic: topic, key: key, begin: begin, end: end, max: maxN, tier: tier, files: map[string]*commitLogFile{}}
			defer q.closeFiles()
			rep, err := q.run(cmd.Context())
			if asJSON {
				if rep.Messages == nil {
					rep.Messages = []queryMessage{}
				}
				if perr := printJSON(rep); perr != nil {
					return perr
				}
				return err
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "STORE TIME\tTOPIC\tQUEUE\tQUEUE OFFSET\tPHY OFFSET\tKEYS\tBODY\tFROM")
			for _, m := range rep.Messages {
				keys := strings.Join(m.Keys, " ")
				if m.UniqKey != "" {
					keys += " (id " + m.UniqKey + ")"
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%s\t%d\t%s\n", m.StoreTime.Local().Format("2006-01-02 15:04:05.000"),
					m.Topic, m.QueueID, m.QueueOffset, m.PhyOffset, keys, m.BodySize, m.From)
			}
			if ferr := w.Flush(); ferr != nil {
				return ferr
			}
			fmt.Fprintf(stdout, "%d messages; %d of %d compacted indexes searched, %d hits, %d hash collisions\n",
				len(rep.Messages), rep.Searched, rep.Indexes, rep.Hits, rep.Collisions)
			return err
		},
	}
	cmd.Flags().StringVar(&topic, "topic", "", "topic (required)")
	cmd.Flags().StringVar(&key, "key", "", "message key or message id (required)")
	cmd.Flags().StringVar(&since, "since", "", "only messages stored at or after this time")
	cmd.Flags().StringVar(&until, "until", "", "only messages stored at or before this time")
	cmd.Flags().StringVar(&tier, "tier", "", "only indexes and commit logs on this tier (default: any)")
	cmd.Flags().IntVar(&maxN, "max", 64, "most messages to print")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// parseQueryTime parses a --since/--until value into Unix ms; "" gives def.
func parseQueryTime(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMilli(), nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05.000", "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("%q is not an RFC 3339 time, a local \"2006-01-02 15:04:05\" time, a date or Unix milliseconds", s)
}

// query is one `tierd query` run.
type query struct {
	a          *app
	topic, key string
	begin, end int64
	max        int
	tier       string
	buf        []byte                    // a pool buffer: bucket runs and large messages
	files      map[string]*commitLogFile // open commit-log files, by source + rel
}

// commitLogFile is an open commit-log file: local or a tier object.
type commitLogFile struct {
	r    io.ReaderAt
	size int64
	from string
	c    io.Closer
}

func (q *query) closeFiles() {
	for _, f := range q.files {
		f.c.Close()
	}
}

// run searches every compacted index on the tiers (one per IndexFile, from the first
// tier holding it), newest first, and reads the messages it points at.
func (q *query) run(ctx context.Context) (queryReport, error) {
	var rep queryReport
	recs, err := q.a.records(ctx, q.tier)
	if err != nil {
		return rep, err
	}
	indexes := q.pickIndexes(recs)
	rep.Indexes = len(indexes)
	b, err := q.a.pool.Get(ctx)
	if err != nil {
		return rep, err
	}
	defer b.Release()
	q.buf = b.Bytes()
	hashKey := index.IndexKey(q.topic, q.key)
	seen := map[int64]bool{}
	var errs []error
	for _, rec := range indexes {
		if len(rep.Messages) >= q.max {
			break
		}
		hits, searched, err := q.lookup(ctx, rec, hashKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("compacted index %s on %s: %w", rec.Key, rec.Tier, err))
			continue
		}
		if searched {
			rep.Searched++
		}
		rep.Hits += len(hits)
		for _, h := range hits {
			if len(rep.Messages) >= q.max || seen[h.PhyOffset] {
				continue
			}
			seen[h.PhyOffset] = true
			m, ok, err := q.message(ctx, rec.Source, h.PhyOffset)
			if err != nil {
				errs = append(errs, fmt.Errorf("message at offset %d (index %s): %w", h.PhyOffset, rec.Key, err))
				continue
			}
			if !ok {
				rep.Collisions++
				continue
			}
			m.Index = string(rec.Key)
			rep.Messages = append(rep.Messages, m)
		}
	}
	return rep, errors.Join(errs...)
}

// pickIndexes returns one record per compacted IndexFile (from the first configured tier
// that holds it), newest file first.
func (q *query) pickIndexes(recs []catalog.Record) []catalog.Record {
	rank := map[string]int{}
	for i, t := range q.a.tiers {
		rank[t.Name] = i
	}
	best := map[string]catalog.Record{}
	for _, r := range recs {
		if r.Format != catalog.FormatTix {
			continue
		}
		id := r.Source + "\x00" + r.Rel
		if cur, ok := best[id]; !ok || rank[r.Tier] < rank[cur.Tier] {
			best[id] = r
		}
	}
	out := make([]catalog.Record, 0, len(best))
	for _, r := range best {
		out = append(out, r)
	}
	// IndexFiles are named by creation time: later names hold newer items.
	slices.SortFunc(out, func(a, b catalog.Record) int {
		return cmp.Or(cmp.Compare(b.Rel, a.Rel), cmp.Compare(a.Source, b.Source))
	})
	return out
}

// lookup asks one compacted index for the key: its header first (skipping it when its
// time range misses the query's), then the key's bucket.
func (q *query) lookup(ctx context.Context, rec catalog.Record, hashKey string) ([]index.TixItem, bool, error) {
	t, err := q.a.tier(rec.Tier)
	if err != nil {
		return nil, false, err
	}
	r, err := t.Backend.Open(ctx, rec.Key)
	if err != nil {
		return nil, false, err
	}
	defer r.Close()
	tx, err := index.OpenTix(r, r.Size())
	if err != nil {
		return nil, false, err
	}
	if !tx.Header().Overlaps(q.begin, q.end) {
		return nil, false, nil
	}
	hits, err := tx.Lookup(hashKey, q.begin, q.end, 0, q.buf)
	return hits, true, err
}

// message reads the message at commit-log offset phy of source and reports whether it is
// one of the query's (topic and key match; other keys share hashes).
func (q *query) message(ctx context.Context, source string, phy int64) (queryMessage, bool, error) {
	f, start, err := q.commitLog(ctx, source, phy)
	if err != nil {
		return queryMessage{}, false, err
	}
	off := phy - start
	if off < 0 || off >= f.size {
		return queryMessage{}, false, fmt.Errorf("offset %d is outside its commit-log file (%d bytes from %d)", phy, f.size, start)
	}
	// One read of up to 4 KiB usually holds the whole message; a larger one takes a second.
	head := q.buf[:min(4096, f.size-off)]
	if _, err := f.r.ReadAt(head, off); err != nil && !errors.Is(err, io.EOF) {
		return queryMessage{}, false, fmt.Errorf("read commit log (%s): %w", f.from, err)
	}
	if len(head) < 4 {
		return queryMessage{}, false, fmt.Errorf("%w: %d bytes left in the commit-log file at offset %d", record.ErrCorrupt, len(head), phy)
	}
	total := int64(int32(binary.BigEndian.Uint32(head)))
	switch {
	case total < record.MinMessageSize || total > record.MaxMessageSize+record.MaxMessageOverhead || total > f.size-off:
		return queryMessage{}, false, fmt.Errorf("%w: TOTALSIZE %d at offset %d (%s)", record.ErrCorrupt, total, phy, f.from)
	case total > int64(len(q.buf)):
		return queryMessage{}, false, fmt.Errorf("message of %d bytes at offset %d is larger than a pool buffer (memory.buffer_size)", total, phy)
	}
	msg := q.buf[:total]
	if total > int64(len(head)) {
		if _, err := f.r.ReadAt(msg, off); err != nil && !errors.Is(err, io.EOF) {
			return queryMessage{}, false, fmt.Errorf("read commit log (%s): %w", f.from, err)
		}
	}
	m, _, err := record.DecodeMessage(msg)
	if err != nil {
		return queryMessage{}, false, fmt.Errorf("decode message at offset %d (%s): %w", phy, f.from, err)
	}
	if m.PhysicalOffset != phy {
		return queryMessage{}, false, fmt.Errorf("%w: the message at offset %d says it is at %d (%s)", record.ErrCorrupt, phy, m.PhysicalOffset, f.from)
	}
	keys := m.Keys()
	if m.Topic != q.topic || (!slices.Contains(keys, q.key) && m.UniqKey() != q.key) {
		return queryMessage{}, false, nil
	}
	return queryMessage{
		Topic: m.Topic, QueueID: m.QueueID, QueueOffset: m.QueueOffset, PhyOffset: phy,
		StoreTimestamp: m.StoreTimestamp, StoreTime: time.UnixMilli(m.StoreTimestamp).UTC(),
		Keys: keys, UniqKey: m.UniqKey(), BodySize: len(m.Body), From: f.from,
	}, true, nil
}

// commitLog opens (once) the commit-log file of source holding offset phy and returns it
// with its start offset: the local file while the broker has it, else a tier's copy.
func (q *query) commitLog(ctx context.Context, source string, phy int64) (*commitLogFile, int64, error) {
	src, size, err := q.rocketMQSource(source)
	if err != nil {
		return nil, 0, err
	}
	start := phy - phy%size
	rel := fmt.Sprintf("commitlog/%020d", start)
	id := source + "\x00" + rel
	if f := q.files[id]; f != nil {
		return f, start, nil
	}
	f, err := q.openCommitLog(ctx, src, source, rel)
	if err != nil {
		return nil, 0, err
	}
	q.files[id] = f
	return f, start, nil
}

func (q *query) openCommitLog(ctx context.Context, src daemon.Source, source, rel string) (*commitLogFile, error) {
	path, err := segment.LocalPath(src.Root, rel)
	if err != nil {
		return nil, err
	}
	// Small windows: a query reads a few KiB here and there, not whole files.
	r, err := localfile.Open(ctx, path, localfile.ReadOptions{Window: 64 << 10})
	if err == nil {
		return &commitLogFile{r: r, size: r.Size(), from: "local", c: r}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	key, err := segment.ObjectKey(q.a.cfg.Node, source, rel)
	if err != nil {
		return nil, err
	}
	t, info, err := q.a.findObject(ctx, key, q.tier)
	if err != nil {
		return nil, fmt.Errorf("commit-log file %s is neither local nor on a tier: %w", rel, err)
	}
	obj, err := t.Backend.Open(ctx, info.Key)
	if err != nil {
		return nil, err
	}
	return &commitLogFile{r: obj, size: obj.Size(), from: t.Name, c: obj}, nil
}

// rocketMQSource returns the configured source named name and its commit-log file size.
func (q *query) rocketMQSource(name string) (daemon.Source, int64, error) {
	for i, s := range q.a.cfg.Sources {
		if s.Name != name {
			continue
		}
		if s.RocketMQ == nil {
			return daemon.Source{}, 0, fmt.Errorf("source %s is not a rocketmq source", name)
		}
		size := s.RocketMQ.CommitLogFileSize.Int64()
		if size <= 0 {
			size = source.DefaultCommitLogFileSize
		}
		return q.a.srcs[i], size, nil
	}
	return daemon.Source{}, 0, fmt.Errorf("source %s is no longer configured", name)
}
