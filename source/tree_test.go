package source

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A tree spec describes a directory tree to build in a temporary directory, one entry a
// line (blank lines and '#' comments are ignored):
//
//	file REL SIZE [indexcount=N]   sparse file of SIZE bytes; indexcount writes an
//	                               IndexFile header whose indexCount is N
//	dir REL                        directory (parents are made as needed)
//	link REL TARGET                symbolic link
//	fifo REL                       named pipe (unix only)
//	opt NAME VALUE                 a LayoutOptions field: commitlog_file_size,
//	                               consumequeue_file_size, index_hash_slots, index_items
//
// REL is relative to the tree's root, which is "root" inside the temporary directory; it
// may start with "../" to put things beside the root (link targets).
type treeSpec struct {
	lines []string
	opts  LayoutOptions
}

func readTreeSpec(t *testing.T, path string) treeSpec {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spec := treeSpec{opts: LayoutOptions{Source: "src"}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if fields := strings.Fields(line); fields[0] == "opt" {
			if len(fields) != 3 {
				t.Fatalf("%s:%d: opt NAME VALUE", path, n)
			}
			v, err := strconv.ParseInt(fields[2], 10, 64)
			if err != nil {
				t.Fatalf("%s:%d: %v", path, n, err)
			}
			switch fields[1] {
			case "commitlog_file_size":
				spec.opts.CommitLogFileSize = v
			case "consumequeue_file_size":
				spec.opts.ConsumeQueueFileSize = v
			case "index_hash_slots":
				spec.opts.IndexHashSlots = v
			case "index_items":
				spec.opts.IndexItems = v
			default:
				t.Fatalf("%s:%d: unknown option %q", path, n, fields[1])
			}
			continue
		}
		spec.lines = append(spec.lines, fmt.Sprintf("%s:%d: %s", path, n, line))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return spec
}

// build makes the tree under a new temporary directory and returns its root.
func (spec treeSpec) build(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, line := range spec.lines {
		where, entry, _ := strings.Cut(line, ": ")
		fields := strings.Fields(entry)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s: %s", where, fmt.Sprintf(format, args...))
		}
		if len(fields) < 2 {
			fail("too few fields")
		}
		p := filepath.Join(root, filepath.FromSlash(fields[1]))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fail("%v", err)
		}
		switch fields[0] {
		case "file":
			if len(fields) < 3 || len(fields) > 4 {
				fail("file REL SIZE [indexcount=N]")
			}
			size, err := strconv.ParseInt(fields[2], 10, 64)
			if err != nil {
				fail("%v", err)
			}
			var count int64 = -1
			if len(fields) == 4 {
				v, ok := strings.CutPrefix(fields[3], "indexcount=")
				if !ok {
					fail("want indexcount=N, got %q", fields[3])
				}
				if count, err = strconv.ParseInt(v, 10, 32); err != nil {
					fail("%v", err)
				}
			}
			writeSparse(t, p, size, count)
		case "dir":
			if err := os.MkdirAll(p, 0o755); err != nil {
				fail("%v", err)
			}
		case "link":
			if len(fields) != 3 {
				fail("link REL TARGET")
			}
			if err := os.Symlink(fields[2], p); err != nil {
				fail("%v", err)
			}
		case "fifo":
			mkfifo(t, p)
		default:
			fail("unknown entry %q", fields[0])
		}
	}
	return root
}

// writeSparse makes a file of size bytes without writing them; with count >= 0 it also
// writes an IndexFile header whose indexCount is count.
func writeSparse(t *testing.T, path string, size, count int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if count >= 0 {
		var h [indexHeaderSize]byte
		binary.BigEndian.PutUint64(h[0:], 1700000000000) // beginTimestamp
		binary.BigEndian.PutUint64(h[8:], 1700000001000) // endTimestamp
		binary.BigEndian.PutUint32(h[32:], 3)            // hashSlotCount
		binary.BigEndian.PutUint32(h[indexCountAt:], uint32(count))
		if _, err := f.WriteAt(h[:], 0); err != nil {
			t.Fatal(err)
		}
	}
}

// fileState is what a scan must leave unchanged.
type fileState struct {
	mode  fs.FileMode
	size  int64
	mtime time.Time
}

// snapshotTree records the state of every entry under dir (not following links).
func snapshotTree(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fileState{mode: fi.Mode(), mtime: fi.ModTime()}
		if fi.Mode().IsRegular() {
			st.size = fi.Size()
		}
		out[p] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
