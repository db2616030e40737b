package compactor

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
)

// memFile is an in-memory io.WriterAt/io.ReaderAt with Truncate (for IndexFileWriter)
// that counts its reads.
type memFile struct {
	mu    sync.Mutex
	b     []byte
	reads int
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	return bytes.NewReader(m.b).ReadAt(p, off)
}

func (m *memFile) Truncate(n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if int(n) <= len(m.b) {
		m.b = m.b[:n]
	} else {
		m.b = append(m.b, make([]byte, int(n)-len(m.b))...)
	}
	return nil
}

func (m *memFile) size() int64 { return int64(len(m.b)) }

// memWriter is a segment.Writer into memory that enforces the Writer contract the
// compactor must keep: no more than the declared size, and (since the compactor holds
// pool buffers while writing) whole pool buffers for every write but the last.
type memWriter struct {
	t        testing.TB
	size     int64
	bufSize  int
	b        bytes.Buffer
	short    bool // a write shorter than a pool buffer happened: it must be the last
	done     bool
	commits  int
	aborts   int
	failAt   int64 // fail the write that would cross this offset (0: never)
	writeErr error
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.done {
		w.t.Errorf("write after commit/abort")
	}
	if w.short {
		w.t.Errorf("write of %d bytes after a short write: only the last write may be short", len(p))
	}
	if len(p) != w.bufSize {
		w.short = true
	}
	if int64(w.b.Len()+len(p)) > w.size {
		return 0, fmt.Errorf("write exceeds declared size %d", w.size)
	}
	if w.failAt > 0 && int64(w.b.Len()+len(p)) > w.failAt {
		return 0, w.writeErr
	}
	return w.b.Write(p)
}

func (w *memWriter) Commit(context.Context) error {
	w.done = true
	w.commits++
	if int64(w.b.Len()) != w.size {
		return fmt.Errorf("commit after %d of %d bytes", w.b.Len(), w.size)
	}
	return nil
}

func (w *memWriter) Abort() error {
	w.done = true
	w.aborts++
	return nil
}

var _ segment.Writer = (*memWriter)(nil)

func newPool(t testing.TB, bufSize, n int) *bufpool.Pool {
	t.Helper()
	p, err := bufpool.New(bufpool.Config{Budget: int64(bufSize * n), BufferSize: int64(bufSize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Check(); err != nil {
			t.Error(err)
		}
		p.Close()
	})
	return p
}

// compactMem compacts src and returns the output bytes and the result.
func compactMem(t testing.TB, src *memFile, opts Options) ([]byte, Result, error) {
	t.Helper()
	var w *memWriter
	res, err := Compact(context.Background(), src, src.size(), opts,
		func(size int64) (segment.Writer, error) {
			w = &memWriter{t: t, size: size, bufSize: opts.Pool.BufferSize()}
			return w, nil
		})
	if err != nil {
		return nil, res, err
	}
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w.b.Bytes(), res, nil
}

type put struct {
	key     string
	phy, ts int64
}

// buildIndex writes puts into a new IndexFile of the given geometry.
func buildIndex(t testing.TB, slots, items int, prevPhy, prevTs int64, puts []put) *memFile {
	t.Helper()
	mf := &memFile{}
	w, err := index.NewIndexFileWriter(mf, slots, items, prevPhy, prevTs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range puts {
		if err := w.Put(p.key, p.phy, p.ts); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return mf
}

// setScratch sets partitionScratch to n bytes (0: leaves it) and returns what restores
// it: a small scratch partitions even the tiny windows of tests, into partitions of a
// few records each, single buckets larger than the scratch among them.
func setScratch(n int) (restore func()) {
	old := partitionScratch
	if n > 0 {
		partitionScratch = n
	}
	return func() { partitionScratch = old }
}

// queryRanges returns time ranges for lookups: everything, around the items' store times
// (and reversed), randoms random ones between them, and for picks random items ranges on,
// after, before and from their store time (in the IndexFile's whole seconds).
func queryRanges(rng *rand.Rand, ix *index.IndexFile, puts []put, startTs int64, randoms, picks int) [][2]int64 {
	lo, hi := startTs-5000, startTs+5000
	if len(puts) > 0 {
		lo, hi = puts[0].ts-2000, puts[len(puts)-1].ts+2000
	}
	ranges := [][2]int64{{math.MinInt64, math.MaxInt64}, {lo, hi}, {hi, lo}}
	for range randoms {
		a, b := lo+rng.Int64N(hi-lo+1), lo+rng.Int64N(hi-lo+1)
		ranges = append(ranges, [2]int64{min(a, b), max(a, b)})
	}
	for range picks {
		if len(puts) == 0 {
			break
		}
		p := puts[rng.IntN(len(puts))]
		it := ix.Header().BeginTimestamp + (p.ts-ix.Header().BeginTimestamp)/1000*1000
		ranges = append(ranges, [2]int64{it, it}, [2]int64{it + 1, hi}, [2]int64{lo, it - 1}, [2]int64{it, math.MaxInt64})
	}
	return ranges
}
