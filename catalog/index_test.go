package catalog

import (
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func dueOf(t *testing.T, c *Catalog, tier string) []string {
	t.Helper()
	var out []string
	err := c.WalkDue(tier, time.Unix(0, 0), time.Now().Add(1000*time.Hour), 0, func(d Due) int {
		out = append(out, d.Source+"/"+d.Rel)
		return WalkNext
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func eq(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// TestDueIndexFollowsSealingAndRecords: a sealed local file is due on every indexed tier
// until a record of it is put there; a changed file is due again under its new mtime; a
// file gone is no longer due unless a tier holds it (then the others copy from there).
func TestDueIndexFollowsSealingAndRecords(t *testing.T) {
	c := openT(t, t.TempDir(), testNode)
	if re, err := c.IndexTiers([]string{"ssd", "hdd"}); err != nil || !re {
		t.Fatalf("first IndexTiers: rebuilt=%v err=%v", re, err)
	}
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := func(rel string, sealed bool, mtime time.Time) LocalFile {
		return LocalFile{Source: "rmq", Rel: rel, Kind: "commitlog", Size: 1000, ModTime: mtime, Sealed: sealed}
	}
	up := func(put []LocalFile, drop ...LocalFile) {
		t.Helper()
		if err := c.UpdateSequences([]SeqUpdate{{Source: "rmq", Seq: "commitlog", State: SeqState{Settling: 1}, Put: put, Drop: drop}}); err != nil {
			t.Fatal(err)
		}
	}
	up([]LocalFile{f("commitlog/a", false, mt), f("commitlog/b", false, mt.Add(time.Second))})
	if d := dueOf(t, c, "ssd"); len(d) != 0 {
		t.Fatalf("observed, unsealed files are due: %v", d)
	}
	up([]LocalFile{f("commitlog/a", true, mt), f("commitlog/b", true, mt.Add(time.Second))})
	if d := dueOf(t, c, "ssd"); !eq(d, []string{"rmq/commitlog/a", "rmq/commitlog/b"}) {
		t.Fatalf("ssd due %v", d)
	}
	if files, err := c.LocalFiles("rmq", "commitlog"); err != nil || len(files) != 2 || !files[0].Sealed {
		t.Fatalf("LocalFiles: %+v %v", files, err)
	}
	rec := testRecord("ssd", "rmq", "commitlog/a", 0)
	rec.SegmentModTime = mt
	mustPut(t, c, rec)
	if d := dueOf(t, c, "ssd"); !eq(d, []string{"rmq/commitlog/b"}) {
		t.Fatalf("ssd due after a record %v", d)
	}
	if st, _ := c.Stats("ssd"); st.Records != 1 || st.Bytes != rec.Size {
		t.Fatalf("stats %+v", st)
	}
	// b changes: it is no longer due (not sealed), and due again, by its new mtime, once sealed.
	up([]LocalFile{f("commitlog/b", false, mt.Add(time.Hour))})
	if d := dueOf(t, c, "hdd"); !eq(d, []string{"rmq/commitlog/a"}) {
		t.Fatalf("hdd due after b changed %v", d)
	}
	up([]LocalFile{f("commitlog/b", true, mt.Add(time.Hour))})
	if d := dueOf(t, c, "hdd"); !eq(d, []string{"rmq/commitlog/a", "rmq/commitlog/b"}) {
		t.Fatalf("hdd due after b sealed again %v", d)
	}
	// Both go: a (held by ssd) stays due on hdd, b (held nowhere) is due nowhere.
	up(nil, f("commitlog/a", true, mt), f("commitlog/b", true, mt.Add(time.Hour)))
	if d := dueOf(t, c, "hdd"); !eq(d, []string{"rmq/commitlog/a"}) {
		t.Fatalf("hdd due after the files went %v", d)
	}
	if d := dueOf(t, c, "ssd"); len(d) != 0 {
		t.Fatalf("ssd due after the files went %v", d)
	}
	// Age index and stale index.
	var aged []string
	c.WalkAged("ssd", mt, 0, func(a Aged) int { aged = append(aged, string(a.Key)); return WalkNext })
	if !eq(aged, []string{string(rec.Key)}) {
		t.Fatalf("aged %v", aged)
	}
	// A new tier set rebuilds the due index from local state and records.
	if re, err := c.IndexTiers([]string{"ssd", "hdd", "cold"}); err != nil || !re {
		t.Fatalf("IndexTiers with a new tier: rebuilt=%v err=%v", re, err)
	}
	if d := dueOf(t, c, "cold"); !eq(d, []string{"rmq/commitlog/a"}) {
		t.Fatalf("cold due after reindex %v", d)
	}
	if re, _ := c.IndexTiers([]string{"ssd", "hdd", "cold"}); re {
		t.Fatal("IndexTiers rebuilt with the same tiers")
	}
	if err := c.Delete("ssd", rec.Key); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Stats("ssd"); st.Records != 0 || st.Bytes != 0 {
		t.Fatalf("stats after delete %+v", st)
	}
}

// TestMigrateSchema1 opens a catalog written by schema 1 (records and holders only) and
// finds the indexes built.
func TestMigrateSchema1(t *testing.T) {
	dir := t.TempDir()
	c := openT(t, dir, testNode)
	mustPut(t, c, testRecord("hdd", "rmq", "commitlog/a", 0), testRecord("hdd", "rmq", "commitlog/b", 1))
	err := c.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bAge, bStats, bDue, bLAge, bLocal, bSeqs} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put(metaSchema, []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = openT(t, dir, testNode)
	if st, err := c.Stats("hdd"); err != nil || st.Records != 2 || st.Bytes != 2001 {
		t.Fatalf("stats after migration %+v %v", st, err)
	}
	n := 0
	c.WalkAged("hdd", time.Now(), 0, func(Aged) int { n++; return WalkNext })
	if n != 2 {
		t.Fatalf("%d aged entries after migration", n)
	}
}

// TestWalkRecordsPages walks more records than a page and sees each once, in order.
func TestWalkRecordsPages(t *testing.T) {
	c := openT(t, t.TempDir(), testNode)
	var recs []Record
	for i := range 2*pageSize + 7 {
		recs = append(recs, testRecord("hdd", "rmq", fmt.Sprintf("commitlog/%05d", i), i))
	}
	mustPut(t, c, recs...)
	i := 0
	err := c.WalkRecords("hdd", func(r Record) error {
		if r.Key != recs[i].Key {
			return fmt.Errorf("record %d is %s, want %s", i, r.Key, recs[i].Key)
		}
		i++
		return nil
	})
	if err != nil || i != len(recs) {
		t.Fatalf("walked %d of %d: %v", i, len(recs), err)
	}
}
