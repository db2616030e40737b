package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap/zaptest"

	"github.com/tierd/tierd/segment"
)

const testNode = "broker-a"

// openT opens the catalog of dir for node and closes it when the test ends.
func openT(t *testing.T, dir, node string) *Catalog {
	t.Helper()
	c, err := Open(dir, node, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Open(%s, %s): %v", dir, node, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// testRecord is a valid raw record of source/rel on tier; i varies its numbers. Its times
// are in a non-UTC zone with nanoseconds, to check normalisation.
func testRecord(tier, source, rel string, i int) Record {
	zone := time.FixedZone("UTC+2", 2*3600)
	base := time.Date(2026, 1, 2, 3, 4, 5, 123456789, zone).Add(time.Duration(i) * time.Minute)
	return Record{
		Tier:           tier,
		Key:            segment.Key(testNode + "/" + source + "/" + rel),
		Source:         source,
		Rel:            rel,
		Kind:           "commitlog",
		Format:         FormatRaw,
		Size:           int64(1000 + i),
		CRC32C:         uint32(0xdeadbeef) + uint32(i),
		LocalSize:      int64(1000 + i),
		LocalCRC32C:    uint32(0xdeadbeef) + uint32(i),
		SegmentModTime: base,
		OffloadedAt:    base.Add(time.Hour),
		Verified:       base.Add(time.Hour + time.Second),
	}
}

// tixRecord is a valid compacted-index record of source/rel on tier.
func tixRecord(tier, source, rel string, i int) Record {
	r := testRecord(tier, source, rel, i)
	r.Key += ".tix"
	r.Kind = "index"
	r.Format = FormatTix
	r.Size = int64(100 + i)
	r.CRC32C = 0x1234 + uint32(i)
	r.Verified = time.Time{}
	return r
}

func mustPut(t *testing.T, c *Catalog, recs ...Record) {
	t.Helper()
	for _, r := range recs {
		if err := c.Put(r); err != nil {
			t.Fatalf("Put(%s on %s): %v", r.Key, r.Tier, err)
		}
	}
}

func normalized(recs ...Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		out[i] = r.normalize()
	}
	return out
}

// checkIndex asserts that the Holders index holds exactly one entry per record.
func checkIndex(t *testing.T, c *Catalog) {
	t.Helper()
	var want, got []string
	err := c.db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bRecords).ForEach(func(k, v []byte) error {
			r, err := decodeValue(k, v)
			if err != nil {
				return err
			}
			want = append(want, string(holderKey(r)))
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bHolders).ForEach(func(k, _ []byte) error {
			got = append(got, string(k))
			return nil
		})
	})
	if err != nil {
		t.Fatalf("read index: %v", err)
	}
	slices.Sort(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("holders index %q, want %q", got, want)
	}
}

