package catalog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/segment"
)

func TestIntentLifecycle(t *testing.T) {
	c := openT(t, t.TempDir(), testNode)
	rec := testRecord("s3", "rmq", "commitlog/0001", 1)
	started := time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("X", -3600))

	in1, err := c.Begin(Intent{ID: 99, Tier: rec.Tier, Key: rec.Key, Source: rec.Source, Rel: rec.Rel, Op: OpOffload, Started: started})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	in2, err := c.Begin(Intent{Tier: "hdd", Key: rec.Key, Op: OpDelete})
	if err != nil {
		t.Fatal(err)
	}
	if in1.ID == 0 || in1.ID == 99 || in2.ID <= in1.ID {
		t.Fatalf("IDs %d, %d: want Begin to assign increasing IDs", in1.ID, in2.ID)
	}
	if !in1.Started.Equal(started) || in1.Started.Location() != time.UTC {
		t.Fatalf("Started = %v, want %v in UTC", in1.Started, started)
	}
	if in2.Started.Before(before.Add(-time.Second)) || in2.Started.IsZero() {
		t.Fatalf("Started = %v, want about now", in2.Started)
	}

	if err := c.SetUploadID(in1.ID, "mpu-1"); err != nil {
		t.Fatal(err)
	}
	in1.UploadID = "mpu-1"
	f := func(want ...Intent) {
		t.Helper()
		got, err := c.Intents()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
			t.Fatalf("Intents = %+v\nwant %+v", got, want)
		}
	}
	f(in1, in2)

	if err := c.Finish(in2.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.Finish(in2.ID); err != nil {
		t.Fatalf("Finish twice: %v", err)
	}
	f(in1)
	if err := c.SetUploadID(in2.ID, "x"); !errors.Is(err, segment.ErrNotFound) {
		t.Fatalf("SetUploadID of a finished intent: %v, want ErrNotFound", err)
	}

	// Commit records and clears in one transaction.
	if err := c.Commit(rec, in1.ID); err != nil {
		t.Fatal(err)
	}
	f()
	if got, err := c.Get(rec.Tier, rec.Key); err != nil || !reflect.DeepEqual(got, rec.normalize()) {
		t.Fatalf("Get after Commit = %+v, %v", got, err)
	}
	if h, err := c.Holders(rec.Source, rec.Rel); err != nil || len(h) != 1 {
		t.Fatalf("Holders after Commit = %+v, %v", h, err)
	}

	// A second Commit of the same intent changes nothing.
	rec2 := rec
	rec2.Verified = rec.Verified.Add(time.Hour)
	if err := c.Commit(rec2, in1.ID); !errors.Is(err, segment.ErrNotFound) {
		t.Fatalf("Commit of a cleared intent: %v, want ErrNotFound", err)
	}
	if got, _ := c.Get(rec.Tier, rec.Key); !reflect.DeepEqual(got, rec.normalize()) {
		t.Fatalf("failed Commit changed the record to %+v", got)
	}
}

func TestCommitWritesNothingOnFailure(t *testing.T) {
	c := openT(t, t.TempDir(), testNode)
	rec := testRecord("s3", "rmq", "commitlog/0001", 1)
	in, err := c.Begin(Intent{Tier: rec.Tier, Key: rec.Key, Source: rec.Source, Rel: rec.Rel, Op: OpOffload})
	if err != nil {
		t.Fatal(err)
	}
	f := func(r Record, want string) {
		t.Helper()
		err := c.Commit(r, in.ID)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Commit: %v, want error containing %q", err, want)
		}
		if ins, _ := c.Intents(); len(ins) != 1 || ins[0].ID != in.ID {
			t.Fatalf("failed Commit changed the intents: %+v", ins)
		}
		if recs, _ := c.List(""); len(recs) != 0 {
			t.Fatalf("failed Commit stored %+v", recs)
		}
		checkIndex(t, c)
	}
	other := rec
	other.Tier = "hdd"
	f(other, "is for")
	other = testRecord("s3", "rmq", "commitlog/0002", 2)
	f(other, "is for")
	bad := rec
	bad.Size++
	f(bad, "differ from local")
	bad = rec
	bad.Tier = ""
	f(bad, "no tier")
	if err := c.Commit(rec, in.ID+1); !errors.Is(err, segment.ErrNotFound) {
		t.Fatalf("Commit with an unknown intent: %v, want ErrNotFound", err)
	}
}

