package daemon

import (
	"errors"
	"time"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/segment"
)

// jobKind says what a job does.
type jobKind int

const (
	jobCopy        jobKind = iota // copy a segment to a tier (from the local file or another tier)
	jobDeleteLocal                // delete a local segment every required tier holds
	jobExpire                     // delete an object from a tier (retain_for, max_bytes)
)

func (k jobKind) String() string {
	return [...]string{"copy", "delete-local", "expire"}[k]
}

// due is one job the policy wants done now.
type due struct {
	kind  jobKind
	tier  *tierState       // copy: target; expire: the tier to delete from; nil for delete-local
	key   segment.Key      // the object key (the same on every tier)
	seg   *segment.Segment // the local sealed file, if there is one
	from  *tierState       // copy: the tier to read from when there is no local file
	rec   catalog.Record   // copy from a tier: its record; expire: the record to drop
	mtime time.Time        // the segment's last write: its age is now - mtime
	why   string
	// group: delete-local: every file of the segment's group (a Kafka segment's .log,
	// indexes and snapshots; just seg otherwise), deleted together or not at all.
	group []member
}

// member is one local file of a group and its object key.
type member struct {
	seg *segment.Segment
	key segment.Key
}

// localTier names local-file jobs in job ids.
const localTier = "local"

func (j due) id() jobID {
	if j.tier == nil {
		return jobID{localTier, j.key}
	}
	return jobID{j.tier.Name, j.key}
}

// The policy, evaluated one job at a time from the catalog's indexes (catalog/index.go):
// copies are the due entries of a tier up to now - offload_after, oldest first; expiries
// the age index of a tier (retain_for, max_bytes); local deletions the local-age index. A
// dispatch looks at a bounded number of entries per index, whatever the number of
// records (docs/DESIGN.md invariant 9).

// lookahead is how many index entries past the busy ones (running or waiting for a retry)
// one look at an index reads.
const lookahead = 32

// farFuture bounds index walks that want everything (still within UnixNano's range).
func farFuture(now time.Time) time.Time { return now.Add(100 * 365 * 24 * time.Hour) }

// dueWindow is the range of segment mtimes whose copies to t are due now: older than
// offload_after, younger than retain_for (an older one would expire at once).
func (d *Daemon) dueWindow(t *tierState, now time.Time) (from, to time.Time) {
	if t.RetainFor > 0 {
		from = now.Add(-t.RetainFor)
	}
	return from, now.Add(-t.OffloadAfter)
}

// walkLimit is how many index entries one look reads: enough to get past every busy one.
func (d *Daemon) walkLimit() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return lookahead + len(d.running) + len(d.retry)
}

// busy reports whether the job id is running or waiting for its retry (d.mu held).
func (d *Daemon) busy(id jobID, now time.Time) bool {
	if _, ok := d.running[id]; ok || d.unsettledJob(id) {
		return true
	}
	r, retrying := d.retry[id]
	return retrying && (d.oneShot || now.Before(r.next))
}

// expiring reports whether an expiry of key on tier is running (d.mu held).
func (d *Daemon) expiring(tier string, key segment.Key) bool {
	j, ok := d.running[jobID{tier, key}]
	return ok && j.kind == jobExpire
}

// readFrom reports whether a running copy reads key from tier t (d.mu held): t must keep
// it until the copy is done.
func (d *Daemon) readFrom(t *tierState, key segment.Key) bool {
	for _, u := range d.tiers {
		if j, ok := d.running[jobID{u.Name, key}]; ok && j.kind == jobCopy && j.from == t {
			return true
		}
	}
	return false
}

// freeSlot reports whether t can take one more job now.
func (t *tierState) freeSlot() bool {
	return len(t.slots) < cap(t.slots) && !t.isPaused() && !t.probing()
}

