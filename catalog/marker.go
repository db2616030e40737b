package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/tierd/tierd/segment"
)

// rebuildParallelism is how many markers Rebuild checks at once.
const rebuildParallelism = 8

// errMarkerTooLarge means an object under the marker prefix is too large to be a marker.
var errMarkerTooLarge = fmt.Errorf("not a marker: more than %d bytes", MaxMarkerSize)

// markerDir is where marker objects live under a node's prefix.
const markerDir = reservedSource + "/markers/"

// MarkerPrefix is the key prefix of every marker object of node: "<node>/_tierd/markers/".
func MarkerPrefix(node string) segment.Key {
	return segment.Key(node + "/" + markerDir)
}

// MarkerKey is the key of the marker object of objectKey, an object of node
// ("<node>/<source>/<rel>[.tix]"): "<node>/_tierd/markers/<source>/<rel>[.tix].json".
// It fails if objectKey is not under "<node>/", is itself under "<node>/_tierd/", or if
// the marker key would be longer than segment.MaxKeyLen.
func MarkerKey(node string, objectKey segment.Key) (segment.Key, error) {
	if err := checkNodeOrSource("node", node); err != nil {
		return "", fmt.Errorf("marker key: %w", err)
	}
	if err := objectKey.Valid(); err != nil {
		return "", fmt.Errorf("marker key: %w", err)
	}
	rest, ok := strings.CutPrefix(string(objectKey), node+"/")
	if !ok {
		return "", fmt.Errorf("marker key of %s: object is not under node %q", objectKey, node)
	}
	if rest == reservedSource || strings.HasPrefix(rest, reservedSource+"/") {
		return "", fmt.Errorf("marker key of %s: object is in tierd's own namespace", objectKey)
	}
	k, err := segment.ParseKey(string(MarkerPrefix(node)) + rest + ".json")
	if err != nil {
		return "", fmt.Errorf("marker key of %s: %w", objectKey, err)
	}
	return k, nil
}

// WriteMarker stores rec's marker object on b, the tier rec.Key is on, under
// MarkerKey(c.Node(), rec.Key). The pipeline calls it after the object is committed and
// verified, and before Commit: a marker therefore only ever names an object that was
// complete. It writes a few hundred bytes in one Write; call it holding no pool buffer.
func (c *Catalog) WriteMarker(ctx context.Context, b segment.Backend, rec Record) error {
	data, err := EncodeMarker(rec)
	if err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	mk, err := MarkerKey(c.node, rec.Key)
	if err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	w, err := b.Create(ctx, mk, int64(len(data)))
	if err != nil {
		return fmt.Errorf("write marker %s: %w", mk, err)
	}
	if _, err = w.Write(data); err == nil {
		err = w.Commit(ctx)
	}
	if err != nil {
		if aerr := w.Abort(); aerr != nil {
			c.log.Warn("abort marker write", zap.Stringer("key", mk), zap.Error(aerr))
		}
		return fmt.Errorf("write marker %s: %w", mk, err)
	}
	return nil
}

// DeleteMarker removes the marker of objectKey from b. Delete the marker before the
// object, so that a rebuild never finds a marker whose object is gone. Deleting a missing
// marker is not an error.
func (c *Catalog) DeleteMarker(ctx context.Context, b segment.Backend, objectKey segment.Key) error {
	mk, err := MarkerKey(c.node, objectKey)
	if err != nil {
		return fmt.Errorf("delete marker: %w", err)
	}
	if err := b.Delete(ctx, mk); err != nil {
		return fmt.Errorf("delete marker %s: %w", mk, err)
	}
	return nil
}

// Skipped is a marker object Rebuild did not restore, and why.
type Skipped struct {
	Marker segment.Key
	Reason error
}

// Rebuild restores the records of tier from the marker objects of c.Node() on b, the
// backend of that tier, and returns how many it restored. Every marker is read, decoded and
// checked against its object (Stat: the object must exist with the size and CRC-32C the
// marker records); markers that fail a check are not restored and are returned in skipped
// (and logged). Records are restored exactly as the markers hold them, with Tier set to
// tier, rebuildChunk markers per transaction, so that what it holds does not grow with
// the number of records (only the listing of the markers' keys does: Backend.List).
// Records of tier that no marker names are left alone (reconcile decides about them).
//
// A backend error other than not-found stops the rebuild: the chunks before it stay
// restored (each record was checked against its object), and running it again completes
// it.
func (c *Catalog) Rebuild(ctx context.Context, tier string, b segment.Backend) (restored int, skipped []Skipped, err error) {
	if err := checkName("tier", tier); err != nil {
		return 0, nil, fmt.Errorf("rebuild: %w", err)
	}
	prefix := MarkerPrefix(c.node)
	entries, err := b.List(ctx, prefix)
	if err != nil {
		return 0, nil, fmt.Errorf("rebuild tier %s: list %s: %w", tier, prefix, err)
	}
	for start := 0; start < len(entries); start += rebuildChunk {
		chunk := entries[start:min(start+rebuildChunk, len(entries))]
		recs, sk, err := c.checkMarkers(ctx, tier, b, chunk)
		if err != nil {
			return restored, skipped, fmt.Errorf("rebuild tier %s: %w", tier, err)
		}
		skipped = append(skipped, sk...)
		if err := c.putAll(recs, true); err != nil {
			return restored, skipped, fmt.Errorf("rebuild tier %s: %w", tier, err)
		}
		restored += len(recs)
	}
	c.log.Info("catalog rebuilt from markers", zap.String("tier", tier),
		zap.Int("restored", restored), zap.Int("skipped", len(skipped)))
	return restored, skipped, nil
}

