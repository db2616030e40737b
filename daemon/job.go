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
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/segment"
)

// errSkip marks failures that retrying cannot fix: the local file changed or is not what
// its name says. The segment is left alone (and logged) instead of retried.
var errSkip = errors.New("segment skipped")

// offload copies one sealed segment to one tier, journaled end to end. It returns the
// catalog record on success. On failure nothing is visible on the tier under the
// segment's key that the catalog does not vouch for.
func (d *Daemon) offload(ctx context.Context, seg segment.Segment, t *tierState, progress func(int64)) (catalog.Record, error) {
	key, err := seg.Key(d.cfg.Node)
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
	src, err := posix.OpenFile(seg.Path, posix.ReadOptions{Direct: d.sources[seg.Source].ReadDirect})
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
	w, err := t.Backend.Create(ctx, key, seg.Size)
	if err != nil {
		return catalog.Record{}, fmt.Errorf("create %s: %w", key, err)
	}
	var from io.ReaderAt = src
	if progress != nil {
		from = progressReader{src, progress}
	}
	crc, err := segment.Copy(ctx, w, from, seg.Size, d.cfg.Pool)
	if err == nil {
		err = w.Commit(ctx)
	}
	if err != nil {
		if aerr := w.Abort(); aerr != nil {
			d.log.Warn("abort write", zap.Stringer("key", key), zap.Error(aerr))
		}
		if errors.Is(err, segment.ErrSourceChanged) {
			return catalog.Record{}, fmt.Errorf("%w: %s: %v", errSkip, seg.Path, err)
		}
		return catalog.Record{}, fmt.Errorf("copy %s to %s: %w", seg.Path, key, err)
	}
	// The broker may have rewritten the file while it was copied (an unclean recovery
	// truncating it, say): then the copy is of no known state and must go.
	if fi, err := os.Stat(seg.Path); err == nil && (fi.Size() != seg.Size || !fi.ModTime().Equal(seg.ModTime)) {
		d.discard(t, key)
		return catalog.Record{}, fmt.Errorf("%w: %s was modified while it was copied", errSkip, seg.Path)
	}
	rec := catalog.Record{
		Tier: t.Name, Key: key, Source: seg.Source, Rel: seg.Rel, Kind: string(seg.Kind), Format: catalog.FormatRaw,
		Size: seg.Size, CRC32C: crc, LocalSize: seg.Size, LocalCRC32C: crc,
		SegmentModTime: seg.ModTime, OffloadedAt: d.cfg.Now(),
	}
	if err := d.verify(ctx, t, rec); err != nil {
		d.discard(t, key)
		return catalog.Record{}, err
	}
	rec.Verified = rec.OffloadedAt
	if err := d.cfg.Catalog.WriteMarker(ctx, t.Backend, rec); err != nil {
		return catalog.Record{}, err
	}
	if err := d.cfg.Catalog.Commit(rec, intentID); err != nil {
		return catalog.Record{}, fmt.Errorf("record %s in catalog: %w", key, err)
	}
	return rec, nil
}

// verify checks the committed object against what was written.
func (d *Daemon) verify(ctx context.Context, t *tierState, rec catalog.Record) error {
	info, err := t.Backend.Stat(ctx, rec.Key)
	if err != nil {
		return fmt.Errorf("verify %s: %w", rec.Key, err)
	}
	if info.Size != rec.Size || info.CRC32C != rec.CRC32C {
		return fmt.Errorf("verify %s: tier has %d bytes with CRC-32C %08x, wrote %d bytes with CRC-32C %08x",
			rec.Key, info.Size, info.CRC32C, rec.Size, rec.CRC32C)
	}
	return nil
}

// discard deletes an object the catalog does not (and must not) vouch for, with a
// context of its own: it runs on failure paths, where ctx may be done.
func (d *Daemon) discard(t *tierState, key segment.Key) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
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
