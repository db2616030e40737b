// Package benchutil holds what tierd's benchmarks share: big test files, peak-RSS and
// page-cache measurements, medians, and timing of baseline commands run in the same run.
package benchutil

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Dir returns the directory for large benchmark files: $TIERD_BENCH_DIR, or a directory
// under the system temp dir (on disk, not tmpfs, so that I/O is real).
func Dir(b testing.TB) string {
	d := os.Getenv("TIERD_BENCH_DIR")
	if d == "" {
		d = filepath.Join(os.TempDir(), "tierd-bench")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		b.Fatal(err)
	}
	return d
}

// Sizes returns the file sizes to benchmark: $TIERD_BENCH_SIZES (e.g. "256MiB,1GiB"), or def.
func Sizes(b testing.TB, def string) []int64 {
	s := os.Getenv("TIERD_BENCH_SIZES")
	if s == "" {
		s = def
	}
	var out []int64
	for f := range strings.SplitSeq(s, ",") {
		n, err := ParseSize(strings.TrimSpace(f))
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// Runs returns how many times each measurement is repeated: $TIERD_BENCH_RUNS or def.
func Runs(def int) int {
	if n, err := strconv.Atoi(os.Getenv("TIERD_BENCH_RUNS")); err == nil && n > 0 {
		return n
	}
	return def
}

// ParseSize parses "1GiB", "256MiB", "64KiB" or a byte count.
func ParseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// FormatSize renders n as "1GiB", "256MiB" or bytes.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return strconv.FormatInt(n, 10)
}

// SourceFile returns a file of size random bytes in dir, creating it once (it is kept
// for later runs) and dropping it from the page cache, so every run reads a cold file.
func SourceFile(b testing.TB, dir string, size int64) string {
	path := filepath.Join(dir, "src-"+FormatSize(size))
	if fi, err := os.Stat(path); err != nil || fi.Size() != size {
		if err := writeRandom(path, size); err != nil {
			b.Fatal(err)
		}
	}
	DropCache(b, path)
	return path
}

func writeRandom(path string, size int64) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{'t', 'i', 'e', 'r', 'd'})
	// Written through a 1 MiB heap buffer: small enough not to matter to later RSS readings.
	buf := make([]byte, 1<<20)
	w := bufio.NewWriterSize(f, 0)
	for off := int64(0); off < size; off += int64(len(buf)) {
		p := buf[:min(int64(len(buf)), size-off)]
		_, _ = r.Read(p)
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// DropCache writes back and evicts path from the page cache.
func DropCache(b testing.TB, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	_ = f.Sync()
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// ResetPeakRSS resets this process's VmHWM to its current RSS (Linux 4.0+).
func ResetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// PeakRSS returns this process's VmHWM and VmRSS in bytes.
func PeakRSS() (hwm, rss int64) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) >= 2 {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "VmHWM:":
				hwm = kb << 10
			case "VmRSS:":
				rss = kb << 10
			}
		}
	}
	return hwm, rss
}

// Resident returns how many bytes of path are in the page cache, as fincore reports.
func Resident(path string) (int64, error) {
	out, err := exec.Command("fincore", "--bytes", "--noheadings", "--output", "RES", path).Output()
	if err != nil {
		return 0, fmt.Errorf("fincore %s: %w", path, err)
	}
	return strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
}

// TimeCommand runs a command and returns its wall time.
func TimeCommand(name string, args ...string) (time.Duration, error) {
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return time.Since(start), nil
}

// Median returns the median of xs (the mean of the middle two for an even count).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// MBps returns n bytes over d in MB/s (10^6 bytes, as dd prints).
func MBps(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() / 1e6 }

// MiB renders bytes as MiB with one decimal.
func MiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
