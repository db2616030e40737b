package brokersim

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/record"
)

var testStart = time.Date(2026, 11, 21, 8, 15, 0, 123e6, time.UTC)

func smallRocketMQ(t *testing.T) RocketMQOptions {
	return RocketMQOptions{
		Dir:           filepath.Join(t.TempDir(), "store"),
		Topics:        2,
		Queues:        3,
		Messages:      3000,
		CommitLogSize: 256 << 10,
		CQSize:        100 * record.CQEntrySize,
		IndexSlots:    64,
		IndexItems:    256,
		BodySize:      100,
		Seed:          1,
		Start:         testStart,
		Interval:      7 * time.Millisecond,
		Location:      time.UTC,
		KeepMessages:  true,
	}
}

func TestRocketMQStore(t *testing.T) {
	o := smallRocketMQ(t)
	sum, err := RocketMQ(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != o.Messages || len(sum.Written) != int(o.Messages) {
		t.Fatalf("%d messages, %d listed", sum.Messages, len(sum.Written))
	}
	st := verifyRocketMQ(t, o, sum)
	if st.commitLogs < 4 || st.sealedCQ == 0 || st.indexFiles < 3 || st.sharedKeys == 0 || st.nonASCII == 0 {
		t.Fatalf("store too small to test rolling: %+v", st)
	}
}

type rmqStats struct {
	commitLogs, sealedCQ, indexFiles, sharedKeys, nonASCII int
}

func open(t *testing.T, dir, rel string) (*os.File, int64) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, fi.Size()
}

func filesOf(sum []File, kind FileKind, prefix string) []File {
	var out []File
	for _, f := range sum {
		if f.Kind == kind && strings.HasPrefix(f.Path, prefix) {
			out = append(out, f)
		}
	}
	return out
}

