package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tierd/tierd/index"
)

// Dir returns the directory for large benchmark files, made if missing: $TIERD_BENCH_DIR,
// or tierd-bench under the system's temporary directory (on disk here, not a tmpfs, so
// that I/O is real). Generated sources are kept there for later runs.
func Dir() (string, error) {
	d := os.Getenv("TIERD_BENCH_DIR")
	if d == "" {
		d = filepath.Join(os.TempDir(), "tierd-bench")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("make bench directory: %w", err)
	}
	return d, nil
}

// SourcePath is where SourceFile keeps the source of a size.
func SourcePath(dir string, size int64) string {
	return filepath.Join(dir, "src-"+FormatSize(size))
}

// SourceFile returns a file of size pseudo-random (incompressible) bytes in dir, creating
// it once (it is kept for later runs, one per size) and dropping it from the page cache,
// so that the first read is cold.
func SourceFile(dir string, size int64) (string, error) {
	path := SourcePath(dir, size)
	if fi, err := os.Stat(path); err != nil || fi.Size() != size {
		if err := writeRandom(path, size); err != nil {
			return "", fmt.Errorf("make source file %s: %w", path, err)
		}
	}
	return path, DropCache(path)
}

func writeRandom(path string, size int64) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	defer f.Close()
	r := rand.NewChaCha8([32]byte{'t', 'i', 'e', 'r', 'd'})
	buf := make([]byte, 1<<20) // small enough not to matter to anything measured later
	for off := int64(0); off < size; off += int64(len(buf)) {
		p := buf[:min(int64(len(buf)), size-off)]
		_, _ = r.Read(p)
		if _, err := f.Write(p); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// DropCache writes path back and evicts it from the page cache.
func DropCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("drop %s from the page cache: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("drop %s from the page cache: %w", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("drop %s from the page cache: %w", path, err)
	}
	return nil
}

// Resident returns how many bytes of path are in the page cache (mincore over a read-only
// mapping, which touches no page).
func Resident(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("page-cache residency of %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("page-cache residency of %s: %w", path, err)
	}
	if fi.Size() == 0 {
		return 0, nil
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("page-cache residency of %s: map: %w", path, err)
	}
	defer unix.Munmap(mem)
	pg := int64(os.Getpagesize())
	vec := make([]byte, (fi.Size()+pg-1)/pg)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0, fmt.Errorf("page-cache residency of %s: mincore: %w", path, errno)
	}
	var n int64
	for i, v := range vec {
		if v&1 != 0 {
			n += min(pg, fi.Size()-int64(i)*pg)
		}
	}
	return n, nil
}

// ResidentTree returns the page-cache residency summed over the regular files under dir
// (an object store's data directory, say); files vanishing meanwhile count nothing.
func ResidentTree(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		n, err := Resident(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		total += n
		return nil
	})
	return total, err
}

// FreeSpace returns the bytes available to unprivileged users on dir's filesystem.
func FreeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// IndexFilePath is where IndexFile keeps an IndexFile of this geometry and count.
func IndexFilePath(dir string, slots, items, n int) string {
	return filepath.Join(dir, fmt.Sprintf("indexfile-%dx%d-%d", slots, items, n))
}

// IndexFile returns an IndexFile of the given geometry holding n items (at most items-1,
// as a broker fills one) in dir, generating it once (kept for later runs). Messages are
// indexed as a broker indexes them: a 32-hex-digit UNIQ_KEY and three business keys per
// message, each message ~700 bytes after the previous one in the commit log, stored 1 ms
// apart. The generation is deterministic.
func IndexFile(dir string, slots, items, n int) (string, error) {
	if n < 0 || n >= items {
		return "", fmt.Errorf("index file: %d items do not fit %d (one is reserved)", n, items)
	}
	path := IndexFilePath(dir, slots, items, n)
	if fi, err := os.Stat(path); err == nil && fi.Size() == index.IndexFileSize(slots, items) {
		return path, nil
	}
	if err := writeIndexFile(path, slots, items, n); err != nil {
		return "", fmt.Errorf("generate index file %s: %w", path, err)
	}
	return path, nil
}

func writeIndexFile(path string, slots, items, n int) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	defer f.Close()
	w, err := index.NewIndexFileWriter(f, slots, items, 0, 0)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	const topic = "BenchTopic#"
	phy, ts := int64(0), int64(1_760_000_000_000)
	key := make([]byte, 0, 64)
	for i := 0; i < n; i++ {
		key = append(key[:0], topic...)
		if i%4 == 0 {
			key = fmt.Appendf(key, "%016X%016X", rng.Uint64(), rng.Uint64())
		} else {
			key = strconv.AppendUint(key, rng.Uint64()%1_000_000_000_000, 36)
		}
		if err := w.Put(string(key), phy, ts); err != nil {
			return err
		}
		if i%4 == 3 {
			phy += 600 + rng.Int64N(200)
			ts++
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return DropCache(path)
}
