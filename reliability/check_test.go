package reliability

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/daemon"
	"github.com/tierd/tierd/devtools/miniotest"
	"github.com/tierd/tierd/segment"
)

// listing is what one tier holds of the node: data objects and marker objects, both by
// the data object's key.
type listing struct {
	data    map[segment.Key]segment.Entry
	markers map[segment.Key]segment.Entry
}

var markerPrefix = string(catalog.MarkerPrefix(node))

// list lists the node's objects on a tier.
func (w *world) list(ctx context.Context, wt *worldTier) listing {
	w.t.Helper()
	entries, err := wt.b.List(ctx, segment.Key(node+"/"))
	if err != nil {
		w.t.Fatalf("list tier %s: %v", wt.name, err)
	}
	l := listing{data: map[segment.Key]segment.Entry{}, markers: map[segment.Key]segment.Entry{}}
	for _, e := range entries {
		k := string(e.Key)
		switch {
		case strings.HasPrefix(k, markerPrefix):
			obj, ok := strings.CutSuffix(strings.TrimPrefix(k, markerPrefix), ".json")
			if !ok {
				w.r.Errorf("tier %s: %s under the marker prefix is not a marker", wt.name, k)
				continue
			}
			l.markers[segment.Key(node+"/"+obj)] = e
		case strings.HasPrefix(k, node+"/"+segment.MarkerDir+"/"):
			// the S3 lease
		default:
			l.data[e.Key] = e
		}
	}
	return l
}

// readObject returns an object's bytes (objects of these tests are small).
func readObject(ctx context.Context, b segment.Backend, key segment.Key) ([]byte, error) {
	r, err := b.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p := make([]byte, r.Size())
	if _, err := r.ReadAt(p, 0); err != nil && !(errors.Is(err, io.EOF) && len(p) == 0) {
		return nil, err
	}
	return p, nil
}

// catalogState reads the catalog directly (no tierd may hold it).
func (w *world) catalogState() ([]catalog.Record, []catalog.Intent) {
	w.t.Helper()
	c, err := catalog.Open(w.state, node, nil)
	if err != nil {
		w.t.Fatalf("open the catalog: %v", err)
	}
	defer c.Close()
	recs, err := c.List("")
	if err != nil {
		w.t.Fatal(err)
	}
	intents, err := c.Intents()
	if err != nil {
		w.t.Fatal(err)
	}
	return recs, intents
}

// expected returns what the local segment rel of source holds: its sum when it was
// sealed, or now.
func (w *world) expected(source, rel string) (fileSum, bool) {
	root := w.store
	if source != "src" {
		root = w.otherSources[source]
	} else if s, ok := w.sealed.get(rel); ok {
		return s, true
	}
	s, err := sumFile(filepath.Join(root, filepath.FromSlash(rel)))
	return s, err == nil
}

// checkCrashed checks what must hold at any moment, right after a SIGKILL and before
// tierd recovers: every marker names an object with the marker's size and CRC-32C;
// every visible object is whole (its bytes match its stored CRC-32C, and a raw object
// matches the local segment it copies); every catalog record has its object (but for an
// expiry the journal shows in progress); no local segment is gone without a copy.
func (w *world) checkCrashed(ctx context.Context) {
	w.t.Helper()
	recs, intents := w.catalogState()
	deleting := map[string]bool{}
	for _, in := range intents {
		if in.Op == catalog.OpDelete {
			deleting[in.Tier+":"+string(in.Key)] = true
		}
	}
	for _, wt := range w.tiers {
		l := w.list(ctx, wt)
		for key := range l.markers {
			mk, _ := catalog.MarkerKey(node, key)
			data, err := readObject(ctx, wt.b, mk)
			if err != nil {
				w.r.Errorf("crash state, tier %s: read marker %s: %v", wt.name, mk, err)
				continue
			}
			rec, err := catalog.DecodeMarker(data)
			if err != nil {
				w.r.Errorf("crash state, tier %s: torn or bad marker %s: %v", wt.name, mk, err)
				continue
			}
			info, err := wt.b.Stat(ctx, key)
			if err != nil || info.Size != rec.Size || info.CRC32C != rec.CRC32C {
				w.r.Errorf("crash state, tier %s: marker of %s without its object (%v, %+v vs marker %d/%08x)", wt.name, key, err, info, rec.Size, rec.CRC32C)
			}
		}
		for key := range l.data {
			w.checkWhole(ctx, wt, key)
		}
		for _, rec := range recs {
			if rec.Tier != wt.name {
				continue
			}
			info, err := wt.b.Stat(ctx, rec.Key)
			switch {
			case errors.Is(err, segment.ErrNotFound) && deleting[rec.Tier+":"+string(rec.Key)]:
			case err != nil:
				w.r.Errorf("crash state, tier %s: catalog records %s, the tier has not: %v", wt.name, rec.Key, err)
			case info.Size != rec.Size || info.CRC32C != rec.CRC32C:
				w.r.Errorf("crash state, tier %s: %s is %d bytes / %08x, the catalog says %d / %08x", wt.name, rec.Key, info.Size, info.CRC32C, rec.Size, rec.CRC32C)
			}
		}
	}
	w.checkLocal(recs, "crash state")
}

