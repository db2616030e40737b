package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/segment"
)

func TestMarkerKey(t *testing.T) {
	f := func(node string, key segment.Key, want string) {
		t.Helper()
		got, err := MarkerKey(node, key)
		if err != nil {
			t.Fatalf("MarkerKey(%q, %q): %v", node, key, err)
		}
		if string(got) != want {
			t.Fatalf("MarkerKey(%q, %q) = %q, want %q", node, key, got, want)
		}
	}
	f("broker-a", "broker-a/rmq/commitlog/00000000001073741824", "broker-a/_tierd/markers/rmq/commitlog/00000000001073741824.json")
	f("broker-a", "broker-a/rmq/index/20260101.tix", "broker-a/_tierd/markers/rmq/index/20260101.tix.json")
	f("n", "n/s/x", "n/_tierd/markers/s/x.json")

	bad := func(node string, key segment.Key, want string) {
		t.Helper()
		got, err := MarkerKey(node, key)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("MarkerKey(%q, %q) = %q, %v; want error containing %q", node, key, got, err, want)
		}
	}
	bad("broker-a", "broker-b/rmq/x", "not under node")
	bad("broker-a", "broker-ab/rmq/x", "not under node")
	bad("broker-a", "broker-a", "not under node")
	bad("broker-a", "broker-a/_tierd/markers/rmq/x.json", "tierd's own namespace")
	bad("broker-a", "broker-a/_tierd", "tierd's own namespace")
	bad("broker-a", "broker-a/../x", "invalid key")
	bad("", "x/y", "node name")
	bad("a/b", "a/b/c", "node name")
	bad("n", segment.Key("n/"+strings.Repeat("x", segment.MaxKeyLen-2)), "longer than")

	if got := MarkerPrefix("broker-a"); got != "broker-a/_tierd/markers/" {
		t.Fatalf("MarkerPrefix = %q", got)
	}
}

func TestMarkerRoundTrip(t *testing.T) {
	f := func(rec Record) {
		t.Helper()
		data, err := EncodeMarker(rec)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte(`{"v":1,`)) || bytes.Contains(data, []byte(`"tier"`)) {
			t.Fatalf("marker %s: want a version-1 record without a tier", data)
		}
		got, err := DecodeMarker(data)
		if err != nil {
			t.Fatalf("DecodeMarker(%s): %v", data, err)
		}
		want := rec.normalize()
		want.Tier = ""
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip = %+v\nwant %+v", got, want)
		}
	}
	f(testRecord("hdd", "rmq", "commitlog/0001", 1))
	f(tixRecord("s3", "rmq", "index/2026-01-01", 7))
	tr := testRecord("hdd", "kafka", "topic-0/00000000000000000000.index", 3)
	tr.Kind, tr.Format, tr.Size, tr.CRC32C = "kafka-offset-index", FormatTrimmed, 16, 0x77
	f(tr)
	r := testRecord("hdd", "kafka", "topic-0/00000000000000000000.log", 0)
	r.Size, r.LocalSize, r.CRC32C, r.LocalCRC32C = 0, 0, 0, 0
	r.SegmentModTime = r.SegmentModTime.AddDate(-2025, 0, 0) // year 1
	f(r)
	r.Size, r.LocalSize, r.CRC32C, r.LocalCRC32C = 1<<62, 1<<62, 0xffffffff, 0xffffffff
	f(r)

	if _, err := EncodeMarker(Record{}); err == nil {
		t.Fatal("EncodeMarker of an empty record succeeded")
	}
}

// validMarker is a marker that decodes; the tests below damage it.
const validMarker = `{"v":1,"key":"broker-a/rmq/commitlog/0001","src":"rmq","rel":"commitlog/0001","kind":"commitlog","fmt":"raw","size":10,"crc":7,"lsize":10,"lcrc":7,"offloaded":"2026-01-02T03:04:05Z"}`