// nextJob returns the first job the policy wants done now that is not busy: copies (tier
// by tier, hot to cold, oldest segment first), then local deletions, then expiries. Tiers
// without a free slot are passed over. Index entries that can no longer lead to a job are
// dropped on the way.
func (d *Daemon) nextJob(now time.Time) (due, bool, error) {
	limit := d.walkLimit()
	for _, t := range d.tiers {
		if !t.freeSlot() || t.fenced(now) {
			continue
		}
		if j, ok, err := d.nextCopy(t, now, limit); err != nil || ok {
			return j, ok, err
		}
	}
	if j, ok, err := d.nextDelete(now, limit); err != nil || ok {
		return j, ok, err
	}
	for _, t := range d.tiers {
		if len(t.slots) >= cap(t.slots) || t.fenced(now) {
			continue
		}
		if j, ok, err := d.nextExpire(t, now, limit); err != nil || ok {
			return j, ok, err
		}
	}
	return due{}, false, nil
}

func (d *Daemon) nextCopy(t *tierState, now time.Time, limit int) (due, bool, error) {
	from, to := d.dueWindow(t, now)
	var cands []catalog.Due
	err := d.cfg.Catalog.WalkDue(t.Name, from, to, limit, func(e catalog.Due) int {
		cands = append(cands, e)
		return catalog.WalkNext
	})
	if err != nil {
		return due{}, false, err
	}
	for _, e := range cands {
		key, err := d.copyKey(e)
		if err != nil {
			if err := d.cfg.Catalog.DropDue(e); err != nil {
				return due{}, false, err
			}
			continue
		}
		d.mu.Lock()
		busy := d.busy(jobID{t.Name, key}, now)
		d.mu.Unlock()
		if busy {
			continue
		}
		j, ok, drop, err := d.makeCopy(t, e, key)
		if err != nil {
			return due{}, false, err
		}
		if drop {
			if err := d.cfg.Catalog.DropDue(e); err != nil {
				return due{}, false, err
			}
		}
		if ok {
			return j, true, nil
		}
	}
	return due{}, false, nil
}

