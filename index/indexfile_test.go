package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// memFile is an in-memory io.WriterAt/io.ReaderAt with Truncate, that records its
// largest read.
type memFile struct {
	mu      sync.Mutex
	b       []byte
	maxRead int
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
	m.maxRead = max(m.maxRead, len(p))
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

// minHashKey returns prefix plus five UTF-16 units in U+0100..U+CFFF (non-ASCII, no
// surrogates) chosen so that the Java hash of the whole key is Integer.MIN_VALUE.
func minHashKey(t testing.TB, prefix string) string {
	t.Helper()
	const lo, hi = 0x100, 0xCFFF
	w := []int64{31 * 31 * 31 * 31, 31 * 31 * 31, 31 * 31, 31, 1}
	// hash(prefix + c0..c4) = hash(prefix)*31^5 + sum(c_k * w_k)  (mod 2^32)
	target := (int64(1<<31) - int64(uint32(javaHash(prefix)*31*31*31*31*31))) & 0xFFFFFFFF
	rest := func(k int) (int64, int64) { // range of sum(c_j*w_j) over j > k
		var s int64
		for _, x := range w[k+1:] {
			s += x
		}
		return lo * s, hi * s
	}
	for c0 := int64(lo); c0 <= hi; c0++ {
		r := (target - c0*w[0]) & 0xFFFFFFFF
		if l, h := rest(0); r < l || r > h {
			continue
		}
		cs := []int64{c0}
		for k := 1; k < 5; k++ {
			l, h := rest(k)
			c := max(int64(lo), (r-h+w[k]-1)/w[k]) // smallest c leaving r-c*w within [l, h]
			if c > hi || r-c*w[k] < l {
				t.Fatalf("BUG: no digit %d", k)
			}
			cs = append(cs, c)
			r -= c * w[k]
		}
		key := prefix
		for _, c := range cs {
			key += string(rune(c))
		}
		return key
	}
	t.Fatal("no key found")
	return ""
}

// javaHash is an independent String.hashCode: Go's utf16 encoding of the string.
func javaHash(s string) int32 {
	var h int32
	for _, u := range utf16Units(s) {
		h = 31*h + int32(u)
	}
	return h
}

func utf16Units(s string) []uint16 {
	var out []uint16
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
		} else {
			out = append(out, uint16(r))
		}
	}
	return out
}

func TestKeyHash(t *testing.T) {
	f := func(key string, want int32) {
		t.Helper()
		if got := KeyHash(key); got != want {
			t.Fatalf("KeyHash(%q) = %d, want %d", key, got, want)
		}
	}
	f("", 0)
	f("a", 97)
	f("polygenelubricants", 0) // hashCode is Integer.MIN_VALUE: abs stays negative
	f("TopicTest#订单-1", abs32(javaHash("TopicTest#订单-1")))
	f("TopicTest#📦", abs32(javaHash("TopicTest#📦")))
	k := minHashKey(t, "TopicTest#")
	if javaHash(k) != math.MinInt32 {
		t.Fatalf("constructed key %q hashes to %d", k, javaHash(k))
	}
	f(k, 0)
	// A key whose hash is negative but not MIN_VALUE: abs.
	neg := "TopicTest#zzzzzzzzzz"
	if javaHash(neg) >= 0 {
		t.Fatalf("expected a negative hash for %q", neg)
	}
	f(neg, -javaHash(neg))
}

func abs32(h int32) int32 {
	if h < 0 {
		return -h
	}
	return h
}

