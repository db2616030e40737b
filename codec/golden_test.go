package codec

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenCases are the objects under testdata/: written by -update, read by every run.
var goldenCases = []struct {
	name  string
	comp  Compression
	enc   bool
	plain func() []byte
	rekey bool // also a key sidecar made by Rekey with a second key; keys holds only that
}{
	{"empty-zstd", CompressZstd, false, func() []byte { return nil }, false},
	{"text-zstd", CompressZstd, false, func() []byte { return textBody(3*testFrame + 1000) }, false},
	{"random-zstd-raw-frames", CompressZstd, false, func() []byte { return segmenttest.Data(7, 2*testFrame+10) }, false},
	{"text-aes", CompressNone, true, func() []byte { return textBody(2*testFrame + 5) }, false},
	{"text-zstd-aes", CompressZstd, true, func() []byte { return textBody(3*testFrame + 77) }, false},
	{"text-zstd-aes-rekeyed", CompressZstd, true, func() []byte { return textBody(testFrame + 1) }, true},
}

const goldenKey segment.Key = "node-1/src/commitlog/00000000000000000000"

func TestGolden(t *testing.T) {
	codecs := testCodecs(t, nil, 64<<10, testFrame)
	for _, c := range goldenCases {
		dir := filepath.Join("testdata", c.name)
		if *update {
			writeGolden(t, dir, codecs, c.comp, c.enc, c.rekey, c.plain())
		}
		t.Run(c.name, func(t *testing.T) {
			plain, err := os.ReadFile(filepath.Join(dir, "plain"))
			if err != nil {
				t.Fatalf("%v (go test ./codec -run Golden -update writes it)", err)
			}
			obj, err := os.ReadFile(filepath.Join(dir, "object"))
			if err != nil {
				t.Fatal(err)
			}
			inner := newMemBackend()
			inner.put(goldenKey, obj)
			cfg := Config{}
			if kb, err := os.ReadFile(filepath.Join(dir, "keys")); err == nil {
				if cfg.Keys, err = ParseKeys(bytes.NewReader(kb), "keys"); err != nil {
					t.Fatal(err)
				}
			}
			if sc, err := os.ReadFile(filepath.Join(dir, "sidecar")); err == nil {
				if _, err := parseSidecar(sc); err != nil {
					t.Fatalf("sidecar: %v", err)
				}
				inner.put(sidecarKey(goldenKey), sc)
			}
			h, err := parseHeader(obj)
			if err != nil {
				t.Fatalf("header: %v", err)
			}
			if !bytes.Equal(h.marshal(), obj[:HeaderSize]) {
				t.Fatal("header does not marshal back to its bytes")
			}
			b := New(inner, cfg, codecs, zap.NewNop())
			got, err := get(t, b, goldenKey)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("read back %d bytes (%v), want the %d of plain", len(got), err, len(plain))
			}
			info, err := b.Stat(ctxT(t), goldenKey)
			if err != nil || info.Size != int64(len(plain)) || info.CRC32C != crc32c(plain) {
				t.Fatalf("Stat = %+v, %v", info, err)
			}
		})
	}
}

func writeGolden(t *testing.T, dir string, codecs *Codecs, comp Compression, enc, rekey bool, plain []byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	inner := newMemBackend()
	cfg := Config{Compression: comp}
	var keyLines []byte
	if enc {
		k1, _ := NewKeyLine("k1")
		keyLines = []byte(k1 + "\n")
		var err error
		if cfg.Keys, err = ParseKeys(bytes.NewReader(keyLines), "keys"); err != nil {
			t.Fatal(err)
		}
	}
	put(t, New(inner, cfg, codecs, zap.NewNop()), goldenKey, plain)
	if rekey {
		k2, _ := NewKeyLine("k2")
		both, err := ParseKeys(bytes.NewReader(append(keyLines, k2+"\n"...)), "keys")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(inner, Config{Keys: both}, codecs, zap.NewNop()).Rekey(ctxT(t), "", nil); err != nil {
			t.Fatal(err)
		}
		keyLines = []byte("# k1 was removed after tierd rekey\n" + k2 + "\n")
		if err := os.WriteFile(filepath.Join(dir, "sidecar"), inner.raw(sidecarKey(goldenKey)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string][]byte{"plain": plain, "object": inner.raw(goldenKey), "key": []byte(goldenKey + "\n")}
	if enc {
		files["keys"] = keyLines
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
