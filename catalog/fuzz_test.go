package catalog

import (
	"reflect"
	"testing"
)

// FuzzDecodeMarker: DecodeMarker never panics, and whatever it accepts re-encodes to bytes
// that decode to the same record.
func FuzzDecodeMarker(f *testing.F) {
	f.Add([]byte(validMarker))
	for _, r := range []Record{testRecord("hdd", "rmq", "commitlog/0001", 1), tixRecord("", "rmq", "index/1", 2)} {
		b, err := encodeRecord(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("{}"))
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":2,"key":"broker-a/k/t-0/00000000000000000000.log@v2","src":"k","rel":"t-0/00000000000000000000.log","kind":"kafka-log","fmt":"raw","size":10,"crc":7,"lsize":10,"lcrc":7,"offloaded":"2026-01-02T03:04:05Z","ver":2}`))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := DecodeMarker(data)
		if err != nil {
			return
		}
		again, err := encodeRecord(rec)
		if err != nil {
			t.Fatalf("accepted record %+v does not encode: %v", rec, err)
		}
		rec2, err := DecodeMarker(again)
		if err != nil {
			t.Fatalf("re-encoded record %s does not decode: %v", again, err)
		}
		if !reflect.DeepEqual(rec, rec2) {
			t.Fatalf("round trip changed %+v into %+v", rec, rec2)
		}
	})
}

// FuzzDecodeValue: decodeValue never panics on any catalog key and value, and whatever it
// accepts is valid, names the key's tier and key, and re-encodes (binary) to the same record.
func FuzzDecodeValue(f *testing.F) {
	for _, r := range valueRecords() {
		b, err := encodeValue(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(recordKey(r.Tier, r.Key), b)
		j, err := encodeRecord(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(recordKey(r.Tier, r.Key), j)
	}
	f.Add([]byte("hdd\x00a/b/c"), []byte{1, 0, 1})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		rec, err := decodeValue(k, v)
		if err != nil {
			return
		}
		if err := rec.Validate(); err != nil || string(recordKey(rec.Tier, rec.Key)) != string(k) {
			t.Fatalf("accepted %+v under key %q: %v", rec, k, err)
		}
		again, err := encodeValue(rec)
		if err != nil {
			t.Fatalf("accepted record %+v does not encode: %v", rec, err)
		}
		rec2, err := decodeValue(k, again)
		if err != nil {
			t.Fatalf("re-encoded record %x does not decode: %v", again, err)
		}
		if !reflect.DeepEqual(rec, rec2) {
			t.Fatalf("round trip changed %+v into %+v", rec, rec2)
		}
	})
}
