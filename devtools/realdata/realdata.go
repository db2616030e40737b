// Package realdata gives tests the files real Kafka and RocketMQ brokers wrote, kept
// outside the repository in ../shared/realdata (relative to the repository root; its
// README says where each set comes from). Tests never write there: Copy makes a private
// copy with the files' original mtimes (git keeps none; manifest.tsv has them).
//
// Where the directory is absent (a user's clone), tests that need it are skipped with a
// message; under CI=true they fail instead, so CI cannot silently stop testing on real
// files. Only _test.go files import this package.
package realdata

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// DirEnv, when set, names the real-data directory instead of ../shared/realdata.
const DirEnv = "TIERD_REALDATA"

// Dir returns the real-data directory, or skips t (fails it when CI=true) if it is
// absent.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(DirEnv)
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			t.Fatalf("real broker files: %v", err)
		}
		dir = filepath.Join(root, "..", "shared", "realdata")
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest.tsv")); err != nil {
		msg := fmt.Sprintf("real broker files not found (%v): they live in ../shared/realdata beside the repository, or set %s", err, DirEnv)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true, so this is a failure")
		}
		t.Skip(msg)
	}
	return dir
}

// repoRoot is the nearest directory above the working directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// File is one line of manifest.tsv.
type File struct {
	ID     string    // set: K1..K4, R1..R3
	Path   string    // slash-separated, relative to the real-data directory
	Size   int64     // bytes
	SHA256 string    // hex
	MTime  time.Time // the file's modification time as the broker left it (its commit's date)
}

// Manifest reads dir/manifest.tsv.
func Manifest(dir string) ([]File, error) {
	f, err := os.Open(filepath.Join(dir, "manifest.tsv"))
	if err != nil {
		return nil, fmt.Errorf("cannot open manifest: %w", err)
	}
	defer f.Close()
	var out []File
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if line == 1 || sc.Text() == "" {
			continue // header
		}
		c := strings.Split(sc.Text(), "\t")
		if len(c) != 10 {
			return nil, fmt.Errorf("manifest.tsv:%d: %d columns, want 10", line, len(c))
		}
		var size int64
		if _, err := fmt.Sscan(c[6], &size); err != nil {
			return nil, fmt.Errorf("manifest.tsv:%d: size %q: %w", line, c[6], err)
		}
		mt, err := time.Parse(time.RFC3339, c[9])
		if err != nil {
			return nil, fmt.Errorf("manifest.tsv:%d: mtime: %w", line, err)
		}
		out = append(out, File{ID: c[0], Path: c[5], Size: size, SHA256: c[8], MTime: mt})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	return out, nil
}

// Copy copies the subtree sub of the real-data directory (e.g. "kafka/k2" or
// "rocketmq/r1/store") into dst (created if missing) and gives every file the mtime
// manifest.tsv records for it; directories are made writable. It returns dst.
func Copy(t testing.TB, sub, dst string) string {
	t.Helper()
	dir := Dir(t)
	files, err := Manifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	mtimes := map[string]time.Time{}
	for _, f := range files {
		mtimes[f.Path] = f.MTime
	}
	src := filepath.Join(dir, filepath.FromSlash(sub))
	var set []string // files to time
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if err := copyFile(path, to); err != nil {
			return err
		}
		set = append(set, to)
		mt, ok := mtimes[filepath.ToSlash(filepath.Join(sub, rel))]
		if !ok {
			return fmt.Errorf("%s is not in manifest.tsv", filepath.Join(sub, rel))
		}
		return os.Chtimes(to, mt, mt)
	})
	if err != nil {
		t.Fatalf("copy real files %s: %v", sub, err)
	}
	if len(set) == 0 {
		t.Fatalf("copy real files %s: no files", sub)
	}
	return dst
}

// CopyFile copies one file of the real-data directory (rel, slash-separated) to dst,
// replacing dst, with the manifest's mtime.
func CopyFile(t testing.TB, rel, dst string) {
	t.Helper()
	dir := Dir(t)
	files, err := Manifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == rel {
			if err := copyFile(filepath.Join(dir, filepath.FromSlash(rel)), dst); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(dst, f.MTime, f.MTime); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("%s is not in manifest.tsv", rel)
}

// copyFile copies src to dst (0o644), replacing dst atomically.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("cannot open %q: %w", src, err)
	}
	defer in.Close()
	tmp := dst + ".realdata-tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create %q: %w", tmp, err)
	}
	if _, err = io.Copy(out, in); err == nil {
		err = out.Close()
	} else {
		out.Close()
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copy %q to %q: %w", src, dst, err)
	}
	return nil
}
