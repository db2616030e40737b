package index

import (
	"errors"
	"fmt"
	"io"
)

// Geometry is an IndexFile's slot and item counts: the broker's maxHashSlotNum and
// maxIndexNum, which the file does not record.
type Geometry struct {
	Slots, Items int
}

func (g Geometry) String() string { return fmt.Sprintf("%d slots, %d items", g.Slots, g.Items) }

// maxGeometryHeads bounds the slot heads GuessGeometry follows to their item per guess.
const maxGeometryHeads = 4096

// GuessGeometry returns the geometries an IndexFile of size bytes may have been written
// with, best first; empty when no obvious one fits. size = 40 + 4*slots + 20*items has
// many solutions, so only the obvious ones are tried — items = 4 * slots (the broker's
// default ratio: 5,000,000 and 20,000,000), and items = indexCount (a full file) — and a
// guess is kept only if the file reads as a valid IndexFile with it: the header's
// indexCount fits, every slot head points at a written item (and the first heads' items
// hash to their slot), and every written item is one a broker writes. It reads the whole
// file; an error is returned only when r cannot be read.
func GuessGeometry(r io.ReaderAt, size int64) ([]Geometry, error) {
	guesses, err := PlausibleGeometries(r, size)
	if err != nil {
		return nil, err
	}
	var fit []Geometry
	for _, g := range guesses {
		ok, err := fits(r, size, g)
		if err != nil {
			return nil, err
		}
		if ok {
			fit = append(fit, g)
		}
	}
	return fit, nil
}

// PlausibleGeometries returns the obvious geometries of an IndexFile of size bytes —
// items = 4 * slots (the broker's default ratio), then items = indexCount (a full file) —
// that its newest item agrees with, best first: with the geometry, the header's
// indexCount fits, the newest item (indexCount-1) is one a broker writes, and its slot's
// head is that item, as the newest item of a file always is. It makes at most five small
// reads (the header, then an item and a slot per guess); GuessGeometry checks the whole
// file.
func PlausibleGeometries(r io.ReaderAt, size int64) ([]Geometry, error) {
	if size < IndexHeaderSize {
		return nil, nil
	}
	var b [IndexHeaderSize]byte
	if _, err := r.ReadAt(b[:], 0); err != nil {
		return nil, fmt.Errorf("guess index geometry: read header: %w", err)
	}
	h, _ := DecodeIndexHeader(b[:])
	var out []Geometry
	for _, g := range geometriesForSize(size, h.IndexCount) {
		f, err := OpenIndexFile(r, size, g.Slots, g.Items)
		if err != nil {
			continue // indexCount does not fit
		}
		if newest := h.IndexCount - 1; newest >= 1 {
			it, err := f.Item(newest)
			if err != nil {
				return nil, fmt.Errorf("guess index geometry: %w", err)
			}
			if checkItem(it) != nil {
				continue
			}
			head, err := f.Slot(int(it.KeyHash) % g.Slots)
			if errors.Is(err, ErrCorruptIndex) || (err == nil && head != newest) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("guess index geometry: %w", err)
			}
		}
		out = append(out, g)
	}
	return out, nil
}

// geometriesForSize returns the obvious geometries of an IndexFile of size bytes whose
// header says indexCount, from arithmetic alone: items = 4 * slots, then items =
// indexCount.
func geometriesForSize(size int64, indexCount int32) []Geometry {
	var guesses []Geometry
	if rest := size - IndexHeaderSize; rest > 0 && rest%(IndexSlotSize+4*IndexItemSize) == 0 {
		s := rest / (IndexSlotSize + 4*IndexItemSize)
		guesses = append(guesses, Geometry{int(s), int(4 * s)})
	}
	if ic := int64(indexCount); ic >= 2 {
		if rest := size - IndexHeaderSize - ic*IndexItemSize; rest > 0 && rest%IndexSlotSize == 0 {
			if g := (Geometry{int(rest / IndexSlotSize), int(ic)}); len(guesses) == 0 || guesses[0] != g {
				guesses = append(guesses, g)
			}
		}
	}
	return guesses
}

// fits reports whether r reads as a valid IndexFile of geometry g.
func fits(r io.ReaderAt, size int64, g Geometry) (bool, error) {
	f, err := OpenIndexFile(r, size, g.Slots, g.Items)
	if err != nil {
		return false, nil // the header's indexCount does not fit
	}
	buf := make([]byte, maxReadSize)
	followed := 0
	err = f.SlotHeads(buf, func(slot int, head int32) error {
		if followed >= maxGeometryHeads {
			return nil
		}
		followed++
		it, err := f.Item(head)
		if err != nil {
			return err
		}
		if int(it.KeyHash)%g.Slots != slot || checkItem(it) != nil {
			return ErrCorruptIndex
		}
		return nil
	})
	if err == nil {
		err = f.Items(buf, func(int, Item) error { return nil })
	}
	switch {
	case errors.Is(err, ErrCorruptIndex):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("guess index geometry: %w", err)
	}
	return true, nil
}
