package brokersim

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// FileKind says what a written file is.
type FileKind string

// The kinds of files brokersim writes.
const (
	KindCommitLog      FileKind = "commitlog"
	KindConsumeQueue   FileKind = "consumequeue"
	KindIndexFile      FileKind = "index"
	KindKafkaLog       FileKind = "kafka-log"
	KindKafkaIndex     FileKind = "kafka-index"
	KindKafkaTimeIndex FileKind = "kafka-timeindex"
	KindMeta           FileKind = "meta" // checkpoints, config, markers: never segments
)

// File is one file of a generated store.
type File struct {
	Path   string   `json:"path"` // relative to the store's directory, slash-separated
	Kind   FileKind `json:"kind"`
	Active bool     `json:"active"` // still written or to be written (the last file of its sequence, or the last two with PreallocateNext); false for sealed segments and meta files
	Size   int64    `json:"size"`   // size on disk when the run ended
}

// sequence is an ordered list of segment files of one kind; the last one is active (the
// last two when the broker creates the next file ahead).
type sequence struct {
	kind  FileKind
	paths []string // relative
	ahead bool     // the last file was created ahead, empty: the one before it is active too
}

func (s *sequence) add(rel string) { s.paths = append(s.paths, rel) }

// listFiles builds the File list of a run: every segment of every sequence and the meta
// files, sorted by path.
func listFiles(dir string, seqs []*sequence, meta []string) ([]File, error) {
	var files []File
	stat := func(rel string, kind FileKind, active bool) error {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("stat written file: %w", err)
		}
		files = append(files, File{Path: rel, Kind: kind, Active: active, Size: fi.Size()})
		return nil
	}
	for _, s := range seqs {
		for i, p := range s.paths {
			active := i == len(s.paths)-1 || (s.ahead && i == len(s.paths)-2)
			if err := stat(p, s.kind, active); err != nil {
				return nil, err
			}
		}
	}
	for _, p := range meta {
		if err := stat(p, KindMeta, false); err != nil {
			return nil, err
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// createFile creates a new file (never an existing one) sized to size bytes (sparse,
// zero-filled), creating its directory.
func createFile(path string, size int64) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create directory for %q: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create %q: %w", path, err)
	}
	if size > 0 {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, fmt.Errorf("preallocate %q to %d bytes: %w", path, size, err)
		}
	}
	return f, nil
}

// writeFileAtomic writes a small meta file through a temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory for %q: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %q: %w", tmp, err)
	}
	return nil
}

// offsetName is a broker file name: a 20-digit zero-padded offset.
func offsetName(off int64) string { return fmt.Sprintf("%020d", off) }

// timeName is an IndexFile name: the creation time as yyyyMMddHHmmssSSS in loc.
func timeName(ms int64, loc *time.Location) string {
	t := time.UnixMilli(ms).In(loc)
	return fmt.Sprintf("%s%03d", t.Format("20060102150405"), ms%1000)
}

// emptyDir fails unless dir is missing or empty, so a run never mixes with an existing store.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %q: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%q is not empty: brokersim writes a new store only", dir)
	}
	return nil
}
