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