func TestDecodeMarkerRejects(t *testing.T) {
	if _, err := DecodeMarker([]byte(validMarker)); err != nil {
		t.Fatalf("valid marker: %v", err)
	}
	f := func(data, want string) {
		t.Helper()
		rec, err := DecodeMarker([]byte(data))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("DecodeMarker(%.80q) = %+v, %v; want error containing %q", data, rec, err, want)
		}
	}
	edit := func(old, new string) string {
		if !strings.Contains(validMarker, old) {
			panic("BUG: test edits a field the marker does not have: " + old)
		}
		return strings.Replace(validMarker, old, new, 1)
	}
	f("", "not a JSON record")
	f("garbage", "not a JSON record")
	f("\x00\xff\xfe", "not a JSON record")
	f("[1,2]", "not a JSON record")
	f(`"v"`, "not a JSON record")
	f("null", "no version")
	f("{}", "no version")
	f(`{"v":"1"}`, "not a JSON record")
	f(edit(`"v":1`, `"v":2`), "version 2")
	f(edit(`"v":1`, `"v":0`), "version 0")
	f(edit(`"v":1,`, ``), "no version")
	f(edit(`"size":10,`, ``), "missing one of the fields")
	f(edit(`"lcrc":7,`, ``), "missing one of the fields")
	f(edit(`"size":10`, `"size":-1`), "differ from local")
	f(edit(`"size":10`, `"size":1e3`), "not a JSON record")
	f(edit(`"crc":7`, `"crc":4294967296`), "not a JSON record")
	f(edit(`"crc":7`, `"crc":-1`), "not a JSON record")
	f(edit(`"kind":"commitlog"`, `"kind":""`), "kind")
	f(edit(`"fmt":"raw"`, `"fmt":"zip"`), "format")
	f(edit(`"fmt":"raw"`, `"fmt":"tix"`), "does not end in .tix")
	f(edit(`"key":"broker-a/rmq/commitlog/0001"`, `"key":"../etc/passwd"`), "object key")
	f(edit(`"key":"broker-a/rmq/commitlog/0001"`, `"key":"/abs"`), "absolute")
	f(edit(`"key":"broker-a/rmq/commitlog/0001"`, `"key":""`), "empty")
	f(edit(`"src":"rmq"`, `"src":"a/b"`), "source name")
	f(edit(`"src":"rmq"`, `"src":"_tierd"`), "reserved")
	f(edit(`"rel":"commitlog/0001"`, `"rel":"a/../../b"`), "relative path")
	f(edit(`"rel":"commitlog/0001"`, `"rel":"a\u0000b"`), "relative path")
	f(edit(`,"offloaded":"2026-01-02T03:04:05Z"`, ``), "offload time missing")
	f(edit(`"2026-01-02T03:04:05Z"`, `"yesterday"`), "not a JSON record")
	f(edit(`"v":1,`, `"v":1,"extra":true,`), "unknown field")
	f(edit(`"v":1,`, `"v":1,"tier":"a/b",`), "tier name")
	f(validMarker+"{}", "trailing data")
	f(validMarker+"x", "trailing data")
	f(validMarker[:len(validMarker)-1], "not a JSON record")
	f(strings.Replace(validMarker, `"kind":"commitlog"`, `"kind":"`+strings.Repeat("k", MaxMarkerSize)+`"`, 1), "more than")
}

// putObject stores an object of n bytes for rec on b and sets rec's sizes and CRCs to it.
func putObject(b *memBackend, rec *Record, n int) {
	data := bytes.Repeat([]byte{byte(n)}, n)
	b.put(rec.Key, data)
	st, _ := b.Stat(context.Background(), rec.Key)
	rec.Size, rec.CRC32C = st.Size, st.CRC32C
	if rec.Format == FormatRaw {
		rec.LocalSize, rec.LocalCRC32C = rec.Size, rec.CRC32C
	}
}

