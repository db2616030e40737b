package daemon

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
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
}

// localTier names local-file jobs in job ids.
const localTier = "local"

func (j due) id() jobID {
	if j.tier == nil {
		return jobID{localTier, j.key}
	}
	return jobID{j.tier.Name, j.key}
}

// known is one segment tierd knows of: sealed on local disk, held by tiers, or both.
type known struct {
	key   segment.Key
	local *segment.Segment
	recs  map[string]catalog.Record // by tier
	mtime time.Time
}

// gather merges the last scan's sealed segments with the catalog's records by key, oldest
// first, so that segments whose local file is gone (deleted by policy or by the broker)
// still move down the tiers and expire.
func (d *Daemon) gather() ([]*known, error) {
	d.mu.Lock()
	sealed := d.sealed
	d.mu.Unlock()
	byKey := map[segment.Key]*known{}
	for i := range sealed {
		seg := &sealed[i]
		key, err := d.segmentKey(*seg)
		if err != nil {
			continue
		}
		byKey[key] = &known{key: key, local: seg, recs: map[string]catalog.Record{}, mtime: seg.ModTime}
	}
	recs, err := d.cfg.Catalog.List("")
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	for _, r := range recs {
		if d.tier(r.Tier) == nil {
			continue
		}
		k := byKey[r.Key]
		if k == nil {
			k = &known{key: r.Key, recs: map[string]catalog.Record{}, mtime: r.SegmentModTime}
			byKey[r.Key] = k
		}
		k.recs[r.Tier] = r
	}
	out := make([]*known, 0, len(byKey))
	for _, k := range byKey {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b *known) int {
		return cmp.Or(a.mtime.Compare(b.mtime), cmp.Compare(a.key, b.key))
	})
	return out, nil
}

// plan is the policy's verdict at one moment.
type plan struct {
	jobs []due
	// per tier: copies due now, and how late the oldest is
	dueCount  map[string]int
	oldestDue map[string]time.Time
	// later: sealed segments a tier will want once offload_after has passed
	later map[string][]DueLater
	// present: segments a tier holds
	present map[string]int
}

// policy decides, for every known segment and tier, what should happen now: copies to
// tiers it is due on (from the local file while it exists, else from the hottest tier
// holding it), expiry from tiers by retain_for and max_bytes (never the last copy a
// colder tier still wants), and deletion of local files every required tier holds.
func (d *Daemon) policy(now time.Time) (plan, error) {
	items, err := d.gather()
	if err != nil {
		return plan{}, err
	}
	p := plan{dueCount: map[string]int{}, oldestDue: map[string]time.Time{}, later: map[string][]DueLater{}, present: map[string]int{}}
	expiring := map[jobID]bool{}
	var copies, expires, deletes []due
	for _, t := range d.tiers {
		var held int64
		for _, k := range items {
			age := now.Sub(k.mtime)
			if rec, ok := k.recs[t.Name]; ok {
				p.present[t.Name]++
				if t.RetainFor > 0 && age >= t.RetainFor && d.canDrop(k, t, now, expiring) {
					expiring[jobID{t.Name, k.key}] = true
					expires = append(expires, due{kind: jobExpire, tier: t, key: k.key, rec: rec, mtime: k.mtime, why: "retain_for"})
				} else {
					held += rec.Size
				}
				continue
			}
			if age < t.OffloadAfter {
				if k.local != nil {
					p.later[t.Name] = append(p.later[t.Name], DueLater{Path: k.local.Path, Due: k.mtime.Add(t.OffloadAfter)})
				}
				continue
			}
			if t.RetainFor > 0 && age >= t.RetainFor {
				continue // it would expire at once
			}
			j := due{kind: jobCopy, tier: t, key: k.key, seg: k.local, mtime: k.mtime}
			if k.local == nil {
				j.from = d.hottestHolder(k, t, expiring)
				if j.from == nil {
					continue
				}
				j.rec = k.recs[j.from.Name]
			}
			copies = append(copies, j)
			p.dueCount[t.Name]++
			if o := p.oldestDue[t.Name]; o.IsZero() || k.mtime.Before(o) {
				p.oldestDue[t.Name] = k.mtime
			}
		}
		// max_bytes: expire the oldest until the tier fits, keeping last copies.
		for _, k := range items {
			if t.MaxBytes <= 0 || held <= t.MaxBytes {
				break
			}
			rec, ok := k.recs[t.Name]
			if !ok || expiring[jobID{t.Name, k.key}] || !d.canDrop(k, t, now, expiring) {
				continue
			}
			expiring[jobID{t.Name, k.key}] = true
			expires = append(expires, due{kind: jobExpire, tier: t, key: k.key, rec: rec, mtime: k.mtime, why: "max_bytes"})
			held -= rec.Size
		}
	}
	if d.cfg.LocalDelete {
		required := d.requiredTiers()
		for _, k := range items {
			if k.local == nil || now.Sub(k.mtime) < d.cfg.LocalDeleteAfter {
				continue
			}
			ok := true
			for _, t := range required {
				if _, held := k.recs[t.Name]; !held || expiring[jobID{t.Name, k.key}] {
					ok = false
				}
			}
			if ok {
				deletes = append(deletes, due{kind: jobDeleteLocal, key: k.key, seg: k.local, mtime: k.mtime, rec: k.recs[required[0].Name], why: "delete_after"})
			}
		}
	}
	p.jobs = slices.Concat(copies, deletes, expires)
	return p, nil
}

// canDrop reports whether t may delete its copy of k: the local file still exists,
// another tier holds a copy that is not expiring, or no other tier will want it (every
// other tier would expire it too).
func (d *Daemon) canDrop(k *known, t *tierState, now time.Time, expiring map[jobID]bool) bool {
	if k.local != nil {
		return true
	}
	for _, u := range d.tiers {
		if u == t {
			continue
		}
		if _, ok := k.recs[u.Name]; ok && !expiring[jobID{u.Name, k.key}] {
			return true
		}
	}
	age := now.Sub(k.mtime)
	for _, u := range d.tiers {
		if u != t && (u.RetainFor <= 0 || age < u.RetainFor) {
			return false
		}
	}
	return true
}

// hottestHolder is the first tier (in configuration order: hot to cold) other than t
// that holds k and is not expiring it.
func (d *Daemon) hottestHolder(k *known, t *tierState, expiring map[jobID]bool) *tierState {
	for _, u := range d.tiers {
		if _, ok := k.recs[u.Name]; ok && u != t && !expiring[jobID{u.Name, k.key}] {
			return u
		}
	}
	return nil
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

// errNoHolder is returned by a copy from a tier when no tier holds the segment any more.
var errNoHolder = errors.New("no tier holds the segment")
