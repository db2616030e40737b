package catalog

import (
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// valueRecords are records of every shape the binary value must carry: raw, compacted
// (tix), trimmed, a later version, no mtime or verify time, a rel the key does not contain.
func valueRecords() []Record {
	trim := testRecord("hdd", "k", "t-0/00000000000000000000.index", 3)
	trim.Kind, trim.Format, trim.Size, trim.CRC32C = "kafka-index", FormatTrimmed, 12, 0x99
	v2 := testRecord("s3", "k", "t-0/00000000000000000000.log", 4)
	v2.Key += "@v2"
	v2.Version = 2
	bare := testRecord("hdd", "rmq", "commitlog/0002", 5)
	bare.SegmentModTime, bare.Verified = time.Time{}, time.Time{}
	old := testRecord("hdd", "rmq", "commitlog/0003", 6)
	old.SegmentModTime = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) // a time before 1970
	other := testRecord("hdd", "rmq", "commitlog/0004", 7)
	other.Rel = "commitlog/0005" // not in the key: stored in full
	return []Record{testRecord("hdd", "rmq", "commitlog/0001", 1), tixRecord("hdd", "rmq", "index/1", 2), trim, v2, bare, old, other}
}

func TestValueRoundTrip(t *testing.T) {
	for _, r := range valueRecords() {
		v, err := encodeValue(r)
		if err != nil {
			t.Fatalf("encodeValue(%s): %v", r.Key, err)
		}
		got, err := decodeValue(recordKey(r.Tier, r.Key), v)
		if err != nil {
			t.Fatalf("decodeValue(%s): %v", r.Key, err)
		}
		if want := r.normalize(); !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", r.Key, got, want)
		}
		j, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		// The point of the binary form: well under half the JSON (it was ~1.6 KiB per
		// file in catalog.db with JSON values).
		if len(v)*3 > len(j) {
			t.Errorf("%s: binary value %d bytes, JSON %d: want at most a third", r.Key, len(v), len(j))
		}
	}
}

// TestValueReadsJSON: a catalog whose values are JSON (written before the binary form)
// reads the same, and a record rewritten is stored in the binary form.
func TestValueReadsJSON(t *testing.T) {
	c := openT(t, t.TempDir(), testNode)
	recs := valueRecords()
	mustPut(t, c, recs...)
	err := c.db.Update(func(tx *bolt.Tx) error {
		for _, r := range recs {
			j, err := encodeRecord(r)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bRecords).Put(recordKey(r.Tier, r.Key), j); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		got, err := c.Get(r.Tier, r.Key)
		if err != nil {
			t.Fatalf("Get(%s) of a JSON value: %v", r.Key, err)
		}
		if !reflect.DeepEqual(got, r.normalize()) {
			t.Errorf("JSON value of %s: got %+v", r.Key, got)
		}
	}
	list, err := c.List("")
	if err != nil || len(list) != len(recs) {
		t.Fatalf("List of JSON values: %d records, %v", len(list), err)
	}
	r := recs[0]
	r.Verified = r.Verified.Add(time.Hour)
	mustPut(t, c, r)
	checkIndex(t, c)
	_ = c.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bRecords).Get(recordKey(r.Tier, r.Key)); len(v) == 0 || v[0] != valueBinaryV1 {
			t.Errorf("rewritten record stored as %q, want the binary form", v)
		}
		return nil
	})
}

func TestValueRejects(t *testing.T) {
	r := testRecord("hdd", "rmq", "commitlog/0001", 1)
	k := recordKey(r.Tier, r.Key)
	v, err := encodeValue(r)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := encodeRecord(r)
	cases := map[string]struct {
		k, v []byte
		want string
	}{
		"empty":          {k, nil, "unknown value format"},
		"future format":  {k, append([]byte{2}, v[1:]...), "unknown value format"},
		"truncated":      {k, v[:len(v)-3], "truncated"},
		"trailing":       {k, append(append([]byte{}, v...), 0), "trailing"},
		"bad flags":      {k, append([]byte{1, 0x80}, v[2:]...), "flags"},
		"no tier in key": {[]byte(r.Key), v, "no tier"},
		"JSON elsewhere": {recordKey("ssd", r.Key), j, "catalog key"},
	}
	for name, c := range cases {
		_, err := decodeValue(c.k, c.v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, c.want)
		}
	}
}
