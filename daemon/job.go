package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/compactor"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/internal/failpoint"
	"github.com/tierd/tierd/localfile"
	"github.com/tierd/tierd/segment"
)

// errSkip marks failures that retrying cannot fix: the local file changed or is not what
// its name says. The segment is left alone (and logged) instead of retried.
var errSkip = errors.New("segment skipped")

// offload copies one sealed segment to one tier, journaled end to end. It returns the
// catalog record on success. On failure nothing is visible on the tier under the
// segment's key that the catalog does not vouch for.
func (d *Daemon) offload(ctx context.Context, seg segment.Segment, t *tierState, progress func(int64)) (catalog.Record, error) {
	key, _, err := d.segmentKey(seg)
	if err != nil {
		return catalog.Record{}, fmt.Errorf("%w: %v", errSkip, err)
	}
	intent, err := d.cfg.Catalog.Begin(catalog.Intent{Tier: t.Name, Key: key, Source: seg.Source, Rel: seg.Rel, Kind: string(seg.Kind), Op: catalog.OpOffload})
	if err != nil {
		return catalog.Record{}, fmt.Errorf("journal intent: %w", err)
	}
	id := jobID{t.Name, key}
	d.mu.Lock()
	d.intents[id] = intent.ID
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.intents, id)
		d.mu.Unlock()
	}()
	rec, err := d.transfer(ctx, seg, t, key, intent.ID, progress)
	if err != nil {
		if ferr := d.cfg.Catalog.Finish(intent.ID); ferr != nil {
			d.log.Error("clear intent", zap.Uint64("intent", intent.ID), zap.Error(ferr))
		}
		return catalog.Record{}, err
	}
	return rec, nil
}

// transfer does the work of offload after the intent is journaled; it commits the catalog
// record together with clearing the intent.
func (d *Daemon) transfer(ctx context.Context, seg segment.Segment, t *tierState, key segment.Key, intentID uint64, progress func(int64)) (catalog.Record, error) {
	rec, err := d.copyOut(ctx, seg, t, t.Backend, key, progress)
	if err != nil {
		return catalog.Record{}, err
	}
	if err := d.cfg.Catalog.WriteMarker(ctx, t.Backend, rec); err != nil {
		d.discard(t, key)
		return catalog.Record{}, err
	}
	failpoint.Hit("daemon.marked")
	if err := d.cfg.Catalog.Commit(rec, intentID); err != nil {
		d.discard(t, key)
		return catalog.Record{}, fmt.Errorf("record %s in catalog: %w", key, err)
	}
	return rec, nil
}

// copyOut copies seg to b (t's backend, or a deferred view of it for a batch) under key,
// commits and verifies it, and returns its record (neither marked nor recorded yet). What
// it writes depends on the kind: an IndexFile compacted (catalog.FormatTix), a Kafka
// offset or time index without its preallocated tail (catalog.FormatTrimmed), anything
// else byte for byte. On failure nothing it wrote is left on the tier.
func (d *Daemon) copyOut(ctx context.Context, seg segment.Segment, t *tierState, b segment.Backend, key segment.Key, progress func(int64)) (catalog.Record, error) {
	source := d.sources[seg.Source]
	opts := localfile.ReadOptions{Direct: source.ReadDirect}
	if seg.Kind.Compactable() {
		// Several passes: keep the items in the page cache until the end, read the rest
		// around it where O_DIRECT works.
		opts = localfile.ReadOptions{Direct: true, DropAtClose: true}
	}
	src, err := localfile.Open(ctx, seg.Path, opts)
	if errors.Is(err, fs.ErrNotExist) {
		return catalog.Record{}, fmt.Errorf("%w: %s vanished before it could be read", errSkip, seg.Path)
	}
	if err != nil {
		return catalog.Record{}, fmt.Errorf("open %s: %w", seg.Path, err)
	}
	defer src.Close()
	if src.Size() != seg.Size {
		return catalog.Record{}, fmt.Errorf("%w: %s changed size since it was sealed (%d -> %d bytes)", errSkip, seg.Path, seg.Size, src.Size())
	}
	rec, w, err := d.write(ctx, seg, source, d.paced(ctx, src), b, key, progress)
	if err == nil {
		err = w.Commit(ctx)
	}
	if err != nil {
		if w != nil {
			if aerr := w.Abort(); aerr != nil {
				d.log.Warn("abort write", zap.Stringer("key", key), zap.Error(aerr))
			}
		}
		switch {
		case errors.Is(err, segment.ErrSourceChanged):
			return catalog.Record{}, fmt.Errorf("%w: %s: %v", errSkip, seg.Path, err)
		case errors.Is(err, index.ErrCorruptIndex):
			return catalog.Record{}, fmt.Errorf("%w: %s is not a valid %s, so it cannot be offloaded (compare the source's index settings with the broker's): %v", errSkip, seg.Path, seg.Kind, err)
		}
		return catalog.Record{}, fmt.Errorf("copy %s to %s: %w", seg.Path, key, err)
	}
	failpoint.Hit("daemon.committed")
	// The broker may have rewritten the file while it was copied (an unclean recovery
	// truncating it, say): then the copy is of no known state and must go.
	if fi, err := os.Stat(seg.Path); err == nil && (fi.Size() != seg.Size || !fi.ModTime().Equal(seg.ModTime)) {
		d.discard(t, key)
		return catalog.Record{}, fmt.Errorf("%w: %s was modified while it was copied", errSkip, seg.Path)
	}
	rec.Tier, rec.Key, rec.Source, rec.Rel, rec.Kind = t.Name, key, seg.Source, seg.Rel, string(seg.Kind)
	rec.SegmentModTime, rec.OffloadedAt = seg.ModTime, d.cfg.Now()
	if v := segment.KeyVersion(key); v >= 2 { // a later version of a rewritten file
		rec.Version = v
	}
	if err := d.verify(ctx, t, rec); err != nil {
		d.discard(t, key)
		return catalog.Record{}, err
	}
	rec.Verified = rec.OffloadedAt
	failpoint.Hit("daemon.verified")
	return rec, nil
}

