package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"reflect"
	"strings"
	"testing"
)

func sampleBatch() Batch {
	return Batch{
		BaseOffset:           1000,
		PartitionLeaderEpoch: 5,
		LastOffsetDelta:      2,
		BaseTimestamp:        1_700_000_000_000,
		MaxTimestamp:         1_700_000_000_020,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
		Records: []Record{
			{TimestampDelta: 0, OffsetDelta: 0, Key: []byte("k"), Value: []byte("v")},
			{TimestampDelta: 10, OffsetDelta: 1, Key: nil, Value: []byte{}, Headers: []Header{{"h", []byte("x")}, {"n", nil}}},
			{TimestampDelta: 20, OffsetDelta: 2, Key: []byte{}, Value: nil},
		},
	}
}

func TestCRC32C(t *testing.T) {
	if got := crc32.Checksum([]byte("123456789"), castagnoli); got != 0xE3069283 {
		t.Fatalf("crc32c = %#x", got)
	}
}

// TestBatchLayout checks header fields at docs/FORMATS.md's offsets and a record's bytes.
func TestBatchLayout(t *testing.T) {
	b := sampleBatch()
	b.Records = b.Records[:1]
	b.LastOffsetDelta = 0
	enc, err := AppendBatch(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	// record: length 8 (zig-zag 0x10), attributes, timestampDelta, offsetDelta,
	// key length 1 (0x02) "k", value length 1 "v", header count 0.
	wantRecord := "\x10\x00\x00\x00\x02k\x02v\x00"
	f := func(name string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	f("len", len(enc), 61+len(wantRecord))
	f("baseOffset", int64(be.Uint64(enc)), int64(1000))
	f("batchLength", int(be.Uint32(enc[8:])), len(enc)-12)
	f("partitionLeaderEpoch", int32(be.Uint32(enc[12:])), int32(5))
	f("magic", enc[16], byte(2))
	f("crc", be.Uint32(enc[17:]), crc32.Checksum(enc[21:], crc32.MakeTable(crc32.Castagnoli)))
	f("attributes", be.Uint16(enc[21:]), uint16(0))
	f("lastOffsetDelta", be.Uint32(enc[23:]), uint32(0))
	f("baseTimestamp", int64(be.Uint64(enc[27:])), int64(1_700_000_000_000))
	f("maxTimestamp", int64(be.Uint64(enc[35:])), int64(1_700_000_000_020))
	f("producerId", int64(be.Uint64(enc[43:])), int64(-1))
	f("producerEpoch", int16(be.Uint16(enc[51:])), int16(-1))
	f("baseSequence", int32(be.Uint32(enc[53:])), int32(-1))
	f("recordCount", be.Uint32(enc[57:]), uint32(1))
	f("record", string(enc[61:]), wantRecord)
}

func TestBatchRoundTrip(t *testing.T) {
	f := func(b Batch) {
		t.Helper()
		enc, err := AppendBatch([]byte("prefix"), b)
		if err != nil {
			t.Fatal(err)
		}
		enc = enc[len("prefix"):]
		got, n, err := DecodeBatch(append(enc, 1, 2, 3))
		if err != nil {
			t.Fatal(err)
		}
		if n != len(enc) || got.Size() != n || got.Magic != 2 || int(got.RecordCount) != len(b.Records) {
			t.Fatalf("n=%d size=%d magic=%d count=%d", n, got.Size(), got.Magic, got.RecordCount)
		}
		if !bytes.Equal(got.RawRecords, enc[61:]) {
			t.Fatal("RawRecords")
		}
		got.BatchLength, got.CRC, got.Magic, got.RecordCount, got.RawRecords = 0, 0, 0, 0, nil
		if !reflect.DeepEqual(got, b) {
			t.Fatalf("decoded %+v\nwant    %+v", got, b)
		}
	}
	f(sampleBatch())
	b := sampleBatch()
	b.Records = []Record{} // decoded uncompressed records are never nil
	f(b)
	b = sampleBatch()
	b.Attributes = attrTransactional | attrTimestampType
	b.Records[0].Value = bytes.Repeat([]byte("x"), 300) // multi-byte varint lengths
	b.Records[0].TimestampDelta = -5
	f(b)
}

func TestBatchFlags(t *testing.T) {
	b := Batch{Attributes: 0x3 | attrTimestampType | attrTransactional | attrControl, BaseOffset: 10, LastOffsetDelta: 4}
	if b.Compression() != CompressionLZ4 || !b.LogAppendTime() || !b.Transactional() || !b.Control() || b.LastOffset() != 14 {
		t.Fatalf("flags of %+v", b)
	}
	if CompressionZstd.String() != "zstd" || Compression(7).String() != "codec(7)" {
		t.Fatal("String")
	}
	if _, err := AppendBatch(nil, Batch{Attributes: 1}); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Fatalf("compressed encode: %v", err)
	}
}

func TestDecodeCompressedBatch(t *testing.T) {
	// A gzip batch: DecodeBatch reports the codec and leaves the records undecoded.
	enc, err := AppendBatch(nil, sampleBatch())
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint16(enc[21:], uint16(CompressionGzip))
	binary.BigEndian.PutUint32(enc[17:], crc32.Checksum(enc[21:], castagnoli))
	got, n, err := DecodeBatch(enc)
	if err != nil || n != len(enc) {
		t.Fatal(n, err)
	}
	if got.Compression() != CompressionGzip || got.Records != nil || got.RecordCount != 3 || !bytes.Equal(got.RawRecords, enc[61:]) {
		t.Fatalf("%+v", got)
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	good, err := AppendBatch(nil, sampleBatch())
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	f := func(fn func(b []byte) []byte, wantIs error, want string) {
		t.Helper()
		b := fn(bytes.Clone(good))
		_, _, err := DecodeBatch(b)
		if !errors.Is(err, wantIs) || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %v containing %q", err, wantIs, want)
		}
	}
	recrc := func(b []byte) []byte { be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli)); return b }
	f(func(b []byte) []byte { return b[:60] }, io.ErrUnexpectedEOF, "header")
	f(func(b []byte) []byte { return b[:len(b)-1] }, io.ErrUnexpectedEOF, "available")
	f(func(b []byte) []byte { be.PutUint32(b[8:], 48); return b }, ErrCorrupt, "below")
	f(func(b []byte) []byte { be.PutUint32(b[8:], 0x80000000); return b }, ErrCorrupt, "below")
	f(func(b []byte) []byte { b[16] = 1; return b }, ErrCorrupt, "magic 1")
	f(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrCorrupt, "crc")
	f(func(b []byte) []byte { be.PutUint32(b[57:], 4); return recrc(b) }, ErrCorrupt, "")
	f(func(b []byte) []byte { be.PutUint32(b[57:], 2); return recrc(b) }, ErrCorrupt, "after the last of 2")
	f(func(b []byte) []byte { be.PutUint32(b[57:], 0xFFFFFFFF); return recrc(b) }, ErrCorrupt, "negative record count")
	f(func(b []byte) []byte { be.PutUint32(b[57:], 1<<30); return recrc(b) }, ErrCorrupt, "cannot fit")
	f(func(b []byte) []byte { b[61] = 0x7E; return recrc(b) }, ErrCorrupt, "record 0")       // length 63
	f(func(b []byte) []byte { b[65] = 0x03; return recrc(b) }, ErrCorrupt, "key length -2")  // key length -2
	f(func(b []byte) []byte { b[69] = 0x02; return recrc(b) }, ErrCorrupt, "header count 1") // headers in no room
	// An unterminated varint.
	f(func(b []byte) []byte { b[62], b[63] = 0x80, 0x80; return recrc(b) }, ErrCorrupt, "")
}

