package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tierd/tierd/devtools/brokersim"
	"github.com/tierd/tierd/index"
)

// TestRestoreCompactedIndex: run --once offloads a brokersim store's sealed IndexFiles
// compacted (.tix) to a posix tier; `restore KEY.tix` writes IndexFiles that answer every
// lookup of the broker's chain walk exactly as the originals (every key and message id of
// every message, absent keys, time ranges, limits) and have their headers; `tierd query`
// through the compacted indexes finds what the chain walks on the rehydrated files find.
// An existing file is kept without --force, keys escaping --to are refused, --slots on a
// plain key is a usage error, and a geometry too small for the items says what fits.
func TestRestoreCompactedIndex(t *testing.T) {
	w, sum := offloadedStore(t)
	ctx := context.Background()
	var tixKeys []string
	for _, o := range lsJSON(t, w) {
		if strings.HasSuffix(o.Key, ".tix") {
			tixKeys = append(tixKeys, o.Key)
		}
	}
	sealed := 0
	for _, f := range sum.Files {
		if f.Kind == brokersim.KindIndexFile && !f.Active {
			sealed++
		}
	}
	if len(tixKeys) == 0 || len(tixKeys) != sealed {
		t.Fatalf("%d compacted indexes on the tier, %d sealed IndexFiles", len(tixKeys), sealed)
	}
	// Every key the broker indexed (topic#key and topic#uniqKey), and some it did not.
	keySet := map[string]bool{"T0#absent": true, "nope": true}
	for _, m := range sum.Written {
		for _, k := range append(slices.Clone(m.Keys), m.UniqKey) {
			keySet[index.IndexKey(m.Topic, k)] = true
		}
	}
	keys := make([]string, 0, len(keySet))
	for k := range keySet {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	first, last := sum.Written[0].StoreTimestamp, sum.Written[len(sum.Written)-1].StoreTimestamp
	mid := (first + last) / 2
	ranges := [][2]int64{{math.MinInt64, math.MaxInt64}, {first, mid}, {mid, last}, {mid, mid + 1000}, {last + 1, math.MaxInt64}}

	to := t.TempDir()
	var rehydrated []*index.IndexFile
	for _, key := range tixKeys {
		code, out, errs := cli(t, ctx, "-c", w.cfg, "restore", key, "--to", to)
		if code != 0 || !strings.Contains(out, "rehydrated IndexFile") {
			t.Fatalf("restore %s: exit %d: %s%s", key, code, out, errs)
		}
		t.Log(strings.TrimSpace(out))
		rel := strings.TrimSuffix(strings.SplitN(key, "/", 3)[2], ".tix")
		orig, err := os.ReadFile(filepath.Join(w.store, rel))
		if err != nil {
			t.Fatal(err)
		}
		back, err := os.ReadFile(filepath.Join(to, rel))
		if err != nil {
			t.Fatalf("restore %s wrote no %s: %v", key, rel, err)
		}
		ox, err := index.OpenIndexFile(bytes.NewReader(orig), int64(len(orig)), 64, 256)
		if err != nil {
			t.Fatal(err)
		}
		rx, err := index.OpenIndexFile(bytes.NewReader(back), int64(len(back)), 64, 256)
		if err != nil {
			t.Fatalf("rehydrated %s: %v", rel, err)
		}
		if ox.Header() != rx.Header() {
			t.Fatalf("%s: header %+v, original %+v", rel, rx.Header(), ox.Header())
		}
		found := 0
		for _, k := range keys {
			for _, r := range ranges {
				for _, maxN := range []int{0, 1, 2} {
					want, err := ox.Lookup(k, r[0], r[1], maxN)
					if err != nil {
						t.Fatal(err)
					}
					got, err := rx.Lookup(k, r[0], r[1], maxN)
					if err != nil {
						t.Fatalf("%s: lookup %q: %v", rel, k, err)
					}
					if !slices.EqualFunc(want, got, func(a, b index.Item) bool {
						return a.KeyHash == b.KeyHash && a.PhyOffset == b.PhyOffset && a.TimeDiff == b.TimeDiff
					}) {
						t.Fatalf("%s: lookup %q in [%d, %d] max %d: original %v, rehydrated %v", rel, k, r[0], r[1], maxN, want, got)
					}
					found += len(got)
				}
			}
		}
		if found == 0 {
			t.Fatalf("%s: no lookup found anything", rel)
		}
		rehydrated = append(rehydrated, rx)
	}

	// tierd query (through the compacted indexes on the tier) finds what the chain walks
	// on the rehydrated files find.
	byPhy := map[int64]brokersim.RocketMQMessage{}
	for _, m := range sum.Written {
		byPhy[m.PhyOffset] = m
	}
	for _, m := range []brokersim.RocketMQMessage{sum.Written[10], sum.Written[700], sum.Written[1500]} {
		for _, k := range append(slices.Clone(m.Keys), m.UniqKey) {
			var want []int64
			for i := len(rehydrated) - 1; i >= 0; i-- {
				items, err := rehydrated[i].Lookup(index.IndexKey(m.Topic, k), math.MinInt64, math.MaxInt64, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range items {
					f := byPhy[it.PhyOffset]
					if f.Topic == m.Topic && (slices.Contains(f.Keys, k) || f.UniqKey == k) && !slices.Contains(want, it.PhyOffset) {
						want = append(want, it.PhyOffset)
					}
				}
			}
			code, out, errs := cli(t, ctx, "-c", w.cfg, "query", "--json", "--max", "1000", "--topic", m.Topic, "--key", k)
			if code != 0 {
				t.Fatalf("query: exit %d: %s", code, errs)
			}
			var rep queryReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, q := range rep.Messages {
				got = append(got, q.PhyOffset)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("query %s %s: %v; chain walks on the rehydrated files: %v", m.Topic, k, got, want)
			}
		}
	}

	key := tixKeys[0]
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "restore", key, "--to", to); code != 2 || !strings.Contains(errs, "--force") {
		t.Fatalf("restore over an existing file: exit %d: %s", code, errs)
	}
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "restore", key, "--to", to, "--force"); code != 0 {
		t.Fatalf("restore --force: exit %d: %s", code, errs)
	}
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "restore", key, "--to", to, "--force", "--items", "3"); code != 2 || !strings.Contains(errs, "--slots 64 --items 256") {
		t.Fatalf("restore with too few items: exit %d: %s", code, errs)
	}
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "restore", "node-1/src/commitlog/00000000000000000000", "--to", to, "--slots", "5"); code != 2 || !strings.Contains(errs, "compacted") {
		t.Fatalf("restore of a commit-log file with --slots: exit %d: %s", code, errs)
	}
	for _, bad := range []string{"node-1/src/../../etc/x.tix", "node-1/src/index/...tix"} {
		if code, _, errs := cli(t, ctx, "-c", w.cfg, "restore", bad, "--to", to); code != 2 || !strings.Contains(errs, "refusing") {
			t.Errorf("restore %q: exit %d: %s", bad, code, errs)
		}
	}
	// Restored into the store itself, over the original (as after a local deletion): the
	// file gets the original's mtime, so the scan sees the version the tier holds, not a
	// change to offload again.
	rel0 := strings.TrimSuffix(strings.SplitN(key, "/", 3)[2], ".tix")
	before, err := os.Stat(filepath.Join(w.store, rel0))
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli(t, ctx, "-c", w.cfg, "restore", key, "--to", w.store, "--force"); code != 0 {
		t.Fatalf("restore into the store: exit %d: %s", code, errs)
	}
	after, err := os.Stat(filepath.Join(w.store, rel0))
	if err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("rehydrated into the store: mtime %v, the original's %v (%v)", after.ModTime(), before.ModTime(), err)
	}
	code, out, errs := cli(t, ctx, "-c", w.cfg, "scan")
	if code != 0 {
		t.Fatalf("scan: exit %d: %s", code, errs)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, rel0) && strings.Contains(line, "changed") {
			t.Fatalf("scan after restoring %s into the store: %s", rel0, line)
		}
	}
	// Nothing but the restored files in --to: no temp file left behind.
	var names []string
	_ = filepath.WalkDir(to, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, strings.TrimPrefix(p, to+"/"))
		}
		return nil
	})
	if len(names) != len(tixKeys) {
		t.Fatalf("files under --to: %v, want the %d IndexFiles", names, len(tixKeys))
	}
}

