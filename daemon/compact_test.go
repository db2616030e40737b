package daemon

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/devtools/brokersim"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/source"
)

// TestCompactsIndexFiles: on a brokersim store the daemon offloads every sealed IndexFile
// compacted (.tix, catalog format tix, the local file kept), and every message key
// brokersim indexed in a sealed file is found through the compacted objects, at the
// message's offset, exactly as the chain walk on the local file finds it.
func TestCompactsIndexFiles(t *testing.T) {
	e := newEnv(t)
	os.Remove(e.root)
	sum, err := brokersim.RocketMQ(context.Background(), brokersim.RocketMQOptions{
		Dir: e.root, Topics: 2, Queues: 2, Messages: 300, CommitLogSize: clSize, CQSize: cqSize,
		IndexSlots: idxSlots, IndexItems: idxItems, BodySize: 100, KeepMessages: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := e.daemon(func(c *Config) { c.Sources[0].SealGrace = 0 }).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var tixes []*index.Tix
	var originals []*index.IndexFile
	sealed := 0
	for _, f := range sum.Files {
		if f.Kind != brokersim.KindIndexFile {
			continue
		}
		key := segment.Key(testNode + "/" + testSrc + "/" + f.Path + segment.CompactedSuffix)
		obj := filepath.Join(e.tierDir, string(key))
		if f.Active {
			if _, err := os.Stat(obj); err == nil {
				t.Fatalf("active IndexFile %s was offloaded", f.Path)
			}
			continue
		}
		sealed++
		local, err := os.ReadFile(filepath.Join(e.root, f.Path))
		if err != nil {
			t.Fatalf("local IndexFile %s: %v", f.Path, err)
		}
		got, err := os.ReadFile(obj)
		if err != nil {
			t.Fatalf("sealed IndexFile %s not on the tier: %v", f.Path, err)
		}
		checkCompacted(t, local, got)
		rec, err := e.cat.Get("hdd", key)
		if err != nil || rec.Format != catalog.FormatTix || rec.LocalSize != int64(len(local)) || rec.Size >= rec.LocalSize {
			t.Fatalf("record of %s: %+v, %v", key, rec, err)
		}
		tx, err := index.OpenTix(bytes.NewReader(got), int64(len(got)))
		if err != nil {
			t.Fatal(err)
		}
		ix, err := index.OpenIndexFile(bytes.NewReader(local), int64(len(local)), idxSlots, idxItems)
		if err != nil {
			t.Fatal(err)
		}
		tixes, originals = append(tixes, tx), append(originals, ix)
	}
	if sealed < 5 {
		t.Fatalf("only %d sealed IndexFiles: the store is too small for the test", sealed)
	}
	// Every key of every message: found through the compacted indexes wherever the chain
	// walk on the local files finds it, and at least once if it went to a sealed file.
	found := 0
	for _, m := range sum.Written {
		for _, k := range m.IndexKeys() {
			var walk, got []int64
			for i := range tixes {
				w, err := originals[i].Lookup(k, math.MinInt64, math.MaxInt64, 0)
				if err != nil {
					t.Fatal(err)
				}
				g, err := tixes[i].Lookup(k, math.MinInt64, math.MaxInt64, 0, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range w {
					walk = append(walk, it.PhyOffset)
				}
				for _, it := range g {
					got = append(got, it.PhyOffset)
				}
			}
			if !slices.Equal(walk, got) {
				t.Fatalf("key %s: compacted lookups %v, chain walks %v", k, got, walk)
			}
			if slices.Contains(got, m.PhyOffset) {
				found++
			}
		}
	}
	if found < len(sum.Written) {
		t.Fatalf("found %d message keys through the compacted indexes, want most of %d messages' keys", found, len(sum.Written))
	}
}

// TestTrimsKafkaIndexes: a sealed segment's offset index left with a zero-filled tail (an
// unclean shutdown) is offloaded without it (catalog format trim); a sealed time index
// whose timestamps go backwards is not offloaded, with an error that says why.
func TestTrimsKafkaIndexes(t *testing.T) {
	e := newEnv(t)
	os.Remove(e.root)
	sum, err := brokersim.Kafka(context.Background(), brokersim.KafkaOptions{
		Dir: e.root, Topics: 1, Partitions: 1, Records: 3000, SegmentBytes: 64 << 10, RecordSize: 100, MaxIndexSize: 16 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	var offsetIdx, timeIdx []string
	for _, f := range sum.Files {
		switch {
		case f.Active:
		case f.Kind == brokersim.KindKafkaIndex:
			offsetIdx = append(offsetIdx, f.Path)
		case f.Kind == brokersim.KindKafkaTimeIndex:
			timeIdx = append(timeIdx, f.Path)
		}
	}
	if len(offsetIdx) < 2 || len(timeIdx) < 2 {
		t.Fatalf("store too small: %d sealed offset indexes, %d time indexes", len(offsetIdx), len(timeIdx))
	}
	// Unclean shutdown: the first offset index keeps a preallocated zero tail.
	untrimmed := filepath.Join(e.root, offsetIdx[0])
	used, _ := os.ReadFile(untrimmed)
	if err := os.Truncate(untrimmed, int64(len(used))+4096); err != nil {
		t.Fatal(err)
	}
	// Corruption: the second time index's last timestamp goes back before its first.
	corrupt := filepath.Join(e.root, timeIdx[1])
	b, _ := os.ReadFile(corrupt)
	if len(b) < 2*index.TimeEntrySize {
		t.Fatalf("time index %s has %d bytes", timeIdx[1], len(b))
	}
	binary.BigEndian.PutUint64(b[len(b)-index.TimeEntrySize:], 1)
	os.WriteFile(corrupt, b, 0o644)
	for _, p := range []string{untrimmed, corrupt} {
		old := time.Now().Add(-time.Hour)
		os.Chtimes(p, old, old)
	}
	layout, err := source.NewLayout(source.LayoutKafka, source.LayoutOptions{Source: testSrc})
	if err != nil {
		t.Fatal(err)
	}
	d := e.daemon(func(c *Config) { c.Sources[0].Layout, c.Sources[0].SealGrace = layout, 0 })
	err = d.RunOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not a valid kafka-time-index") || !strings.Contains(err.Error(), filepath.Base(timeIdx[1])) {
		t.Fatalf("RunOnce = %v; want the corrupt time index reported", err)
	}
	key := segment.Key(testNode + "/" + testSrc + "/" + offsetIdx[0])
	got, err := os.ReadFile(filepath.Join(e.tierDir, string(key)))
	if err != nil || !bytes.Equal(got, used) {
		t.Fatalf("trimmed offset index: %d bytes (%v), want the %d used bytes", len(got), err, len(used))
	}
	local, _ := os.ReadFile(untrimmed)
	rec, err := e.cat.Get("hdd", key)
	if err != nil || rec.Format != catalog.FormatTrimmed || rec.Size != int64(len(used)) || rec.LocalSize != int64(len(local)) ||
		rec.CRC32C != crc32.Checksum(used, segment.Castagnoli) || rec.LocalCRC32C != crc32.Checksum(local, segment.Castagnoli) {
		t.Fatalf("record %+v, %v", rec, err)
	}
	// A trimmed index that had no tail is byte for byte the local file.
	key = segment.Key(testNode + "/" + testSrc + "/" + offsetIdx[1])
	want, _ := os.ReadFile(filepath.Join(e.root, offsetIdx[1]))
	if got, err := os.ReadFile(filepath.Join(e.tierDir, string(key))); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s on the tier: %v", key, err)
	}
	if _, err := os.Stat(filepath.Join(e.tierDir, testNode, testSrc, timeIdx[1])); err == nil {
		t.Fatal("the corrupt time index was offloaded")
	}
}

// TestRecoverRedoesCompacted: a crash after a compacted index was committed but before
// it was recorded leaves an intent and an object that cannot be checked cheaply against
// the local file: recovery deletes it and the next pass compacts the file again.
func TestRecoverRedoesCompacted(t *testing.T) {
	e := newEnv(t)
	sealed, _ := store(t, e.root)
	ctx := context.Background()
	idx := sealed[2]
	rel, _ := filepath.Rel(e.root, idx)
	rel = filepath.ToSlash(rel)
	key, _ := segment.CompactedKey(testNode, testSrc, rel)
	if _, err := e.cat.Begin(catalog.Intent{Tier: "hdd", Key: key, Source: testSrc, Rel: rel, Kind: string(segment.KindIndex), Op: catalog.OpOffload}); err != nil {
		t.Fatal(err)
	}
	w, _ := e.tier.Create(ctx, key, 5)
	w.Write([]byte("stale"))
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	e.cat.StartRun()
	d := e.daemon(func(c *Config) { c.Sources[0].SealGrace = 100 * time.Hour }) // recover only
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tier.Stat(ctx, key); err == nil {
		t.Fatal("the unverifiable compacted object was kept")
	}
	if ints, _ := e.cat.Intents(); len(ints) != 0 {
		t.Fatalf("intents left: %+v", ints)
	}
	if err := e.daemon().RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	local, _ := os.ReadFile(idx)
	got, err := os.ReadFile(filepath.Join(e.tierDir, string(key)))
	if err != nil {
		t.Fatal(err)
	}
	checkCompacted(t, local, got)
}
