package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func scanOffsets(t *testing.T, b []byte, buf []byte) ([]OffsetEntry, error) {
	t.Helper()
	var got []OffsetEntry
	n, err := ScanOffsetIndex(bytes.NewReader(b), int64(len(b)), buf, func(i int, e OffsetEntry) error {
		if i != len(got) {
			t.Fatalf("entry %d after %d", i, len(got))
		}
		got = append(got, e)
		return nil
	})
	if err == nil && n != len(got) {
		t.Fatalf("returned %d, called %d times", n, len(got))
	}
	return got, err
}

func scanTimes(t *testing.T, b []byte, buf []byte) ([]TimeEntry, error) {
	t.Helper()
	var got []TimeEntry
	n, err := ScanTimeIndex(bytes.NewReader(b), int64(len(b)), buf, func(i int, e TimeEntry) error {
		got = append(got, e)
		return nil
	})
	if err == nil && n != len(got) {
		t.Fatalf("returned %d, called %d times", n, len(got))
	}
	return got, err
}

func TestOffsetIndexWriteScan(t *testing.T) {
	mf := &memFile{}
	w, err := NewOffsetIndexWriter(mf, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(mf.b) != 1000 {
		t.Fatalf("preallocated %d", len(mf.b))
	}
	want := []OffsetEntry{{0, 0}, {5, 4100}, {9, 4100}, {20, 9000}}
	for _, e := range want {
		if err := w.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	// Byte layout: relOffset | position, big-endian.
	if got := binary.BigEndian.Uint32(mf.b[8:]); got != 5 {
		t.Fatalf("entry 1 offset %d", got)
	}
	if got := binary.BigEndian.Uint32(mf.b[12:]); got != 4100 {
		t.Fatalf("entry 1 position %d", got)
	}
	for _, buf := range [][]byte{nil, make([]byte, 8), make([]byte, 20)} {
		got, err := scanOffsets(t, mf.b, buf) // active: zero-filled tail
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("active scan: %v %v", got, err)
		}
	}
	if err := w.Append(OffsetEntry{20, 9100}); err == nil {
		t.Fatal("repeated offset accepted")
	}
	if err := w.Append(OffsetEntry{21, 100}); err == nil {
		t.Fatal("decreasing position accepted")
	}
	if err := w.Trim(); err != nil {
		t.Fatal(err)
	}
	if len(mf.b) != 32 || w.Entries() != 4 || !w.Full() {
		t.Fatalf("trimmed to %d, %d entries", len(mf.b), w.Entries())
	}
	got, err := scanOffsets(t, mf.b, nil)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("sealed scan: %v %v", got, err)
	}
	// Empty and all-zero files.
	if got, err := scanOffsets(t, nil, nil); err != nil || len(got) != 0 {
		t.Fatal(got, err)
	}
	if got, err := scanOffsets(t, make([]byte, 80), nil); err != nil || len(got) != 1 {
		t.Fatal(got, err) // entry 0 = (0,0), then the tail
	}
	full, _ := NewOffsetIndexWriter(&memFile{}, 16)
	_ = full.Append(OffsetEntry{1, 1})
	_ = full.Append(OffsetEntry{2, 2})
	if err := full.Append(OffsetEntry{3, 3}); err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("append to full: %v", err)
	}
	if _, err := NewOffsetIndexWriter(&memFile{}, 7); err == nil {
		t.Fatal("7-byte index accepted")
	}
}

