package posix

import (
	"context"
	"slices"
	"sync"

	"github.com/tierd/tierd/segment"
)

var _ segment.GroupSyncer = (*Backend)(nil)

// dirSet collects the directories of objects committed through a Deferred view, whose
// fsync the view's Sync does once each.
type dirSet struct {
	mu   sync.Mutex
	dirs map[string]struct{}
}

// deferred is a Deferred view of a Backend.
type deferred struct {
	*Backend
}

// Deferred implements segment.GroupSyncer: a view whose Writers' Commit fsyncs the file
// and renames it into place, but leaves the fsync of its directory (what makes the new
// name durable) to Sync, which does it once per directory. A directory Create makes is
// still synced at once (rare: the first object of a directory).
func (b *Backend) Deferred() segment.DeferredBackend {
	v := *b
	v.pending = &dirSet{dirs: map[string]struct{}{}}
	return deferred{&v}
}

// Sync implements segment.DeferredBackend.
func (d deferred) Sync(ctx context.Context) error {
	p := d.pending
	p.mu.Lock()
	dirs := make([]string, 0, len(p.dirs))
	for dir := range p.dirs {
		dirs = append(dirs, dir)
	}
	p.mu.Unlock()
	slices.Sort(dirs)
	for _, dir := range dirs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := syncDir(dir); err != nil {
			return err
		}
		p.mu.Lock()
		delete(p.dirs, dir)
		p.mu.Unlock()
	}
	return nil
}

// deferDirSync records dir for the view's Sync; it reports false when b is not a view.
func (b *Backend) deferDirSync(dir string) bool {
	if b.pending == nil {
		return false
	}
	b.pending.mu.Lock()
	b.pending.dirs[dir] = struct{}{}
	b.pending.mu.Unlock()
	return true
}