// makeCopy makes the copy job of due entry e to t: from the local file while it is sealed
// with the entry's mtime, else from the hottest tier holding the key. drop says the entry
// can lead to no copy (t holds it already, or nothing does).
func (d *Daemon) makeCopy(t *tierState, e catalog.Due, key segment.Key) (j due, ok, drop bool, err error) {
	if _, err := d.cfg.Catalog.Get(t.Name, key); err == nil {
		return due{}, false, true, nil
	} else if !errors.Is(err, segment.ErrNotFound) {
		return due{}, false, false, err
	}
	j = due{kind: jobCopy, tier: t, key: key, mtime: e.ModTime}
	if s := d.sources[e.Source]; s != nil {
		f, ok, err := d.cfg.Catalog.Local(e.Source, e.Rel)
		if err != nil {
			return due{}, false, false, err
		}
		if ok && f.Sealed && f.ModTime.Equal(e.ModTime) {
			seg, err := localSegment(s, f)
			if err != nil {
				return due{}, false, true, nil
			}
			d.mu.Lock()
			deleting := d.deletingLocal(seg.Path)
			d.mu.Unlock()
			if deleting {
				// The file is going: copy it from a tier once the deletion is recorded.
				return due{}, false, false, nil
			}
			j.seg = &seg
			return j, true, false, nil
		}
	}
	holders, err := d.cfg.Catalog.Holders(e.Source, e.Rel)
	if err != nil {
		return due{}, false, false, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range d.tiers {
		for _, r := range holders {
			if u != t && r.Tier == u.Name && r.Key == key && !d.expiring(u.Name, key) {
				j.from, j.rec = u, r
				return j, true, false, nil
			}
		}
	}
	return due{}, false, len(holders) == 0, nil
}

func (d *Daemon) nextDelete(now time.Time, limit int) (due, bool, error) {
	if !d.cfg.LocalDelete {
		return due{}, false, nil
	}
	var cands []catalog.Stale
	err := d.cfg.Catalog.WalkStale(now.Add(-d.cfg.LocalDeleteAfter), limit, func(e catalog.Stale) int {
		cands = append(cands, e)
		return catalog.WalkNext
	})
	if err != nil {
		return due{}, false, err
	}
	for _, e := range cands {
		j, ok, err := d.deleteJob(e, now)
		if err != nil {
			return due{}, false, err
		}
		if !ok {
			continue
		}
		d.mu.Lock()
		skip := d.busy(j.id(), now) || d.readingLocal(j)
		for _, t := range d.requiredTiers() {
			for _, m := range j.group {
				skip = skip || d.expiring(t.Name, m.key)
			}
		}
		d.mu.Unlock()
		if !skip {
			return j, true, nil
		}
	}
	return due{}, false, nil
}

func (d *Daemon) nextExpire(t *tierState, now time.Time, limit int) (due, bool, error) {
	pick := func(to time.Time, why string) (due, bool, error) {
		var cands []catalog.Aged
		err := d.cfg.Catalog.WalkAged(t.Name, to, limit, func(a catalog.Aged) int {
			cands = append(cands, a)
			return catalog.WalkNext
		})
		if err != nil {
			return due{}, false, err
		}
		for _, a := range cands {
			d.mu.Lock()
			busy := d.busy(jobID{t.Name, a.Key}, now) || d.readFrom(t, a.Key)
			d.mu.Unlock()
			if busy {
				continue
			}
			rec, err := d.cfg.Catalog.Get(t.Name, a.Key)
			if err != nil {
				continue
			}
			ok, err := d.canDrop(t, rec, now)
			if err != nil {
				return due{}, false, err
			}
			if ok {
				return due{kind: jobExpire, tier: t, key: a.Key, rec: rec, mtime: a.ModTime, why: why}, true, nil
			}
		}
		return due{}, false, nil
	}
	if j, ok, err := d.nextSuperseded(t, now, limit); err != nil || ok {
		return j, ok, err
	}
	if t.RetainFor > 0 {
		if j, ok, err := pick(now.Add(-t.RetainFor), "retain_for"); err != nil || ok {
			return j, ok, err
		}
	}
	if t.MaxBytes > 0 {
		st, err := d.cfg.Catalog.Stats(t.Name)
		if err != nil {
			return due{}, false, err
		}
		held := st.Bytes
		d.mu.Lock()
		for _, j := range d.running {
			if j.kind == jobExpire && j.tier == t {
				held -= j.rec.Size
			}
		}
		d.mu.Unlock()
		if held > t.MaxBytes {
			return pick(farFuture(now), "max_bytes")
		}
	}
	return due{}, false, nil
}

// canDrop reports whether t may delete its copy rec: the local file still exists, another
// tier holds a copy that is not expiring, or no other tier will want it (every other tier
// would expire it too).
func (d *Daemon) canDrop(t *tierState, rec catalog.Record, now time.Time) (bool, error) {
	if f, ok, err := d.cfg.Catalog.Local(rec.Source, rec.Rel); err != nil {
		return false, err
	} else if ok && f.Sealed {
		return true, nil
	}
	holders, err := d.cfg.Catalog.Holders(rec.Source, rec.Rel)
	if err != nil {
		return false, err
	}
	d.mu.Lock()
	for _, r := range holders {
		if r.Tier != t.Name && r.Key == rec.Key && d.tier(r.Tier) != nil && !d.expiring(r.Tier, r.Key) {
			d.mu.Unlock()
			return true, nil
		}
	}
	d.mu.Unlock()
	age := now.Sub(rec.SegmentModTime)
	for _, u := range d.tiers {
		if u != t && (u.RetainFor <= 0 || age < u.RetainFor) {
			return false, nil
		}
	}
	return true, nil
}

// requiredTiers are the tiers that must hold a segment before its local file may be
// deleted: those due by LocalDeleteAfter, or the first tier if none is.
func (d *Daemon) requiredTiers() []*tierState {
	var out []*tierState
	for _, t := range d.tiers {
		if t.OffloadAfter <= d.cfg.LocalDeleteAfter {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		out = d.tiers[:1]
	}
	return out
}
