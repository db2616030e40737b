package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Reap aborts the incomplete multipart uploads under the node's prefix
// ("<prefix>/<node>/") that were started more than olderThan ago (0: all of them), and
// retries every abort of this process's Writers that failed. It returns how many uploads
// it aborted. The uploads of this Backend's Writers that are still open are left alone
// whatever their age, so a running daemon may reap.
//
// An object whose CreateMultipartUpload failed in this process may have an upload the
// server created but whose reply was lost (an outage): Reap lists that object's uploads by
// its whole name and aborts, whatever their age, those no open Writer of this Backend
// owns. (The node's lease makes this process the only writer under the node prefix; a
// Writer of the same object that is inside CreateMultipartUpload at that moment would
// lose its upload and fail, to be retried, never to commit a torn object.)
//
// It lists uploads both by the node prefix (S3) and bucket-wide, filtered here, because
// MinIO lists a prefix's uploads only when the prefix is a whole object name and lists
// bucket-wide only the uploads it has seen since it started. An upload MinIO lost track
// of in a restart is therefore found only through the journal (AbortUpload), by the name
// of an object whose upload creation failed (below), or by MinIO's own stale-upload
// cleanup (api.stale_uploads_expiry, 24h by default).
func (b *Backend) Reap(ctx context.Context, olderThan time.Duration) (aborted int, err error) {
	if olderThan < 0 {
		return 0, fmt.Errorf("reap: negative age %s", olderThan)
	}
	cutoff := time.Now().Add(-olderThan)
	var errs []error
	abort := func(u upload, why string) {
		if err := b.d.abort(ctx, u.key, u.id); err != nil {
			if k := b.d.classify(err); k != errNoUpload && k != errNotFound {
				errs = append(errs, fmt.Errorf("abort upload %s of %s: %w", u.id, u.key, err))
				return
			}
		} else {
			aborted++
			b.log.Info("reaped a multipart upload", zap.String("object", u.key), zap.String("upload_id", u.id),
				zap.Time("initiated", u.initiated), zap.String("why", why))
		}
		b.mu.Lock()
		delete(b.orphans, u)
		b.mu.Unlock()
	}

	b.mu.Lock()
	orphans := make([]upload, 0, len(b.orphans))
	for u := range b.orphans {
		orphans = append(orphans, u)
	}
	b.mu.Unlock()
	seen := map[string]bool{}
	for _, u := range orphans {
		seen[u.id] = true
		abort(u, "its writer's abort failed")
	}

	b.mu.Lock()
	unsure := make([]string, 0, len(b.unsure))
	for obj := range b.unsure {
		unsure = append(unsure, obj)
	}
	b.mu.Unlock()
	for _, obj := range unsure {
		n, err := b.settleUnsure(ctx, obj)
		aborted += n
		if err != nil {
			errs = append(errs, err)
		}
	}

	// Uploads of the objects written since the last Reap, by name, whatever their age: an
	// SDK retry of a creation whose reply was lost leaves an upload nobody knows the id of.
	b.mu.Lock()
	recent := make([]string, 0, len(b.recent))
	for obj := range b.recent {
		if b.writing[obj] == 0 {
			recent = append(recent, obj)
		}
	}
	b.mu.Unlock()
	for _, obj := range recent {
		n, err := b.abortAllOf(ctx, obj)
		aborted += n
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.mu.Lock()
		if b.writing[obj] == 0 {
			delete(b.recent, obj)
		}
		b.mu.Unlock()
	}

	nodePrefix := b.prefix + b.node + "/"
	for _, listPrefix := range []string{nodePrefix, ""} {
		var stale []upload
		err := b.d.listUploads(ctx, listPrefix, func(u upload) error {
			if !strings.HasPrefix(u.key, nodePrefix) || seen[u.id] || b.isLive(u.id) {
				return nil
			}
			seen[u.id] = true
			if u.initiated.Before(cutoff) {
				stale = append(stale, u)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("list multipart uploads under %q: %w", listPrefix, err))
		}
		for _, u := range stale {
			abort(u, "older than "+olderThan.String())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return aborted, fmt.Errorf("reap: %w", err)
	}
	return aborted, nil
}
