package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
)

func TestCRC32CCombine(t *testing.T) {
	f := func(a, b []byte) {
		t.Helper()
		ca, cb := crc32.Checksum(a, segment.Castagnoli), crc32.Checksum(b, segment.Castagnoli)
		want := crc32.Checksum(append(append([]byte{}, a...), b...), segment.Castagnoli)
		if got := crc32cCombine(ca, cb, int64(len(b))); got != want {
			t.Fatalf("combine(len %d, len %d) = %08x, want %08x", len(a), len(b), got, want)
		}
	}
	data := segmenttest.Data(1, 3<<20)
	f(nil, nil)
	f(data[:1], nil)
	f(nil, data[:1])
	f(data[:7], data[7:8])
	f(data[:1<<20], data[1<<20:])
	f(data[:12345], data[12345:2<<20+3])
}

func FuzzCRC32CCombine(f *testing.F) {
	f.Add([]byte("hello"), []byte(", world"))
	f.Add([]byte{}, []byte{0})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ca, cb := crc32.Checksum(a, segment.Castagnoli), crc32.Checksum(b, segment.Castagnoli)
		want := crc32.Checksum(append(append([]byte{}, a...), b...), segment.Castagnoli)
		if got := crc32cCombine(ca, cb, int64(len(b))); got != want {
			t.Fatalf("combine = %08x, want %08x", got, want)
		}
	})
}

// FuzzDecodeCRC feeds decodeCRC (which parses a server's checksum header) any string: it
// must not panic, and what it accepts must survive a round trip.
func FuzzDecodeCRC(f *testing.F) {
	f.Add(encodeCRC(0xdeadbeef))
	f.Add("AAAA")
	f.Add("4waSgw==-3")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCRC(s)
		if err != nil {
			return
		}
		if c2, err := decodeCRC(encodeCRC(c)); err != nil || c2 != c {
			t.Fatalf("decodeCRC(%q) = %08x, but its encoding decodes to %08x, %v", s, c, c2, err)
		}
	})
}

func TestEncodeDecodeCRC(t *testing.T) {
	f := func(crc uint32, enc string) {
		t.Helper()
		if got := encodeCRC(crc); got != enc {
			t.Fatalf("encodeCRC(%08x) = %q, want %q", crc, got, enc)
		}
		if got, err := decodeCRC(enc); err != nil || got != crc {
			t.Fatalf("decodeCRC(%q) = %08x, %v", enc, got, err)
		}
	}
	f(0, "AAAAAA==")
	f(0xe3069283, "4waSgw==") // CRC-32C("123456789")
	for _, bad := range []string{"", "AAAA", "!!!!!!==", "AAAAAAAA"} {
		if _, err := decodeCRC(bad); err == nil {
			t.Errorf("decodeCRC(%q) succeeded", bad)
		}
	}
}

func TestAWSChunkedEncoding(t *testing.T) {
	data := []byte("hello, trailing checksum")
	trailer := fmt.Sprintf("0\r\nx-amz-checksum-crc32c:%s\r\n\r\n", encodeCRC(crc32.Checksum(data, segment.Castagnoli)))
	f := func(chunk int64, want string) {
		t.Helper()
		var read atomic.Int64
		body := newPartBody(context.Background(), bytes.NewReader(data), 0, int64(len(data)), nil, &read)
		enc := newAWSChunked(body, chunk)
		got, err := io.ReadAll(iotestOneByte{enc})
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Fatalf("chunk %d: encoded\n%q\nwant\n%q", chunk, got, want)
		}
		if int64(len(got)) != enc.length {
			t.Fatalf("chunk %d: announced length %d, encoded %d", chunk, enc.length, len(got))
		}
		if read.Load() != int64(len(data)) {
			t.Fatalf("chunk %d: source read %d bytes, want %d", chunk, read.Load(), len(data))
		}
	}
	f(1<<20, "18\r\nhello, trailing checksum\r\n"+trailer)
	f(24, "18\r\nhello, trailing checksum\r\n"+trailer)
	f(10, "a\r\nhello, tra\r\na\r\niling chec\r\n4\r\nksum\r\n"+trailer)
	f(8, "8\r\nhello, t\r\n8\r\nrailing \r\n8\r\nchecksum\r\n"+trailer)
}

