package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/devtools/miniotest"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
)

// copyPut uploads data through segment.Copy (WriteFrom) and commits.
func copyPut(t testing.TB, b *Backend, pool *bufpool.Pool, key segment.Key, src io.ReaderAt, size int64) uint32 {
	t.Helper()
	ctx := testCtx(t)
	w, err := b.Create(ctx, key, size)
	if err != nil {
		t.Fatal(err)
	}
	crc, err := segment.Copy(ctx, w, src, size, pool)
	if err != nil {
		_ = w.Abort()
		t.Fatalf("Copy %s: %v", key, err)
	}
	if err := w.Commit(ctx); err != nil {
		_ = w.Abort()
		t.Fatalf("Commit %s: %v", key, err)
	}
	return crc
}

// pushPut uploads data with Write calls of chunk bytes and commits.
func pushPut(t testing.TB, b *Backend, key segment.Key, data []byte, chunk int) {
	t.Helper()
	ctx := testCtx(t)
	w, err := b.Create(ctx, key, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += chunk {
		if _, err := w.Write(data[off:min(off+chunk, len(data))]); err != nil {
			_ = w.Abort()
			t.Fatalf("Write %s at %d: %v", key, off, err)
		}
	}
	if err := w.Commit(ctx); err != nil {
		_ = w.Abort()
		t.Fatalf("Commit %s: %v", key, err)
	}
}

func readAll(t testing.TB, b *Backend, key segment.Key) []byte {
	t.Helper()
	r, err := b.Open(testCtx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := make([]byte, r.Size())
	if n, err := r.ReadAt(p, 0); n != len(p) || (err != nil && !errors.Is(err, io.EOF)) {
		t.Fatalf("ReadAt %s: %d of %d bytes, %v", key, n, len(p), err)
	}
	return p
}

// uploadsOf lists the incomplete uploads of one object by its exact name, the listing
// MinIO serves from disk (so it sees uploads from before a restart too).
func uploadsOf(t testing.TB, b *Backend, key segment.Key) []upload {
	t.Helper()
	var us []upload
	obj := b.object(key)
	if err := b.d.listUploads(testCtx(t), obj, func(u upload) error {
		if u.key == obj {
			us = append(us, u)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return us
}

// countingSource records every byte range read from it.
type countingSource struct {
	data  []byte
	mu    sync.Mutex
	reads int64
	seen  []int // times each byte was read
}

func newCountingSource(data []byte) *countingSource {
	return &countingSource{data: data, seen: make([]int, len(data))}
}

func (s *countingSource) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(s.data)) {
		return 0, io.EOF
	}
	n := copy(p, s.data[off:])
	s.mu.Lock()
	s.reads += int64(n)
	for i := off; i < off+int64(n); i++ {
		s.seen[i]++
	}
	s.mu.Unlock()
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func TestS3(t *testing.T) {
	srv := miniotest.Start(t)
	pool := newPool(t, 8)
	for _, driver := range drivers {
		other := drivers[0]
		if other == driver {
			other = drivers[1]
		}
		t.Run(driver, func(t *testing.T) {
			t.Run("Checksums", func(t *testing.T) { testChecksums(t, srv, driver, pool) })
			t.Run("ReadOnce", func(t *testing.T) { testReadOnce(t, srv, driver, pool) })
			t.Run("Interop", func(t *testing.T) { testInterop(t, srv, driver, other, pool) })
			t.Run("ForeignObject", func(t *testing.T) { testForeign(t, srv, driver, pool) })
			t.Run("AbortUpload", func(t *testing.T) { testAbortUpload(t, srv, driver, pool) })
			t.Run("Reap", func(t *testing.T) { testReap(t, srv, driver, pool) })
			t.Run("SSE", func(t *testing.T) { testSSE(t, srv, driver, pool) })
			t.Run("Secrets", func(t *testing.T) { testSecrets(t, srv, driver, pool) })
			t.Run("ObjectChanged", func(t *testing.T) { testObjectChanged(t, srv, driver, pool) })
			t.Run("ConcurrencyLimit", func(t *testing.T) { testConcurrencyLimit(t, srv, driver, pool) })
			t.Run("LargeParts", func(t *testing.T) { testLargeParts(t, srv, driver, pool) })
			t.Run("LostReplies", func(t *testing.T) { testLostReplies(t, srv, driver, pool) })
		})
	}
}

// testChecksums: every way of writing stores the object's CRC-32C as its full-object
// checksum, and the server refuses a Complete whose CRC does not match the parts.
func testChecksums(t *testing.T, srv *miniotest.Server, driver string, pool *bufpool.Pool) {
	b := newBackend(t, serverConfig(srv, driver), pool)
	ctx := testCtx(t)
	f := func(name string, size int, put func(segment.Key, []byte)) {
		t.Helper()
		key := segment.Key("node1/sum/" + name)
		data := segmenttest.Data(uint64(size), size)
		put(key, data)
		o, err := b.d.head(ctx, b.object(key))
		if err != nil {
			t.Fatal(err)
		}
		want := crc32.Checksum(data, segment.Castagnoli)
		if o.checksum != encodeCRC(want) || o.checksumType != "FULL_OBJECT" {
			t.Fatalf("%s: server checksum %q type %q, want %q FULL_OBJECT", name, o.checksum, o.checksumType, encodeCRC(want))
		}
		if info, err := b.Stat(ctx, key); err != nil || info.CRC32C != want {
			t.Fatalf("%s: Stat = %+v, %v; want CRC %08x", name, info, err, want)
		}
	}
	pull := func(k segment.Key, d []byte) { copyPut(t, b, pool, k, bytes.NewReader(d), int64(len(d))) }
	f("single-put-pulled", 1000, pull)
	f("single-put-pushed", 1000, func(k segment.Key, d []byte) { pushPut(t, b, k, d, 300) })
	f("multipart-pulled", 3*testBuf+4097, pull)
	f("multipart-pushed-whole-buffers", 2*testBuf+5, func(k segment.Key, d []byte) { pushPut(t, b, k, d, testBuf) })
	f("multipart-pushed-small-writes", 2*testBuf+5, func(k segment.Key, d []byte) { pushPut(t, b, k, d, 1<<20+3) })

	// A single PUT with a wrong CRC-32C header is refused.
	small := []byte("twelve bytes")
	body := newPartBody(ctx, bytes.NewReader(small), 0, int64(len(small)), nil, &b.read)
	if _, err := b.d.put(ctx, b.object("node1/sum/bad-put"), body, crc32.Checksum(small, segment.Castagnoli)^1, putCond{}); err == nil {
		t.Fatal("server accepted a PUT with a wrong CRC-32C")
	}

	// A Complete carrying a wrong whole-object CRC is refused by the server; the right
	// one then goes through.
	key := segment.Key("node1/sum/bad-crc")
	data := segmenttest.Data(5, 2*testBuf+1)
	w, err := b.Create(ctx, key, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	sw := w.(*Writer)
	crc, err := sw.WriteFrom(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.d.complete(ctx, sw.obj, sw.UploadID(), sw.parts, crc^1, int64(len(data))); err == nil {
		t.Fatal("server accepted a Complete with a wrong CRC-32C")
	}
	if _, err := b.Stat(ctx, key); !errors.Is(err, segment.ErrNotFound) {
		t.Fatalf("after a refused Complete, Stat = %v", err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, b, key), data) {
		t.Fatal("content differs")
	}
}

// testReadOnce: every source byte is read exactly once, however the object is written.
func testReadOnce(t *testing.T, srv *miniotest.Server, driver string, pool *bufpool.Pool) {
	cfg := serverConfig(srv, driver)
	cfg.PartConcurrency = 3
	b := newBackend(t, cfg, pool)
	for _, size := range []int{777, 4*testBuf + 12345} {
		src := newCountingSource(segmenttest.Data(9, size))
		before := b.read.Load()
		copyPut(t, b, pool, segment.Key(fmt.Sprintf("node1/once/%d", size)), src, int64(size))
		for i, n := range src.seen {
			if n != 1 {
				t.Fatalf("size %d: byte %d read %d times", size, i, n)
			}
		}
		if got := b.read.Load() - before; got != int64(size) {
			t.Fatalf("size %d: backend read %d bytes", size, got)
		}
	}
	// Pushed parts are read once from their buffers too.
	data := segmenttest.Data(10, 3*testBuf+1)
	before := b.read.Load()
	pushPut(t, b, "node1/once/pushed", data, testBuf)
	if got := b.read.Load() - before; got != int64(len(data)) {
		t.Fatalf("pushed: backend read %d bytes, want %d", got, len(data))
	}
}

// testInterop: what one driver wrote, mc and the other driver read byte for byte.
func testInterop(t *testing.T, srv *miniotest.Server, driver, other string, pool *bufpool.Pool) {
	cfg := serverConfig(srv, driver)
	b := newBackend(t, cfg, pool)
	ocfg := cfg
	ocfg.Driver = other
	ob := newBackend(t, ocfg, pool)
	objects := map[segment.Key][]byte{
		"node1/interop/small":     segmenttest.Data(1, 1000),
		"node1/interop/pulled":    segmenttest.Data(2, 2*testBuf+333),
		"node1/interop/pushed":    segmenttest.Data(3, testBuf+4096),
		"node1/interop/empty":     {},
		"node1/interop/exact-buf": segmenttest.Data(4, testBuf),
	}
	for k, d := range objects {
		if strings.HasSuffix(string(k), "pushed") {
			pushPut(t, b, k, d, testBuf)
		} else {
			copyPut(t, b, pool, k, bytes.NewReader(d), int64(len(d)))
		}
	}
	for k, want := range objects {
		got, err := srv.MC("cat", miniotest.Alias+"/"+srv.Bucket+"/"+b.object(k))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("mc cat %s: %d bytes differ from the %d written", k, len(got), len(want))
		}
		if !bytes.Equal(readAll(t, ob, k), want) {
			t.Fatalf("%s driver reads %s differently", other, k)
		}
		info, err := ob.Stat(testCtx(t), k)
		if err != nil || info.CRC32C != crc32.Checksum(want, segment.Castagnoli) || info.Size != int64(len(want)) {
			t.Fatalf("%s driver Stat %s = %+v, %v", other, k, info, err)
		}
	}
	es, err := ob.List(testCtx(t), "node1/interop/")
	if err != nil || len(es) != len(objects) {
		t.Fatalf("%s driver lists %d objects (%v), want %d", other, len(es), err, len(objects))
	}
}

// testForeign: an object put by another client without a checksum gets its CRC computed.
func testForeign(t *testing.T, srv *miniotest.Server, driver string, pool *bufpool.Pool) {
	core, logs := observer.New(zapcore.WarnLevel)
	b, err := New(context.Background(), serverConfig(srv, driver), "node1", pool, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	data := segmenttest.Data(8, 100000)
	key := segment.Key("node1/foreign/obj")
	if _, err := srv.Client().PutObject(testCtx(t), srv.Bucket, b.object(key), bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{DisableContentSha256: true}); err != nil {
		t.Fatal(err)
	}
	info, err := b.Stat(testCtx(t), key)
	if err != nil || info.CRC32C != crc32.Checksum(data, segment.Castagnoli) {
		t.Fatalf("Stat of a foreign object = %+v, %v", info, err)
	}
	if logs.FilterMessageSnippet("computing it by reading").Len() != 1 {
		t.Fatalf("no warning about computing the CRC: %v", logs.All())
	}
}

// testAbortUpload: the upload id is announced before the first part, and Abort removes
// the multipart upload.
func testAbortUpload(t *testing.T, srv *miniotest.Server, driver string, pool *bufpool.Pool) {
	cfg := serverConfig(srv, driver)
	var mu sync.Mutex
	announced := map[segment.Key]string{}
	cfg.OnUpload = func(k segment.Key, id string) {
		mu.Lock()
		announced[k] = id
		mu.Unlock()
	}
	b := newBackend(t, cfg, pool)
	ctx := testCtx(t)
	key := segment.Key("node1/abort/obj")
	data := segmenttest.Data(1, 3*testBuf)
	w, err := b.Create(ctx, key, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if id := w.(*Writer).UploadID(); id != "" {
		t.Fatalf("upload id %q before any part", id)
	}
	if _, err := w.Write(data[:2*testBuf]); err != nil {
		t.Fatal(err)
	}
	id := w.(*Writer).UploadID()
	mu.Lock()
	got := announced[key]
	mu.Unlock()
	if id == "" || got != id {
		t.Fatalf("UploadID %q, OnUpload announced %q", id, got)
	}
	if us := uploadsOf(t, b, key); len(us) != 1 || us[0].id != id {
		t.Fatalf("server lists uploads %v, want %s", us, id)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if us := uploadsOf(t, b, key); len(us) != 0 {
		t.Fatalf("after Abort the server lists uploads %v", us)
	}
	// AbortUpload of a journaled id that is gone is fine.
	if err := b.AbortUpload(ctx, key, id); err != nil {
		t.Fatalf("AbortUpload of an aborted upload: %v", err)
	}
}

// testReap: Reap aborts the node's uploads older than the age and nothing else.
func testReap(t *testing.T, srv *miniotest.Server, driver string, pool *bufpool.Pool) {
	b := newBackend(t, serverConfig(srv, driver), pool)
	ctx := testCtx(t)
	mine, theirs := segment.Key("node1/reap/a"), segment.Key("node2/reap/a")
	idMine, err := b.d.createMultipart(ctx, b.object(mine))
	if err != nil {
		t.Fatal(err)
	}
	idTheirs, err := b.d.createMultipart(ctx, b.object(theirs))
	if err != nil {
		t.Fatal(err)
	}
	defer b.d.abort(ctx, b.object(theirs), idTheirs)
	if n, err := b.Reap(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("Reap(1h) = %d, %v; want nothing aborted", n, err)
	}
	if us := uploadsOf(t, b, mine); len(us) != 1 {
		t.Fatalf("young upload gone after Reap(1h): %v", us)
	}
	// An upload of an open Writer is left alone, whatever its age: a running daemon reaps.
	live := segment.Key("node1/reap/live")
	data := segmenttest.Data(7, 2*testBuf)
	w, err := b.Create(ctx, live, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:testBuf]); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Reap(ctx, 0); err != nil || n != 1 {
		t.Fatalf("Reap(0) = %d, %v; want 1 aborted", n, err)
	}
	if us := uploadsOf(t, b, mine); len(us) != 0 {
		t.Fatalf("upload %s survived Reap: %v", idMine, us)
	}
	// A crashed job that journaled no upload id: AbortUpload(key, "") aborts every upload
	// of key (two here) but the open Writer's.
	for range 2 {
		if _, err := b.d.createMultipart(ctx, b.object(live)); err != nil {
			t.Fatal(err)
		}
	}
	if us := uploadsOf(t, b, live); len(us) != 3 {
		t.Fatalf("uploads of %s: %v; want 3", live, us)
	}
	if err := b.AbortUpload(ctx, live, ""); err != nil {
		t.Fatal(err)
	}
	if us := uploadsOf(t, b, live); len(us) != 1 || us[0].id != w.(*Writer).UploadID() {
		t.Fatalf("uploads of %s after AbortUpload(key, \"\"): %v; want only the open Writer's", live, us)
	}
	if _, err := w.Write(data[testBuf:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("the open Writer's upload was reaped: %v", err)
	}
	if err := b.Delete(ctx, live); err != nil {
		t.Fatal(err)
	}
	if us := uploadsOf(t, b, theirs); len(us) != 1 {
		t.Fatalf("another node's upload was reaped: %v", us)
	}
	if _, err := b.Reap(ctx, -time.Second); err == nil {
		t.Fatal("Reap with a negative age succeeded")
	}
}

// testSSE: objects written with SSE-S3 and SSE-KMS are encrypted and read back.
func testSSE(t *testing.T, srv *miniotest.Server, driver string, pool *bufpool.Pool) {
	f := func(sse, keyID, wantHeader string) {
		t.Helper()
		cfg := serverConfig(srv, driver)
		cfg.SSE, cfg.SSEKMSKeyID = sse, keyID
		b := newBackend(t, cfg, pool)
		for _, size := range []int{5000, 2*testBuf + 1} {
			key := segment.Key(fmt.Sprintf("node1/sse/%s-%d", sse, size))
			data := segmenttest.Data(uint64(size), size)
			copyPut(t, b, pool, key, bytes.NewReader(data), int64(size))
			if !bytes.Equal(readAll(t, b, key), data) {
				t.Fatalf("sse %s size %d: content differs", sse, size)
			}
			o, err := srv.Client().StatObject(testCtx(t), srv.Bucket, b.object(key), minio.StatObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := o.Metadata.Get("X-Amz-Server-Side-Encryption"); got != wantHeader {
				t.Fatalf("sse %s size %d: server says encryption %q, want %q", sse, size, got, wantHeader)
			}
		}
	}
	f("s3", "", "AES256")
	f("kms", srv.KMSKeyID, "aws:kms")
}

// testSecrets: credentials appear neither in errors nor in logs.
func testSecrets(t *testing.T, srv *miniotest.Server, driver string, pool *bufpool.Pool) {
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := serverConfig(srv, driver)
	cfg.SecretKey = "wrong-secret-" + srv.SecretKey
	cfg.SessionToken = "session-token-secret"
	b, err := New(context.Background(), cfg, "node1", pool, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	var errs []error
	errs = append(errs, b.Check(ctx))
	_, err = b.Stat(ctx, "node1/x")
	errs = append(errs, err)
	w, err := b.Create(ctx, "node1/y", 2*testBuf)
	if err == nil {
		_, err = w.Write(make([]byte, testBuf))
		errs = append(errs, err)
		if err := w.Abort(); err != nil { // no upload was created: nothing to abort
			t.Fatal(err)
		}
	}
	for _, e := range errs {
		if e == nil {
			t.Fatal("an operation with a wrong secret key succeeded")
		}
		for _, s := range []string{cfg.SecretKey, cfg.SessionToken, srv.SecretKey} {
			if strings.Contains(e.Error(), s) {
				t.Fatalf("error shows a secret: %v", e)
			}
		}
	}
	for _, e := range logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		for _, s := range []string{cfg.SecretKey, cfg.SessionToken, srv.SecretKey} {
			if strings.Contains(line, s) {
				t.Fatalf("log shows a secret: %s", line)
			}
		}
	}
}

// testObjectChanged: a reader never returns bytes of the object that replaced its own.
func testObjectChanged(t *testing.T, srv *miniotest.Server, driver string, pool *bufpool.Pool) {
	b := newBackend(t, serverConfig(srv, driver), pool)
	ctx := testCtx(t)
	key := segment.Key("node1/changed/obj")
	copyPut(t, b, pool, key, bytes.NewReader(segmenttest.Data(1, 5000)), 5000)
	r, err := b.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	copyPut(t, b, pool, key, bytes.NewReader(segmenttest.Data(2, 5000)), 5000)
	if _, err := r.ReadAt(make([]byte, 100), 0); !errors.Is(err, errObjectChanged) {
		t.Fatalf("ReadAt of a replaced object = %v, want errObjectChanged", err)
	}
}

// testConcurrencyLimit: Concurrency caps the writers open at once.
func testConcurrencyLimit(t *testing.T, srv *miniotest.Server, driver string, pool *bufpool.Pool) {
	cfg := serverConfig(srv, driver)
	cfg.Concurrency = 1
	b := newBackend(t, cfg, pool)
	ctx := testCtx(t)
	w, err := b.Create(ctx, "node1/gate/a", 1)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := b.Create(short, "node1/gate/b", 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Create with concurrency 1 = %v, want a deadline error", err)
	}
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w2, err := b.Create(ctx, "node1/gate/b", 0)
	if err != nil {
		t.Fatalf("Create after the first writer committed: %v", err)
	}
	if err := w2.Abort(); err != nil {
		t.Fatal(err)
	}
}

// TestTLS runs both drivers against MinIO over https with the test CA in ca_file, and
// checks that without it the server is not trusted.
func TestTLS(t *testing.T) {
	srv := miniotest.StartWith(t, miniotest.Options{TLS: true})
	pool := newPool(t, 4)
	for _, driver := range drivers {
		cfg := serverConfig(srv, driver)
		b := newBackend(t, cfg, pool)
		for _, size := range []int{3000, 2*testBuf + 7} {
			key := segment.Key(fmt.Sprintf("node1/tls/%d", size))
			data := segmenttest.Data(uint64(size), size)
			copyPut(t, b, pool, key, bytes.NewReader(data), int64(size))
			if !bytes.Equal(readAll(t, b, key), data) {
				t.Fatalf("%s over TLS: content differs", driver)
			}
			if info, err := b.Stat(testCtx(t), key); err != nil || info.CRC32C != crc32.Checksum(data, segment.Castagnoli) {
				t.Fatalf("%s over TLS: Stat = %+v, %v", driver, info, err)
			}
		}
		cfg.CAFile = ""
		untrusting := newBackend(t, cfg, pool)
		if err := untrusting.Check(testCtx(t)); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("%s without the CA: Check = %v, want a certificate error", driver, err)
		}
	}
}

// testLargeParts: parts larger than MinIO's 16 MiB aws-chunked limit go through.
func testLargeParts(t *testing.T, srv *miniotest.Server, driver string, pool *bufpool.Pool) {
	cfg := serverConfig(srv, driver)
	cfg.PartSize = 20 << 20
	b := newBackend(t, cfg, pool)
	data := segmenttest.Data(20, 25<<20)
	key := segment.Key("node1/large-parts")
	crc := copyPut(t, b, pool, key, bytes.NewReader(data), int64(len(data)))
	if crc != crc32.Checksum(data, segment.Castagnoli) || !bytes.Equal(readAll(t, b, key), data) {
		t.Fatal("content or CRC differs")
	}
	w := b.object(key)
	o, err := b.d.head(testCtx(t), w)
	if err != nil || o.checksumType != "FULL_OBJECT" {
		t.Fatalf("head = %+v, %v", o, err)
	}
}

// lossy is a store whose replies get lost: the request is done, the caller sees an
// error (complete, put), or the SDK retried a creation whose reply was lost and made a
// second upload (createMultipart).
type lossy struct {
	driver
	loseComplete, losePut, retryCreate bool
}

var errReplyLost = errors.New("read tcp 127.0.0.1:40000->127.0.0.1:9000: read: connection reset by peer")

func (l *lossy) complete(ctx context.Context, key, uploadID string, parts []part, crc uint32, size int64) error {
	if err := l.driver.complete(ctx, key, uploadID, parts, crc, size); err != nil || !l.loseComplete {
		return err
	}
	return errReplyLost
}

func (l *lossy) put(ctx context.Context, key string, body *partBody, crc uint32, cond putCond) (string, error) {
	etag, err := l.driver.put(ctx, key, body, crc, cond)
	if err != nil || !l.losePut {
		return etag, err
	}
	return "", errReplyLost
}

func (l *lossy) createMultipart(ctx context.Context, key string) (string, error) {
	if l.retryCreate {
		if _, err := l.driver.createMultipart(ctx, key); err != nil { // its reply lost
			return "", err
		}
	}
	return l.driver.createMultipart(ctx, key)
}

// testLostReplies: a commit whose reply was lost is found done by looking; an upload
// whose creation reply was lost (the SDK made a second one) is aborted by the next Reap,
// however young.
func testLostReplies(t *testing.T, srv *miniotest.Server, driver string, pool *bufpool.Pool) {
	b := newBackend(t, serverConfig(srv, driver), pool)
	ctx := testCtx(t)
	l := &lossy{driver: b.d, loseComplete: true, losePut: true, retryCreate: true}
	b.d = l
	big, small := segment.Key("node1/lost/big"), segment.Key("node1/lost/small")
	data := segmenttest.Data(9, 2*testBuf+100)
	pushPut(t, b, big, data, testBuf)
	pushPut(t, b, small, data[:100], 100)
	if got := b.CommitsSettled(); got != 2 {
		t.Fatalf("commits settled by looking = %d, want 2", got)
	}
	if !bytes.Equal(readAll(t, b, big), data) || !bytes.Equal(readAll(t, b, small), data[:100]) {
		t.Fatal("objects committed with lost replies read back wrong")
	}
	if us := uploadsOf(t, b, big); len(us) != 1 {
		t.Fatalf("uploads of %s after a creation retried by the SDK: %v; want the lost one", big, us)
	}
	if n, err := b.Reap(ctx, time.Hour); err != nil || n != 1 {
		t.Fatalf("Reap(1h) = %d, %v; want the young upload whose creation reply was lost aborted", n, err)
	}
	if us := uploadsOf(t, b, big); len(us) != 0 {
		t.Fatalf("uploads of %s left after Reap: %v", big, us)
	}
	// A commit that failed for real is not settled: the object is not there.
	l.loseComplete = false
	b.d = &failingComplete{l}
	w, err := b.Create(ctx, "node1/lost/never", int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err == nil {
		t.Fatal("a commit the store refused succeeded")
	}
	w.Abort()
	for _, k := range []segment.Key{big, small} {
		b.Delete(ctx, k)
	}
	b.Reap(ctx, 0)
}

type failingComplete struct{ driver }

func (f *failingComplete) complete(context.Context, string, string, []part, uint32, int64) error {
	return errors.New("InternalError: we encountered an internal error")
}