// offloadAll plays the pipeline's last steps for n segments onto tier: object, marker,
// record. It returns the records.
func offloadAll(t *testing.T, c *Catalog, b *memBackend, tier string, n int) []Record {
	t.Helper()
	ctx := context.Background()
	var recs []Record
	for i := range n {
		var rec Record
		switch i % 3 {
		case 0:
			rec = testRecord(tier, "rmq", fmt.Sprintf("commitlog/%020d", i), i)
		case 1:
			rec = tixRecord(tier, "rmq", fmt.Sprintf("index/%020d", i), i)
		default:
			rec = testRecord(tier, "kafka", fmt.Sprintf("orders-%d/%020d.log", i%2, i), i)
		}
		putObject(b, &rec, 10+i)
		if err := c.WriteMarker(ctx, b, rec); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	mustPut(t, c, recs...)
	return recs
}

func TestRebuild(t *testing.T) {
	ctx := context.Background()
	b := newMemBackend()
	c1 := openT(t, t.TempDir(), testNode)
	offloadAll(t, c1, b, "hdd", 24)
	// Another tier's records and another node's markers must not leak in.
	mustPut(t, c1, testRecord("s3", "rmq", "commitlog/x", 1))
	b.put("broker-b/_tierd/markers/rmq/commitlog/0001.json", []byte(validMarker))

	c2 := openT(t, t.TempDir(), testNode)
	n, skipped, err := c2.Rebuild(ctx, "hdd", b)
	if err != nil {
		t.Fatal(err)
	}
	if n != 24 || len(skipped) != 0 {
		t.Fatalf("Rebuild restored %d, skipped %+v; want 24, none", n, skipped)
	}
	want, err := c1.List("hdd")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c2.List("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		for i := range min(len(got), len(want)) {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
		t.Fatalf("rebuilt catalog has %d records, original %d", len(got), len(want))
	}
	if err := c1.Delete("s3", "broker-a/rmq/commitlog/x"); err != nil {
		t.Fatal(err)
	}
	var d1, d2 bytes.Buffer
	if err := c1.Dump(&d1); err != nil {
		t.Fatal(err)
	}
	if err := c2.Dump(&d2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d1.Bytes(), d2.Bytes()) {
		t.Fatalf("dumps differ:\n%s\n%s", d1.Bytes(), d2.Bytes())
	}
	checkIndex(t, c2)
	for _, r := range want[:3] {
		h1, _ := c1.Holders(r.Source, r.Rel)
		h2, err := c2.Holders(r.Source, r.Rel)
		if err != nil || !reflect.DeepEqual(h1, h2) {
			t.Fatalf("Holders(%s, %s) = %+v, %v; want %+v", r.Source, r.Rel, h2, err, h1)
		}
	}

	// Rebuilding again changes nothing.
	if n, _, err := c2.Rebuild(ctx, "hdd", b); err != nil || n != 24 {
		t.Fatalf("second Rebuild: %d, %v", n, err)
	}
	d2.Reset()
	if err := c2.Dump(&d2); err != nil || !bytes.Equal(d1.Bytes(), d2.Bytes()) {
		t.Fatalf("second Rebuild changed the catalog (%v)", err)
	}
}

func TestRebuildSkipsBadMarkers(t *testing.T) {
	ctx := context.Background()
	b := newMemBackend()
	c1 := openT(t, t.TempDir(), testNode)
	recs := offloadAll(t, c1, b, "hdd", 7)
	mk := func(r Record) segment.Key {
		k, err := MarkerKey(testNode, r.Key)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	prefix := string(MarkerPrefix(testNode))

	// recs[0]: object deleted. recs[1]: object changed. recs[2]: marker garbage.
	// recs[3]'s marker copied under another name. recs[6]: object changed, same size.
	b.Delete(ctx, recs[0].Key)
	b.put(recs[1].Key, []byte("different bytes"))
	b.put(recs[6].Key, bytes.Repeat([]byte("x"), int(recs[6].Size))) // same size, other CRC
	b.put(mk(recs[2]), []byte("{not json"))
	m3, _ := EncodeMarker(recs[3])
	b.put(segment.Key(prefix+"rmq/elsewhere.json"), m3)
	b.put(segment.Key(prefix+"rmq/README.txt"), []byte("hello"))
	b.put(segment.Key(prefix+"rmq/huge.json"), bytes.Repeat([]byte(" "), MaxMarkerSize+1))

	c2 := openT(t, t.TempDir(), testNode)
	n, skipped, err := c2.Rebuild(ctx, "hdd", b)
	if err != nil {
		t.Fatal(err)
	}
	wantSkip := map[segment.Key]string{
		mk(recs[0]): "is missing",
		mk(recs[1]): "marker says",
		mk(recs[6]): "marker says",
		mk(recs[2]): "not a JSON record",
		segment.Key(prefix + "rmq/elsewhere.json"): "whose marker would be",
		segment.Key(prefix + "rmq/README.txt"):     "does not end in .json",
		segment.Key(prefix + "rmq/huge.json"):      "more than",
	}
	if len(skipped) != len(wantSkip) {
		t.Fatalf("skipped %+v, want %d", skipped, len(wantSkip))
	}
	for _, s := range skipped {
		want, ok := wantSkip[s.Marker]
		if !ok || s.Reason == nil || !strings.Contains(s.Reason.Error(), want) {
			t.Fatalf("skipped %s: %v; want reason containing %q", s.Marker, s.Reason, want)
		}
	}
	if n != 3 {
		t.Fatalf("restored %d, want 3", n)
	}
	got, _ := c2.List("hdd")
	if want := normalized(recs[3], recs[4], recs[5]); !reflect.DeepEqual(got, sortRecs(want)) {
		t.Fatalf("restored %+v\nwant %+v", got, want)
	}
}

func sortRecs(recs []Record) []Record {
	slices.SortFunc(recs, func(a, b Record) int { return strings.Compare(string(a.Key), string(b.Key)) })
	return recs
}

func TestRebuildBackendError(t *testing.T) {
	b := newMemBackend()
	c1 := openT(t, t.TempDir(), testNode)
	offloadAll(t, c1, b, "hdd", 3)
	c2 := openT(t, t.TempDir(), testNode)
	b.failOpen = errors.New("disk on fire")
	if _, _, err := c2.Rebuild(context.Background(), "hdd", b); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Rebuild with a failing backend: %v", err)
	}
	if recs, _ := c2.List(""); len(recs) != 0 {
		t.Fatalf("failed Rebuild restored %+v", recs)
	}
	b.failOpen = nil
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := c2.Rebuild(ctx, "hdd", b); !errors.Is(err, context.Canceled) {
		t.Fatalf("Rebuild with a cancelled context: %v", err)
	}
	if _, _, err := c2.Rebuild(context.Background(), "", b); err == nil {
		t.Fatal("Rebuild of tier \"\" succeeded")
	}
}

func TestWriteDeleteMarker(t *testing.T) {
	ctx := context.Background()
	b := newMemBackend()
	c := openT(t, t.TempDir(), testNode)
	rec := testRecord("hdd", "rmq", "commitlog/0001", 1)
	if err := c.WriteMarker(ctx, b, rec); err != nil {
		t.Fatal(err)
	}
	mk, _ := MarkerKey(testNode, rec.Key)
	if _, err := b.Stat(ctx, mk); err != nil {
		t.Fatalf("marker not written: %v", err)
	}
	if err := c.DeleteMarker(ctx, b, rec.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, mk); !errors.Is(err, segment.ErrNotFound) {
		t.Fatalf("marker after DeleteMarker: %v", err)
	}
	if err := c.DeleteMarker(ctx, b, rec.Key); err != nil {
		t.Fatalf("DeleteMarker twice: %v", err)
	}

	bad := rec
	bad.Kind = ""
	if err := c.WriteMarker(ctx, b, bad); err == nil {
		t.Fatal("WriteMarker of an invalid record succeeded")
	}
	other := testRecord("hdd", "rmq", "commitlog/0001", 1)
	other.Key = "broker-b/rmq/commitlog/0001"
	if err := c.WriteMarker(ctx, b, other); err == nil || !strings.Contains(err.Error(), "not under node") {
		t.Fatalf("WriteMarker of another node's object: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.WriteMarker(cctx, b, rec); !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteMarker with a cancelled context: %v", err)
	}
	if es, _ := b.List(ctx, ""); len(es) != 0 {
		t.Fatalf("failed writes left %+v", es)
	}
}

// TestSegmentVersionMarkers: a record of a segment's version 2 or later is written as a
// "v":2 marker with "ver" under the versioned key, and rebuilt beside the version-1
// marker of the same file (which stays byte-identical to a marker of before versions).
func TestSegmentVersionMarkers(t *testing.T) {
	v1 := testRecord("hdd", "kafka", "orders-0/00000000000000000000.log", 1)
	v2 := testRecord("hdd", "kafka", "orders-0/00000000000000000000.log", 2)
	v2.Key, v2.Version = segment.WithVersion(v1.Key, 2), 2
	data, err := EncodeMarker(v2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte(`{"v":2,"key":"`+testNode+`/kafka/orders-0/00000000000000000000.log@v2",`)) || !bytes.HasSuffix(data, []byte(`,"ver":2}`)) {
		t.Fatalf("version-2 marker: %s", data)
	}
	got, err := DecodeMarker(data)
	if err != nil || got.Version != 2 || got.Ver() != 2 {
		t.Fatalf("DecodeMarker(%s) = %+v, %v", data, got, err)
	}
	if data, _ := EncodeMarker(v1); bytes.Contains(data, []byte(`"ver"`)) || !bytes.HasPrefix(data, []byte(`{"v":1,`)) {
		t.Fatalf("version-1 marker changed: %s", data)
	}
	f := func(marker, want string) {
		t.Helper()
		if _, err := DecodeMarker([]byte(marker)); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("DecodeMarker(%s) = %v, want an error containing %q", marker, err, want)
		}
	}
	f(strings.Replace(validMarker, `}`, `,"ver":2}`, 1), `field "ver" in a version 1 record`)
	f(strings.Replace(validMarker, `{"v":1,`, `{"v":2,`, 1), `without a segment version`)
	f(strings.Replace(strings.Replace(validMarker, `{"v":1,`, `{"v":2,`, 1), `}`, `,"ver":3}`, 1), "the key names version 1, the record says 3")
	bad := v2
	bad.Version = 3
	if _, err := EncodeMarker(bad); err == nil {
		t.Fatal("a record whose key names another version was encoded")
	}

	// Both versions on one tier: rebuild restores both.
	b, c := newMemBackend(), openT(t, t.TempDir(), testNode)
	ctx := context.Background()
	for _, rec := range []*Record{&v1, &v2} {
		putObject(b, rec, 10+rec.Ver())
		if err := c.WriteMarker(ctx, b, *rec); err != nil {
			t.Fatal(err)
		}
	}
	n, skipped, err := c.Rebuild(ctx, "hdd", b)
	if err != nil || n != 2 || len(skipped) != 0 {
		t.Fatalf("Rebuild = %d, %v, %v", n, skipped, err)
	}
	holders, err := c.Holders("kafka", v1.Rel)
	if err != nil || len(holders) != 2 || holders[0].Ver()+holders[1].Ver() != 3 {
		t.Fatalf("Holders after rebuild = %+v, %v", holders, err)
	}
}

