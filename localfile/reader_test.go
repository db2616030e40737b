package localfile

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/segment/segmenttest"
)

// resident returns how many pages of path are in the page cache.
func resident(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	vec := make([]byte, (fi.Size()+pageSize-1)/pageSize)
	if !residency(int(f.Fd()), 0, int(fi.Size()), vec) {
		t.Fatal("mincore failed")
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestReaderKeepsHotPages: reading a file drops the pages the read brought in, and
// keeps the ones that were cached before (the broker's hot data).
func TestReaderKeepsHotPages(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seg")
	const size = 4 << 20
	if err := os.WriteFile(path, segmenttest.Data(2, size), 0o644); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	f.Sync()
	dropCache(int(f.Fd()), 0, size)
	// Make the second MiB hot.
	hot := make([]byte, 1<<20)
	f.ReadAt(hot, 1<<20)
	f.Close()
	before := resident(t, path)
	if before < 200 { // 256 pages if the kernel keeps them all
		t.Skipf("page cache does not keep a 1 MiB read here (%d pages)", before)
	}
	r, err := Open(context.Background(), path, ReadOptions{Window: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := r.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	mid := resident(t, path)
	r.Close()
	after := resident(t, path)
	if after < before-8 || after > before+8 {
		t.Fatalf("resident pages: %d before, %d after reading (%d during); want the hot ones kept, the rest dropped", before, after, mid)
	}
}

// TestDirectReadBypassesCache: aligned reads with Direct leave nothing in the cache.
func TestDirectReadBypassesCache(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seg")
	const size = 2<<20 + 1000
	data := segmenttest.Data(3, size)
	os.WriteFile(path, data, 0o644)
	f, _ := os.Open(path)
	f.Sync()
	dropCache(int(f.Fd()), 0, size)
	f.Close()
	pool, _ := bufpool.New(bufpool.Config{Budget: 1 << 20, BufferSize: 1 << 20})
	defer pool.Close()
	r, err := Open(context.Background(), path, ReadOptions{Direct: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.df == nil {
		t.Skip("O_DIRECT not available here")
	}
	b, _ := pool.Get(context.Background())
	defer b.Release()
	var got []byte
	for off := int64(0); off < size; {
		p := b.Bytes()[:min(int64(len(b.Bytes())), size-off)]
		n, err := r.ReadAt(p, off)
		if n != len(p) || err != nil {
			t.Fatalf("ReadAt at %d = %d, %v", off, n, err)
		}
		got = append(got, p...)
		off += int64(n)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("direct read returned wrong bytes")
	}
	if n := resident(t, path); n > 0 {
		t.Fatalf("%d pages resident after direct reads", n)
	}
}

// TestDropAtClose: a multi-pass reader keeps its pages until Close, then drops them.
func TestDropAtClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seg")
	const size = 4 << 20
	os.WriteFile(path, segmenttest.Data(6, size), 0o644)
	f, _ := os.Open(path)
	f.Sync()
	dropCache(int(f.Fd()), 0, size)
	f.Close()
	r, err := Open(context.Background(), path, ReadOptions{Window: 1 << 20, DropAtClose: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := r.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	if n := resident(t, path); n < size/pageSize*3/4 {
		t.Fatalf("%d pages resident before Close, want the file kept", n)
	}
	r.Close()
	if n := resident(t, path); n > 16 {
		t.Fatalf("%d pages resident after Close", n)
	}
}
