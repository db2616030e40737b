package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func FuzzDecodeMessage(f *testing.F) {
	seeds := []Message{sampleMessage(), {}}
	m := sampleMessage()
	m.Topic = strings.Repeat("t", 200)
	m.BornHost = netip.MustParseAddrPort("[2001:db8::1]:1")
	m.StoreHost = netip.MustParseAddrPort("[2001:db8::2]:2")
	seeds = append(seeds, m)
	for i := range seeds {
		b, err := AppendMessage(nil, &seeds[i])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(b, b...))
	}
	blank := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 64), blankMagic)
	f.Add(append(blank, make([]byte, 56)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, n, err := DecodeMessage(b)
		if err == ErrBlank {
			if n < 8 {
				t.Fatalf("BLANK of %d bytes", n)
			}
		} else if err == nil {
			if n < MinMessageSize || n > len(b) {
				t.Fatalf("n = %d of %d bytes", n, len(b))
			}
			// What decodes must encode, and decode to the same message.
			enc, err := AppendMessage(nil, &m)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			m2, n2, err := DecodeMessage(enc)
			if err != nil || n2 != len(enc) {
				t.Fatalf("decode re-encoded: n=%d %v", n2, err)
			}
			if !messagesEqual(m, m2) {
				t.Fatalf("round trip:\n%+v\n%+v", m, m2)
			}
		} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		// The streaming reader must stop on any input, with a small or growing buffer.
		for _, buf := range [][]byte{nil, make([]byte, 128)} {
			r := NewMessageReader(bytes.NewReader(b), 0, int64(len(b)), buf)
			for i := 0; ; i++ {
				if i > len(b)/MinMessageSize+1 {
					t.Fatal("reader does not stop")
				}
				if _, err := r.Next(); err != nil {
					break
				}
			}
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, b := range []Batch{sampleBatch(), {Records: []Record{{Key: []byte("a")}}}} {
		enc, err := AppendBatch(nil, b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
		f.Add(append(enc, enc...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bt, n, err := DecodeBatch(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error kind: %v", err)
			}
		} else {
			if n < BatchHeaderSize || n > len(b) || n != bt.Size() {
				t.Fatalf("n = %d of %d bytes", n, len(b))
			}
			if bt.Compression() == CompressionNone {
				if len(bt.Records) != int(bt.RecordCount) {
					t.Fatalf("%d records, count %d", len(bt.Records), bt.RecordCount)
				}
				enc, err := AppendBatch(nil, bt)
				if err != nil {
					t.Fatalf("re-encode: %v", err)
				}
				bt2, _, err := DecodeBatch(enc)
				if err != nil {
					t.Fatalf("decode re-encoded: %v", err)
				}
				// Varint encodings may differ (overlong input), so lengths and CRC may too.
				for _, x := range []*Batch{&bt, &bt2} {
					x.BatchLength, x.CRC, x.RawRecords = 0, 0, nil
				}
				if !reflect.DeepEqual(bt, bt2) {
					t.Fatalf("round trip:\n%+v\n%+v", bt, bt2)
				}
			}
		}
		for _, buf := range [][]byte{nil, make([]byte, 128)} {
			r := NewBatchReader(bytes.NewReader(b), 0, int64(len(b)), buf)
			for i := 0; ; i++ {
				if i > len(b)/BatchHeaderSize+1 {
					t.Fatal("reader does not stop")
				}
				if _, err := r.Next(); err != nil {
					break
				}
			}
		}
	})
}
