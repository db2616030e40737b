package index

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestFmix32Inverse(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a, ai, c, ci := uint32(0x85ebca6b), uint32(0xa5cb9243), uint32(0xc2b2ae35), uint32(0x7ed1b41d)
	if a*ai != 1 || c*ci != 1 {
		t.Fatal("the inverse constants are not inverses mod 2^32")
	}
	for _, h := range []uint32{0, 1, math.MaxUint32, 1 << 31} {
		if fmix32Inverse(Fmix32(h)) != h {
			t.Fatalf("fmix32 is not inverted at %#x", h)
		}
	}
	for range 100000 {
		h := rng.Uint32()
		if fmix32Inverse(Fmix32(h)) != h || Fmix32(fmix32Inverse(h)) != h {
			t.Fatalf("fmix32 is not inverted at %#x", h)
		}
	}
}

func TestTixBucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, bits := range []int{0, 1, 7, 8, 16, 17, 24} {
		counts := make([]int, 1<<bits)
		for range 20000 {
			h := rng.Int32()
			b, r := TixBucket(h, bits)
			if int(b) >= 1<<bits || uint64(r) >= uint64(1)<<(32-bits) {
				t.Fatalf("%d bits: hash %d -> bucket %d rem %d out of range", bits, h, b, r)
			}
			if TixKeyHash(b, r, bits) != h {
				t.Fatalf("%d bits: hash %d does not come back from (%d, %d)", bits, h, b, r)
			}
			counts[b]++
		}
		if bits == 7 { // spread: no bucket far from 20000/128 = 156
			for b, n := range counts {
				if n < 90 || n > 230 {
					t.Fatalf("bucket %d of 128 holds %d of 20000 hashes", b, n)
				}
			}
		}
	}
	// Hashes differing in one low bit land in unrelated buckets (the IndexFile's slot
	// hashes keep them together; tix buckets must not).
	b1, _ := TixBucket(1000, 16)
	b2, _ := TixBucket(1001, 16)
	if b1 == b2 {
		t.Fatal("neighbouring hashes share a bucket")
	}
}

func TestTixCodec(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	f := func(bits int, minPhy, maxPhy int64, minTD, maxTD int32) {
		t.Helper()
		h, err := TixHeader{Bits: bits, Items: 1, MinPhyOffset: minPhy, MaxPhyOffset: maxPhy, MinTimeDiff: minTD, MaxTimeDiff: maxTD,
			SourceSlots: 1, SourceItems: 2, Source: IndexHeader{IndexCount: 2}}.WithWidths()
		if err != nil {
			t.Fatal(err)
		}
		c := h.Codec()
		if c.Size() != h.RecordSize() || c.Size() > TixMaxRecordSize {
			t.Fatalf("record size %d, header says %d", c.Size(), h.RecordSize())
		}
		var tmp [TixMaxRecordSize]byte
		for range 200 {
			rem := uint32(rng.Uint64() & (uint64(1)<<(32-bits) - 1))
			phy := minPhy + int64(rng.Uint64N(uint64(maxPhy-minPhy)+1))
			if maxPhy-minPhy == math.MaxInt64 {
				phy = minPhy + rng.Int64()
			}
			td := minTD + int32(rng.Uint64N(uint64(maxTD-minTD)+1))
			rec := c.Encode(&tmp, rem, phy, td)
			if len(rec) != c.Size() {
				t.Fatalf("encoded %d bytes, want %d", len(rec), c.Size())
			}
			r2, p2, t2 := c.Decode(rec)
			if r2 != rem || p2 != phy || t2 != td {
				t.Fatalf("widths %d/%d/%d: (%d, %d, %d) decoded as (%d, %d, %d)", h.RemWidth, h.OffWidth, h.TimeWidth, rem, phy, td, r2, p2, t2)
			}
		}
	}
	f(0, 0, 0, 0, 0)                                  // 4 + 0 + 0
	f(24, 5, 5, 7, 7)                                 // 1 + 0 + 0
	f(17, 1<<40, 1<<40+255, 0, 65535)                 // 2 + 1 + 2
	f(9, 0, math.MaxInt64, 0, math.MaxInt32)          // 3 + 8 + 4 = 15
	f(0, 0, math.MaxInt64, 0, math.MaxInt32)          // 4 + 8 + 4 = 16: the widest
	f(16, 1000, 1000+1<<32, 100, 100+1<<24)           // 2 + 5 + 4
	f(8, math.MaxInt64-10, math.MaxInt64, 0, 1<<16)   // 3 + 1 + 3
	f(12, 0, 1<<56-1, math.MaxInt32-1, math.MaxInt32) // 3 + 7 + 1
}

