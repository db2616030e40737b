package compactor

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../index/testdata/tix")

// goldenCases are the golden compacted indexes: their sources are built here and both
// are kept in index/testdata/tix, where the index package checks lookups on them without
// the compactor.
var goldenCases = []struct {
	name         string
	slots, items int
	puts         []put
}{
	{"small", 4, 8, []put{
		{"T#a", 1000, 1_700_000_000_000},
		{"T#b", 1000, 1_700_000_000_000},
		{"T#a", 1250, 1_700_000_002_500},
		{"T#AaAa", 1500, 1_700_000_003_000}, // same Java hash as T#BBBB
		{"T#BBBB", 1750, 1_700_000_003_999},
	}},
	{"medium", 64, 1024, nil},
}

func goldenPuts(t testing.TB, name string, puts []put, items int) []put {
	if puts != nil {
		return puts
	}
	var keys []string
	keys = append(keys, keyPool(t)...)
	out := make([]put, 0, items-1)
	ts := int64(1_700_000_000_000)
	for i := range items - 1 {
		k := keys[(i*7+i/3)%len(keys)]
		out = append(out, put{k, 4096 + int64(i)*333, ts + int64(i)*250})
	}
	return out
}

// TestGolden: the compactor's output for fixed IndexFiles is byte for byte the golden
// file (go test ./compactor -run TestGolden -update rewrites them after a deliberate
// format change, which also needs a new format version).
func TestGolden(t *testing.T) {
	dir := filepath.Join("..", "index", "testdata", "tix")
	for _, g := range goldenCases {
		src := buildIndex(t, g.slots, g.items, 0, 0, goldenPuts(t, g.name, g.puts, g.items))
		got, _, err := compactMem(t, src, Options{Slots: g.slots, Items: g.items, Pool: newPool(t, 4096, 2)})
		if err != nil {
			t.Fatal(err)
		}
		srcPath, tixPath := filepath.Join(dir, g.name+".indexfile"), filepath.Join(dir, g.name+".tix")
		if *update {
			if err := os.WriteFile(srcPath, src.b, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tixPath, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		wantSrc, err := os.ReadFile(srcPath)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(tixPath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(src.b, wantSrc) {
			t.Fatalf("%s: the IndexFile writer no longer writes the golden source", g.name)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: compacted output differs from %s", g.name, tixPath)
		}
	}
}