func TestBeginRejectsInvalid(t *testing.T) {
	c := openT(t, t.TempDir(), testNode)
	f := func(in Intent, want string) {
		t.Helper()
		_, err := c.Begin(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Begin(%+v): %v, want error containing %q", in, err, want)
		}
	}
	f(Intent{Key: "a/b", Op: OpOffload}, "tier name")
	f(Intent{Tier: "s3", Key: "a/../b", Op: OpOffload}, "object key")
	f(Intent{Tier: "s3", Key: "a/b"}, "operation")
	f(Intent{Tier: "s3", Key: "a/b", Op: OpOffload, Source: "rmq"}, "relative path")
	f(Intent{Tier: "s3", Key: "a/b", Op: OpOffload, Rel: "x"}, "source name")
	if ins, _ := c.Intents(); len(ins) != 0 {
		t.Fatalf("rejected intents were stored: %+v", ins)
	}
}

func TestAbortMarker(t *testing.T) {
	dir := t.TempDir()
	c := openT(t, dir, testNode)
	marker := filepath.Join(dir, AbortFile)
	f := func(want bool) {
		t.Helper()
		crashed, err := c.StartRun()
		if err != nil {
			t.Fatal(err)
		}
		if crashed != want {
			t.Fatalf("StartRun crashed = %v, want %v", crashed, want)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Fatalf("abort marker after StartRun: %v", err)
		}
	}
	f(false)
	f(true) // no CleanExit in between: the "previous run" crashed
	if err := c.CleanExit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("abort marker after CleanExit: %v", err)
	}
	if err := c.CleanExit(); err != nil {
		t.Fatalf("CleanExit twice: %v", err)
	}
	f(false)

	// A process that dies without CleanExit leaves the marker for the next one.
	c.Close()
	c = openT(t, dir, testNode)
	f(true)
	if err := c.CleanExit(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = openT(t, dir, testNode)
	f(false)
}

// TestBeginCommitAll: a batch's intents are journaled together, its records committed
// together with their intents cleared, and its failed intents finished in the same step.
func TestBeginCommitAll(t *testing.T) {
	c := openT(t, t.TempDir(), testNode)
	var ins []Intent
	var recs []Record
	for i := range 3 {
		r := testRecord("hdd", "rmq", fmt.Sprintf("commitlog/%d", i), i)
		recs = append(recs, r)
		ins = append(ins, Intent{Tier: r.Tier, Key: r.Key, Source: r.Source, Rel: r.Rel, Op: OpOffload})
	}
	got, err := c.BeginAll(ins)
	if err != nil || len(got) != 3 || got[0].ID == got[1].ID {
		t.Fatalf("BeginAll: %+v %v", got, err)
	}
	// A record paired with the wrong intent fails the whole commit.
	if err := c.CommitAll(recs[:2], []uint64{got[1].ID, got[0].ID}, nil); err == nil {
		t.Fatal("CommitAll with swapped intents succeeded")
	}
	if l, _ := c.List("hdd"); len(l) != 0 {
		t.Fatalf("a failed CommitAll recorded %d records", len(l))
	}
	if err := c.CommitAll(recs[:2], []uint64{got[0].ID, got[1].ID}, []uint64{got[2].ID}); err != nil {
		t.Fatal(err)
	}
	if l, _ := c.List("hdd"); len(l) != 2 {
		t.Fatalf("%d records after CommitAll", len(l))
	}
	if left, _ := c.Intents(); len(left) != 0 {
		t.Fatalf("intents left: %+v", left)
	}
}
