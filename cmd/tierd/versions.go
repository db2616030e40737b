package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/localfile"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/source"
)

// Segment versions as ls and verify show them (docs/DESIGN.md invariant 10): a file the
// broker rewrote after it was offloaded (Kafka's log cleaner) has several versions on
// the tiers; the newest is the one the local file should match, older ones are
// superseded and expire by their tier's superseded_retain_for.

// fileID names one local file of a source.
type fileID struct{ source, rel string }

// partitionID names one Kafka partition directory of a source.
type partitionID struct{ source, dir string }

// rewrite is a Kafka .log the tiers hold in a version >= 2: the cleaner rewrote it, and
// may have merged later segments into it.
type rewrite struct {
	base    int64
	rel     string
	version int
	mtime   time.Time
}

// versionIndex is what the catalog's records say about versions.
type versionIndex struct {
	newest    map[fileID]int
	logMTime  map[fileID]time.Time // a Kafka .log's mtime, newest version
	rewritten map[partitionID][]rewrite
}

func indexVersions(recs []catalog.Record) *versionIndex {
	x := &versionIndex{newest: map[fileID]int{}, logMTime: map[fileID]time.Time{}, rewritten: map[partitionID][]rewrite{}}
	for _, r := range recs {
		id := fileID{r.Source, r.Rel}
		if r.Ver() >= x.newest[id] {
			x.newest[id] = r.Ver()
		}
	}
	for _, r := range recs {
		dir, off, kind, ok := source.ParseKafkaRel(r.Rel)
		if !ok || kind != segment.KindKafkaLog || r.Ver() != x.newest[fileID{r.Source, r.Rel}] {
			continue
		}
		x.logMTime[fileID{r.Source, r.Rel}] = r.SegmentModTime
		if r.Ver() >= 2 {
			p := partitionID{r.Source, dir}
			x.rewritten[p] = append(x.rewritten[p], rewrite{base: off, rel: r.Rel, version: r.Ver(), mtime: r.SegmentModTime})
		}
	}
	return x
}

// state says what became of rec's file: "superseded by vN" when a newer version exists,
// "merged into REL vN" for a Kafka segment whose local files are gone and whose records
// the log cleaner merged into an earlier segment, else "".
//
// The cleaner names the merged segment after the first one it merged and gives it the
// mtime of the last (Kafka's LogCleaner.cleanSegments): a gone segment was merged into
// the rewritten segment of the same partition with the greatest base offset below its
// own, when that one's mtime is not older than its .log's.
func (x *versionIndex) state(rec catalog.Record, localExists func(source, rel string) bool) string {
	if n := x.newest[fileID{rec.Source, rec.Rel}]; rec.Ver() < n {
		return fmt.Sprintf("superseded by v%d", n)
	}
	dir, off, _, ok := source.ParseKafkaRel(rec.Rel)
	if !ok || localExists(rec.Source, rec.Rel) {
		return ""
	}
	mtime, ok := x.logMTime[fileID{rec.Source, source.KafkaRel(dir, off, segment.KindKafkaLog)}]
	if !ok {
		return ""
	}
	var into *rewrite
	for i, w := range x.rewritten[partitionID{rec.Source, dir}] {
		if w.base < off && (into == nil || w.base > into.base) {
			into = &x.rewritten[partitionID{rec.Source, dir}][i]
		}
	}
	if into == nil || into.mtime.Before(mtime) {
		return ""
	}
	return fmt.Sprintf("merged into %s v%d", into.rel, into.version)
}

// localPath is where the file rel of source lives, "" for a source no longer configured.
func (a *app) localPath(source, rel string) string {
	for _, s := range a.srcs {
		if s.Name == source {
			p, err := segment.LocalPath(s.Root, rel)
			if err != nil {
				return ""
			}
			return p
		}
	}
	return ""
}

// localExists reports whether the local file rel of source exists.
func (a *app) localExists(source, rel string) bool {
	p := a.localPath(source, rel)
	if p == "" {
		return false
	}
	_, err := os.Lstat(p)
	return err == nil
}

// errDiverged marks a local file that differs from the newest version the tiers hold.
var errDiverged = errors.New("diverged")