// write streams seg from src into a new object under key on b, in the form its kind is
// stored in, and returns the record's format, sizes and checksums, and the Writer (nil if
// none was created), which the caller commits or aborts.
func (d *Daemon) write(ctx context.Context, seg segment.Segment, source *sourceState, src io.ReaderAt, b segment.Backend, key segment.Key, progress func(int64)) (catalog.Record, segment.Writer, error) {
	var w segment.Writer
	create := func(size int64) (segment.Writer, error) {
		var err error
		if w, err = b.Create(ctx, key, size); err != nil {
			return nil, fmt.Errorf("create %s: %w", key, err)
		}
		failpoint.Hit("daemon.created")
		return w, nil
	}
	switch {
	case seg.Kind.Compactable():
		start := time.Now()
		res, err := compactor.Compact(ctx, src, seg.Size, compactor.Options{
			Slots: source.IndexSlots, Items: source.IndexItems, Pool: d.cfg.Pool, Progress: scaledProgress(seg.Size, progress),
		}, create)
		if err != nil {
			return catalog.Record{}, w, err
		}
		d.log.Info("compacted index file", zap.String("segment", seg.Path), zap.Stringer("key", key), zap.Int("items", res.Entries),
			zap.Int64("bytes", res.Size), zap.Int64("local_bytes", res.LocalSize), zap.Int("passes", res.Passes), zap.Duration("took", time.Since(start)))
		return catalog.Record{Format: catalog.FormatTix, Size: res.Size, CRC32C: res.CRC32C, LocalSize: res.LocalSize, LocalCRC32C: res.LocalCRC32C}, w, nil
	case compactor.Trimmable(seg.Kind):
		res, err := compactor.Trim(ctx, src, seg.Size, seg.Kind, d.cfg.Pool, create)
		if err != nil {
			return catalog.Record{}, w, err
		}
		if progress != nil {
			progress(seg.Size)
		}
		return catalog.Record{Format: catalog.FormatTrimmed, Size: res.Size, CRC32C: res.CRC32C, LocalSize: res.LocalSize, LocalCRC32C: res.LocalCRC32C}, w, nil
	}
	if _, err := create(seg.Size); err != nil {
		return catalog.Record{}, nil, err
	}
	from := progressReader{src, func(n int64) {
		failpoint.Hit("daemon.read_chunk") // after each chunk read from the local file
		if progress != nil {
			progress(n)
		}
	}}
	crc, err := segment.Copy(ctx, w, from, seg.Size, d.cfg.Pool)
	if err != nil {
		return catalog.Record{}, w, err
	}
	return catalog.Record{Format: catalog.FormatRaw, Size: seg.Size, CRC32C: crc, LocalSize: seg.Size, LocalCRC32C: crc}, w, nil
}

