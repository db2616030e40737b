package daemon

import (
	"cmp"
	"slices"
	"time"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/source"
)

// Segment groups (docs/DESIGN.md invariant 11): a Kafka segment's .log, .index, .timeindex,
// .txnindex and the producer snapshots within it are deleted locally together, once every
// one of them is sealed, old enough and held by every required tier, or not at all. Any
// other file is a group by itself.

// deleteJob makes the local deletion of the group that the stale local file e belongs
// to, if every file of the group may go now. The job is named after the group's first
// file (by path), so that the same group always makes the same job.
func (d *Daemon) deleteJob(e catalog.Stale, now time.Time) (due, bool, error) {
	s := d.sources[e.Source]
	if s == nil {
		return due{}, false, nil
	}
	f, ok, err := d.cfg.Catalog.Local(e.Source, e.Rel)
	if err != nil || !ok || !f.Sealed {
		return due{}, false, err
	}
	files := []catalog.LocalFile{f}
	if s.Layout.Name() == source.LayoutKafka {
		if files, err = d.kafkaGroup(f); err != nil {
			return due{}, false, err
		}
	}
	j := due{kind: jobDeleteLocal, why: "delete_after"}
	required := d.requiredTiers()
	for _, m := range files {
		if !m.Sealed || now.Sub(m.ModTime) < d.cfg.LocalDeleteAfter {
			return due{}, false, nil
		}
		key, err := d.localKey(m)
		if err != nil {
			return due{}, false, nil
		}
		seg, err := localSegment(s, m)
		if err != nil {
			return due{}, false, nil
		}
		for _, t := range required {
			rec, err := d.cfg.Catalog.Get(t.Name, key)
			if err != nil {
				return due{}, false, nil
			}
			if j.rec.Key == "" {
				j.rec = rec
			}
		}
		j.group = append(j.group, member{seg: &seg, key: key})
		j.mtime = maxTime(j.mtime, m.ModTime)
	}
	slices.SortFunc(j.group, func(a, b member) int { return cmp.Compare(a.seg.Rel, b.seg.Rel) })
	j.seg, j.key = j.group[0].seg, j.group[0].key
	return j, true, nil
}

// kafkaGroup returns the closed local files of f's Kafka segment: those of its partition
// whose offset falls in the same segment (source.KafkaGroup).
func (d *Daemon) kafkaGroup(f catalog.LocalFile) ([]catalog.LocalFile, error) {
	dir, off, _, ok := source.ParseKafkaRel(f.Rel)
	if !ok {
		return []catalog.LocalFile{f}, nil
	}
	all, err := d.cfg.Catalog.LocalFiles(f.Source, dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	offs := make([]int64, len(all))
	for i, x := range all {
		_, o, kind, ok := source.ParseKafkaRel(x.Rel)
		offs[i] = o
		if ok && kind == segment.KindKafkaLog {
			bases = append(bases, o)
		}
	}
	slices.Sort(bases)
	group := source.KafkaGroup(dir, bases, off)
	if group == "" {
		return []catalog.LocalFile{f}, nil
	}
	var out []catalog.LocalFile
	for i, x := range all {
		if source.KafkaGroup(dir, bases, offs[i]) == group {
			out = append(out, x)
		}
	}
	return out, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// deletingLocal reports whether a running local deletion includes the file at path
// (d.mu held): a copy must not start reading it (the deletion checks the other way round,
// readingLocal). Running jobs are at most the workers.
func (d *Daemon) deletingLocal(path string) bool {
	for _, j := range d.running {
		if j.kind != jobDeleteLocal {
			continue
		}
		for _, m := range j.group {
			if m.seg.Path == path {
				return true
			}
		}
	}
	return false
}