func TestTixBits(t *testing.T) {
	f := func(n, maxBits, want int) {
		t.Helper()
		if got := TixBits(n, maxBits); got != want {
			t.Fatalf("TixBits(%d, %d) = %d, want %d", n, maxBits, got, want)
		}
	}
	f(0, 19, 0)
	f(256, 19, 0)
	f(257, 19, 1)
	f(200_000, 19, 10)    // ~195 per bucket; 3-byte remainders either way below 16 bits
	f(1_000_000, 19, 16)  // 16 bits make the remainder 2 bytes: smaller than 12 bits' 3
	f(10_000_000, 19, 16) // ~153 per bucket
	f(20_000_000, 19, 17)
	f(20_000_000, 9, 9) // capped by the buffer: larger buckets
	f(math.MaxInt32, 30, 24)
}

func validHeader() TixHeader {
	h, err := TixHeader{Bits: 3, Items: 10, MinPhyOffset: 100, MaxPhyOffset: 5000, MinTimeDiff: 1, MaxTimeDiff: 300,
		SourceSlots: 7, SourceItems: 20, SourceCRC32C: 0xdeadbeef,
		Source: IndexHeader{BeginTimestamp: 1, EndTimestamp: 2, BeginPhyOffset: 100, EndPhyOffset: 5000, HashSlotCount: 4, IndexCount: 11}}.WithWidths()
	if err != nil {
		panic(err)
	}
	return h
}