func TestBatchReader(t *testing.T) {
	var file []byte
	var want []Batch
	for i := range 5 {
		b := sampleBatch()
		b.BaseOffset = int64(i * 3)
		b.Records[0].Value = bytes.Repeat([]byte{byte(i)}, 100*i)
		var err error
		if file, err = AppendBatch(file, b); err != nil {
			t.Fatal(err)
		}
		want = append(want, b)
	}
	f := func(file []byte, buf []byte, wantN int, wantErr error) {
		t.Helper()
		r := NewBatchReader(bytes.NewReader(file), 0, int64(len(file)), buf)
		n := 0
		var err error
		for range 100 {
			var b Batch
			if b, err = r.Next(); err != nil {
				break
			}
			if b.BaseOffset != want[n].BaseOffset || !bytes.Equal(b.Records[0].Value, want[n].Records[0].Value) {
				t.Fatalf("batch %d differs", n)
			}
			n++
		}
		if n != wantN || !errors.Is(err, wantErr) {
			t.Fatalf("%d batches, %v; want %d, %v", n, err, wantN, wantErr)
		}
	}
	f(file, nil, 5, io.EOF)
	f(file, make([]byte, 600), 5, io.EOF)
	f(append(bytes.Clone(file), make([]byte, 1000)...), nil, 5, io.EOF) // preallocated tail
	f(file[:len(file)-1], nil, 4, io.ErrUnexpectedEOF)
	f(file, make([]byte, 200), 2, ErrTooLarge)
}