// iotestOneByte reads one byte at a time, the worst case for the encoder's state machine.
type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestPartBody(t *testing.T) {
	data := segmenttest.Data(3, 100000)
	var read atomic.Int64
	b := newPartBody(context.Background(), bytes.NewReader(data), 1000, 50000, nil, &read)
	if _, err := io.CopyN(io.Discard, b, 20000); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.CRC(); ok {
		t.Fatal("CRC valid before the end")
	}
	// A retry rewinds; the CRC starts over.
	if _, err := b.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, data[1000:51000]) {
		t.Fatalf("read after rewind: %d bytes, %v", len(got), err)
	}
	if crc, ok := b.CRC(); !ok || crc != crc32.Checksum(data[1000:51000], segment.Castagnoli) {
		t.Fatalf("CRC = %08x, %t", crc, ok)
	}
	if n, _ := b.Seek(0, io.SeekEnd); n != 50000 {
		t.Fatalf("Seek(0, End) = %d", n)
	}
	if _, err := b.Seek(1, io.SeekEnd); err == nil {
		t.Fatal("Seek past the end succeeded")
	}

	// A source shorter than the part is ErrSourceChanged.
	short := newPartBody(context.Background(), bytes.NewReader(data[:10]), 0, 20, nil, &read)
	if _, err := io.ReadAll(short); !errors.Is(err, segment.ErrSourceChanged) || short.failure() == nil {
		t.Fatalf("short source: %v", err)
	}
	// A cancelled context stops the body.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cb := newPartBody(ctx, bytes.NewReader(data), 0, 10, nil, &read)
	if _, err := io.ReadAll(cb); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled body: %v", err)
	}
}

func TestGate(t *testing.T) {
	if NewGate(0) != nil {
		t.Fatal("NewGate(0) is not unlimited")
	}
	g := NewGate(1)
	leave, err := g.Enter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := g.Enter(ctx); err == nil {
		t.Fatal("second Enter of a 1-place gate succeeded")
	}
	leave()
	leave() // a second call does nothing
	l2, err := g.Enter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l2()
	if _, err := g.Enter(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestConfigStringRedacts(t *testing.T) {
	c := Config{Driver: "aws", Bucket: "b", AccessKey: "AKIASECRETKEYID", SecretKey: "very-secret", SessionToken: "tok-secret"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), c.String()} {
		for _, secret := range []string{"AKIASECRETKEYID", "very-secret", "tok-secret"} {
			if strings.Contains(s, secret) {
				t.Fatalf("%q shows a secret", s)
			}
		}
		if !strings.Contains(s, "Bucket:b") || !strings.Contains(s, redacted) {
			t.Fatalf("%q does not describe the config", s)
		}
	}
}

func TestNewErrors(t *testing.T) {
	pool := newPool(t, 1)
	ok := Config{Driver: "minio", Endpoint: "http://127.0.0.1:1", Bucket: "b"}
	f := func(mod func(*Config), node, want string) {
		t.Helper()
		c := ok
		mod(&c)
		_, err := New(context.Background(), c, node, pool, zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("New(%v, %q) = %v, want an error containing %q", c, node, err, want)
		}
	}
	same := func(*Config) {}
	f(func(c *Config) { c.Driver = "gcs" }, "n", `driver "gcs"`)
	f(func(c *Config) { c.Bucket = "" }, "n", "no bucket")
	f(same, "", "node")
	f(same, "a/b", "node")
	f(same, "..", "node")
	f(func(c *Config) { c.PartSize = 1 << 20 }, "n", "part_size")
	f(func(c *Config) { c.PartSize = 6 << 30 }, "n", "part_size")
	f(func(c *Config) { c.PartConcurrency = -1 }, "n", "negative")
	f(func(c *Config) { c.RateLimit = -5 }, "n", "negative")
	f(func(c *Config) { c.SSE = "aes" }, "n", `sse "aes"`)
	f(func(c *Config) { c.SSEKMSKeyID = "k" }, "n", "sse_kms_key_id")
	f(func(c *Config) { c.Prefix = "a/../b" }, "n", "prefix")
	f(func(c *Config) { c.CAFile = "/nonexistent/ca.pem" }, "n", "CA file")
	f(func(c *Config) { c.Endpoint = "127.0.0.1:9000" }, "n", "endpoint")
	f(func(c *Config) { c.Endpoint = "ftp://host" }, "n", "endpoint")

	small, err := newPoolSized(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if _, err := New(context.Background(), ok, "n", small, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "minimum part") {
		t.Fatalf("New with 4 KiB buffers = %v", err)
	}
	for _, d := range drivers {
		c := ok
		c.Driver = d
		if _, err := New(context.Background(), c, "n", pool, zap.NewNop()); err != nil {
			t.Fatalf("New(%s) = %v", d, err)
		}
	}
}

func newPoolSized(size int64) (*bufpool.Pool, error) {
	return bufpool.New(bufpool.Config{Budget: size, BufferSize: size})
}
