package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tierd/tierd/catalog"
)

// TestScrub: a scrub pass re-reads every object: one whose bytes rotted on the tier is
// removed and offloaded again from the local file, a missing marker is rewritten, and an
// object with no good copy left is kept and counted.
func TestScrub(t *testing.T) {
	e := newEnv(t)
	sealed, _ := store(t, e.root)
	ctx := context.Background()
	if err := e.daemon().RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _ := e.cat.List("hdd")
	if len(recs) != len(sealed) {
		t.Fatalf("%d records of %d sealed", len(recs), len(sealed))
	}
	flip := func(path string) {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var raw catalog.Record
	for _, r := range recs {
		if r.Format == catalog.FormatRaw && raw.Key == "" {
			raw = r
		}
	}
	flip(filepath.Join(e.tierDir, string(raw.Key)))
	mk, _ := catalog.MarkerKey(testNode, recs[len(recs)-1].Key)
	if err := os.Remove(filepath.Join(e.tierDir, string(mk))); err != nil {
		t.Fatal(err)
	}
	rep, err := e.daemon().ScrubPass(ctx, nil)
	if err != nil || rep.Checked != len(recs) || rep.Repaired != 1 || rep.MarkersRewritten != 1 || rep.NoGoodCopy != 0 {
		t.Fatalf("scrub = %+v, %v", rep, err)
	}
	if _, err := os.Stat(filepath.Join(e.tierDir, string(mk))); err != nil {
		t.Fatalf("marker not rewritten: %v", err)
	}
	if err := e.daemon().RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := e.cat.Get("hdd", raw.Key); err != nil || got.CRC32C != raw.CRC32C {
		t.Fatalf("repaired object not offloaded again: %+v, %v", got, err)
	}
	if rep, err := e.daemon().ScrubPass(ctx, nil); err != nil || rep.Repaired+rep.MarkersRewritten+rep.NoGoodCopy != 0 {
		t.Fatalf("scrub after the repair = %+v, %v", rep, err)
	}
	// No good copy: the tier's object and the local file both changed.
	flip(filepath.Join(e.tierDir, string(raw.Key)))
	flip(filepath.Join(e.root, filepath.FromSlash(raw.Rel)))
	if rep, err := e.daemon().ScrubPass(ctx, nil); err != nil || rep.NoGoodCopy != 1 || rep.Repaired != 0 {
		t.Fatalf("scrub with no good copy = %+v, %v", rep, err)
	}
	if _, err := e.cat.Get("hdd", raw.Key); err != nil {
		t.Fatalf("the record with no good copy was dropped: %v", err)
	}
}