// rebuildChunk is how many markers Rebuild checks and restores per transaction.
const rebuildChunk = 512

// checkMarkers checks the markers of entries concurrently and returns the records to
// restore, in listing order, and the markers skipped.
func (c *Catalog) checkMarkers(ctx context.Context, tier string, b segment.Backend, entries []segment.Entry) ([]Record, []Skipped, error) {
	type result struct {
		rec    Record
		reason error
	}
	results := make([]result, len(entries))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rebuildParallelism)
	for i, e := range entries {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			rec, reason, err := c.checkMarker(gctx, b, e)
			results[i] = result{rec, reason}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	var recs []Record
	var skipped []Skipped
	for i, r := range results {
		if r.reason != nil {
			c.log.Warn("marker skipped", zap.String("tier", tier), zap.Stringer("marker", entries[i].Key), zap.Error(r.reason))
			skipped = append(skipped, Skipped{Marker: entries[i].Key, Reason: r.reason})
			continue
		}
		r.rec.Tier = tier
		recs = append(recs, r.rec)
	}
	return recs, skipped, nil
}

// checkMarker reads and checks the marker e. A marker that is not restorable gives a
// reason; a failure to find out gives err.
func (c *Catalog) checkMarker(ctx context.Context, b segment.Backend, e segment.Entry) (rec Record, reason, err error) {
	if !strings.HasSuffix(string(e.Key), ".json") {
		return Record{}, errors.New("not a marker: name does not end in .json"), nil
	}
	if e.Size > MaxMarkerSize {
		return Record{}, errMarkerTooLarge, nil
	}
	data, err := readMarker(ctx, b, e.Key)
	switch {
	case errors.Is(err, segment.ErrNotFound):
		return Record{}, errors.New("marker vanished while rebuilding"), nil
	case errors.Is(err, errMarkerTooLarge):
		return Record{}, err, nil
	case err != nil:
		return Record{}, nil, err
	}
	rec, reason = DecodeMarker(data)
	if reason != nil {
		return Record{}, reason, nil
	}
	if mk, kerr := MarkerKey(c.node, rec.Key); kerr != nil {
		return Record{}, kerr, nil
	} else if mk != e.Key {
		return Record{}, fmt.Errorf("marker names object %s, whose marker would be %s", rec.Key, mk), nil
	}
	info, err := b.Stat(ctx, rec.Key)
	if errors.Is(err, segment.ErrNotFound) {
		return Record{}, fmt.Errorf("object %s is missing", rec.Key), nil
	}
	if err != nil {
		return Record{}, nil, fmt.Errorf("stat %s: %w", rec.Key, err)
	}
	if info.Size != rec.Size || info.CRC32C != rec.CRC32C {
		return Record{}, fmt.Errorf("object %s has size %d, CRC-32C %08x; marker says %d, %08x",
			rec.Key, info.Size, info.CRC32C, rec.Size, rec.CRC32C), nil
	}
	return rec, nil, nil
}

// readMarker returns the bytes of the marker object key, or errMarkerTooLarge.
func readMarker(ctx context.Context, b segment.Backend, key segment.Key) ([]byte, error) {
	r, err := b.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("open marker %s: %w", key, err)
	}
	defer r.Close()
	if r.Size() > MaxMarkerSize {
		return nil, errMarkerTooLarge
	}
	data := make([]byte, r.Size())
	n, err := r.ReadAt(data, 0)
	if n == len(data) && (err == nil || errors.Is(err, io.EOF)) {
		return data, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("read marker %s: %d of %d bytes: %w", key, n, len(data), err)
}

// CheckMarker reads node's marker of rec on b, the tier rec is on, and says whether it
// describes rec: the same object (key, format, size, CRC-32C), made from the same local
// file (source, path, kind, size, CRC-32C, mtime, version). It returns "" when it does,
// else why not ("missing", or the first field that differs); err only when the marker
// could not be read. Times of offload and verification may differ (verify rewrites them).
func CheckMarker(ctx context.Context, node string, b segment.Backend, rec Record) (why string, err error) {
	mk, err := MarkerKey(node, rec.Key)
	if err != nil {
		return "", err
	}
	data, err := readMarker(ctx, b, mk)
	switch {
	case errors.Is(err, segment.ErrNotFound):
		return "missing", nil
	case errors.Is(err, errMarkerTooLarge):
		return "not a marker (too large)", nil
	case err != nil:
		return "", err
	}
	m, err := DecodeMarker(data)
	if err != nil {
		return fmt.Sprintf("undecodable: %v", err), nil
	}
	for _, f := range []struct {
		name string
		same bool
	}{
		{"key", m.Key == rec.Key}, {"format", m.Format == rec.Format}, {"size", m.Size == rec.Size}, {"crc32c", m.CRC32C == rec.CRC32C},
		{"source", m.Source == rec.Source}, {"rel", m.Rel == rec.Rel}, {"kind", m.Kind == rec.Kind},
		{"local_size", m.LocalSize == rec.LocalSize}, {"local_crc32c", m.LocalCRC32C == rec.LocalCRC32C},
		{"segment_mtime", m.SegmentModTime.Equal(rec.SegmentModTime)}, {"version", m.Ver() == rec.Ver()},
	} {
		if !f.same {
			return "differs in " + f.name, nil
		}
	}
	return "", nil
}