func TestOffsetIndexScanErrors(t *testing.T) {
	f := func(entries [][2]uint32, extra int, want string) {
		t.Helper()
		var b []byte
		for _, e := range entries {
			b = binary.BigEndian.AppendUint32(b, e[0])
			b = binary.BigEndian.AppendUint32(b, e[1])
		}
		b = append(b, make([]byte, extra)...)
		_, err := scanOffsets(t, b, nil)
		if !errors.Is(err, ErrCorruptIndex) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
	}
	f([][2]uint32{{1, 0}, {3, 10}, {3, 20}}, 0, "entry 2: relative offset 3 not above the previous 3")
	f([][2]uint32{{1, 0}, {3, 10}, {2, 20}}, 0, "entry 2")
	f([][2]uint32{{1, 50}, {3, 10}}, 0, "entry 1: position 10 below the previous 50")
	f([][2]uint32{{0xFFFFFFFF, 0}}, 0, "entry 0: negative")
	f([][2]uint32{{1, 0}}, 3, "not a whole number")
	stop := errors.New("stop")
	if _, err := ScanOffsetIndex(bytes.NewReader(make([]byte, 8)), 8, nil, func(int, OffsetEntry) error { return stop }); err != stop {
		t.Fatalf("fn error: %v", err)
	}
}

func TestTimeIndexWriteScan(t *testing.T) {
	mf := &memFile{}
	w, err := NewTimeIndexWriter(mf, 10<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(mf.b) != 10<<20/12*12 {
		t.Fatalf("preallocated %d", len(mf.b))
	}
	steps := []struct {
		ts   int64
		off  int32
		want bool // written
	}{{0, 0, true}, {0, 3, false}, {1000, 4, true}, {1000, 6, false}, {2000, 6, true}, {5000, 9, true}}
	var want []TimeEntry
	for _, s := range steps {
		before := w.Entries()
		if err := w.MaybeAppend(s.ts, s.off, false); err != nil {
			t.Fatal(err)
		}
		if (w.Entries() > before) != s.want {
			t.Fatalf("MaybeAppend(%d, %d) wrote %v", s.ts, s.off, !s.want)
		}
		if s.want {
			want = append(want, TimeEntry{s.ts, s.off})
		}
	}
	if err := w.MaybeAppend(4000, 10, false); err == nil {
		t.Fatal("earlier timestamp accepted")
	}
	if err := w.MaybeAppend(6000, 8, false); err == nil {
		t.Fatal("earlier offset accepted")
	}
	if got := binary.BigEndian.Uint64(mf.b[12:]); got != 1000 {
		t.Fatalf("entry 1 timestamp %d", got)
	}
	got, err := scanTimes(t, mf.b, nil)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("active scan: %v %v, want %v", got, err, want)
	}
	if err := w.Trim(); err != nil || len(mf.b) != 48 {
		t.Fatalf("trim: %v, %d bytes", err, len(mf.b))
	}
	if err := w.MaybeAppend(9000, 20, true); err != nil || w.Entries() != 4 {
		t.Fatalf("skipFull on a full index: %v", err)
	}
	if err := w.MaybeAppend(9000, 20, false); err == nil {
		t.Fatal("append to full index accepted")
	}
	got, err = scanTimes(t, mf.b, make([]byte, 12))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("sealed scan: %v %v", got, err)
	}
}

func TestTimeIndexScanErrors(t *testing.T) {
	f := func(entries [][2]int64, want string) {
		t.Helper()
		var b []byte
		for _, e := range entries {
			b = binary.BigEndian.AppendUint64(b, uint64(e[0]))
			b = binary.BigEndian.AppendUint32(b, uint32(e[1]))
		}
		_, err := scanTimes(t, b, nil)
		if !errors.Is(err, ErrCorruptIndex) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
	}
	f([][2]int64{{100, 1}, {50, 2}}, "entry 1: timestamp 50 below the previous 100")
	f([][2]int64{{100, 5}, {150, 2}}, "entry 1: relative offset 2 below the previous 5")
	f([][2]int64{{100, -1}}, "entry 0: negative relative offset")
	_, err := ScanTimeIndex(bytes.NewReader(make([]byte, 13)), 13, nil, func(int, TimeEntry) error { return nil })
	if !errors.Is(err, ErrCorruptIndex) {
		t.Fatalf("13-byte file: %v", err)
	}
}