// scaledProgress turns a compaction's progress (bytes read of a total that spans several
// passes) into increments of size, the segment's size, which is what progress reports
// count to. nil stays nil.
func scaledProgress(size int64, progress func(int64)) func(done, total int64) {
	if progress == nil {
		return nil
	}
	var reported int64
	return func(done, total int64) {
		if total <= 0 {
			return
		}
		now := min(size, int64(float64(size)*float64(done)/float64(total)))
		if now > reported {
			progress(now - reported)
			reported = now
		}
	}
}

// verify checks the committed object against what was written. A Stat that fails (an
// object store's stale 404 right after a commit, a 503) is tried again, with backoff, up
// to verifyTries times before the object is called missing: deciding on the first answer
// deleted new objects and uploaded them again.
func (d *Daemon) verify(ctx context.Context, t *tierState, rec catalog.Record) error {
	var info segment.Info
	var err error
	for try := 1; ; try++ {
		if info, err = t.Backend.Stat(ctx, rec.Key); err == nil || try == verifyTries || ctx.Err() != nil {
			break
		}
		d.log.Info("verify: the tier did not confirm the object yet; asking again", zap.String("tier", t.Name),
			zap.Stringer("key", rec.Key), zap.Int("try", try), zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(verifyBackoff << (try - 1)):
		}
	}
	if err != nil {
		return fmt.Errorf("verify %s: %w", rec.Key, err)
	}
	if info.Size != rec.Size || info.CRC32C != rec.CRC32C {
		return fmt.Errorf("verify %s: tier has %d bytes with CRC-32C %08x, wrote %d bytes with CRC-32C %08x",
			rec.Key, info.Size, info.CRC32C, rec.Size, rec.CRC32C)
	}
	return nil
}

// A verify's Stat is tried verifyTries times, verifyBackoff apart, doubled each time
// (about 3 s in all).
const (
	verifyTries   = 6
	verifyBackoff = 100 * time.Millisecond
)

// discard deletes an object the catalog does not (and must not) vouch for, and its
// marker if one was written (marker first, as always), with a context of its own: it runs
// on failure paths, where ctx may be done.
func (d *Daemon) discard(t *tierState, key segment.Key) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.cfg.Catalog.DeleteMarker(ctx, t.Backend, key); err != nil {
		d.log.Error("delete the marker of an unrecorded object", zap.String("tier", t.Name), zap.Stringer("key", key), zap.Error(err))
		return // the object stays, its marker vouching for it: a rebuild or a later offload settles it
	}
	if err := t.Backend.Delete(ctx, key); err != nil {
		d.log.Error("delete unverified object", zap.String("tier", t.Name), zap.Stringer("key", key), zap.Error(err))
	}
}

// NoteUpload journals the upload id of a running job's multipart upload, so that a crash
// leaves enough behind to abort it (wired to the s3 tier's OnUpload).
func (d *Daemon) NoteUpload(tier string, key segment.Key, uploadID string) {
	d.mu.Lock()
	id, ok := d.intents[jobID{tier, key}]
	d.mu.Unlock()
	if !ok {
		return // not a journaled job (a marker object, say)
	}
	if err := d.cfg.Catalog.SetUploadID(id, uploadID); err != nil {
		d.log.Error("journal upload id", zap.String("tier", tier), zap.Stringer("key", key), zap.Error(err))
	}
}

// progressReader reports the bytes read through it.
type progressReader struct {
	r  io.ReaderAt
	fn func(int64)
}

func (p progressReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.r.ReadAt(b, off)
	p.fn(int64(n))
	return n, err
}

// paced wraps a reader of the broker's disk with the adaptive pacer, if there is one.
func (d *Daemon) paced(ctx context.Context, r io.ReaderAt) io.ReaderAt {
	if d.cfg.Pacer == nil {
		return r
	}
	return pacedReader{ctx: ctx, r: r, p: d.cfg.Pacer}
}

type pacedReader struct {
	ctx context.Context
	r   io.ReaderAt
	p   Pacer
}

func (p pacedReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.r.ReadAt(b, off)
	if werr := p.p.WaitN(p.ctx, n); werr != nil && err == nil {
		err = werr
	}
	return n, err
}
