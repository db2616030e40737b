package codec

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/devtools/brokersim"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
)

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchModes are the settings the benchmarks compare; "none" is the wrapper with neither
// (frames stored raw), a baseline for the codec's own cost.
func benchModes(b *testing.B) []struct {
	name string
	cfg  Config
} {
	keys, _ := testKeys(b, "k1")
	return []struct {
		name string
		cfg  Config
	}{
		{"none", Config{}},
		{"zstd", Config{Compression: CompressZstd}},
		{"aes", Config{Keys: keys}},
		{"zstd+aes", Config{Compression: CompressZstd, Keys: keys}},
	}
}

// discard is a segment.Backend whose Writers count the bytes they are given and keep
// none: the encode benchmarks measure the codec, not a store.
type discard struct{ memBackend }

func (d *discard) Create(ctx context.Context, key segment.Key, size int64) (segment.Writer, error) {
	return &discardWriter{ctx: ctx, stored: &d.stored}, nil
}

type discardWriter struct {
	ctx    context.Context
	stored *atomic.Int64
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.stored.Add(int64(len(p)))
	return len(p), w.ctx.Err()
}
func (w *discardWriter) Commit(ctx context.Context) error { return ctx.Err() }
func (w *discardWriter) Abort() error                     { return nil }

// commitLogs returns a sealed 32 MiB RocketMQ commit-log file made by brokersim, with JSON
// text bodies or random ones: realistic broker bytes.
var commitLogs = sync.OnceValues(func() (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "codec-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := map[string][]byte{}
	for _, text := range []bool{true, false} {
		store := filepath.Join(dir, fmt.Sprint(text))
		sum, err := brokersim.RocketMQ(context.Background(), brokersim.RocketMQOptions{
			Dir: store, Topics: 2, Queues: 4, Messages: 60000, CommitLogSize: 32 << 20, BodySize: 1024,
			IndexSlots: 1000, IndexItems: 100000, TextBodies: text,
		})
		if err != nil {
			return nil, err
		}
		for _, f := range sum.Files {
			if f.Kind == brokersim.KindCommitLog && !f.Active {
				b, err := os.ReadFile(filepath.Join(store, f.Path))
				if err != nil {
					return nil, err
				}
				out[map[bool]string{true: "text", false: "random"}[text]] = b
				break
			}
		}
	}
	return out, nil
})

// BenchmarkEncode encodes a sealed 32 MiB commit-log file of JSON text bodies, and one of
// random bodies, through the wrapper over a discarding backend with segment.Copy (as the
// daemon does), and reports MB/s, the compression ratio and CPU seconds per GiB.
func BenchmarkEncode(b *testing.B) {
	logs, err := commitLogs()
	if err != nil {
		b.Fatal(err)
	}
	for _, body := range []string{"text", "random"} {
		for _, m := range benchModes(b) {
			b.Run(body+"/"+m.name, func(b *testing.B) {
				data := logs[body]
				size := int64(len(data))
				pool := testPool(b, 8<<20, 8)
				inner := &discard{}
				be := New(inner, m.cfg, testCodecs(b, pool, 8<<20, DefaultFrameSize), zap.NewNop())
				ctx := ctxT(b)
				b.SetBytes(size)
				cpu0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					w, err := be.Create(ctx, "obj", size)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := segment.Copy(ctx, w, bytes.NewReader(data), size, pool); err != nil {
						b.Fatal(err)
					}
					if err := w.Commit(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				cpu := cpuTime() - cpu0
				b.ReportMetric(float64(b.N)*float64(size)/float64(inner.stored.Load()), "ratio")
				b.ReportMetric(cpu.Seconds()/(float64(b.N)*float64(size)/(1<<30)), "cpu-s/GiB")
			})
		}
	}
}

// BenchmarkDecode reads the objects back whole, 8 MiB at a time (as restore and verify do).
func BenchmarkDecode(b *testing.B) {
	const size = 64 << 20
	bodies := map[string][]byte{"text": textBody(size), "random": segmenttest.Data(1, size)}
	for _, body := range []string{"text", "random"} {
		for _, m := range benchModes(b) {
			b.Run(body+"/"+m.name, func(b *testing.B) {
				inner := newMemBackend()
				be := New(inner, m.cfg, testCodecs(b, nil, 8<<20, DefaultFrameSize), zap.NewNop())
				put(b, be, "obj", bodies[body])
				p := make([]byte, 8<<20)
				ctx := ctxT(b)
				b.SetBytes(size)
				cpu0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					r, err := be.Open(ctx, "obj")
					if err != nil {
						b.Fatal(err)
					}
					for off := int64(0); off < size; off += int64(len(p)) {
						if _, err := r.ReadAt(p, off); err != nil {
							b.Fatal(err)
						}
					}
					r.Close()
				}
				b.StopTimer()
				b.ReportMetric((cpuTime()-cpu0).Seconds()/(float64(b.N)*size/(1<<30)), "cpu-s/GiB")
			})
		}
	}
}

// TestCodecsMemory measures the heap one encoder and one decoder take once used, the
// figure README's memory.codecs note gives.
func TestCodecsMemory(t *testing.T) {
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	pool := testPool(t, 8<<20, 4)
	before := heap()
	c, err := NewCodecs(CodecsConfig{Encoders: 1, Decoders: 1, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	be := New(newMemBackend(), Config{Compression: CompressZstd}, c, zap.NewNop())
	put(t, be, "obj", textBody(4<<20))
	if _, err := get(t, be, "obj"); err != nil {
		t.Fatal(err)
	}
	used := heap() - before
	t.Logf("one encoder and one decoder, used: %.1f MiB of heap", float64(used)/(1<<20))
	if used > 12<<20 {
		t.Fatalf("one encoder and one decoder hold %d bytes: more than 12 MiB", used)
	}
	runtime.KeepAlive(be)
}