// checkLocal compares the local file of rec, the newest version of its file, with what
// rec was made from: its size and then the CRC-32C of all its bytes (read without
// keeping them in the page cache). A missing local file is fine (deleted by policy or
// by the broker). A difference wraps errDiverged and says what to expect.
func (a *app) checkLocal(ctx context.Context, rec catalog.Record) error {
	p := a.localPath(rec.Source, rec.Rel)
	if p == "" {
		return nil
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot stat %q: %w", p, err)
	}
	next := fmt.Sprintf("the broker rewrote it after it was offloaded (Kafka's log cleaner does so on compacted topics): the daemon offloads it as version %d at its next pass, and keeps v%d until then", rec.Ver()+1, rec.Ver())
	if fi.Size() != rec.LocalSize {
		return fmt.Errorf("%w: local file %s has %d bytes, newest offloaded version v%d (%s) was made from %d: %s",
			errDiverged, p, fi.Size(), rec.Ver(), rec.Key, rec.LocalSize, next)
	}
	r, err := localfile.Open(ctx, p, localfile.ReadOptions{})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer r.Close()
	crc, err := segment.Checksum(ctx, r, r.Size(), a.pool)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	if crc != rec.LocalCRC32C {
		return fmt.Errorf("%w: local file %s has CRC-32C %08x, newest offloaded version v%d (%s) was made from %08x: %s",
			errDiverged, p, crc, rec.Ver(), rec.Key, rec.LocalCRC32C, next)
	}
	return nil
}

// versionView says what became of records one at a time without an index of every
// record: from the catalog's records of the record's neighbourhood (its Kafka partition
// directory, or its file), read through the Holders index and kept while consecutive
// records share it (records come sorted by tier and key, so a partition's come
// together). Without the catalog (a running daemon holds it) it falls back to an index
// of every record, which the caller gives.
type versionView struct {
	cat   *catalog.Catalog
	all   *versionIndex // when cat is nil
	seen  map[fileID]bool
	place string
	x     *versionIndex
	recs  []catalog.Record // the place's records
}

func (v *versionView) state(rec catalog.Record, localExists func(source, rel string) bool) (string, error) {
	if v.cat == nil {
		return v.all.state(rec, localExists), nil
	}
	if err := v.load(rec); err != nil {
		return "", err
	}
	return v.x.state(rec, localExists), nil
}

// newestOnce reports whether rec holds the newest version of its file and is the first
// such record a walk of tier ("" = every tier; records sorted by tier, then key) meets:
// each file's newest version is then looked at once.
func (v *versionView) newestOnce(rec catalog.Record, tier string) (bool, error) {
	id := fileID{rec.Source, rec.Rel}
	if v.cat == nil {
		if v.seen[id] || rec.Ver() != v.all.newest[id] {
			return false, nil
		}
		v.seen[id] = true
		return true, nil
	}
	if err := v.load(rec); err != nil {
		return false, err
	}
	if rec.Ver() != v.x.newest[id] {
		return false, nil
	}
	for _, r := range v.recs {
		if r.Source == rec.Source && r.Rel == rec.Rel && r.Ver() == rec.Ver() && (tier == "" || r.Tier == tier) && r.Tier < rec.Tier {
			return false, nil // an earlier tier's record of the same version came first
		}
	}
	return true, nil
}

// load reads the records of rec's place (its Kafka partition, or its file) unless they
// are the ones loaded.
func (v *versionView) load(rec catalog.Record) error {
	place, dir, kafka := rec.Source+"\x00"+rec.Rel, "", false
	if d, _, _, ok := source.ParseKafkaRel(rec.Rel); ok {
		place, dir, kafka = rec.Source+"\x00"+d+"/", d+"/", true
	}
	if place != v.place || v.x == nil {
		var recs []catalog.Record
		var err error
		if kafka {
			recs, err = v.cat.HoldersUnder(rec.Source, dir)
		} else {
			recs, err = v.cat.Holders(rec.Source, rec.Rel)
		}
		if err != nil {
			return err
		}
		v.x, v.place, v.recs = indexVersions(recs), place, recs
	}
	return nil
}

// newVersionView is the view ls and verify use: over the catalog when it is open, else
// over every record of the running daemon's catalog (read once, held).
func (a *app) newVersionView(ctx context.Context) (*versionView, error) {
	if a.cat != nil {
		return &versionView{cat: a.cat}, nil
	}
	all, err := a.records(ctx, "")
	if err != nil {
		return nil, err
	}
	return &versionView{all: indexVersions(all), seen: map[fileID]bool{}}, nil
}