func TestPutGetListDelete(t *testing.T) {
	c := openT(t, t.TempDir(), testNode)
	a := testRecord("s3", "rmq", "commitlog/0002", 2)
	b := testRecord("hdd", "rmq", "commitlog/0002", 2)
	d := testRecord("hdd", "rmq", "commitlog/0001", 1)
	e := tixRecord("hdd", "rmq", "index/0001", 3)
	mustPut(t, c, a, b, d, e)

	got, err := c.Get("hdd", d.Key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(got, d.normalize()) {
		t.Fatalf("Get = %+v, want %+v", got, d.normalize())
	}
	if got.OffloadedAt.Location() != time.UTC || !got.OffloadedAt.Equal(d.OffloadedAt) {
		t.Fatalf("OffloadedAt = %v, want %v in UTC", got.OffloadedAt, d.OffloadedAt)
	}

	f := func(tier string, want ...Record) {
		t.Helper()
		got, err := c.List(tier)
		if err != nil {
			t.Fatalf("List(%q): %v", tier, err)
		}
		if want == nil {
			want = []Record{}
		}
		if got == nil {
			got = []Record{}
		}
		if !reflect.DeepEqual(got, normalized(want...)) {
			t.Fatalf("List(%q) = %+v\nwant %+v", tier, got, normalized(want...))
		}
	}
	f("", d, b, e, a)
	f("hdd", d, b, e)
	f("s3", a)
	f("h")
	f("nope")

	if err := c.Delete("hdd", b.Key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := c.Delete("hdd", b.Key); err != nil {
		t.Fatalf("Delete again: %v", err)
	}
	if _, err := c.Get("hdd", b.Key); !errors.Is(err, segment.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if _, err := c.Get("s3", b.Key); err != nil {
		t.Fatalf("Get of the same key on another tier: %v", err)
	}
	f("", d, e, a)
	checkIndex(t, c)

	// Put replaces.
	d2 := d
	d2.Verified = d.Verified.Add(time.Hour)
	mustPut(t, c, d2)
	f("hdd", d2, e)
	checkIndex(t, c)
}

func TestInvalidRecords(t *testing.T) {
	c := openT(t, t.TempDir(), testNode)
	f := func(mut func(*Record), want string) {
		t.Helper()
		r := testRecord("hdd", "rmq", "commitlog/0001", 1)
		mut(&r)
		err := c.Put(r)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Put: %v, want error containing %q", err, want)
		}
		if recs, _ := c.List(""); len(recs) != 0 {
			t.Fatalf("failed Put stored %+v", recs)
		}
	}
	f(func(r *Record) { r.Tier = "" }, "no tier")
	f(func(r *Record) { r.Tier = "a/b" }, "tier name")
	f(func(r *Record) { r.Tier = "a\x00b" }, "tier name")
	f(func(r *Record) { r.Key = "../x" }, "object key")
	f(func(r *Record) { r.Key = "" }, "object key")
	f(func(r *Record) { r.Source = "" }, "source name")
	f(func(r *Record) { r.Source = "_tierd" }, "reserved")
	f(func(r *Record) { r.Source = ".x" }, "reserved")
	f(func(r *Record) { r.Source = "a\tb" }, "source name")
	f(func(r *Record) { r.Rel = "a//b" }, "relative path")
	f(func(r *Record) { r.Rel = "/abs" }, "relative path")
	f(func(r *Record) { r.Kind = "" }, "kind")
	f(func(r *Record) { r.Format = "zip" }, "format")
	f(func(r *Record) { r.Size++ }, "differ from local")
	f(func(r *Record) { r.CRC32C++ }, "differ from local")
	f(func(r *Record) { r.Format = FormatTix }, "does not end in .tix")
	f(func(r *Record) { r.Format, r.Size = FormatTrimmed, r.LocalSize+1 }, "more than the local file")
	f(func(r *Record) { r.Format, r.CRC32C = FormatTrimmed, r.CRC32C+1 }, "as long as the local file")
	f(func(r *Record) { r.Format, r.Size, r.Key = FormatTrimmed, 8, r.Key+".tix" }, "key ends in .tix")
	f(func(r *Record) { r.Size, r.LocalSize = -1, -1 }, "negative size")
	f(func(r *Record) { r.OffloadedAt = time.Time{} }, "offload time missing")
	f(func(r *Record) { r.Verified = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "out of range")

	g := func(err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want error containing %q", err, want)
		}
	}
	_, err := c.Get("", "a/b")
	g(err, "tier name")
	_, err = c.Get("hdd", "a/../b")
	g(err, "invalid key")
	g(c.Delete("hdd", ""), "invalid key")
	_, err = c.List("a\x00")
	g(err, "tier name")
	_, err = c.Holders("rmq", "a\x00b")
	g(err, "relative path")
	_, err = c.Holders("", "a")
	g(err, "source name")
}

func TestHolders(t *testing.T) {
	c := openT(t, t.TempDir(), testNode)
	rel := "commitlog/0001"
	onHDD := testRecord("hdd", "rmq", rel, 1)
	onS3 := testRecord("s3", "rmq", rel, 1)
	tixS3 := tixRecord("s3", "rmq", rel, 1)
	other := testRecord("hdd", "rmq", "commitlog/0002", 2)
	otherSrc := testRecord("hdd", "kafka", rel, 3)
	mustPut(t, c, tixS3, onS3, other, onHDD, otherSrc)
	checkIndex(t, c)

	f := func(source, rel string, want ...Record) {
		t.Helper()
		got, err := c.Holders(source, rel)
		if err != nil {
			t.Fatalf("Holders(%s, %s): %v", source, rel, err)
		}
		if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, normalized(want...))) {
			t.Fatalf("Holders(%s, %s) = %+v\nwant %+v", source, rel, got, normalized(want...))
		}
	}
	f("rmq", rel, onHDD, onS3, tixS3)
	f("rmq", "commitlog/0002", other)
	f("kafka", rel, otherSrc)
	f("rmq", "commitlog/000") // a prefix of a rel is not that rel
	f("rmq", "commitlog/0003")

	if err := c.Delete("s3", onS3.Key); err != nil {
		t.Fatal(err)
	}
	f("rmq", rel, onHDD, tixS3)
	checkIndex(t, c)

	// Replacing a record with one made from another file moves its index entry.
	moved := onHDD
	moved.Rel = "commitlog/0009"
	mustPut(t, c, moved)
	f("rmq", rel, tixS3)
	f("rmq", "commitlog/0009", moved)
	checkIndex(t, c)

	for _, r := range []Record{tixS3, other, moved, otherSrc} {
		if err := c.Delete(r.Tier, r.Key); err != nil {
			t.Fatal(err)
		}
	}
	f("rmq", rel)
	checkIndex(t, c)
}

