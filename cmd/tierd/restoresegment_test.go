package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/source"
)

// TestSegmentMembers: a segment's files are those named by its base offset and the
// snapshots up to the next segment, each in its newest version, whatever file is asked.
func TestSegmentMembers(t *testing.T) {
	var recs []catalog.Record
	add := func(tier, rel string, v int) {
		k, err := segment.ObjectKey("n", "k", rel)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, catalog.Record{Tier: tier, Key: segment.WithVersion(k, v), Source: "k", Rel: rel, Version: v, OffloadedAt: time.Now()})
	}
	for _, rel := range []string{"t-0/00000000000000000000.log", "t-0/00000000000000000000.index", "t-0/00000000000000000000.timeindex",
		"t-0/00000000000000000003.snapshot", "t-0/00000000000000000010.log", "t-0/00000000000000000010.index",
		"t-0/00000000000000000010.snapshot", "t-0/00000000000000000012.snapshot", "t-1/00000000000000000000.log"} {
		add("hdd", rel, 0)
	}
	add("hdd", "t-0/00000000000000000000.log", 2)
	add("s3", "t-0/00000000000000000000.log", 0)
	f := func(rel string, want ...string) {
		t.Helper()
		dir, off, kind, ok := source.ParseKafkaRel(rel)
		if !ok {
			t.Fatalf("ParseKafkaRel(%s) failed", rel)
		}
		var got []string
		for _, r := range segmentMembers(recs, "k", dir, off, kind) {
			got = append(got, r.Tier+":"+strings.TrimPrefix(string(r.Key), "n/k/"))
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("members of %s: %v\nwant %v", rel, got, want)
		}
	}
	seg0 := []string{"hdd:t-0/00000000000000000000.index", "hdd:t-0/00000000000000000000.log@v2", "hdd:t-0/00000000000000000000.timeindex", "hdd:t-0/00000000000000000003.snapshot"}
	f("t-0/00000000000000000000.log", seg0...)
	f("t-0/00000000000000000000.index", seg0...)
	f("t-0/00000000000000000003.snapshot", seg0...)
	seg10 := []string{"hdd:t-0/00000000000000000010.index", "hdd:t-0/00000000000000000010.log", "hdd:t-0/00000000000000000010.snapshot", "hdd:t-0/00000000000000000012.snapshot"}
	f("t-0/00000000000000000010.log", seg10...)
	f("t-0/00000000000000000012.snapshot", seg10...)
	f("t-1/00000000000000000000.log", "hdd:t-1/00000000000000000000.log")
}