// sameIndexLookups checks that the IndexFile at got (rehydrated) has the header of the
// one at want and answers the lookup of every key hash want holds, over all time, as it
// does.
func sameIndexLookups(t *testing.T, want, got string, slots, items int) {
	t.Helper()
	open := func(path string) *index.IndexFile {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ix, err := index.OpenIndexFile(bytes.NewReader(b), int64(len(b)), slots, items)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return ix
	}
	ox, rx := open(want), open(got)
	if ox.Header() != rx.Header() {
		t.Fatalf("%s: header %+v, original %+v", got, rx.Header(), ox.Header())
	}
	hashes := map[int32]bool{}
	if err := ox.Items(nil, func(_ int, it index.Item) error { hashes[it.KeyHash] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	for h := range hashes {
		a, _ := ox.LookupHash(h, math.MinInt64, math.MaxInt64, 0)
		b, err := rx.LookupHash(h, math.MinInt64, math.MaxInt64, 0)
		if err != nil || !slices.EqualFunc(a, b, func(x, y index.Item) bool {
			return x.KeyHash == y.KeyHash && x.PhyOffset == y.PhyOffset && x.TimeDiff == y.TimeDiff
		}) {
			t.Fatalf("%s: lookup of hash %d: original %v, rehydrated %v (%v)", got, h, a, b, err)
		}
	}
}