func TestConcurrentUse(t *testing.T) {
	c := openT(t, t.TempDir(), testNode)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				rel := fmt.Sprintf("commitlog/%04d", i)
				tier := fmt.Sprintf("t%d", g)
				if err := c.Put(testRecord(tier, "rmq", rel, i)); err != nil {
					errs <- err
					return
				}
				if _, err := c.Holders("rmq", rel); err != nil {
					errs <- err
					return
				}
				if i%3 == 0 {
					if err := c.Delete(tier, segment.Key(testNode+"/rmq/"+rel)); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	recs, err := c.List("")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4*5 {
		t.Fatalf("%d records, want %d", len(recs), 4*5)
	}
	checkIndex(t, c)
}

func TestSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	c := openT(t, dir, testNode)
	start := time.Now()
	c2, err := Open(dir, testNode, nil)
	if err == nil {
		c2.Close()
		t.Fatal("second Open of the same state_dir succeeded")
	}
	want := fmt.Sprintf("state_dir %s is in use by another tierd process", dir)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("second Open: %v, want error containing %q", err, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second Open took %s to fail", d)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c3, err := Open(dir, testNode, nil)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	c3.Close()
}

func TestOpenChecks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "nested")
	c := openT(t, dir, testNode)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o750 {
		t.Fatalf("state_dir: %v, %v; want a 0750 directory", fi, err)
	}
	if c.Node() != testNode || c.Dir() != dir {
		t.Fatalf("Node, Dir = %q, %q", c.Node(), c.Dir())
	}
	c.Close()

	f := func(node, want string) {
		t.Helper()
		c, err := Open(dir, node, nil)
		if err == nil {
			c.Close()
			t.Fatalf("Open(%q) succeeded", node)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Open(%q): %v, want error containing %q", node, err, want)
		}
	}
	f("broker-b", fmt.Sprintf("state_dir %s belongs to node %q, not %q", dir, testNode, "broker-b"))
	f("", "node name")
	f("a/b", "node name")
	f("..", "node name")
	f("_tierd", "reserved")
	f(".hidden", "reserved")
	f("a\nb", "node name")

	// A newer schema is refused.
	c = openT(t, dir, testNode)
	if err := c.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(metaSchema, []byte("3")) }); err != nil {
		t.Fatal(err)
	}
	c.Close()
	f(testNode, "schema version 3")

	// Not a database.
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, DBFile), bytes.Repeat([]byte("x"), 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Open(bad, testNode, nil); err == nil {
		c.Close()
		t.Fatal("Open of a garbage catalog.db succeeded")
	} else if !strings.Contains(err.Error(), "open catalog") {
		t.Fatalf("Open of a garbage catalog.db: %v", err)
	}
}

