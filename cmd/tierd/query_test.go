package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/devtools/brokersim"
	"github.com/tierd/tierd/index"
)

// TestQuery: after run --once has offloaded a RocketMQ store (IndexFiles compacted),
// `tierd query` finds messages by key and by message id through the compacted indexes on
// the tier, exactly those the chain walks on the sealed local IndexFiles point at; reads
// them locally, or from the tier once the local commit-log file is gone; honours
// --since/--until; and filters out messages of other keys with the same hash.
func TestQuery(t *testing.T) {
	w, sum := offloadedStore(t)
	ctx := context.Background()
	var sealedIdx []*index.IndexFile
	for _, f := range sum.Files {
		if f.Kind == brokersim.KindIndexFile && !f.Active {
			b, err := os.ReadFile(filepath.Join(w.store, f.Path))
			if err != nil {
				t.Fatal(err)
			}
			ix, err := index.OpenIndexFile(bytes.NewReader(b), int64(len(b)), 64, 256)
			if err != nil {
				t.Fatal(err)
			}
			sealedIdx = append(sealedIdx, ix)
		}
	}
	byPhy := map[int64]brokersim.RocketMQMessage{}
	for _, m := range sum.Written {
		byPhy[m.PhyOffset] = m
	}
	// expect returns the offsets of the messages of topic with key (in KEYS or UNIQ_KEY)
	// that the sealed IndexFiles' chain walks find, newest first.
	expect := func(topic, key string, begin, end int64) []int64 {
		var out []int64
		for i := len(sealedIdx) - 1; i >= 0; i-- {
			items, err := sealedIdx[i].Lookup(index.IndexKey(topic, key), begin, end, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				m := byPhy[it.PhyOffset]
				if m.Topic == topic && (slices.Contains(m.Keys, key) || m.UniqKey == key) && !slices.Contains(out, it.PhyOffset) {
					out = append(out, it.PhyOffset)
				}
			}
		}
		return out
	}
	query := func(args ...string) (queryReport, string) {
		t.Helper()
		code, out, errs := cli(t, ctx, append([]string{"-c", w.cfg, "query", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("query %v: exit %d: %s", args, code, errs)
		}
		var rep queryReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("query --json: %v: %s", err, out)
		}
		return rep, errs
	}
	phys := func(rep queryReport) []int64 {
		var out []int64
		for _, m := range rep.Messages {
			out = append(out, m.PhyOffset)
		}
		return out
	}

	// A shared customer key: several messages, newest first, as the chain walks find them.
	m := sum.Written[40]
	var cust string
	for _, k := range m.Keys {
		if strings.HasPrefix(k, "cust-") {
			cust = k
		}
	}
	for i := 41; cust == ""; i++ {
		m = sum.Written[i]
		for _, k := range m.Keys {
			if strings.HasPrefix(k, "cust-") {
				cust = k
			}
		}
	}
	want := expect(m.Topic, cust, math.MinInt64, math.MaxInt64)
	rep, _ := query("--topic", m.Topic, "--key", cust)
	if len(want) == 0 || !slices.Equal(phys(rep), want) {
		t.Fatalf("query %s %s: %v, chain walks %v", m.Topic, cust, phys(rep), want)
	}
	got := rep.Messages[slices.Index(phys(rep), m.PhyOffset)]
	if got.QueueID != m.QueueID || got.QueueOffset != m.QueueOffset || got.StoreTimestamp != m.StoreTimestamp || got.BodySize != 200 ||
		got.From != "local" || !slices.Equal(got.Keys, m.Keys) || got.UniqKey != m.UniqKey || rep.Searched == 0 || rep.Searched > rep.Indexes {
		t.Fatalf("message %+v, want %+v (report %+v)", got, m, rep)
	}
	// By message id.
	if rep, _ := query("--topic", m.Topic, "--key", m.UniqKey); !slices.Equal(phys(rep), []int64{m.PhyOffset}) {
		t.Fatalf("query by id: %v", phys(rep))
	}
	// Time range: exactly the item's time (the IndexFile keeps whole seconds from its
	// first item's time), then a range ending just before it.
	var itemTime int64 = -1
	for _, ix := range sealedIdx {
		items, _ := ix.Lookup(index.IndexKey(m.Topic, m.UniqKey), math.MinInt64, math.MaxInt64, 0)
		for _, it := range items {
			if it.PhyOffset == m.PhyOffset {
				itemTime = ix.ItemTime(it)
			}
		}
	}
	if itemTime < 0 {
		t.Fatal("BUG: the message's id is in no sealed IndexFile")
	}
	rep, _ = query("--topic", m.Topic, "--key", m.UniqKey, "--since", time.UnixMilli(itemTime).Format(time.RFC3339Nano), "--until", strconv.FormatInt(itemTime, 10))
	if !slices.Equal(phys(rep), []int64{m.PhyOffset}) {
		t.Fatalf("query at the item's time: %v", phys(rep))
	}
	rep, _ = query("--topic", m.Topic, "--key", m.UniqKey, "--until", strconv.FormatInt(itemTime-1, 10))
	if len(rep.Messages) != 0 || rep.Searched != 0 && rep.Hits != 0 {
		t.Fatalf("query before the message: %+v", rep)
	}
	// --max.
	if len(want) > 1 {
		if rep, _ := query("--topic", m.Topic, "--key", cust, "--max", "1"); !slices.Equal(phys(rep), want[:1]) {
			t.Fatalf("--max 1: %v", phys(rep))
		}
	}
	// A key with the same Java hash as the message id: the index points at the message,
	// which query then leaves out.
	u := []rune(m.UniqKey)
	n := len(u)
	u[n-2], u[n-1] = u[n-2]+1, u[n-1]-31
	twin := string(u)
	if index.KeyHash(index.IndexKey(m.Topic, twin)) != index.KeyHash(index.IndexKey(m.Topic, m.UniqKey)) {
		t.Fatal("BUG: the twin key does not collide")
	}
	rep, _ = query("--topic", m.Topic, "--key", twin)
	if len(rep.Messages) != 0 || rep.Collisions == 0 {
		t.Fatalf("colliding key: %+v", rep)
	}
	// The local commit-log file is gone: the message is read from the tier.
	clFile := filepath.Join(w.store, "commitlog", fmt.Sprintf("%020d", m.PhyOffset-m.PhyOffset%(256<<10)))
	if err := os.Remove(clFile); err != nil {
		t.Fatal(err)
	}
	rep, _ = query("--topic", m.Topic, "--key", m.UniqKey, "--tier", "hdd")
	if len(rep.Messages) != 1 || rep.Messages[0].From != "hdd" || rep.Messages[0].QueueOffset != m.QueueOffset {
		t.Fatalf("query with the commit log on the tier only: %+v", rep)
	}
	// Text output, and bad usage.
	code, out, _ := cli(t, ctx, "-c", w.cfg, "query", "--topic", m.Topic, "--key", m.UniqKey)
	if code != 0 || !strings.Contains(out, "QUEUE OFFSET") || !strings.Contains(out, strconv.FormatInt(m.QueueOffset, 10)) || !strings.Contains(out, "1 messages") {
		t.Fatalf("query text: exit %d: %s", code, out)
	}
	for _, args := range [][]string{{"--key", "x"}, {"--topic", "T"}, {"--topic", "T", "--key", "k", "--since", "yesterday"}, {"--topic", "T", "--key", "k", "--tier", "nope"}} {
		if code, _, errs := cli(t, ctx, append([]string{"-c", w.cfg, "query"}, args...)...); code != 2 {
			t.Errorf("query %v: exit %d, want 2: %s", args, code, errs)
		}
	}
}

// offloadedStore makes a brokersim RocketMQ store of 2 topics x 2 queues, 2,000 messages
// (kept in the summary), 64-slot 256-item IndexFiles, and offloads it with run --once.
func offloadedStore(t *testing.T) (*world, brokersim.RocketMQSummary) {
	t.Helper()
	w := newWorld(t, "rocketmq", "")
	ctx := context.Background()
	sum, err := brokersim.RocketMQ(ctx, brokersim.RocketMQOptions{
		Dir: w.store, Topics: 2, Queues: 2, Messages: 2000, CommitLogSize: 256 << 10, CQSize: 6000,
		IndexSlots: 64, IndexItems: 256, BodySize: 200, PreallocateNext: true, KeepMessages: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "run", "--once"); code != 0 {
		t.Fatalf("run --once: exit %d: %s", code, errs)
	}
	return w, sum
}
