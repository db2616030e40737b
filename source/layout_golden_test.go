package source

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/segment"
)

var update = flag.Bool("update", false, "rewrite the want.txt files of the layout golden tests")

// TestLayoutGolden scans every tree under testdata/<layout>/<case>/tree.txt and compares
// the result with want.txt beside it (go test -run LayoutGolden -update rewrites them).
// The trees are built in a temporary directory with sparse files, so preallocated sizes
// cost nothing. Besides the golden output, every scan must satisfy checkScan's
// invariants and leave the tree exactly as it was.
func TestLayoutGolden(t *testing.T) {
	for _, layout := range []string{LayoutRocketMQ, LayoutKafka} {
		cases, err := filepath.Glob(filepath.Join("testdata", layout, "*", "tree.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if len(cases) == 0 {
			t.Fatalf("no golden cases for %s", layout)
		}
		for _, treeFile := range cases {
			dir := filepath.Dir(treeFile)
			t.Run(layout+"/"+filepath.Base(dir), func(t *testing.T) {
				spec := readTreeSpec(t, treeFile)
				root := spec.build(t)
				l, err := NewLayout(layout, spec.opts)
				if err != nil {
					t.Fatal(err)
				}
				before := snapshotTree(t, filepath.Dir(root))
				res, err := l.Scan(context.Background(), root)
				if err != nil {
					t.Fatal(err)
				}
				if after := snapshotTree(t, filepath.Dir(root)); !reflect.DeepEqual(before, after) {
					t.Fatalf("the scan changed the tree:\nbefore %v\nafter  %v", before, after)
				}
				checkScan(t, res, root, spec.opts.Source)
				checkSealed(t, res)
				again, err := l.Scan(context.Background(), root)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(res, again) {
					t.Fatalf("two scans of an unchanged tree differ:\n%s\n%s", render(res), render(again))
				}
				got := render(res)
				wantFile := filepath.Join(dir, "want.txt")
				if *update {
					if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(wantFile)
				if err != nil {
					t.Fatal(err)
				}
				if got != string(want) {
					t.Fatalf("scan of %s differs from %s\n--- got\n%s--- want\n%s", treeFile, wantFile, got, want)
				}
			})
		}
	}
}

// render prints a scan result with paths relative to its root, one line per file.
func render(res ScanResult) string {
	var b strings.Builder
	for _, seq := range res.Sequences {
		fmt.Fprintf(&b, "seq %s\n", seq.Name)
		for _, c := range seq.Files {
			state := "open  "
			if c.Closed {
				state = "closed"
			}
			fmt.Fprintf(&b, "  %s %s %s %d: %s\n", state, c.Rel, c.Kind, c.Size, c.Why)
		}
	}
	for _, s := range res.Skipped {
		rel, err := filepath.Rel(res.Root, s.Path)
		if err != nil {
			rel = s.Path
		}
		fmt.Fprintf(&b, "skip %s: %s\n", filepath.ToSlash(rel), s.Reason)
	}
	if b.Len() == 0 {
		return "(nothing)\n"
	}
	return b.String()
}

// checkScan checks what every scan result must satisfy, whatever the tree.
func checkScan(t *testing.T, res ScanResult, root, source string) {
	t.Helper()
	if res.Root != root || res.Source != source {
		t.Errorf("result root %q source %q, want %q %q", res.Root, res.Source, root, source)
	}
	seen := map[string]bool{}
	for i, seq := range res.Sequences {
		if len(seq.Files) == 0 {
			t.Errorf("sequence %q is empty", seq.Name)
		}
		if i > 0 && res.Sequences[i-1].Name >= seq.Name {
			t.Errorf("sequences out of order: %q before %q", res.Sequences[i-1].Name, seq.Name)
		}
		for _, c := range seq.Files {
			if c.Seq != seq.Name || c.Source != source {
				t.Errorf("%s: seq %q source %q in sequence %q", c.Rel, c.Seq, c.Source, seq.Name)
			}
			if _, err := segment.ParseKind(string(c.Kind)); err != nil {
				t.Errorf("%s: %v", c.Rel, err)
			}
			if want := filepath.Join(root, filepath.FromSlash(c.Rel)); c.Path != want {
				t.Errorf("%s: path %q, want %q", c.Rel, c.Path, want)
			}
			if p, err := segment.LocalPath(root, c.Rel); err != nil || p != c.Path {
				t.Errorf("%s: LocalPath = %q, %v", c.Rel, p, err)
			}
			fi, err := os.Lstat(c.Path)
			if err != nil || !fi.Mode().IsRegular() || fi.Size() != c.Size || !fi.ModTime().Equal(c.ModTime) {
				t.Errorf("%s: candidate %d bytes %v does not match the file: %v %v", c.Rel, c.Size, c.ModTime, fi, err)
			}
			if c.Why == "" {
				t.Errorf("%s: no Why", c.Rel)
			}
			k, err := c.Key("node-a")
			if err != nil {
				t.Errorf("%s: %v", c.Rel, err)
				continue
			}
			node, src, rel, compacted, err := segment.ParseObjectKey(k)
			if err != nil || node != "node-a" || src != source || rel != c.Rel || compacted {
				t.Errorf("%s: key %q parses to %q %q %q %v %v", c.Rel, k, node, src, rel, compacted, err)
			}
			if seen[c.Path] {
				t.Errorf("%s listed twice", c.Path)
			}
			seen[c.Path] = true
		}
	}
	for i, s := range res.Skipped {
		if !strings.HasPrefix(s.Path, root+string(filepath.Separator)) || s.Reason == "" {
			t.Errorf("bad skipped entry %+v", s)
		}
		if i > 0 && res.Skipped[i-1].Path >= s.Path {
			t.Errorf("skipped out of order: %q before %q", res.Skipped[i-1].Path, s.Path)
		}
		if seen[s.Path] {
			t.Errorf("%s is both a candidate and skipped", s.Path)
		}
		seen[s.Path] = true
	}
}

// checkSealed feeds res twice to a Sealer, late enough for any grace: exactly the closed
// candidates must come out sealed, and every open one pending with the layout's reason.
func checkSealed(t *testing.T, res ScanResult) {
	t.Helper()
	s, err := NewSealer(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	s.Observe(res, later)
	sealed, pending := s.Observe(res, later)
	var closed []segment.Segment
	open := map[string]string{}
	for _, c := range res.Candidates() {
		if c.Closed {
			closed = append(closed, c.Segment)
		} else {
			open[c.Path] = c.Why
		}
	}
	if !reflect.DeepEqual(sealed, closed) {
		t.Errorf("sealed %+v\nwant the closed candidates %+v", sealed, closed)
	}
	if len(pending) != len(open) {
		t.Errorf("pending %+v, want %v", pending, open)
	}
	for _, p := range pending {
		if why, ok := open[p.Path]; !ok || p.Why != why {
			t.Errorf("pending %s (%s): not an open candidate", p.Path, p.Why)
		}
	}
}
