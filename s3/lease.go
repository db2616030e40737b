package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"time"

	"github.com/tierd/tierd/segment"
)

// DefaultLeaseTTL is how long a lease lasts without renewal; holders renew it every
// third of that.
const DefaultLeaseTTL = time.Minute

// ErrLeaseHeld is returned (wrapped in a *LeaseHeldError) when another holder's lease
// on the node is still live.
var ErrLeaseHeld = errors.New("lease held by another tierd")

// LeaseHeldError says who holds a node's lease and until when.
type LeaseHeldError struct {
	Node    string
	Holder  string
	Expires time.Time
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("node %s is held by another tierd (%s) until %s: two sidecars with the same node name would write the same keys; "+
		"stop the other one or give this one its own node name", e.Node, e.Holder, e.Expires.Format(time.RFC3339))
}

func (e *LeaseHeldError) Unwrap() error { return ErrLeaseHeld }

// LeaseHeld marks the error as "another installation holds the lease" for callers that
// fence on it (the daemon), as opposed to a store that could not be asked.
func (e *LeaseHeldError) LeaseHeld() bool { return true }

// Lease fences one node on this bucket: only the holder of the node's lease offloads.
// The lease is an object (<node>/_tierd/lease) written with S3 conditional writes: it is
// created with If-None-Match: * and renewed or taken over with If-Match on the ETag read,
// so of two tierds racing for it exactly one wins. A lease whose holder stopped renewing
// expires after its TTL and may then be taken over. Holders are installations (tierd's
// state_dir), not processes, so a tierd restarted after a crash takes its own lease back
// at once. Expiry is judged by the clocks of the hosts involved: keep them in sync (NTP)
// to well within the TTL.
//
// Methods are safe for concurrent use.
type Lease struct {
	b      *Backend
	node   string
	holder string
	ttl    time.Duration
	now    func() time.Time

	mu   sync.Mutex
	etag string // of the lease object as we last wrote it; "" when not held
}

type leaseDoc struct {
	V        int       `json:"v"`
	Node     string    `json:"node"`
	Holder   string    `json:"holder"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// Lease returns the fencing lease of node for holder (a stable id of this installation).
func (b *Backend) Lease(node, holder string, ttl time.Duration) *Lease {
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	return &Lease{b: b, node: node, holder: holder, ttl: ttl, now: time.Now}
}

// TTL is the lease's time to live; renew at least every third of it.
func (l *Lease) TTL() time.Duration { return l.ttl }

func (l *Lease) key() string {
	return l.b.object(segment.Key(l.node + "/" + segment.MarkerDir + "/lease"))
}

// Acquire takes the lease, renews it if held, or takes over an expired one. It fails
// with a *LeaseHeldError while another holder's lease is live.
func (l *Lease) Acquire(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acquire(ctx)
}

// Renew extends the lease. It fails with a *LeaseHeldError when another holder took it
// over (stop offloading), or with another error when the store did not answer (the
// lease stays ours until it expires).
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.etag != "" {
		now := l.now()
		tag, err := l.write(ctx, leaseDoc{V: 1, Node: l.node, Holder: l.holder, Acquired: now, Expires: now.Add(l.ttl)}, putCond{ifMatch: l.etag})
		if err == nil {
			l.etag = tag
			return nil
		}
		if k := l.b.d.classify(err); k != errChanged && k != errNotFound {
			return fmt.Errorf("renew lease of node %s: %w", l.node, err)
		}
		l.etag = "" // changed under us: see who has it now
	}
	return l.acquire(ctx)
}

// acquire does Acquire's work with l.mu held.
func (l *Lease) acquire(ctx context.Context) error {
	for range 3 { // a lost race means reading again
		cur, etag, err := l.read(ctx)
		if err != nil {
			return fmt.Errorf("read lease of node %s: %w", l.node, err)
		}
		now := l.now()
		cond := putCond{ifNoneMatch: true}
		acquired := now
		if cur != nil {
			if cur.Holder != l.holder && now.Before(cur.Expires) {
				l.etag = ""
				return &LeaseHeldError{Node: l.node, Holder: cur.Holder, Expires: cur.Expires}
			}
			cond = putCond{ifMatch: etag}
			if cur.Holder == l.holder {
				acquired = cur.Acquired
			}
		}
		tag, err := l.write(ctx, leaseDoc{V: 1, Node: l.node, Holder: l.holder, Acquired: acquired, Expires: now.Add(l.ttl)}, cond)
		if k := l.b.d.classify(err); k == errChanged || (k == errNotFound && cur != nil) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write lease of node %s: %w", l.node, err)
		}
		l.etag = tag
		return nil
	}
	return fmt.Errorf("lease of node %s: lost the race for it three times in a row", l.node)
}

// Release gives the lease up (deletes it) if this holder has it.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.etag == "" {
		return nil
	}
	cur, _, err := l.read(ctx)
	if err != nil || cur == nil || cur.Holder != l.holder {
		l.etag = ""
		return err
	}
	l.etag = ""
	if err := l.b.d.delete(ctx, l.key()); err != nil && l.b.d.classify(err) != errNotFound {
		return fmt.Errorf("release lease of node %s: %w", l.node, err)
	}
	return nil
}

// read returns the lease document and its ETag, or nil when there is none.
func (l *Lease) read(ctx context.Context) (*leaseDoc, string, error) {
	for range 3 { // replaced between HEAD and GET: read the new one
		info, err := l.b.d.head(ctx, l.key())
		if l.b.d.classify(err) == errNotFound {
			return nil, "", nil
		}
		if err != nil {
			return nil, "", err
		}
		if info.size > 64<<10 {
			return nil, "", fmt.Errorf("lease object is %d bytes: not a tierd lease", info.size)
		}
		rc, err := l.b.d.getRange(ctx, l.key(), info.etag, 0, info.size)
		if k := l.b.d.classify(err); k == errNotFound || k == errChanged {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		data, err := io.ReadAll(io.LimitReader(rc, 64<<10))
		rc.Close()
		if err != nil {
			return nil, "", err
		}
		var doc leaseDoc
		if err := json.Unmarshal(data, &doc); err != nil || doc.V != 1 || doc.Holder == "" {
			return nil, "", fmt.Errorf("lease object is not a tierd lease (%d bytes)", len(data))
		}
		return &doc, info.etag, nil
	}
	return nil, "", fmt.Errorf("lease object keeps changing while it is read")
}

func (l *Lease) write(ctx context.Context, doc leaseDoc, cond putCond) (string, error) {
	data, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	body := newPartBody(ctx, bytes.NewReader(data), 0, int64(len(data)), nil, &l.b.read)
	return l.b.d.put(ctx, l.key(), body, crc32.Checksum(data, segment.Castagnoli), cond)
}
