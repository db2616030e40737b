package daemon

import (
	"fmt"
	"strings"
	"time"
)

// Status is what /status serves and `tierd status` prints.
type Status struct {
	Node    string    `json:"node"`
	Version string    `json:"version,omitempty"`
	Started time.Time `json:"started"`
	Ready   bool      `json:"ready"`
	Reasons []string  `json:"not_ready_reasons,omitempty"`
	// RecoveryPending counts the previous run's interrupted jobs not settled yet and the
	// tiers not reconciled yet after a crash (their store has not answered yet).
	RecoveryPending int            `json:"recovery_pending"`
	Sources         []SourceStatus `json:"sources"`
	Tiers           []TierStatus   `json:"tiers"`
	Pool            PoolStatus     `json:"pool"`
}

// SourceStatus describes one source at its last scan.
type SourceStatus struct {
	Name      string    `json:"name"`
	Root      string    `json:"path"`
	LastScan  time.Time `json:"last_scan"`
	Sealed    int       `json:"sealed"`
	Unsealed  int       `json:"unsealed"`
	Skipped   int       `json:"skipped_files"`
	ScanError string    `json:"scan_error,omitempty"`
}

// TierStatus describes one tier.
type TierStatus struct {
	Name      string  `json:"name"`
	Type      string  `json:"type"`
	Paused    bool    `json:"paused"`
	UsedRatio float64 `json:"used_ratio,omitempty"`
	Failing   bool    `json:"failing"`
	// Fenced is true while the tier is not written to because of the node's lease:
	// another installation holds it, or the store could not be asked for it in time.
	Fenced    bool   `json:"fenced"`
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	InFlight    int       `json:"jobs_in_flight"`
	// Due counts sealed segments due on this tier and not there yet; OldestDueSeconds is
	// the age of the oldest of them (the lag).
	Due              int     `json:"due"`
	OldestDueSeconds float64 `json:"oldest_due_seconds"`
	// Segments and Bytes were offloaded by this run; Expired objects deleted by retention.
	Segments int64 `json:"segments_offloaded"`
	Bytes    int64 `json:"bytes_offloaded"`
	Expired  int64 `json:"objects_expired"`
}

// PoolStatus is the buffer pool's state.
type PoolStatus struct {
	Buffers     int64   `json:"buffers"`
	BufferBytes int64   `json:"buffer_bytes"`
	InUse       int64   `json:"in_use"`
	Waits       int64   `json:"waits"`
	WaitSeconds float64 `json:"wait_seconds"`
}

// Status returns the daemon's current status.
func (d *Daemon) Status() Status {
	now := d.cfg.Now()
	d.mu.Lock()
	st := Status{Node: d.cfg.Node, Version: d.cfg.Version, Started: d.started, Ready: d.ready && !d.stopping}
	if !d.ready {
		st.Reasons = append(st.Reasons, "starting: recovering from the previous run")
	}
	if d.stopping {
		st.Reasons = append(st.Reasons, "stopping")
	}
	st.RecoveryPending = len(d.unsettled) + len(d.unreconciled)
	if d.ready && st.RecoveryPending > 0 {
		st.Ready = false
		st.Reasons = append(st.Reasons, fmt.Sprintf("recovering from the previous run: %d interrupted jobs to settle, tiers to reconcile: [%s] (waiting for their stores; the other tiers offload)",
			len(d.unsettled), strings.Join(sortedKeys(d.unreconciled), " ")))
	}
	for _, name := range sortedKeys(d.sources) {
		s := d.sources[name]
		ss := SourceStatus{Name: s.Name, Root: s.Root, LastScan: s.lastScan, Sealed: s.sealed, Unsealed: s.pending, Skipped: s.skipped}
		if s.scanErr != nil {
			ss.ScanError = s.scanErr.Error()
			st.Ready = false
			st.Reasons = append(st.Reasons, "source "+s.Name+" cannot be scanned: "+ss.ScanError)
		}
		st.Sources = append(st.Sources, ss)
	}
	d.mu.Unlock()
	for _, t := range d.tiers {
		t.mu.Lock()
		ts := TierStatus{
			Name: t.Name, Type: t.Type, Paused: t.paused, UsedRatio: t.usedRatio, Failing: t.failing,
			LastError: t.lastErr, LastErrorAt: t.lastErrAt, InFlight: t.inFlight, Due: t.due,
			Segments: t.segments, Bytes: t.bytes, Expired: t.expired,
		}
		if !t.oldestDue.IsZero() {
			ts.OldestDueSeconds = now.Sub(t.oldestDue).Seconds()
		}
		t.mu.Unlock()
		ts.Fenced = t.fenced(now)
		if r := t.fenceReason(now); r != "" {
			st.Ready = false
			st.Reasons = append(st.Reasons, r)
		}
		if ts.Failing {
			st.Ready = false
			st.Reasons = append(st.Reasons, "tier "+t.Name+" is failing: "+ts.LastError)
		}
		if ts.Paused {
			st.Reasons = append(st.Reasons, "tier "+t.Name+" is paused: filesystem too full")
		}
		st.Tiers = append(st.Tiers, ts)
	}
	ps := d.cfg.Pool.Stats()
	st.Pool = PoolStatus{Buffers: ps.Capacity, BufferBytes: ps.BufferSize, InUse: ps.InUse, Waits: ps.Waits, WaitSeconds: ps.WaitTime.Seconds()}
	return st
}
