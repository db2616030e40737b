package codec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
)

const testFrame = 4 << 10

func testPool(t testing.TB, bufSize int64, n int64) *bufpool.Pool {
	t.Helper()
	p, err := bufpool.New(bufpool.Config{Budget: n * bufSize, BufferSize: bufSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// testCodecs makes Codecs with 2 encoders and decoders over pool (a new pool of four
// bufSize buffers if nil).
func testCodecs(t testing.TB, pool *bufpool.Pool, bufSize, frame int) *Codecs {
	t.Helper()
	if pool == nil {
		pool = testPool(t, int64(bufSize), 4)
	}
	c, err := NewCodecs(CodecsConfig{Encoders: 2, Decoders: 2, Pool: pool, FrameSize: frame})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Codecs.Close: %v", err)
		}
	})
	return c
}

// testKeys writes a key file with the given ids and loads it.
func testKeys(t testing.TB, ids ...string) (*KeyRing, string) {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("# test keys\n")
	for _, id := range ids {
		line, err := NewKeyLine(id)
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString(line + "\n")
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k, path
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// modes are the wrapper's settings the conformance suite runs with.
func modes(t *testing.T) map[string]Config {
	keys, _ := testKeys(t, "k1")
	return map[string]Config{
		"zstd":     {Compression: CompressZstd},
		"zstd+aes": {Compression: CompressZstd, Keys: keys},
		"aes":      {Keys: keys},
		"none":     {},
	}
}

// TestConformance runs the segment.Backend suite on the wrapper over the in-memory backend
// and over posix, in every mode, with 4 KiB frames so that objects span many frames.
func TestConformance(t *testing.T) {
	inners := map[string]func(t *testing.T) segment.Backend{
		"mem": func(t *testing.T) segment.Backend { return newMemBackend() },
		"posix": func(t *testing.T) segment.Backend {
			b, err := posix.New(posix.Config{Path: t.TempDir(), WriteMode: posix.Buffered}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}
	for name, cfg := range modes(t) {
		for iname, inner := range inners {
			t.Run(iname+"/"+name, func(t *testing.T) {
				pool := testPool(t, 64<<10, 4)
				codecs := testCodecs(t, pool, 64<<10, testFrame)
				segmenttest.Run(t, segmenttest.Harness{
					Pool: pool,
					New:  func(t *testing.T) segment.Backend { return New(inner(t), cfg, codecs, zap.NewNop()) },
				})
			})
		}
	}
}

// put writes data under key through b.
func put(t testing.TB, b segment.Backend, key segment.Key, data []byte) {
	t.Helper()
	ctx := ctxT(t)
	w, err := b.Create(ctx, key, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func get(t testing.TB, b segment.Backend, key segment.Key) ([]byte, error) {
	t.Helper()
	r, err := b.Open(ctxT(t), key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p := make([]byte, r.Size())
	_, err = r.ReadAt(p, 0)
	if errors.Is(err, io.EOF) && len(p) == 0 {
		err = nil
	}
	return p, err
}

// textBody returns n bytes of JSON-like log lines (compressible like real message bodies).
func textBody(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"ts":"2026-12-03T13:%02d:%02d.%03dZ","level":"info","user":"u%05d","order":%d,"msg":"payment accepted","amount":%d.%02d}`+"\n",
			i/60%60, i%60, i%1000, i*7919%100000, 1000000+i, i*31%10000, i%100)
	}
	return b.Bytes()[:n]
}

func TestCompresses(t *testing.T) {
	inner := newMemBackend()
	b := New(inner, Config{Compression: CompressZstd}, testCodecs(t, nil, 64<<10, 64<<10), zap.NewNop())
	text := textBody(1 << 20)
	random := segmenttest.Data(1, 1<<20)
	put(t, b, "text", text)
	put(t, b, "random", random)
	if n := len(inner.raw("text")); n > len(text)/3 {
		t.Errorf("1 MiB of JSON lines stored in %d bytes: less than 3x", n)
	}
	// Random frames are stored raw: the object grows by the header, index and footer only.
	if n, want := len(inner.raw("random")), len(random)+HeaderSize+16*IndexEntrySize+FooterSize; n != want {
		t.Errorf("1 MiB of random bytes stored in %d bytes, want %d (raw frames)", n, want)
	}
	for _, k := range []segment.Key{"text", "random"} {
		got, err := get(t, b, k)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[segment.Key][]byte{"text": text, "random": random}[k]; !bytes.Equal(got, want) {
			t.Fatalf("%s: read back differs", k)
		}
	}
}

// TestNoPlaintextOnTier writes message bodies through an encrypted posix tier (and one
// also compressed) and searches every file of the tier for a known body.
func TestNoPlaintextOnTier(t *testing.T) {
	keys, _ := testKeys(t, "k1")
	body := []byte("SECRET-BODY: card 4111-1111-1111-1111 expires 12/29, customer Jane Q. Public")
	for _, c := range []Compression{CompressNone, CompressZstd} {
		t.Run(c.String(), func(t *testing.T) {
			dir := t.TempDir()
			pb, err := posix.New(posix.Config{Path: dir, WriteMode: posix.Buffered}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			b := New(pb, Config{Compression: c, Keys: keys}, testCodecs(t, nil, 64<<10, testFrame), zap.NewNop())
			var data []byte
			for len(data) < 200<<10 {
				data = append(data, body...)
				data = append(data, textBody(333)...)
			}
			put(t, b, "src/commitlog/00000000000000000000", data)
			put(t, b, "src/small", body)
			files := 0
			err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				files++
				raw, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				for _, needle := range [][]byte{body, body[:16], []byte("payment accepted")} {
					if bytes.Contains(raw, needle) {
						t.Errorf("%s holds plaintext %q", p, needle)
					}
				}
				return nil
			})
			if err != nil || files != 2 {
				t.Fatalf("walk: %v, %d files", err, files)
			}
			if got, err := get(t, b, "src/small"); err != nil || !bytes.Equal(got, body) {
				t.Fatalf("read back: %q, %v", got, err)
			}
		})
	}
}

func TestWrongOrMissingKey(t *testing.T) {
	keys, _ := testKeys(t, "k1")
	other, _ := testKeys(t, "k1") // same id, other bytes
	k2, _ := testKeys(t, "k2")
	inner := newMemBackend()
	codecs := testCodecs(t, nil, 64<<10, testFrame)
	data := textBody(50 << 10)
	put(t, New(inner, Config{Compression: CompressZstd, Keys: keys}, codecs, zap.NewNop()), "obj", data)
	f := func(name string, cfg Config, want string) {
		t.Helper()
		_, err := get(t, New(inner, cfg, codecs, zap.NewNop()), "obj")
		if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: read = %v, want ErrKey saying %q", name, err, want)
		}
	}
	f("wrong bytes", Config{Keys: other}, "does not open")
	f("missing key", Config{Keys: k2}, `"k1" is not in key file`)
	f("no key file", Config{}, "no encryption.key_file")
}

// TestTamper checks that swapped, altered or moved frames and headers are errors, never
// other bytes.
func TestTamper(t *testing.T) {
	keys, _ := testKeys(t, "k1")
	inner := newMemBackend()
	b := New(inner, Config{Keys: keys}, testCodecs(t, nil, 64<<10, testFrame), zap.NewNop())
	data := segmenttest.Data(3, 5*testFrame)
	put(t, b, "a", data)
	put(t, b, "b", data)
	orig := bytes.Clone(inner.raw("a"))
	stored := testFrame + gcmTagSize
	f := func(name string, mutate func(p []byte) []byte) {
		t.Helper()
		inner.put("a", mutate(bytes.Clone(orig)))
		got, err := get(t, b, "a")
		if err == nil {
			t.Errorf("%s: read succeeded (equal to the original: %v)", name, bytes.Equal(got, data))
		}
	}
	f("swap frames", func(p []byte) []byte {
		f1 := bytes.Clone(p[HeaderSize : HeaderSize+stored])
		copy(p[HeaderSize:], p[HeaderSize+stored:HeaderSize+2*stored])
		copy(p[HeaderSize+stored:], f1)
		return p
	})
	f("flip a ciphertext bit", func(p []byte) []byte { p[HeaderSize+100] ^= 1; return p })
	f("frame from another object", func(p []byte) []byte {
		copy(p[HeaderSize:HeaderSize+stored], inner.raw("b")[HeaderSize:HeaderSize+stored])
		return p
	})
	f("header of another object", func(p []byte) []byte { copy(p, inner.raw("b")[:HeaderSize]); return p })
	// Moved to another name: the wrapped key is bound to the key.
	inner.put("a", orig)
	inner.put("moved", bytes.Clone(orig))
	if _, err := get(t, b, "moved"); !errors.Is(err, ErrKey) {
		t.Errorf("object copied to another key: read = %v, want ErrKey", err)
	}
}

func TestRekey(t *testing.T) {
	dir := t.TempDir()
	line := func(id string) string {
		l, err := NewKeyLine(id)
		if err != nil {
			t.Fatal(err)
		}
		return l + "\n"
	}
	k1, k2 := line("k1"), line("k2")
	load := func(content string) *KeyRing {
		p := filepath.Join(dir, "keys")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := LoadKeyFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	inner := newMemBackend()
	codecs := testCodecs(t, nil, 64<<10, testFrame)
	data := textBody(30 << 10)
	put(t, New(inner, Config{Compression: CompressZstd, Keys: load(k1)}, codecs, zap.NewNop()), "x/obj", data)
	before := bytes.Clone(inner.raw("x/obj"))

	both := New(inner, Config{Compression: CompressZstd, Keys: load(k1 + k2)}, codecs, zap.NewNop())
	put(t, both, "x/new", data) // written with k2 already
	st, err := both.Rekey(ctxT(t), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st != (RekeyStats{Objects: 2, Rekeyed: 1, UpToDate: 1}) {
		t.Fatalf("Rekey = %+v", st)
	}
	if !bytes.Equal(inner.raw("x/obj"), before) {
		t.Fatal("Rekey rewrote the object")
	}
	if st, err := both.Rekey(ctxT(t), "", nil); err != nil || st.Rekeyed != 0 || st.UpToDate != 2 {
		t.Fatalf("second Rekey = %+v, %v", st, err)
	}
	// k1 retired: readable through the sidecar; List and Stat hide the sidecar.
	only2 := New(inner, Config{Keys: load(k2)}, codecs, zap.NewNop())
	for _, k := range []segment.Key{"x/obj", "x/new"} {
		if got, err := get(t, only2, k); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s after rekey with k1 removed: %v", k, err)
		}
	}
	es, err := only2.List(ctxT(t), "x/")
	if err != nil || len(es) != 2 || es[0].Size != int64(len(data)) {
		t.Fatalf("List = %+v, %v", es, err)
	}
	// Overwritten object: the stale sidecar does not apply; Delete removes both.
	put(t, New(inner, Config{Keys: load(k1)}, codecs, zap.NewNop()), "x/obj", data)
	if _, err := get(t, only2, "x/obj"); !errors.Is(err, ErrKey) {
		t.Fatalf("overwritten object read with a stale sidecar: %v", err)
	}
	if err := only2.Delete(ctxT(t), "x/obj"); err != nil {
		t.Fatal(err)
	}
	if n := len(inner.raw(sidecarKey("x/obj"))); n != 0 {
		t.Fatalf("sidecar left after Delete: %d bytes", n)
	}
}

// TestRangedReadFetchesTwoFrames reads 4 KiB from the middle of a 1 GiB compressed,
// encrypted object and counts the bytes asked of the inner backend.
func TestRangedReadFetchesTwoFrames(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1 GiB")
	}
	keys, _ := testKeys(t, "k1")
	inner := newMemBackend()
	pool := testPool(t, 8<<20, 4)
	codecs := testCodecs(t, pool, 8<<20, DefaultFrameSize)
	b := New(inner, Config{Compression: CompressZstd, Keys: keys}, codecs, zap.NewNop())
	const size = 1 << 30
	chunk := textBody(8 << 20)
	ctx := ctxT(t)
	w, err := b.Create(ctx, "big", size)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := pool.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < size; off += len(chunk) {
		copy(buf.Bytes(), chunk)
		if _, err := w.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	buf.Release()
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := b.Open(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	meta := inner.requested.Load()
	p := make([]byte, 4096)
	off := int64(size/2 - 2048) // straddles a frame boundary: two frames
	if _, err := r.ReadAt(p, off); err != nil {
		t.Fatal(err)
	}
	fetched := inner.requested.Load() - meta
	want := make([]byte, len(p))
	for i := range want {
		want[i] = chunk[(off+int64(i))%int64(len(chunk))]
	}
	if !bytes.Equal(p, want) {
		t.Fatal("ranged read returned other bytes")
	}
	if max := int64(2 * scratchSize(DefaultFrameSize)); fetched > max {
		t.Fatalf("4 KiB ranged read fetched %d bytes, more than two frames (%d)", fetched, max)
	}
	t.Logf("1 GiB object stored in %d bytes; Open read %d bytes; a 4 KiB read across a frame boundary fetched %d bytes in %d reads",
		len(inner.raw("big")), meta, fetched, inner.reads.Load())
}

// TestTierToTierCopy copies an object from an encrypted, compressed tier to a plain tier
// and to a tier with another key, as the daemon moves segments (a reader of one tier
// into segment.Copy to the other): each tier holds its own encoding of the plaintext.
func TestTierToTierCopy(t *testing.T) {
	k1, _ := testKeys(t, "k1")
	k2, _ := testKeys(t, "other")
	pool := testPool(t, 64<<10, 4)
	codecs := testCodecs(t, pool, 64<<10, testFrame)
	memA, memPlain, memB := newMemBackend(), newMemBackend(), newMemBackend()
	a := New(memA, Config{Compression: CompressZstd, Keys: k1}, codecs, zap.NewNop())
	b := New(memB, Config{Keys: k2}, codecs, zap.NewNop())
	data := textBody(10*testFrame + 123)
	put(t, a, "seg", data)
	ctx := ctxT(t)
	for name, to := range map[string]segment.Backend{"plain": memPlain, "other key": b} {
		r, err := a.Open(ctx, "seg")
		if err != nil {
			t.Fatal(err)
		}
		w, err := to.Create(ctx, "seg", r.Size())
		if err != nil {
			t.Fatal(err)
		}
		crc, err := segment.Copy(ctx, w, r, r.Size(), pool)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if crc != crc32c(data) {
			t.Fatalf("%s: copy CRC %08x, want %08x", name, crc, crc32c(data))
		}
		got, err := get(t, to, "seg")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: read back differs (%v)", name, err)
		}
	}
	if !bytes.Equal(memPlain.raw("seg"), data) {
		t.Fatal("the plain tier does not hold the plaintext")
	}
	if bytes.Equal(memB.raw("seg")[HeaderSize:HeaderSize+100], memA.raw("seg")[HeaderSize:HeaderSize+100]) {
		t.Fatal("the other tier holds the first tier's encoding")
	}
	if _, err := get(t, New(memB, Config{Keys: k1}, codecs, zap.NewNop()), "seg"); !errors.Is(err, ErrKey) {
		t.Fatalf("the copy opens with the first tier's key: %v", err)
	}
}

// TestRunOfFramesOneRead checks that a read covering several whole frames fetches them
// with one ranged read when a pool buffer is free, and frame by frame when none is.
func TestRunOfFramesOneRead(t *testing.T) {
	keys, _ := testKeys(t, "k1")
	pool := testPool(t, 64<<10, 2)
	inner := newMemBackend()
	b := New(inner, Config{Compression: CompressZstd, Keys: keys}, testCodecs(t, pool, 64<<10, testFrame), zap.NewNop())
	data := append(textBody(10*testFrame), segmenttest.Data(5, 10*testFrame+99)...)
	put(t, b, "obj", data)
	r, err := b.Open(ctxT(t), "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f := func(name string, off, n int, wantReads int64) {
		t.Helper()
		p := make([]byte, n)
		before := inner.reads.Load()
		if _, err := r.ReadAt(p, int64(off)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(p, data[off:off+n]) {
			t.Fatalf("%s: other bytes", name)
		}
		if got := inner.reads.Load() - before; got != wantReads {
			t.Fatalf("%s: %d reads of the inner object, want %d", name, got, wantReads)
		}
	}
	f("8 whole frames", 0, 8*testFrame, 1)
	f("8 whole frames, text and random", 6*testFrame, 8*testFrame, 1)
	f("a partial frame, 3 whole, a partial", testFrame/2, 4*testFrame, 3)
	f("to the end", 15*testFrame, len(data)-15*testFrame, 1)
	held := []*bufpool.Buffer{pool.TryGet(), pool.TryGet()}
	f("8 whole frames, no free buffer", 0, 8*testFrame, 8)
	for _, h := range held {
		h.Release()
	}
}