// verifyRocketMQ reads the whole store back with record and index and checks it against
// the summary.
func verifyRocketMQ(t *testing.T, o RocketMQOptions, sum RocketMQSummary) rmqStats {
	t.Helper()
	var st rmqStats
	byPhy := map[int64]RocketMQMessage{}
	for _, m := range sum.Written {
		byPhy[m.PhyOffset] = m
	}

	// Commit log: consecutive files named by start offset, full size, every message
	// decodes to what was written, a BLANK at the end of each sealed file.
	cls := filesOf(sum.Files, KindCommitLog, "commitlog/")
	st.commitLogs = len(cls)
	n := 0
	for i, cf := range cls {
		if want := "commitlog/" + offsetName(int64(i)*o.CommitLogSize); cf.Path != want {
			t.Fatalf("commit-log file %d is %s, want %s", i, cf.Path, want)
		}
		active := i == len(cls)-1
		if cf.Active != active || cf.Size != o.CommitLogSize {
			t.Fatalf("%s: active %v size %d", cf.Path, cf.Active, cf.Size)
		}
		f, size := open(t, o.Dir, cf.Path)
		r := record.NewMessageReader(f, 0, size, nil)
		for {
			m, err := r.Next()
			if err == record.ErrBlank {
				if active || r.Pos() != size {
					t.Fatalf("%s: BLANK at %d ends at %d (active %v)", cf.Path, r.Offset(), r.Pos(), active)
				}
				if left := size - r.Offset(); left < record.EndFileMinBlankLength {
					t.Fatalf("%s: BLANK of %d bytes", cf.Path, left)
				}
				break
			}
			if err == io.EOF {
				if !active {
					t.Fatalf("%s: sealed file without BLANK", cf.Path)
				}
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", cf.Path, err)
			}
			phy := int64(i)*o.CommitLogSize + r.Offset()
			w, ok := byPhy[phy]
			if !ok || m.PhysicalOffset != phy || m.Topic != w.Topic || m.QueueID != w.QueueID ||
				m.QueueOffset != w.QueueOffset || m.StoreTimestamp != w.StoreTimestamp ||
				m.UniqKey() != w.UniqKey || m.Tags() != w.Tags || strings.Join(m.Keys(), " ") != strings.Join(w.Keys, " ") ||
				len(m.Body) != o.BodySize {
				t.Fatalf("message at %d: %+v, written %+v", phy, m, w)
			}
			n++
		}
	}
	if n != len(sum.Written) {
		t.Fatalf("read %d messages, wrote %d", n, len(sum.Written))
	}
	readMsg := func(phy int64, size int32) record.Message {
		t.Helper()
		f, _ := open(t, o.Dir, "commitlog/"+offsetName(phy/o.CommitLogSize*o.CommitLogSize))
		b := make([]byte, size)
		if _, err := f.ReadAt(b, phy%o.CommitLogSize); err != nil {
			t.Fatal(err)
		}
		m, _, err := record.DecodeMessage(b)
		if err != nil {
			t.Fatalf("message at %d: %v", phy, err)
		}
		return m
	}

	// Consume queues: entry k of topic/queue points at that queue's k-th message.
	perQueue := map[string][]RocketMQMessage{}
	for _, m := range sum.Written {
		k := m.Topic + "/" + string(rune('0'+m.QueueID))
		perQueue[k] = append(perQueue[k], m)
	}
	for k, msgs := range perQueue {
		cqs := filesOf(sum.Files, KindConsumeQueue, "consumequeue/"+k+"/")
		seen := 0
		for i, cf := range cqs {
			if want := "consumequeue/" + k + "/" + offsetName(int64(i)*o.CQSize); cf.Path != want || cf.Size != o.CQSize {
				t.Fatalf("queue file %s (size %d), want %s", cf.Path, cf.Size, want)
			}
			f, size := open(t, o.Dir, cf.Path)
			b := make([]byte, size)
			if _, err := f.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			for off := 0; off < len(b); off += record.CQEntrySize {
				e, _ := record.DecodeCQEntry(b[off:])
				if e.IsZero() {
					if !cf.Active {
						t.Fatalf("%s: zero entry in a sealed queue file", cf.Path)
					}
					if !allZero(b[off:]) {
						t.Fatalf("%s: data after the zero tail", cf.Path)
					}
					break
				}
				w := msgs[seen]
				if e.CommitLogOffset != w.PhyOffset || e.Size != w.Size || e.TagsCode != record.TagsCode(w.Tags) {
					t.Fatalf("%s entry %d: %+v, message %+v", cf.Path, off/20, e, w)
				}
				if m := readMsg(e.CommitLogOffset, e.Size); m.Topic+"/"+string(rune('0'+m.QueueID)) != k || m.QueueOffset != int64(seen) {
					t.Fatalf("%s entry %d points at %s/%d offset %d", cf.Path, off/20, m.Topic, m.QueueID, m.QueueOffset)
				}
				seen++
			}
			if !cf.Active {
				st.sealedCQ++
			}
		}
		if seen != len(msgs) {
			t.Fatalf("queue %s: %d entries, %d messages", k, seen, len(msgs))
		}
	}

	// IndexFiles: names are increasing creation times, sealed files are full, and every
	// indexed key of every message is found with its offset.
	ixs := filesOf(sum.Files, KindIndexFile, "index/")
	st.indexFiles = len(ixs)
	var files []*index.IndexFile
	items := 0
	for i, xf := range ixs {
		name := strings.TrimPrefix(xf.Path, "index/")
		if _, err := time.ParseInLocation("20060102150405.000", name[:14]+"."+name[14:], o.Location); err != nil || len(name) != 17 {
			t.Fatalf("index file name %q: %v", name, err)
		}
		if i > 0 && name <= strings.TrimPrefix(ixs[i-1].Path, "index/") {
			t.Fatalf("index names not increasing: %s", name)
		}
		f, size := open(t, o.Dir, xf.Path)
		ix, err := index.OpenIndexFile(f, size, o.IndexSlots, o.IndexItems)
		if err != nil {
			t.Fatalf("%s: %v", xf.Path, err)
		}
		if full := int(ix.Header().IndexCount) == o.IndexItems; full == xf.Active {
			t.Fatalf("%s: active %v, header %+v", xf.Path, xf.Active, ix.Header())
		}
		var last int64 = -1
		if err := ix.Items(nil, func(slot int, it index.Item) error {
			if it.PhyOffset < last {
				t.Fatalf("%s: item %d goes back to offset %d", xf.Path, it.Number, it.PhyOffset)
			}
			last = it.PhyOffset
			if _, ok := byPhy[it.PhyOffset]; !ok {
				t.Fatalf("%s: item %d points at %d, no message there", xf.Path, it.Number, it.PhyOffset)
			}
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", xf.Path, err)
		}
		items += ix.Len()
		files = append(files, ix)
	}
	keyCount := map[string]int{}
	wantItems := 0
	for _, m := range sum.Written {
		for _, k := range m.IndexKeys() {
			keyCount[k]++
			wantItems++
		}
	}
	if items != wantItems {
		t.Fatalf("%d index items, %d keys written", items, wantItems)
	}
	for _, m := range sum.Written {
		for _, k := range m.IndexKeys() {
			if keyCount[k] > 1 {
				st.sharedKeys++
			}
			if strings.ContainsFunc(k, func(r rune) bool { return r > 127 }) {
				st.nonASCII++
			}
			found := false
			for _, ix := range files {
				if h := ix.Header(); m.PhyOffset < h.BeginPhyOffset || m.PhyOffset > h.EndPhyOffset {
					continue // the file holds no item of this message
				}
				got, err := ix.Lookup(k, m.StoreTimestamp-1000, m.StoreTimestamp+1000, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range got {
					found = found || it.PhyOffset == m.PhyOffset
				}
			}
			if !found {
				t.Fatalf("key %q of message at %d not found", k, m.PhyOffset)
			}
		}
	}

	// Meta files: present, never segments.
	for _, name := range rocketMQMetaFiles {
		if fs := filesOf(sum.Files, KindMeta, name); len(fs) == 0 || fs[0].Path != name || fs[0].Active {
			t.Fatalf("meta file %s: %+v", name, fs)
		}
	}
	cp, err := os.ReadFile(filepath.Join(o.Dir, "checkpoint"))
	if err != nil || len(cp) != 4096 {
		t.Fatalf("checkpoint: %d bytes, %v", len(cp), err)
	}
	if len(sum.Written) > 0 {
		lastTs := sum.Written[len(sum.Written)-1].StoreTimestamp
		if got := int64(binary.BigEndian.Uint64(cp)); got != lastTs {
			t.Fatalf("checkpoint physicMsgTimestamp %d, want %d", got, lastTs)
		}
	}
	var topics struct {
		TopicConfigTable map[string]struct {
			TopicName      string `json:"topicName"`
			WriteQueueNums int    `json:"writeQueueNums"`
		} `json:"topicConfigTable"`
	}
	b, err := os.ReadFile(filepath.Join(o.Dir, "config", "topics.json"))
	if err != nil || json.Unmarshal(b, &topics) != nil || len(topics.TopicConfigTable) != o.Topics {
		t.Fatalf("topics.json: %s %v", b, err)
	}
	return st
}

func allZero(b []byte) bool {
	return bytes.Count(b, []byte{0}) == len(b)
}

func TestRocketMQDeterministic(t *testing.T) {
	o1 := smallRocketMQ(t)
	o1.Messages = 500
	o2 := o1
	o2.Dir = filepath.Join(t.TempDir(), "store2")
	s1, err := RocketMQ(context.Background(), o1)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := RocketMQ(context.Background(), o2)
	if err != nil {
		t.Fatal(err)
	}
	if len(s1.Files) != len(s2.Files) {
		t.Fatalf("%d files vs %d", len(s1.Files), len(s2.Files))
	}
	for i, f := range s1.Files {
		if f.Kind == KindMeta {
			continue // config carries the wall-clock time
		}
		a, _ := os.ReadFile(filepath.Join(o1.Dir, f.Path))
		b, _ := os.ReadFile(filepath.Join(o2.Dir, s2.Files[i].Path))
		if f.Path != s2.Files[i].Path || !bytes.Equal(a, b) {
			t.Fatalf("%s differs between runs", f.Path)
		}
	}
	o3 := o1
	o3.Dir, o3.Seed = filepath.Join(t.TempDir(), "store3"), 2
	if _, err := RocketMQ(context.Background(), o3); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(o1.Dir, "commitlog", offsetName(0)))
	b, _ := os.ReadFile(filepath.Join(o3.Dir, "commitlog", offsetName(0)))
	if bytes.Equal(a, b) {
		t.Fatal("another seed wrote the same commit log")
	}
}

func TestRocketMQPreallocateNext(t *testing.T) {
	o := smallRocketMQ(t)
	o.Messages = 1000
	o.PreallocateNext = true
	sum, err := RocketMQ(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	cls := filesOf(sum.Files, KindCommitLog, "")
	if len(cls) < 3 {
		t.Fatalf("%d commit-log files", len(cls))
	}
	for i, f := range cls {
		if want := i >= len(cls)-2; f.Active != want || f.Size != o.CommitLogSize || f.Path != "commitlog/"+offsetName(int64(i)*o.CommitLogSize) {
			t.Fatalf("file %d: %+v", i, f)
		}
	}
	b, err := os.ReadFile(filepath.Join(o.Dir, cls[len(cls)-1].Path))
	if err != nil || !allZero(b) {
		t.Fatalf("file created ahead is not empty (%v)", err)
	}
	// The rest of the store reads back as usual, minus the empty file.
	var trimmed []File
	for _, f := range sum.Files {
		if f.Path != cls[len(cls)-1].Path {
			trimmed = append(trimmed, f)
		}
	}
	sum.Files = trimmed
	verifyRocketMQ(t, o, sum)
}

func TestRocketMQContinuous(t *testing.T) {
	o := smallRocketMQ(t)
	o.Messages = 50
	o.Start = time.Time{} // ends about now, so continuous times follow on
	o.Rate = 3000
	o.Duration = 400 * time.Millisecond
	o.FlushInterval = 50 * time.Millisecond
	begin := time.Now()
	sum, err := RocketMQ(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took < o.Duration {
		t.Fatalf("took %v", took)
	}
	// 1200 due in 400 ms; allow for a slow machine but require most of them.
	if sum.Messages < 50+600 || sum.Messages > 50+1200 {
		t.Fatalf("%d messages", sum.Messages)
	}
	verifyRocketMQ(t, o, sum)
	for i := 1; i < len(sum.Written); i++ {
		if sum.Written[i].StoreTimestamp < sum.Written[i-1].StoreTimestamp {
			t.Fatalf("store time goes back at message %d", i)
		}
	}
}

func TestRocketMQStopsOnCancel(t *testing.T) {
	o := smallRocketMQ(t)
	o.Messages = 10
	o.Start = time.Time{}
	o.Rate = 500
	o.Duration = 0 // until cancelled
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	sum, err := RocketMQ(ctx, o)
	if err != nil {
		t.Fatalf("cancelled continuous run: %v", err)
	}
	verifyRocketMQ(t, o, sum)

	// Cancelled during the initial phase: the error, and what was written is consistent.
	o = smallRocketMQ(t)
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := RocketMQ(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("initial phase: %v", err)
	}
}

func TestRocketMQOptionErrors(t *testing.T) {
	f := func(mut func(o *RocketMQOptions), want ...string) {
		t.Helper()
		o := smallRocketMQ(t)
		mut(&o)
		_, err := RocketMQ(context.Background(), o)
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Fatalf("err = %v, want %q", err, w)
			}
		}
	}
	f(func(o *RocketMQOptions) { o.Dir = "" }, "dir: required")
	f(func(o *RocketMQOptions) { o.CQSize = 30; o.IndexItems = 3 }, "cq-size: 30", "index-items: 3")
	f(func(o *RocketMQOptions) { o.CommitLogSize = 500 }, "commitlog-size: 500")
	f(func(o *RocketMQOptions) { o.BodySize = 5 << 20 }, "body-size")
	f(func(o *RocketMQOptions) { o.Topics = -1; o.Rate = -1 }, "topics", "rate")
	f(func(o *RocketMQOptions) {
		if err := os.MkdirAll(filepath.Join(o.Dir, "commitlog"), 0o755); err != nil {
			t.Fatal(err)
		}
	}, "not empty")
}

// TestKeyHashMinValueInStore puts a key whose hash is Integer.MIN_VALUE through a store's
// IndexFile (slot 0) — the same writer brokersim uses.
func TestKeyHashMinValueInStore(t *testing.T) {
	if index.KeyHash("polygenelubricants") != 0 {
		t.Fatal("KeyHash")
	}
	p := filepath.Join(t.TempDir(), "idx")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := index.NewIndexFileWriter(f, 16, 32, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []string{"polygenelubricants", "x", "polygenelubricants"} {
		if err := w.Put(k, int64(i*100), 1_000_000); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	ix, err := index.OpenIndexFile(f, index.IndexFileSize(16, 32), 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ix.Lookup("polygenelubricants", 0, math.MaxInt64, 0)
	if err != nil || len(got) != 2 || got[0].PhyOffset != 200 || got[1].PhyOffset != 0 {
		t.Fatalf("%+v %v", got, err)
	}
	head, _ := ix.Slot(0)
	if head != 3 {
		t.Fatalf("slot 0 head %d", head)
	}
}
