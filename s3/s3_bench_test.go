package s3

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/internal/miniotest"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
)

// BenchmarkUpload uploads the same file to the same MinIO with tierd (each driver) and
// with `mc cp`, interleaved in every iteration, and reports medians: throughput, its ratio
// to mc, CPU-seconds per GiB of the uploader and of the MinIO server, and peak RSS.
//
// Sizes come from TIERD_BENCH_S3_SIZES (default "64MiB", so `make bench` stays quick);
// the numbers are
//
//	TIERD_BENCH_S3_SIZES=256MiB,1GiB,4GiB go test -run '^$' -bench BenchmarkUpload -benchtime 3x -timeout 60m ./s3/
//
// One upload at a time runs for every size; 16 concurrent uploads (of the same file, to
// 16 keys) for sizes up to 256 MiB, so that MinIO never holds more than 4 GiB at once (the
// disk here runs out near 16 GiB). The files are made in a temporary directory on disk. tierd runs with the default memory
// configuration of DESIGN.md: a 64 MiB pool of 8 MiB buffers, and parts of the buffer size
// unless TIERD_BENCH_S3_PART_SIZE says otherwise. TIERD_BENCH_S3_DATA_DIR moves MinIO's
// data (not the source files) to another directory, such as a tmpfs.
func BenchmarkUpload(b *testing.B) {
	sizes := benchSizes(b)
	// TIERD_BENCH_S3_DATA_DIR puts MinIO's data elsewhere (a tmpfs) when the disk is short.
	srv := miniotest.StartWith(b, miniotest.Options{DataDir: os.Getenv("TIERD_BENCH_S3_DATA_DIR")})
	miniotest.MCBin(b)
	dir := b.TempDir()
	pool, err := bufpool.New(bufpool.Config{Budget: benchPool, BufferSize: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	partSize := int64(0) // the buffer size
	if v := os.Getenv("TIERD_BENCH_S3_PART_SIZE"); v != "" {
		partSize = parseSize(b, v)
	}
	backends := map[string]*Backend{}
	for _, d := range drivers {
		cfg := serverConfig(srv, d)
		cfg.Prefix = "bench"
		cfg.PartSize = partSize
		be, err := New(context.Background(), cfg, "node1", pool, zap.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		backends[d] = be
	}
	for _, size := range sizes {
		file := filepath.Join(dir, fmt.Sprintf("src-%d", size))
		if err := makeFile(file, size); err != nil {
			b.Fatal(err)
		}
		for _, conc := range []int{1, 16} {
			if conc > 1 && size > maxConcSize {
				continue
			}
			b.Run(fmt.Sprintf("size=%s/uploads=%d", humanSize(size), conc), func(b *testing.B) {
				benchUpload(b, srv, backends, pool, file, size, conc)
			})
		}
		os.Remove(file)
	}
}

const (
	benchPool   = 64 << 20
	maxConcSize = 256 << 20
)

func benchSizes(b *testing.B) []int64 {
	spec := os.Getenv("TIERD_BENCH_S3_SIZES")
	if spec == "" {
		spec = "64MiB"
	}
	var sizes []int64
	for _, s := range strings.Split(spec, ",") {
		sizes = append(sizes, parseSize(b, s))
	}
	return sizes
}

// parseSize parses "123", "64KiB", "8MiB" or "1GiB".
func parseSize(b *testing.B, s string) int64 {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = v, m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("bad size %q", s)
	}
	return n * mult
}

func humanSize(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return strconv.FormatInt(n, 10)
}

// makeFile writes size pseudo-random (incompressible) bytes.
func makeFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	chunk := segmenttest.Data(1, 8<<20)
	for off := int64(0); off < size; off += int64(len(chunk)) {
		chunk[0], chunk[1] = byte(off>>23), byte(off>>31) // no two chunks alike
		if _, err := w.Write(chunk[:min(int64(len(chunk)), size-off)]); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sample is one contender's measurements in one iteration.
type sample struct {
	secs    float64 // wall time
	cpu     float64 // uploader's CPU seconds
	srvCPU  float64 // MinIO server's CPU seconds
	peakRSS int64   // bytes
	read    int64   // bytes tierd's request bodies read
}

func benchUpload(b *testing.B, srv *miniotest.Server, backends map[string]*Backend, pool *bufpool.Pool, file string, size int64, conc int) {
	contenders := []string{"tierd-aws", "tierd-minio", "mc"}
	samples := map[string][]sample{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range contenders {
			c := contenders[(i+j)%len(contenders)] // rotate, so that no contender always goes first
			var s sample
			if d, ok := strings.CutPrefix(c, "tierd-"); ok {
				s = runTierd(b, srv, backends[d], pool, file, size, conc)
			} else {
				s = runMC(b, srv, file, conc)
			}
			samples[c] = append(samples[c], s)
			cleanBench(b, srv)
		}
	}
	b.StopTimer()
	gib := float64(size*int64(conc)) / (1 << 30)
	mcTput := gib * 1024 / median(samples["mc"], func(s sample) float64 { return s.secs })
	for _, c := range contenders {
		ss := samples[c]
		tput := gib * 1024 / median(ss, func(s sample) float64 { return s.secs })
		name := strings.TrimPrefix(c, "tierd-")
		b.ReportMetric(tput, name+"-MiB/s")
		b.ReportMetric(median(ss, func(s sample) float64 { return s.cpu })/gib, name+"-cpu-s/GiB")
		b.ReportMetric(median(ss, func(s sample) float64 { return s.srvCPU })/gib, name+"-server-cpu-s/GiB")
		b.ReportMetric(median(ss, func(s sample) float64 { return float64(s.peakRSS) })/(1<<20), name+"-peak-RSS-MiB")
		if c != "mc" {
			b.ReportMetric(tput/mcTput, name+"/mc")
			b.ReportMetric(median(ss, func(s sample) float64 { return float64(s.read) })/float64(size*int64(conc)), name+"-bytes-read/size")
		}
	}
	b.ReportMetric(0, "ns/op") // the framework's time covers all three contenders
}

func median(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func runTierd(b *testing.B, srv *miniotest.Server, be *Backend, pool *bufpool.Pool, file string, size int64, conc int) sample {
	f, err := os.Open(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS(b)
	cpu0, srv0, read0 := selfCPU(), procCPU(srv.PID()), be.read.Load()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for i := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			w, err := be.Create(ctx, segment.Key(fmt.Sprintf("node1/up-%d", i)), size)
			if err != nil {
				errs <- err
				return
			}
			if _, err := segment.Copy(ctx, w, f, size, pool); err != nil {
				_ = w.Abort()
				errs <- err
				return
			}
			if err := w.Commit(ctx); err != nil {
				_ = w.Abort()
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return sample{
		secs: time.Since(start).Seconds(), cpu: selfCPU() - cpu0, srvCPU: procCPU(srv.PID()) - srv0,
		peakRSS: peakRSS(b), read: be.read.Load() - read0,
	}
}

func runMC(b *testing.B, srv *miniotest.Server, file string, conc int) sample {
	srv0 := procCPU(srv.PID())
	start := time.Now()
	cmds := make([]*exec.Cmd, conc)
	stderr := make([]bytes.Buffer, conc)
	for i := range cmds {
		cmds[i] = srv.MCCommand("--quiet", "cp", file, fmt.Sprintf("%s/%s/bench/node1/mc-%d", miniotest.Alias, srv.Bucket, i))
		cmds[i].Stderr = &stderr[i]
		if err := cmds[i].Start(); err != nil {
			b.Fatal(err)
		}
	}
	var s sample
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			b.Fatalf("mc cp: %v: %s", err, stderr[i].Bytes())
		}
		ru := c.ProcessState.SysUsage().(*syscall.Rusage)
		s.cpu += tvSecs(ru.Utime) + tvSecs(ru.Stime)
		s.peakRSS += ru.Maxrss << 10 // the sum over mc processes
	}
	s.secs = time.Since(start).Seconds()
	s.srvCPU = procCPU(srv.PID()) - srv0
	return s
}

func cleanBench(b *testing.B, srv *miniotest.Server) {
	if _, err := srv.MC("rm", "--recursive", "--force", miniotest.Alias+"/"+srv.Bucket+"/bench/"); err != nil {
		b.Fatal(err)
	}
}

func tvSecs(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return tvSecs(ru.Utime) + tvSecs(ru.Stime)
}

// procCPU returns the CPU seconds (user + system) of process pid from /proc/pid/stat.
func procCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields start after its closing parenthesis.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(fields[11], 64) // field 14 of stat(5)
	st, _ := strconv.ParseFloat(fields[12], 64) // field 15
	return (ut + st) / 100                      // USER_HZ
}

// resetPeakRSS resets the process's VmHWM to its current RSS.
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset VmHWM: %v", err)
	}
}

func peakRSS(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
