package throttle

import (
	"bytes"
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/segment"
)

// BenchmarkThrottledPosixCopy copies 256 MiB from memory into a posix tier (buffered mode,
// in /dev/shm when there is one so the disk does not dominate) through a rate limit high
// enough never to wait (64 GiB/s), the way the daemon copies to a tier with max_rate set,
// and reports the CPU (user + system) per GiB, next to the same copy without the limit. The rate-limited path once lost the posix
// writer's CRC-32C (segment.Checksummer) and computed every checksum twice.
//
//	go test -run '^$' -bench ThrottledPosixCopy -benchtime 8x ./internal/throttle/
func BenchmarkThrottledPosixCopy(b *testing.B) {
	dir, err := os.MkdirTemp("/dev/shm", "tierd-throttle-bench-")
	if err != nil {
		dir = b.TempDir()
	} else {
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	be, err := posix.New(posix.Config{Path: dir, WriteMode: posix.Buffered}, nil)
	if err != nil {
		b.Fatal(err)
	}
	pool, err := bufpool.New(bufpool.Config{Budget: 32 << 20, BufferSize: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	const size = 256 << 20
	src := bytes.NewReader(bytes.Repeat([]byte("tierd throttle benchmark "), size/25+1)[:size])
	ctx := context.Background()
	for _, c := range []struct {
		name string
		tier segment.Backend
	}{{"unlimited", be}, {"rate-limited", Backend(be, NewRateLimiter(64<<30))}} {
		b.Run(c.name, func(b *testing.B) { copyLoop(b, ctx, c.tier, pool, src, size) })
	}
}

func copyLoop(b *testing.B, ctx context.Context, tb segment.Backend, pool *bufpool.Pool, src *bytes.Reader, size int64) {
	var cpu time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		before := cpuTime(b)
		w, err := tb.Create(ctx, segment.Key("obj"), size)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := segment.Copy(ctx, w, src, size, pool); err != nil {
			b.Fatal(err)
		}
		if err := w.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime(b) - before
	}
	b.ReportMetric(cpu.Seconds()/(float64(b.N)*float64(size)/(1<<30)), "cpu-s/GiB")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
