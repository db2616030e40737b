package s3

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
)

// fakeObject is a loopback server with one object that answers HEAD and ranged GETs as
// S3 does, except that it can hang (never answer) and cut bodies.
type fakeObject struct {
	data  []byte
	hang  atomic.Bool  // every request waits until the client gives up
	cutAt atomic.Int64 // > 0: the first GET bodies stop after this many bytes, the connection cut
	cuts  atomic.Int64 // how many GETs are cut
	gets  atomic.Int64
}

func (f *fakeObject) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.hang.Load() {
		<-r.Context().Done()
		return
	}
	h := w.Header()
	h.Set("ETag", `"e1"`)
	h.Set("Last-Modified", time.Unix(1_700_000_000, 0).UTC().Format(http.TimeFormat))
	h.Set("x-amz-checksum-crc32c", encodeCRC(crc32.Checksum(f.data, segment.Castagnoli)))
	h.Set("x-amz-checksum-type", "FULL_OBJECT")
	h.Set("Accept-Ranges", "bytes")
	switch r.Method {
	case http.MethodHead:
		h.Set("Content-Length", strconv.Itoa(len(f.data)))
		return
	case http.MethodGet:
	default:
		http.Error(w, "not in this fake", http.StatusNotImplemented)
		return
	}
	f.gets.Add(1)
	var from, to int
	if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &from, &to); err != nil {
		from, to = 0, len(f.data)-1
	}
	body := f.data[from : to+1]
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, len(f.data)))
	w.WriteHeader(http.StatusPartialContent)
	if cut := int(f.cutAt.Load()); cut > 0 && cut < len(body) && f.cuts.Add(-1) >= 0 {
		w.Write(body[:cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection is cut mid-body
	}
	w.Write(body)
}

func fakeBackend(t *testing.T, driver string, f *fakeObject, timeout time.Duration) *Backend {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	b, err := New(context.Background(), Config{Driver: driver, Endpoint: srv.URL, Bucket: "bkt", AccessKey: "k", SecretKey: "s",
		PathStyle: true, RequestTimeout: timeout, MinTransferRate: 1 << 20}, "n", newPool(t, 2), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRequestDeadline: a store that accepts a request and never answers costs the
// caller the request's deadline, and the error says so (ErrTimeout).
func TestRequestDeadline(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			f := &fakeObject{data: segmenttest.Data(1, 1000)}
			f.hang.Store(true)
			b := fakeBackend(t, driver, f, 300*time.Millisecond)
			start := time.Now()
			_, err := b.Stat(context.Background(), "n/s/key")
			took := time.Since(start)
			if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "deadline 300ms") {
				t.Fatalf("Stat against a hung store = %v, want ErrTimeout", err)
			}
			if took > 5*time.Second {
				t.Fatalf("Stat took %s with a deadline of 300ms", took)
			}
			// The caller's own cancellation stays a cancellation.
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if _, err := b.Stat(ctx, "n/s/key"); errors.Is(err, ErrTimeout) {
				t.Fatalf("a cancelled caller got %v", err)
			}
		})
	}
}

// TestReadResumes: a GET whose body is cut is resumed from the last byte received, so
// the read succeeds with the right bytes; a read cut every time fails after readTries.
func TestReadResumes(t *testing.T) {
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			data := segmenttest.Data(2, 300<<10)
			f := &fakeObject{data: data}
			b := fakeBackend(t, driver, f, 5*time.Second)
			r, err := b.Open(context.Background(), "n/s/key")
			if err != nil {
				t.Fatal(err)
			}
			f.cutAt.Store(100 << 10)
			f.cuts.Store(2)
			p := make([]byte, len(data))
			n, err := r.ReadAt(p, 0)
			if err != nil || n != len(data) || crc32.Checksum(p, segment.Castagnoli) != crc32.Checksum(data, segment.Castagnoli) {
				t.Fatalf("ReadAt with two cut bodies = %d, %v", n, err)
			}
			if got := b.ReadRetries(); got != 2 {
				t.Fatalf("read retries = %d, want 2", got)
			}
			f.cuts.Store(1 << 20) // every GET cut
			f.cutAt.Store(1000)
			_, err = r.ReadAt(p[:50<<10], 0)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("after %d tries", readTries)) {
				t.Fatalf("ReadAt cut every time = %v, want a failure after %d tries", err, readTries)
			}
		})
	}
}
