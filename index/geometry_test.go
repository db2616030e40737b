package index

import (
	"fmt"
	"slices"
	"testing"
)

// TestGuessGeometry: the geometry of an IndexFile is found from its size and contents
// when an obvious one fits (items = 4 x slots, or a full file), and only if the file then
// reads as valid; otherwise nothing is guessed.
func TestGuessGeometry(t *testing.T) {
	puts := func(n int) []put {
		var p []put
		for i := range n {
			p = append(p, put{fmt.Sprintf("T#k%d", i%13), int64(1000 + 100*i), 1_700_000_000_000 + int64(i)*300})
		}
		return p
	}
	for _, c := range []struct {
		name         string
		slots, items int
		n            int
		want         []Geometry
	}{
		{"ratio 4, like R2", 100, 400, 1, []Geometry{{100, 400}}},
		{"ratio 4, brokersim", 64, 256, 200, []Geometry{{64, 256}}},
		{"full file, other ratio", 7, 300, 299, []Geometry{{7, 300}}},
		{"not full, other ratio", 7, 300, 100, nil},
		{"empty, ratio 4", 10, 40, 0, []Geometry{{10, 40}}},
	} {
		mf := buildIndex(t, c.slots, c.items, puts(c.n))
		got, err := GuessGeometry(mf, int64(len(mf.b)))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: guessed %v, want %v", c.name, got, c.want)
		}
	}
	// A half-full file of another ratio: no guess.
	odd := buildIndex(t, 14, 301, puts(150))
	if got, _ := GuessGeometry(odd, int64(len(odd.b))); len(got) != 0 {
		t.Errorf("half-full 14 x 301 file: guessed %v, want nothing", got)
	}
	// 40 + 84*s bytes, but written with another geometry: the ratio-4 guess must fail the
	// content checks. 8440 bytes = 100 x 400 = 2090 slots x 2 items; this file is the latter.
	other := buildIndex(t, 2090, 2, puts(1))
	got, err := GuessGeometry(other, int64(len(other.b)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []Geometry{{2090, 2}}) {
		t.Errorf("2090 x 2 file: guessed %v", got)
	}
	if got, _ := GuessGeometry(&memFile{b: make([]byte, 10)}, 10); len(got) != 0 {
		t.Errorf("10-byte file: guessed %v", got)
	}
}
