package codec

import (
	"bytes"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.uber.org/zap"

	"github.com/tierd/tierd/segment"
)

func crc32c(p []byte) uint32 { return crc32.Checksum(p, segment.Castagnoli) }

// goldenObjects returns the golden objects, seeds for the fuzz targets.
func goldenObjects(f *testing.F) [][]byte {
	var out [][]byte
	dirs, _ := filepath.Glob(filepath.Join("testdata", "*", "object"))
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		f.Fatal("no golden objects under testdata/")
	}
	return out
}

func FuzzHeader(f *testing.F) {
	for _, o := range goldenObjects(f) {
		f.Add(o[:HeaderSize])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err != nil {
			return
		}
		if got := h.marshal(); !bytes.Equal(got, b[:HeaderSize]) {
			t.Fatalf("accepted header does not marshal back:\n%x\n%x", b[:HeaderSize], got)
		}
	})
}

func FuzzFooter(f *testing.F) {
	for _, o := range goldenObjects(f) {
		f.Add(o[len(o)-FooterSize:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ft, err := parseFooter(b)
		if err != nil {
			return
		}
		if got := ft.marshal(); !bytes.Equal(got, b[len(b)-FooterSize:]) {
			t.Fatalf("accepted footer does not marshal back")
		}
	})
}

// FuzzIndex decodes a frame index against the header and footer it comes with.
func FuzzIndex(f *testing.F) {
	for _, o := range goldenObjects(f) {
		f.Add(o[:HeaderSize], o[len(o)-FooterSize:], o[HeaderSize:len(o)-FooterSize])
	}
	f.Fuzz(func(t *testing.T, hb, fb, rest []byte) {
		h, err := parseHeader(hb)
		if err != nil {
			return
		}
		ft, err := parseFooter(fb)
		if err != nil {
			return
		}
		if h.Size < 0 {
			h.Size = ft.Size
		}
		n := int64(ft.Frames) * IndexEntrySize
		if n > int64(len(rest)) {
			return
		}
		size := int64(HeaderSize + len(rest) + FooterSize)
		ix, err := parseIndex(rest[int64(len(rest))-n:], &h, &ft, size)
		if err != nil {
			return
		}
		if int64(len(ix.off)) != h.frames()+1 || ix.off[len(ix.off)-1] != size-FooterSize-n {
			t.Fatalf("accepted index does not describe the object: %v", ix.off)
		}
	})
}

func FuzzSidecar(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "text-zstd-aes-rekeyed", "sidecar")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSidecar(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.marshal(), b) {
			t.Fatal("accepted sidecar does not marshal back")
		}
	})
}

// FuzzFrames reads a whole (possibly damaged) object through the codec, with one of the
// golden key files: the frame decoders (authentication, zstd) must fail cleanly, never
// panic, and an encrypted object that decodes must give a golden plaintext.
func FuzzFrames(f *testing.F) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "*"))
	var keyFiles, plains [][]byte
	for _, d := range dirs {
		pl, err := os.ReadFile(filepath.Join(d, "plain"))
		if err != nil {
			f.Fatal(err)
		}
		plains = append(plains, pl)
		o, err := os.ReadFile(filepath.Join(d, "object"))
		if err != nil {
			f.Fatal(err)
		}
		k, _ := os.ReadFile(filepath.Join(d, "keys"))
		if len(k) > 0 {
			keyFiles = append(keyFiles, k)
		}
		f.Add(o, uint8(len(keyFiles)))
	}
	codecs := testCodecs(f, nil, 64<<10, testFrame)
	f.Fuzz(func(t *testing.T, obj []byte, keySel uint8) {
		cfg := Config{}
		if keySel > 0 && int(keySel) <= len(keyFiles) {
			keys, err := ParseKeys(bytes.NewReader(keyFiles[keySel-1]), "keys")
			if err != nil {
				t.Fatal(err)
			}
			cfg.Keys = keys
		}
		inner := newMemBackend()
		inner.put(goldenKey, obj)
		b := New(inner, cfg, codecs, zap.NewNop())
		r, err := b.Open(ctxT(t), goldenKey)
		if err != nil {
			return
		}
		defer r.Close()
		if r.Size() > 1<<20 {
			return // a valid header may declare a large size; reading it is not the point
		}
		p := make([]byte, r.Size())
		if _, err := r.ReadAt(p, 0); err != nil && r.Size() > 0 {
			return
		}
		if _, ok := r.(*reader); !ok {
			return // read as a legacy plain object
		}
		// Authenticated frames that decode are the bytes some golden object was written
		// with: no damage passes GCM and yields other bytes.
		if rd := r.(*reader); rd.aead != nil && !slices.ContainsFunc(plains, func(q []byte) bool { return bytes.Equal(p, q) }) {
			t.Fatalf("an encrypted object decoded to %d bytes that no golden object holds", len(p))
		}
	})
}
