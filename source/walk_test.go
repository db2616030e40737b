package source

import (
	"context"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestWalkerMatchesScan: on every golden tree, listing the sequences and scanning them one
// at a time finds exactly what one Scan finds, and every file of a sequence lies directly
// in the sequence's directory (the catalog keys a sequence's files by that prefix).
func TestWalkerMatchesScan(t *testing.T) {
	for _, layout := range []string{LayoutRocketMQ, LayoutKafka} {
		cases, err := filepath.Glob(filepath.Join("testdata", layout, "*", "tree.txt"))
		if err != nil || len(cases) == 0 {
			t.Fatalf("no golden cases for %s: %v", layout, err)
		}
		for _, treeFile := range cases {
			t.Run(layout+"/"+filepath.Base(filepath.Dir(treeFile)), func(t *testing.T) {
				spec := readTreeSpec(t, treeFile)
				root := spec.build(t)
				l, err := NewLayout(layout, spec.opts)
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				want, err := l.Scan(ctx, root)
				if err != nil {
					t.Fatal(err)
				}
				w := l.(Walker)
				got := ScanResult{Source: want.Source, Root: want.Root}
				skipped, err := w.Sequences(ctx, root, func(sd SeqDir) error {
					seq, sk, err := w.ScanSequence(ctx, root, sd)
					if err != nil {
						return err
					}
					if seq.Name != sd.Name {
						t.Errorf("ScanSequence(%s) returned sequence %s", sd.Name, seq.Name)
					}
					for _, f := range seq.Files {
						if path.Dir(f.Rel) != sd.Name || f.Seq != sd.Name {
							t.Errorf("%s (seq %s) is not directly in its sequence's directory %s", f.Rel, f.Seq, sd.Name)
						}
					}
					if len(seq.Files) > 0 {
						got.Sequences = append(got.Sequences, seq)
					}
					got.Skipped = append(got.Skipped, sk...)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				got.Skipped = append(got.Skipped, skipped...)
				slices.SortFunc(got.Sequences, func(a, b Sequence) int { return strings.Compare(a.Name, b.Name) })
				slices.SortFunc(got.Skipped, func(a, b Skipped) int { return strings.Compare(a.Path, b.Path) })
				if !reflect.DeepEqual(render(got), render(want)) {
					t.Fatalf("walk differs from scan:\n--- walk\n%s--- scan\n%s", render(got), render(want))
				}
			})
		}
	}
}
