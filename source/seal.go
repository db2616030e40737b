package source

import (
	"fmt"
	"sync"
	"time"

	"github.com/tierd/tierd/segment"
)

// Pending is a candidate that is not sealed yet, and why.
type Pending struct {
	segment.Segment
	Why string
}

// Sealer decides which segments are sealed (docs/DESIGN.md invariant 1), from successive scans
// of the same sources. A segment is sealed only if
//
//	(a) its layout says the broker has moved past it (Candidate.Closed: a newer file of
//	    its sequence exists, or a RocketMQ IndexFile's header says it is full),
//	(b) its size and mtime are exactly those observed for the same path at the previous
//	    scan of the same root, and
//	(c) its mtime is at least seal_grace before now.
//
// A candidate that is not Closed is never returned as sealed, whatever it looked like
// before.
//
// A Sealer remembers, per scanned root, the size and mtime of every candidate of the last
// scan and nothing else: paths that a scan no longer lists are forgotten, so memory is
// bounded by the files on disk. Feed it every scan of a root, in order; one Sealer can
// serve several sources (they are told apart by ScanResult.Root).
//
// Concurrency: Observe may be called from several goroutines; calls are serialized.
type Sealer struct {
	grace time.Duration

	mu   sync.Mutex
	seen map[string]map[string]observation // root -> path -> last observation
}

type observation struct {
	size  int64
	mtime time.Time
}

// NewSealer returns a Sealer that wants segments to be at least grace old (seal_grace).
func NewSealer(grace time.Duration) (*Sealer, error) {
	if grace < 0 {
		return nil, fmt.Errorf("seal_grace %v is negative", grace)
	}
	return &Sealer{grace: grace, seen: map[string]map[string]observation{}}, nil
}

// Observe records the scan res, taken at now (the caller's clock, so tests can move it),
// and splits its candidates into sealed segments and pending ones with the reason. It
// returns every sealed segment each time, not only newly sealed ones, in scan order.
func (s *Sealer) Observe(res ScanResult, now time.Time) (sealed []segment.Segment, pending []Pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.seen[res.Root]
	cur := make(map[string]observation, len(prev))
	for _, seq := range res.Sequences {
		for _, c := range seq.Files {
			obs := observation{size: c.Size, mtime: c.ModTime}
			cur[c.Path] = obs
			if why := s.why(c, prev, obs, now); why != "" {
				pending = append(pending, Pending{Segment: c.Segment, Why: why})
				continue
			}
			sealed = append(sealed, c.Segment)
		}
	}
	s.seen[res.Root] = cur
	return sealed, pending
}

// why says why c is not sealed, or "" if it is.
func (s *Sealer) why(c Candidate, prev map[string]observation, obs observation, now time.Time) string {
	if !c.Closed {
		if c.Why == "" {
			return "not closed"
		}
		return c.Why
	}
	p, ok := prev[c.Path]
	switch age := now.Sub(c.ModTime); {
	case age < 0:
		return fmt.Sprintf("mtime %s is in the future (clock skew?)", c.ModTime.Format(time.RFC3339Nano))
	case !ok:
		return "first seen in this scan: sealed once unchanged at the next scan"
	case p.size != obs.size:
		return fmt.Sprintf("size changed since the last scan (%d -> %d bytes)", p.size, obs.size)
	case !p.mtime.Equal(obs.mtime):
		return fmt.Sprintf("modified since the last scan (mtime %s -> %s)",
			p.mtime.Format(time.RFC3339Nano), obs.mtime.Format(time.RFC3339Nano))
	case age < s.grace:
		return fmt.Sprintf("modified %v ago, less than seal_grace %v", age.Truncate(time.Millisecond), s.grace)
	}
	return ""
}
