package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/daemon"
	"github.com/tierd/tierd/segment"
	brokersource "github.com/tierd/tierd/source" // the package; "source" names a source here
)

// restoreSegment restores every file of the Kafka segment that key belongs to (docs/DESIGN.md
// invariant 11), each in the newest version the tiers hold, whole or not at all.
func restoreSegment(ctx context.Context, g *globals, key segment.Key, to, tier string, force bool) error {
	_, source, rel, compacted, err := segment.ParseObjectKey(key)
	if err != nil {
		return usagef("refusing key %s: %v", key, err)
	}
	dir, off, kind, ok := brokersource.ParseKafkaRel(rel)
	if !ok || compacted {
		return usagef("--segment: %s is not a file of a Kafka segment (<topic>-<partition>/<20-digit offset>.log, .index, ...)", key)
	}
	a, err := openReader(ctx, g)
	if err != nil {
		return err
	}
	defer a.close()
	recs, err := a.records(ctx, tier)
	if err != nil {
		return err
	}
	members := segmentMembers(recs, source, dir, off, kind)
	if len(members) == 0 {
		return fmt.Errorf("no tier holds a file of segment %s/%s/%020d", source, dir, off)
	}
	type job struct {
		rec  catalog.Record
		t    daemon.Tier
		info segment.Info
		dst  string
	}
	var jobs []job
	for _, rec := range members {
		dst, err := segment.LocalPath(to, rec.Rel)
		if err != nil {
			return usagef("refusing to restore %s: %v", rec.Key, err)
		}
		if _, err := os.Lstat(dst); err == nil && !force {
			return usagef("%s exists; use --force to replace it (nothing of the segment was restored)", dst)
		}
		t, info, err := a.findObject(ctx, rec.Key, rec.Tier)
		if err != nil {
			return fmt.Errorf("%w (nothing of the segment was restored)", err)
		}
		jobs = append(jobs, job{rec, t, info, dst})
	}
	var done []string
	for _, j := range jobs {
		crc, err := restoreObject(ctx, a, j.t, j.info, to, j.rec.Rel)
		if err != nil {
			for _, p := range done {
				if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
					err = errors.Join(err, fmt.Errorf("remove %s again: %w", p, rerr))
				}
			}
			return fmt.Errorf("%w (the %d files of the segment restored before were removed again)", err, len(done))
		}
		done = append(done, j.dst)
		fmt.Fprintf(stdout, "%s:%s -> %s (v%d, %s, crc32c %08x)\n", j.t.Name, j.rec.Key, filepath.Clean(j.dst), j.rec.Ver(), humanBytes(j.info.Size), crc)
	}
	return nil
}

// segmentMembers picks, from recs, the newest version of every file of the Kafka
// segment that the file at offset off of kind belongs to in partition dir of source: the
// files named by the segment's base offset, and the producer snapshots between it and
// the next segment's base offset. Each comes once, from the first tier (in recs' order)
// holding its newest version.
func segmentMembers(recs []catalog.Record, source, dir string, off int64, kind segment.Kind) []catalog.Record {
	type file struct {
		off  int64
		kind segment.Kind
	}
	files := map[string]file{}
	var bases []int64
	for _, r := range recs {
		if r.Source != source {
			continue
		}
		d, o, k, ok := brokersource.ParseKafkaRel(r.Rel)
		if !ok || d != dir {
			continue
		}
		files[r.Rel] = file{o, k}
		if k == segment.KindKafkaLog {
			bases = append(bases, o)
		}
	}
	slices.Sort(bases)
	base := off
	if kind == segment.KindKafkaSnapshot { // a snapshot belongs to the segment it falls in
		if i, found := slices.BinarySearch(bases, off); !found && i > 0 {
			base = bases[i-1]
		}
	}
	next := int64(math.MaxInt64)
	if i, found := slices.BinarySearch(bases, base+1); i < len(bases) || found {
		next = bases[i]
	}
	newest := map[string]catalog.Record{}
	var order []string
	for _, r := range recs {
		f, ok := files[r.Rel]
		if r.Source != source || !ok {
			continue
		}
		in := f.off == base || (f.kind == segment.KindKafkaSnapshot && f.off > base && f.off < next)
		if !in {
			continue
		}
		cur, seen := newest[r.Rel]
		if !seen {
			order = append(order, r.Rel)
		}
		if !seen || r.Ver() > cur.Ver() {
			newest[r.Rel] = r
		}
	}
	slices.Sort(order)
	out := make([]catalog.Record, 0, len(order))
	for _, rel := range order {
		out = append(out, newest[rel])
	}
	return out
}