func TestReopenPersists(t *testing.T) {
	dir := t.TempDir()
	c := openT(t, dir, testNode)
	recs := []Record{
		testRecord("hdd", "rmq", "commitlog/0001", 1),
		tixRecord("s3", "rmq", "index/0001", 2),
		testRecord("s3", "rmq", "commitlog/0001", 1),
	}
	mustPut(t, c, recs...)
	in1, err := c.Begin(Intent{Tier: "s3", Key: "broker-a/rmq/commitlog/0002", Source: "rmq", Rel: "commitlog/0002", Op: OpOffload})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetUploadID(in1.ID, "upload-xyz"); err != nil {
		t.Fatal(err)
	}
	in2, err := c.Begin(Intent{Tier: "hdd", Key: "broker-a/rmq/commitlog/0001", Op: OpDelete})
	if err != nil {
		t.Fatal(err)
	}
	in1.UploadID = "upload-xyz"
	var dump1 bytes.Buffer
	if err := c.Dump(&dump1); err != nil {
		t.Fatal(err)
	}
	c.Close()

	c = openT(t, dir, testNode)
	got, err := c.List("")
	if err != nil {
		t.Fatal(err)
	}
	if want := normalized(recs[0], recs[2], recs[1]); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen List = %+v\nwant %+v", got, want)
	}
	h, err := c.Holders("rmq", "commitlog/0001")
	if err != nil || len(h) != 2 {
		t.Fatalf("after reopen Holders = %+v, %v", h, err)
	}
	ins, err := c.Intents()
	if err != nil {
		t.Fatal(err)
	}
	if want := []Intent{in1, in2}; !reflect.DeepEqual(ins, want) {
		t.Fatalf("after reopen Intents = %+v\nwant %+v", ins, want)
	}
	var dump2 bytes.Buffer
	if err := c.Dump(&dump2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dump1.Bytes(), dump2.Bytes()) {
		t.Fatalf("dump changed across reopen:\n%s\n%s", dump1.Bytes(), dump2.Bytes())
	}
	in3, err := c.Begin(Intent{Tier: "hdd", Key: "broker-a/x", Op: OpDelete})
	if err != nil {
		t.Fatal(err)
	}
	if in3.ID <= in2.ID {
		t.Fatalf("intent ID %d after reopen reuses an ID (last was %d)", in3.ID, in2.ID)
	}
}

func TestDump(t *testing.T) {
	c := openT(t, t.TempDir(), testNode)
	var empty bytes.Buffer
	if err := c.Dump(&empty); err != nil || empty.Len() != 0 {
		t.Fatalf("Dump of an empty catalog: %q, %v", empty.Bytes(), err)
	}
	a := testRecord("s3", "rmq", "commitlog/0001", 1)
	b := tixRecord("hdd", "rmq", "index/0001", 2)
	mustPut(t, c, a, b)
	var out bytes.Buffer
	if err := c.Dump(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"tier":"hdd"`) || !strings.Contains(lines[1], `"tier":"s3"`) {
		t.Fatalf("Dump = %q", out.String())
	}
	for i, want := range normalized(b, a) {
		got, err := DecodeMarker([]byte(lines[i]))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("line %d decodes to %+v, %v; want %+v", i, got, err, want)
		}
	}
	if err := c.Dump(failWriter{}); err == nil {
		t.Fatal("Dump to a failing writer succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestInstanceID(t *testing.T) {
	dir := t.TempDir()
	c := openT(t, dir, "n1")
	id, err := c.InstanceID()
	if err != nil || len(id) != 16 {
		t.Fatalf("InstanceID = %q, %v", id, err)
	}
	c.Close()
	c = openT(t, dir, "n1")
	if again, _ := c.InstanceID(); again != id {
		t.Fatalf("instance id changed on reopen: %s -> %s", id, again)
	}
	if other, _ := openT(t, t.TempDir(), "n1").InstanceID(); other == id {
		t.Fatal("two state dirs share an instance id")
	}
}
