package bench_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tierd/tierd/devtools/bench"
	"github.com/tierd/tierd/devtools/miniotest"
)

// BenchmarkUpload uploads the same cold file to the same MinIO with tierd (each driver,
// a child process per upload, reading the file as the daemon does) and with `mc cp`,
// interleaved in every run (bench.S3), and reports medians: throughput, its ratio to mc,
// CPU-seconds per GiB of the uploader and of the MinIO server, peak RSS, and the page
// cache the source holds afterwards.
//
// Sizes come from TIERD_BENCH_S3_SIZES (default "64MiB", so that `make bench` stays
// quick); the numbers come from `make bench-report`, or
//
//	TIERD_BENCH_S3_SIZES=1GiB,4GiB go test -run '^$' -bench BenchmarkUpload -benchtime 3x -timeout 60m ./devtools/bench/
//
// Each size is uploaded once and 16 times at once (to 16 keys), the latter only for sizes
// up to 256 MiB, so that MinIO never holds more than 4 GiB at once. The runs are b.N
// (-benchtime 3x: three) unless TIERD_BENCH_RUNS says otherwise. tierd runs with the
// default memory configuration of docs/DESIGN.md (a 64 MiB pool of 8 MiB buffers) and parts
// of the buffer size unless TIERD_BENCH_S3_PART_SIZE says otherwise. Sources live in
// TIERD_BENCH_DIR; MinIO's data in a temporary directory on disk, or under
// TIERD_BENCH_S3_DATA_DIR.
func BenchmarkUpload(b *testing.B) {
	sizes, err := bench.EnvSizes("TIERD_BENCH_S3_SIZES", "64MiB")
	if err != nil {
		b.Fatal(err)
	}
	partSize, err := bench.EnvSize("TIERD_BENCH_S3_PART_SIZE", 0)
	if err != nil {
		b.Fatal(err)
	}
	dir, err := bench.Dir()
	if err != nil {
		b.Fatal(err)
	}
	dataDir := os.Getenv("TIERD_BENCH_S3_DATA_DIR")
	if dataDir == "" {
		dataDir = filepath.Join(b.TempDir(), "minio")
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	srv := miniotest.StartWith(b, miniotest.Options{DataDir: dataDir})
	miniotest.MCBin(b)
	res, err := bench.S3(context.Background(), bench.S3Options{
		Dir: dir, Server: bench.MinIO(srv, dataDir), Sizes: sizes, MaxStored: 4 << 30,
		Runs: bench.EnvInt("TIERD_BENCH_RUNS", b.N), PartSize: partSize, Logf: b.Logf,
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, cfg := range res.Configs {
		name := bench.FormatSize(cfg.Size) + "x" + strconv.Itoa(cfg.Conc)
		if cfg.Skipped != "" {
			b.Logf("%s skipped: %s", name, cfg.Skipped)
			continue
		}
		for _, c := range cfg.Contenders {
			b.Logf("%s: %v", name, c)
			b.ReportMetric(c.MBps.Median, name+"/"+c.Name+"-MB/s")
			b.ReportMetric(c.CPUPerGiB.Median, name+"/"+c.Name+"-cpu-s/GiB")
			if c.Baseline != "" {
				b.ReportMetric(c.Ratio, name+"/"+c.Name+"/"+c.Baseline)
			}
		}
		for _, c := range cfg.Checks {
			b.Logf("goal %v", c)
		}
	}
	b.ReportMetric(0, "ns/op") // the framework's time covers every contender
}
