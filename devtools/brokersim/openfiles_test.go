package brokersim

import (
	"context"
	"testing"
)

// Files closed to stay within MaxOpenFiles and reopened at their next write hold exactly
// what was written: the stores' own checks pass with one file open at a time.
func TestEvictedFilesKeepTheirBytes(t *testing.T) {
	t.Run("kafka", func(t *testing.T) {
		o := smallKafka(t)
		o.MaxOpenFiles = 1
		sum, err := Kafka(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if sealed := verifyKafka(t, o, sum); sealed < 4 {
			t.Fatalf("only %d sealed segments", sealed)
		}
	})
	t.Run("rocketmq", func(t *testing.T) {
		o := smallRocketMQ(t)
		o.MaxOpenFiles = 1
		sum, err := RocketMQ(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if st := verifyRocketMQ(t, o, sum); st.sealedCQ == 0 {
			t.Fatalf("no sealed consume-queue file: %+v", st)
		}
	})
}

func TestOpenFilesLRU(t *testing.T) {
	dir := t.TempDir()
	of := newOpenFiles(2)
	var hs []*handle
	for _, name := range []string{"a", "b", "c"} {
		h, err := of.create(dir+"/"+name, 0)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if hs[0].f != nil || hs[1].f == nil || hs[2].f == nil || of.lru.Len() != 2 {
		t.Fatalf("after 3 creates with room for 2: a open %v, b %v, c %v", hs[0].f != nil, hs[1].f != nil, hs[2].f != nil)
	}
	// Writing a reopens it and closes b, the least recently used.
	if _, err := hs[0].WriteAt([]byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if hs[0].f == nil || hs[1].f != nil || of.peak != 2 {
		t.Fatalf("after writing a: a open %v, b open %v, peak %d", hs[0].f != nil, hs[1].f != nil, of.peak)
	}
	for _, h := range hs {
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if of.lru.Len() != 0 {
		t.Fatalf("%d files open after closing every handle", of.lru.Len())
	}
	if _, err := hs[0].WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("write after Close succeeded")
	}
}