// TestIndexFileBytes checks a small file byte by byte against the layout.
func TestIndexFileBytes(t *testing.T) {
	mf := &memFile{}
	w, err := NewIndexFileWriter(mf, 4, 5, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(mf.b) != 40+4*4+5*20 {
		t.Fatalf("preallocated %d bytes", len(mf.b))
	}
	// "a" hashes to 97 (slot 1), "e" to 101 (slot 1), "b" to 98 (slot 2).
	puts := []struct {
		key     string
		phy, ts int64
	}{{"a", 100, 1_000_000}, {"e", 200, 1_002_500}, {"b", 300, 1_010_999}}
	for _, p := range puts {
		if err := w.Put(p.key, p.phy, p.ts); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var want []byte
	want = AppendIndexHeader(want, IndexHeader{
		BeginTimestamp: 1_000_000, EndTimestamp: 1_010_999, BeginPhyOffset: 100, EndPhyOffset: 300,
		HashSlotCount: 2, IndexCount: 4,
	})
	be := binary.BigEndian
	for _, head := range []uint32{0, 2, 3, 0} {
		want = be.AppendUint32(want, head)
	}
	want = append(want, make([]byte, 20)...) // item 0 is never written
	item := func(hash uint32, phy uint64, diff, prev uint32) {
		want = be.AppendUint32(want, hash)
		want = be.AppendUint64(want, phy)
		want = be.AppendUint32(want, diff)
		want = be.AppendUint32(want, prev)
	}
	item(97, 100, 0, 0)
	item(101, 200, 2, 1) // 2.5 s truncates to 2
	item(98, 300, 10, 0)
	want = append(want, make([]byte, 20)...)
	if !bytes.Equal(mf.b, want) {
		t.Fatalf("file\n%x\nwant\n%x", mf.b, want)
	}
	if w.Full() {
		t.Fatal("full too early")
	}
	if err := w.Put("c", 400, 1_011_000); err != nil || !w.Full() {
		t.Fatalf("4th put: %v, full %v", err, w.Full())
	}
	if err := w.Put("d", 500, 1_011_000); err != ErrIndexFileFull {
		t.Fatalf("put into full file: %v", err)
	}
}

func TestIndexFileWriterPrevEnd(t *testing.T) {
	// A new file after a full one starts from the previous file's end, and the first
	// put's timeDiff is counted from there (the broker's order of updates).
	mf := &memFile{}
	w, err := NewIndexFileWriter(mf, 4, 8, 5000, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	h := w.Header()
	if h.BeginPhyOffset != 5000 || h.EndPhyOffset != 5000 || h.BeginTimestamp != 1_000_000 || h.IndexCount != 1 {
		t.Fatalf("header %+v", h)
	}
	if err := w.Put("a", 6000, 1_004_000); err != nil {
		t.Fatal(err)
	}
	if err := w.Put("b", 7000, 1_009_000); err != nil {
		t.Fatal(err)
	}
	h = w.Header()
	if h.BeginPhyOffset != 6000 || h.BeginTimestamp != 1_004_000 || h.EndTimestamp != 1_009_000 {
		t.Fatalf("header %+v", h)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f := openMem(t, mf, 4, 8)
	for n, want := range map[int32]int32{1: 4, 2: 5} {
		it, err := f.Item(n)
		if err != nil || it.TimeDiff != want {
			t.Fatalf("item %d: %+v %v, want timeDiff %d", n, it, err, want)
		}
	}
}

func openMem(t *testing.T, mf *memFile, slots, items int) *IndexFile {
	t.Helper()
	f, err := OpenIndexFile(mf, int64(len(mf.b)), slots, items)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

type put struct {
	key     string
	phy, ts int64
}

func buildIndex(t testing.TB, slots, items int, puts []put) *memFile {
	t.Helper()
	mf := &memFile{}
	w, err := NewIndexFileWriter(mf, slots, items, 0, 0)
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

func TestIndexFileLookup(t *testing.T) {
	const base = 1_700_000_000_000
	minKey := minHashKey(t, "T#")
	var puts []put
	keys := []string{"T#a", "T#b", "T#订单", "T#📦", minKey, "T#a"}
	for i := range 40 {
		k := keys[i%len(keys)]
		puts = append(puts, put{k, int64(i) * 1000, base + int64(i)*1500})
	}
	mf := buildIndex(t, 7, 64, puts)
	f := openMem(t, mf, 7, 64)
	if f.Len() != 40 || f.Header().IndexCount != 41 {
		t.Fatalf("Len %d, header %+v", f.Len(), f.Header())
	}
	expect := func(key string, begin, end int64, max int) []int64 {
		var want []int64
		for i := len(puts) - 1; i >= 0; i-- {
			p := puts[i]
			// item time is begin + whole seconds
			it := base + (p.ts-base)/1000*1000
			if KeyHash(p.key) == KeyHash(key) && it >= begin && it <= end && (max <= 0 || len(want) < max) {
				want = append(want, p.phy)
			}
		}
		return want
	}
	f2 := func(key string, begin, end int64, max int) {
		t.Helper()
		items, err := f.Lookup(key, begin, end, max)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, it := range items {
			got = append(got, it.PhyOffset)
		}
		if want := expect(key, begin, end, max); !reflect.DeepEqual(got, want) {
			t.Fatalf("Lookup(%q, %d, %d, %d) = %v, want %v", key, begin, end, max, got, want)
		}
		if len(got) == 0 && key != "T#missing" {
			t.Fatalf("Lookup(%q) found nothing", key)
		}
	}
	for _, k := range keys[:5] {
		f2(k, 0, math.MaxInt64, 0)
		f2(k, base+20_000, base+40_000, 0)
		f2(k, 0, math.MaxInt64, 2)
	}
	if items, err := f.Lookup("T#missing", 0, math.MaxInt64, 0); err != nil || len(items) != 0 {
		t.Fatalf("missing key: %v %v", items, err)
	}
	// minKey hashes to 0: slot 0.
	if items, _ := f.Lookup(minKey, 0, math.MaxInt64, 0); len(items) == 0 || items[0].KeyHash != 0 {
		t.Fatalf("min-hash key: %+v", items)
	}
}

func TestIndexFileStreams(t *testing.T) {
	var puts []put
	for i := range 300 {
		puts = append(puts, put{"T#k" + string(rune('a'+i%26)) + strings.Repeat("x", i%7), int64(i), 1_000_000 + int64(i)*10})
	}
	const slots, items = 20000, 400 // 80 KB of slots: more than one 64 KiB read
	mf := buildIndex(t, slots, items, puts)
	f := openMem(t, mf, slots, items)
	f2 := func(buf []byte, maxRead int) {
		t.Helper()
		mf.maxRead = 0
		heads := map[int]int32{}
		if err := f.SlotHeads(buf, func(slot int, head int32) error { heads[slot] = head; return nil }); err != nil {
			t.Fatal(err)
		}
		n := int32(0)
		newest := map[int]int32{}
		err := f.Items(buf, func(slot int, it Item) error {
			n++
			if it.Number != n || it.PhyOffset != int64(n-1) || slot != int(KeyHash(puts[n-1].key))%slots {
				t.Fatalf("item %d: %+v in slot %d", n, it, slot)
			}
			if it.PrevIndex != newest[slot] {
				t.Fatalf("item %d links to %d, want %d", n, it.PrevIndex, newest[slot])
			}
			newest[slot] = it.Number
			return nil
		})
		if err != nil || n != 300 {
			t.Fatalf("Items: %d items, %v", n, err)
		}
		if !reflect.DeepEqual(heads, newest) || int(f.Header().HashSlotCount) != len(heads) {
			t.Fatalf("heads %v\nwant %v (hashSlotCount %d)", heads, newest, f.Header().HashSlotCount)
		}
		if mf.maxRead > maxRead {
			t.Fatalf("largest read %d, limit %d", mf.maxRead, maxRead)
		}
	}
	f2(nil, 64<<10)
	f2(make([]byte, 60), 60)
	f2(make([]byte, 20), 20)
	stop := errors.New("stop")
	if err := f.Items(nil, func(int, Item) error { return stop }); err != stop {
		t.Fatalf("Items stop: %v", err)
	}
	if err := f.SlotHeads(make([]byte, 3), func(int, int32) error { return nil }); err == nil {
		t.Fatal("3-byte buffer accepted")
	}
}

func TestOpenIndexFileErrors(t *testing.T) {
	mf := buildIndex(t, 4, 8, []put{{"a", 1, 1000}})
	f := func(mf *memFile, size int64, slots, items int, want string) {
		t.Helper()
		_, err := OpenIndexFile(mf, size, slots, items)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
	}
	f(mf, int64(len(mf.b)), 5, 8, "make 220 bytes")
	f(mf, 100, 4, 8, "size 100")
	f(mf, int64(len(mf.b)), 0, 8, "bad settings")
	bad := &memFile{b: bytes.Clone(mf.b)}
	binary.BigEndian.PutUint32(bad.b[36:], 9)
	f(bad, int64(len(bad.b)), 4, 8, "indexCount 9")
	// A real file, not in memory.
	p := filepath.Join(t.TempDir(), "idx")
	if err := os.WriteFile(p, mf.b, 0o644); err != nil {
		t.Fatal(err)
	}
	of, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer of.Close()
	if _, err := OpenIndexFile(of, int64(len(mf.b)), 4, 8); err != nil {
		t.Fatal(err)
	}
}

func TestIndexFileCorruptChains(t *testing.T) {
	// Three keys in slot 1 of 4: items 1 <- 2 <- 3.
	good := buildIndex(t, 4, 8, []put{{"a", 10, 1000}, {"e", 20, 2000}, {"i", 30, 3000}})
	slotOff := func(s int) int { return 40 + s*4 }
	itemOff := func(n int) int { return 40 + 4*4 + n*20 }
	be := binary.BigEndian
	f := func(mut func(b []byte), want string) {
		t.Helper()
		mf := &memFile{b: bytes.Clone(good.b)}
		mut(mf.b)
		ix := openMem(t, mf, 4, 8)
		_, err := ix.Lookup("a", 0, math.MaxInt64, 0)
		if !errors.Is(err, ErrCorruptIndex) || !strings.Contains(err.Error(), want) {
			t.Fatalf("Lookup: %v, want %q", err, want)
		}
		err1 := ix.SlotHeads(nil, func(int, int32) error { return nil })
		err2 := ix.Items(nil, func(int, Item) error { return nil })
		if err1 == nil && err2 == nil {
			t.Fatal("SlotHeads and Items found nothing wrong")
		}
	}
	f(func(b []byte) { be.PutUint32(b[slotOff(1):], 4) }, "slot 1 points at item 4")
	f(func(b []byte) { be.PutUint32(b[slotOff(1):], 0xFFFFFFFF) }, "points at item -1")
	f(func(b []byte) { be.PutUint32(b[itemOff(3)+16:], 3) }, "item 3 links to item 3") // loop
	f(func(b []byte) { be.PutUint32(b[itemOff(2)+16:], 3) }, "item 2 links to item 3") // cycle 3->2->3
	f(func(b []byte) { be.PutUint32(b[itemOff(3)+16:], 0x80000000) }, "links to item -2147483648")
	f(func(b []byte) { be.PutUint32(b[itemOff(3)+12:], 0xFFFFFFFF) }, "negative timeDiff")
	f(func(b []byte) { be.PutUint32(b[itemOff(3)+0:], 0xFFFFFFFF) }, "negative key hash")

	// A lookup that stops before the corruption (time range) does not see it.
	mf := &memFile{b: bytes.Clone(good.b)}
	be.PutUint32(mf.b[itemOff(1)+16:], 1)
	ix := openMem(t, mf, 4, 8)
	if items, err := ix.Lookup("i", 3000, 4000, 0); err != nil || len(items) != 1 {
		t.Fatalf("bounded lookup: %v %v", items, err)
	}
	if items, err := ix.Item(0); err == nil {
		t.Fatalf("Item(0) = %+v", items)
	}
	if _, err := ix.Slot(4); err == nil {
		t.Fatal("Slot(4) accepted")
	}
}

func TestIndexFileEmptyHeader(t *testing.T) {
	// A preallocated file whose header was never written has no items.
	mf := &memFile{b: make([]byte, IndexFileSize(4, 8))}
	f := openMem(t, mf, 4, 8)
	if f.Len() != 0 {
		t.Fatal(f.Len())
	}
	if items, err := f.Lookup("a", 0, math.MaxInt64, 0); err != nil || len(items) != 0 {
		t.Fatal(items, err)
	}
	n := 0
	if err := f.Items(nil, func(int, Item) error { n++; return nil }); err != nil || n != 0 {
		t.Fatal(n, err)
	}
}