// TestRebuildChunks: a tier with more markers than a rebuild chunk is restored whole, and
// the rebuilt catalog dumps the same bytes as the original.
func TestRebuildChunks(t *testing.T) {
	b := newMemBackend()
	c1 := openT(t, t.TempDir(), testNode)
	offloadAll(t, c1, b, "hdd", rebuildChunk+rebuildChunk/2)
	c2 := openT(t, t.TempDir(), testNode)
	n, skipped, err := c2.Rebuild(context.Background(), "hdd", b)
	if err != nil || n != rebuildChunk+rebuildChunk/2 || len(skipped) != 0 {
		t.Fatalf("Rebuild: %d restored, %d skipped, %v", n, len(skipped), err)
	}
	var d1, d2 bytes.Buffer
	if err := c1.Dump(&d1); err != nil {
		t.Fatal(err)
	}
	if err := c2.Dump(&d2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d1.Bytes(), d2.Bytes()) {
		t.Fatal("rebuilt catalog differs from the original")
	}
}

// TestVersionKeyAndSuperseded: a local file's version follows what the tiers hold; a
// newer version's record makes the older one's superseded entry on the same tier only.
func TestVersionKeyAndSuperseded(t *testing.T) {
	c := openT(t, t.TempDir(), testNode)
	v1 := testRecord("hdd", "kafka", "orders-0/00000000000000000000.log", 1)
	v1.Kind = "kafka-log"
	f := func(size int64, mtime time.Time, wantKey segment.Key, wantVer int) {
		t.Helper()
		k, v, err := c.VersionKey(v1.Source, v1.Rel, v1.Kind, size, mtime)
		if err != nil || k != wantKey || v != wantVer {
			t.Fatalf("VersionKey(%d, %s) = %s v%d, %v; want %s v%d", size, mtime, k, v, err, wantKey, wantVer)
		}
	}
	f(v1.LocalSize, v1.SegmentModTime, v1.Key, 1) // nothing on the tiers yet
	mustPut(t, c, v1)
	f(v1.LocalSize, v1.SegmentModTime, v1.Key, 1)
	f(390, v1.SegmentModTime, v1.Key+"@v2", 2)                           // the cleaner's rewrite
	f(v1.LocalSize, v1.SegmentModTime.Add(time.Second), v1.Key+"@v2", 2) // mtime only
	v2 := v1
	v2.Key, v2.Version, v2.Size, v2.LocalSize = v1.Key+"@v2", 2, 390, 390
	v2.OffloadedAt = v1.OffloadedAt.Add(time.Hour)
	s3v1 := v1
	s3v1.Tier = "s3"
	mustPut(t, c, v2, s3v1)
	f(390, v1.SegmentModTime, v2.Key, 2)
	f(v1.LocalSize, v1.SegmentModTime, v1.Key+"@v3", 3) // back to the old bytes: a new version
	var got []Superseded
	for _, tier := range []string{"hdd", "s3"} {
		if err := c.WalkSuperseded(tier, v2.OffloadedAt.Add(time.Minute), 0, func(s Superseded) int { got = append(got, s); return WalkNext }); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 1 || got[0].Tier != "hdd" || got[0].Key != v1.Key || !got[0].At.Equal(v2.OffloadedAt) {
		t.Fatalf("superseded entries: %+v; want v1 on hdd only, since v2's offload", got)
	}
	if err := c.WalkSuperseded("hdd", v2.OffloadedAt.Add(-time.Minute), 0, func(s Superseded) int { t.Fatalf("entry before its time: %+v", s); return WalkNext }); err != nil {
		t.Fatal(err)
	}
	newest, err := c.Newest(v1.Source, v1.Rel)
	if err != nil || len(newest) != 1 || newest[0].Key != v2.Key {
		t.Fatalf("Newest = %+v, %v", newest, err)
	}
}
