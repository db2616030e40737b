package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tierd/tierd/daemon"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/source"
)

// TestJSONScanOut: the streamed scan report decodes to the same daemon.ScanReport as the
// whole one would, with empty arrays as [] (never null), whatever was empty.
func TestJSONScanOut(t *testing.T) {
	seg := func(rel string) segment.Segment {
		return segment.Segment{Source: "k", Kind: segment.KindKafkaLog, Path: "/d/" + rel, Rel: rel, Seq: "t-0", Size: 10, ModTime: time.Unix(100, 0).UTC()}
	}
	want := daemon.ScanReport{
		Sources: []daemon.SourceReport{
			{Name: "k", Root: "/d", Error: "boom",
				Sealed:   []segment.Segment{seg("t-0/a.log"), seg("t-0/b.log")},
				Unsealed: []source.Pending{{Segment: seg("t-0/c.log"), Why: "active"}, {Segment: seg("t-1/c.log"), Why: "active"}},
				Skipped:  []source.Skipped{{Path: "/d/x", Reason: "foreign"}},
				Changed:  []daemon.Changed{{Path: "/d/t-0/a.log", Rel: "t-0/a.log", Version: 1, Why: "size 20 -> 10 bytes since v1 was offloaded"}}},
			{Name: "empty", Root: "/e", Sealed: []segment.Segment{}, Unsealed: []source.Pending{}, Skipped: []source.Skipped{}, Changed: []daemon.Changed{}},
		},
		Tiers: []daemon.TierReport{
			{Name: "hdd", Move: []string{"/d/t-0/a.log"}, Later: []daemon.DueLater{}, Expire: []string{"k (retain_for)"}, Present: 3},
			{Name: "s3", Move: []string{}, Later: []daemon.DueLater{{Path: "/d/t-0/b.log", Due: time.Unix(200, 0).UTC()}}, Expire: []string{}, Paused: true},
		},
		DeleteLocal: []string{},
	}
	var buf bytes.Buffer
	o := newJSONScanOut(&buf)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	s := want.Sources[0]
	must(o.BeginSource(s.Name, s.Root))
	must(o.Unsealed(s.Unsealed[0]))
	must(o.Skipped(s.Skipped[0])) // skipped files come between unsealed ones
	must(o.Unsealed(s.Unsealed[1]))
	for _, x := range s.Sealed {
		must(o.Sealed(x))
	}
	must(o.Changed(s.Changed[0]))
	must(o.EndSource(s.Error))
	must(o.BeginSource("empty", "/e"))
	must(o.EndSource(""))
	for _, tr := range want.Tiers {
		must(o.BeginTier(tr.Name, tr.Paused, tr.Present))
		for _, m := range tr.Move {
			must(o.Move(m))
		}
		for _, l := range tr.Later {
			must(o.Later(l))
		}
		for _, e := range tr.Expire {
			must(o.Expire(e))
		}
		must(o.EndTier())
	}
	must(o.finish())
	var got daemon.ScanReport
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("streamed report differs:\n%s\nwant %+v", buf.String(), want)
	}
	if bytes.Contains(buf.Bytes(), []byte("null")) {
		t.Fatalf("null in the report:\n%s", buf.String())
	}
	if len(o.failed) != 1 || o.failed[0] != "k" {
		t.Fatalf("failed sources %v", o.failed)
	}
}