// checkWhole checks that a visible object is whole: its bytes have the CRC-32C the tier
// stores for it, and a raw copy matches its local segment.
func (w *world) checkWhole(ctx context.Context, wt *worldTier, key segment.Key) {
	w.t.Helper()
	info, err := wt.b.Stat(ctx, key)
	if errors.Is(err, segment.ErrNotFound) {
		return // deleted since the listing (a running tierd)
	}
	if err != nil {
		w.r.Errorf("tier %s: stat %s: %v", wt.name, key, err)
		return
	}
	data, err := readObject(ctx, wt.b, key)
	if err != nil {
		w.r.Errorf("tier %s: read %s: %v", wt.name, key, err)
		return
	}
	if got := crc(data); int64(len(data)) != info.Size || got != info.CRC32C {
		w.r.Errorf("tier %s: TORN object %s visible: %d bytes with CRC-32C %08x, stored %d / %08x", wt.name, key, len(data), got, info.Size, info.CRC32C)
		return
	}
	_, source, rel, compacted, err := segment.ParseObjectKey(key)
	if err != nil {
		w.r.Errorf("tier %s: object %s has no segment key: %v", wt.name, key, err)
		return
	}
	if compacted {
		return // a compacted index: its bytes are checked against the catalog's CRC by verify
	}
	want, ok := w.expected(source, rel)
	switch {
	case !ok:
		w.r.Errorf("tier %s: object %s copies %s, which the test never saw sealed", wt.name, key, rel)
	case want.size != info.Size || want.crc != info.CRC32C:
		w.r.Errorf("tier %s: object %s is %d bytes / %08x, the local segment was %d / %08x", wt.name, key, info.Size, info.CRC32C, want.size, want.crc)
	}
}

// checkLocal checks the local segments against the catalog: every record was made from
// the local segment as brokersim wrote it, and every sealed segment that is gone locally
// was deleted by policy and has a copy of exactly its bytes on some tier. It returns how
// many segments are lost.
func (w *world) checkLocal(recs []catalog.Record, when string) int {
	w.t.Helper()
	byRel := map[string][]catalog.Record{}
	for _, r := range recs {
		if r.Source == "src" {
			byRel[r.Rel] = append(byRel[r.Rel], r)
		}
		want, ok := w.expected(r.Source, r.Rel)
		switch {
		case !ok:
			w.r.Errorf("%s: %s:%s was made from %s, which the test never saw sealed", when, r.Tier, r.Key, r.Rel)
		case want.size != r.LocalSize || want.crc != r.LocalCRC32C:
			w.r.Errorf("%s: %s:%s was made from %d bytes / %08x, the local segment is %d / %08x", when, r.Tier, r.Key, r.LocalSize, r.LocalCRC32C, want.size, want.crc)
		}
	}
	lost := 0
	for rel, sum := range w.sealed.all() {
		if _, err := os.Stat(filepath.Join(w.store, filepath.FromSlash(rel))); err == nil || w.brokerDeleted[rel] {
			continue
		}
		if !w.deletes() {
			w.r.Errorf("%s: local segment %s is gone although local.delete_after is never", when, rel)
		}
		held := false
		for _, r := range byRel[rel] {
			if r.LocalSize == sum.size && r.LocalCRC32C == sum.crc {
				held = true
			}
		}
		if !held {
			lost++
			w.r.Errorf("%s: SEGMENT LOST: local %s is deleted and no tier records a copy of it (%d bytes, %08x): %+v", when, rel, sum.size, sum.crc, byRel[rel])
		}
	}
	if lost > 0 {
		tally.add(func(c *counts) { c.lost += lost })
	}
	return lost
}

