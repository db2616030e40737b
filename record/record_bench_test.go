package record

import (
	"bytes"
	"testing"
)

func BenchmarkAppendMessage(b *testing.B) {
	m := sampleMessage()
	m.Body = bytes.Repeat([]byte("x"), 512)
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = AppendMessage(dst[:0], &m); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(dst)))
}

func BenchmarkDecodeMessage(b *testing.B) {
	m := sampleMessage()
	m.Body = bytes.Repeat([]byte("x"), 512)
	enc, err := AppendMessage(nil, &m)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeMessage(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	bt := sampleBatch()
	for i := range bt.Records {
		bt.Records[i].Value = bytes.Repeat([]byte("v"), 256)
	}
	enc, err := AppendBatch(nil, bt)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeBatch(enc); err != nil {
			b.Fatal(err)
		}
	}
}