func TestTixHeader(t *testing.T) {
	h := validHeader()
	b := AppendTixHeader(nil, h)
	if len(b) != TixHeaderSize {
		t.Fatalf("header of %d bytes", len(b))
	}
	got, err := DecodeTixHeader(b)
	if err != nil || got != h {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if h.Size() != TixHeaderSize+10*int64(h.RecordSize())+9*TixDirEntrySize {
		t.Fatalf("size %d", h.Size())
	}
	// Every single-bit flip is caught (CRC), and headers with a valid CRC but
	// inconsistent fields are refused.
	for i := range len(b) * 8 {
		c := bytes.Clone(b)
		c[i/8] ^= 1 << (i % 8)
		if _, err := DecodeTixHeader(c); !errors.Is(err, ErrCorruptTix) {
			t.Fatalf("bit %d flipped: %v", i, err)
		}
	}
	f := func(name string, edit func(*TixHeader)) {
		t.Helper()
		bad := validHeader()
		edit(&bad)
		if _, err := DecodeTixHeader(AppendTixHeader(nil, bad)); !errors.Is(err, ErrCorruptTix) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	f("bits", func(h *TixHeader) { h.Bits = 25 })
	f("rem width", func(h *TixHeader) { h.RemWidth = 2 })
	f("off width", func(h *TixHeader) { h.OffWidth = 8 })
	f("time width", func(h *TixHeader) { h.TimeWidth = 0 })
	f("items vs source", func(h *TixHeader) { h.Items = 9 })
	f("items beyond source", func(h *TixHeader) { h.Items, h.Source.IndexCount, h.SourceItems = 20, 21, 20 })
	f("ranges", func(h *TixHeader) { h.MinPhyOffset, h.MaxPhyOffset = h.MaxPhyOffset, h.MinPhyOffset })
	f("negative time", func(h *TixHeader) { h.MinTimeDiff = -1 })
	f("no slots", func(h *TixHeader) { h.SourceSlots = 0 })
	f("ranges without items", func(h *TixHeader) { h.Items, h.Source.IndexCount = 0, 1 })
	if _, err := DecodeTixHeader(b[:50]); !errors.Is(err, ErrCorruptTix) {
		t.Fatalf("short header: %v", err)
	}
}

// golden reads a golden compacted index and its source IndexFile (written by the
// compactor's TestGolden).
func golden(t *testing.T, name string) (src *IndexFile, tix []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "tix")
	s, err := os.ReadFile(filepath.Join(dir, name+".indexfile"))
	if err != nil {
		t.Fatal(err)
	}
	tix, err = os.ReadFile(filepath.Join(dir, name+".tix"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := DecodeTixHeader(tix)
	if err != nil {
		t.Fatal(err)
	}
	src, err = OpenIndexFile(bytes.NewReader(s), int64(len(s)), h.SourceSlots, h.SourceItems)
	if err != nil {
		t.Fatal(err)
	}
	return src, tix
}

// countingReaderAt counts reads.
type countingReaderAt struct {
	r     *bytes.Reader
	reads int
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	return c.r.ReadAt(p, off)
}

// TestTixGolden: lookups on the golden compacted indexes equal the chain walk on their
// sources, in at most two reads, and every item of the source is in the compacted form.
func TestTixGolden(t *testing.T) {
	for _, name := range []string{"small", "medium"} {
		src, b := golden(t, name)
		cr := &countingReaderAt{r: bytes.NewReader(b)}
		tx, err := OpenTix(cr, int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		h := tx.Header()
		if h.Items != src.Len() || h.Source != src.Header() {
			t.Fatalf("%s: header %+v, source %+v", name, h, src.Header())
		}
		want := map[TixItem]int{}
		if err := src.Items(nil, func(_ int, it Item) error {
			want[TixItem{it.KeyHash, it.PhyOffset, it.TimeDiff}]++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		seen := 0
		if err := tx.Items(nil, func(bucket int, it TixItem) error {
			if b, _ := TixBucket(it.KeyHash, h.Bits); int(b) != bucket {
				t.Fatalf("%s: item %+v in bucket %d, belongs in %d", name, it, bucket, b)
			}
			want[it]--
			seen++
			// Its own lookup finds it, in two reads, as the chain walk does.
			cr.reads = 0
			got, err := tx.LookupHash(it.KeyHash, math.MinInt64, math.MaxInt64, 0, nil)
			if err != nil || cr.reads > 2 {
				t.Fatalf("%s: lookup of %d: %v after %d reads", name, it.KeyHash, err, cr.reads)
			}
			walk, err := src.LookupHash(it.KeyHash, math.MinInt64, math.MaxInt64, 0)
			if err != nil || len(walk) != len(got) {
				t.Fatalf("%s: hash %d: chain walk %v (%v), compacted %v", name, it.KeyHash, walk, err, got)
			}
			for i := range walk {
				if walk[i].PhyOffset != got[i].PhyOffset || walk[i].TimeDiff != got[i].TimeDiff {
					t.Fatalf("%s: hash %d: chain walk %v, compacted %v", name, it.KeyHash, walk, got)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for it, n := range want {
			if n != 0 {
				t.Fatalf("%s: item %+v: %d more in the source than compacted", name, it, n)
			}
		}
		if seen != src.Len() {
			t.Fatalf("%s: %d items, source has %d", name, seen, src.Len())
		}
	}
	// The small file as FORMAT.md's worked example shows it.
	_, b := golden(t, "small")
	tx, _ := OpenTix(bytes.NewReader(b), int64(len(b)))
	got, err := tx.Lookup("T#a", 1_700_000_000_000, 1_700_000_010_000, 0, nil)
	if err != nil || len(got) != 2 || got[0].PhyOffset != 1250 || got[1].PhyOffset != 1000 || tx.ItemTime(got[0]) != 1_700_000_002_000 {
		t.Fatalf("T#a: %+v, %v", got, err)
	}
	if got, _ := tx.Lookup("T#a", 1_700_000_001_000, 1_700_000_010_000, 0, nil); len(got) != 1 {
		t.Fatalf("T#a from +1s: %+v", got)
	}
	if got, _ := tx.Lookup("T#AaAa", 0, math.MaxInt64, 1, nil); len(got) != 1 || got[0].PhyOffset != 1750 {
		t.Fatalf("T#AaAa (shares its hash with T#BBBB), max 1: %+v", got)
	}
	if !tx.Header().Overlaps(1_700_000_003_000, 1_700_000_003_000) || tx.Header().Overlaps(1_700_000_004_000, math.MaxInt64) {
		t.Fatal("Overlaps")
	}
}

// TestTixCorrupt: every single-byte change of a golden compacted index is caught by
// OpenTix or Items, sizes that disagree with the header are refused, and lookups on a
// damaged index fail or return what they can verify; nothing panics.
func TestTixCorrupt(t *testing.T) {
	for _, name := range []string{"small", "medium"} {
		_, b := golden(t, name)
		step := 1
		if len(b) > 2000 {
			step = 7
		}
		for i := 0; i < len(b); i += step {
			c := bytes.Clone(b)
			c[i] ^= 0x5a
			tx, err := OpenTix(bytes.NewReader(c), int64(len(c)))
			if err == nil {
				err = tx.Items(make([]byte, 64), func(int, TixItem) error { return nil })
				for _, h := range []int32{0, 1, 12345, math.MaxInt32} {
					_, _ = tx.LookupHash(h, math.MinInt64, math.MaxInt64, 0, make([]byte, 16))
				}
			}
			if !errors.Is(err, ErrCorruptTix) {
				t.Fatalf("%s: byte %d changed: %v", name, i, err)
			}
		}
		for _, size := range []int{0, 95, len(b) - 1, len(b) + 1} {
			c := append(bytes.Clone(b), 0)[:size]
			if _, err := OpenTix(bytes.NewReader(c), int64(size)); !errors.Is(err, ErrCorruptTix) {
				t.Fatalf("%s: size %d: %v", name, size, err)
			}
		}
	}
	// A bucket whose bytes do not match its CRC fails its lookups.
	_, b := golden(t, "small")
	c := bytes.Clone(b)
	c[TixHeaderSize+3] ^= 1
	tx, err := OpenTix(bytes.NewReader(c), int64(len(c)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Lookup("T#a", 0, math.MaxInt64, 0, nil); !errors.Is(err, ErrCorruptTix) {
		t.Fatalf("lookup in a damaged bucket: %v", err)
	}
	if _, err := tx.LookupHash(-1, 0, 1, 0, nil); err == nil {
		t.Fatal("negative hash accepted")
	}
}