// checkStopped checks a world whose tierd exited, after `tierd reconcile` and `tierd
// reap --older-than 0s`: reconcile drops nothing (the catalog agreed with the tiers), no
// temp file or incomplete multipart upload is left, `tierd verify` passes for every
// record, every object has its record and marker and every record its object and marker
// (no orphans), and checkLocal holds. It returns the records.
func (w *world) checkStopped(ctx context.Context) []catalog.Record {
	w.t.Helper()
	res := w.cli("reconcile", "--json")
	if res.code != 0 {
		w.t.Fatalf("tierd reconcile: exit %d: %s", res.code, res.errOut)
	}
	var rep daemon.ReconcileReport
	if err := json.Unmarshal([]byte(res.out), &rep); err != nil {
		w.t.Fatalf("reconcile --json: %v: %s", err, res.out)
	}
	if len(rep.Dropped) > 0 {
		w.r.Errorf("reconcile after a clean stop dropped records whose object was missing or wrong: %v", rep.Dropped)
	}
	if res := w.cli("reap", "--older-than", "0s"); res.code != 0 {
		w.t.Fatalf("tierd reap: exit %d: %s", res.code, res.errOut)
	}
	left := w.leftovers()
	recs := w.records()
	res = w.cli("verify", "--json")
	var ver struct{ Checked, Failed int }
	if err := json.Unmarshal([]byte(res.out), &ver); err != nil || res.code != 0 || ver.Failed != 0 || ver.Checked != len(recs) {
		w.r.Errorf("tierd verify: exit %d, %+v for %d records (%v):\n%s\n%s", res.code, ver, len(recs), err, res.out, res.errOut)
	}
	orphans := 0
	for _, wt := range w.tiers {
		l := w.list(ctx, wt)
		mine := map[segment.Key]catalog.Record{}
		for _, r := range recs {
			if r.Tier == wt.name {
				mine[r.Key] = r
			}
		}
		for key := range l.data {
			if _, ok := mine[key]; !ok {
				orphans++
				w.r.Errorf("ORPHAN: tier %s holds %s, which the catalog does not record", wt.name, key)
			}
		}
		for key := range l.markers {
			if _, ok := mine[key]; !ok {
				orphans++
				w.r.Errorf("ORPHAN: tier %s holds a marker of %s, which the catalog does not record", wt.name, key)
			}
		}
		for key, r := range mine {
			if _, ok := l.data[key]; !ok {
				orphans++
				w.r.Errorf("catalog records %s:%s, the tier does not hold it", wt.name, key)
			}
			if _, ok := l.markers[key]; !ok {
				orphans++
				w.r.Errorf("catalog records %s:%s, the tier holds no marker of it", wt.name, key)
				continue
			}
			mk, _ := catalog.MarkerKey(node, key)
			data, err := readObject(ctx, wt.b, mk)
			if err != nil {
				w.r.Errorf("tier %s: read marker %s: %v", wt.name, mk, err)
				continue
			}
			m, err := catalog.DecodeMarker(data)
			if err != nil || m.Size != r.Size || m.CRC32C != r.CRC32C || m.LocalSize != r.LocalSize || m.LocalCRC32C != r.LocalCRC32C || m.Rel != r.Rel {
				w.r.Errorf("tier %s: marker of %s differs from its record (%v): %+v vs %+v", wt.name, key, err, m, r)
			}
		}
	}
	tally.add(func(c *counts) {
		c.orphans += orphans
		c.incomplete += left
	})
	w.checkLocal(recs, "after a clean stop")
	return recs
}

// records returns the catalog's records through `tierd ls --json`.
func (w *world) records() []catalog.Record {
	w.t.Helper()
	res := w.cli("ls", "--json")
	if res.code != 0 {
		w.t.Fatalf("tierd ls: exit %d: %s", res.code, res.errOut)
	}
	var recs []catalog.Record
	if err := json.Unmarshal([]byte(res.out), &recs); err != nil {
		w.t.Fatalf("ls --json: %v", err)
	}
	return recs
}

// leftovers counts (and reports) posix temp files and incomplete multipart uploads.
func (w *world) leftovers() int {
	w.t.Helper()
	n := 0
	for _, wt := range w.tiers {
		if wt.s3 {
			continue
		}
		_ = filepath.WalkDir(wt.path, func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(d.Name(), ".tierd-tmp-") {
				n++
				w.r.Errorf("temp file left on tier %s after reconcile and reap: %s", wt.name, p)
			}
			return nil
		})
	}
	if w.srv != nil {
		uploads := incompleteUploads(w.t, w.srv, w.prefix+"/")
		for _, u := range uploads {
			w.r.Errorf("incomplete multipart upload left after reconcile and reap: %s", u)
		}
		n += len(uploads)
	}
	return n
}

// incompleteUploads lists the incomplete multipart uploads under prefix with mc. It lists
// the whole bucket and filters: MinIO lists a prefix's uploads only when the prefix is a
// whole object name (and bucket-wide only the uploads it has seen since it started, which
// TestObjectStoreOutage makes up for).
func incompleteUploads(t interface {
	Helper()
	Fatalf(string, ...any)
}, srv *miniotest.Server, prefix string) []string {
	t.Helper()
	out, err := srv.MC("ls", "--recursive", "--incomplete", miniotest.Alias+"/"+srv.Bucket)
	if err != nil {
		t.Fatalf("mc ls --incomplete: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && strings.HasPrefix(f[len(f)-1], prefix) {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

func crc(b []byte) uint32 { return crc32.Checksum(b, segment.Castagnoli) }
