package source

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tierd/tierd/config"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
)

// rocketMQ implements LayoutRocketMQ.
type rocketMQ struct {
	opts LayoutOptions
}

// Name implements Layout.
func (*rocketMQ) Name() string { return LayoutRocketMQ }

const (
	cqEntrySize     = 20
	indexHeaderSize = 40
	// indexCountAt is where the header's indexCount int32 lives.
	indexCountAt = 36
)

// Scan implements Layout.
func (l *rocketMQ) Scan(ctx context.Context, root string) (ScanResult, error) {
	if err := Recognize(LayoutRocketMQ, root); err != nil {
		return ScanResult{}, fmt.Errorf("rocketmq: %w", err)
	}
	s, err := newScan(ctx, l.opts.Source, root)
	if err != nil {
		return ScanResult{}, fmt.Errorf("rocketmq: %w", err)
	}
	if _, err := os.ReadDir(s.root); err != nil {
		return ScanResult{}, fmt.Errorf("rocketmq: scan %q: %w", s.root, err)
	}
	if ok, err := l.ownedDir(s, "commitlog"); err != nil {
		return ScanResult{}, err
	} else if ok {
		if err := l.scanOffsetSeq(s, offsetSeq{
			kind: segment.KindCommitLog, seq: "commitlog", dir: "commitlog",
			fileSize: l.opts.CommitLogFileSize, sizeName: "commitlog_file_size", open: 2,
		}); err != nil {
			return ScanResult{}, err
		}
	}
	if ok, err := l.ownedDir(s, "consumequeue"); err != nil {
		return ScanResult{}, err
	} else if ok {
		if err := l.scanConsumeQueues(s); err != nil {
			return ScanResult{}, err
		}
	}
	if ok, err := l.ownedDir(s, "index"); err != nil {
		return ScanResult{}, err
	} else if ok {
		if err := l.scanIndex(s); err != nil {
			return ScanResult{}, err
		}
	}
	return s.finish(), nil
}

// ownedDir reports whether the owned directory name exists under the root (following a
// link); a non-directory there is skipped.
func (l *rocketMQ) ownedDir(s *scan, name string) (bool, error) {
	if err := s.ctx.Err(); err != nil {
		return false, err
	}
	fi, err := os.Stat(filepath.Join(s.root, name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		s.skip(name, "cannot stat: %v", err)
		return false, nil
	case !fi.IsDir():
		s.skip(name, "not a directory")
		return false, nil
	}
	return true, nil
}

// offsetSeq describes a sequence of files named by their 20-digit start offset.
type offsetSeq struct {
	kind     segment.Kind
	seq      string
	dir      string // relative to the root
	fileSize int64
	sizeName string // the option fileSize comes from, for messages
	open     int    // how many of the newest files may still be written
}

func (l *rocketMQ) scanOffsetSeq(s *scan, q offsetSeq) error {
	entries, ok, err := s.readDir(q.dir, false)
	if err != nil || !ok {
		return err
	}
	type file struct {
		off int64
		c   Candidate
	}
	var files []file
	var regular []entry
	var named []namedFile
	for _, e := range entries {
		if !s.regular(joinRel(q.dir, e.name), e, "a "+q.kind.String()+" file") {
			continue
		}
		regular = append(regular, e)
		if off, ok := parseDigits(e.name, 20); ok {
			named = append(named, namedFile{off, e.info.Size()})
		}
	}
	hint := l.sizeHint(q, named)
	for _, e := range regular {
		rel := joinRel(q.dir, e.name)
		off, ok := parseDigits(e.name, 20)
		switch size := e.info.Size(); {
		case !ok:
			s.skip(rel, "unexpected name: %s files are named by a 20-digit offset", q.kind)
		case off%q.fileSize != 0:
			s.skipOption(rel, q.sizeName, "offset %d is not a multiple of the file size %d (%s: %s)%s", off, q.fileSize, q.sizeName, sizeString(q.fileSize), hint)
		case size == 0:
			s.skip(rel, "empty file (the broker preallocates %d bytes)", q.fileSize)
		case size != q.fileSize:
			s.skipOption(rel, q.sizeName, "size %d, want %d (%s: %s): corrupt, foreign, or a different broker setting%s", size, q.fileSize, q.sizeName, sizeString(q.fileSize), hint)
		default:
			files = append(files, file{off, s.candidate(q.kind, q.seq, rel, e.info)})
		}
	}
	slices.SortFunc(files, func(a, b file) int { return cmp.Compare(a.off, b.off) })
	// Keep the run of consecutive files that ends at the newest one.
	first := 0
	for i := len(files) - 1; i > 0; i-- {
		if want := files[i-1].off + q.fileSize; files[i].off != want {
			first = i
			break
		}
	}
	for _, f := range files[:first] {
		s.skip(f.c.Rel, "not contiguous with the newer files: a gap follows at %s (want a file at every multiple of %d)",
			offsetName(files[first-1].off+q.fileSize), q.fileSize)
	}
	files = files[first:]
	out := make([]Candidate, len(files))
	for i, f := range files {
		c := f.c
		newer := len(files) - 1 - i
		switch {
		case newer >= q.open:
			c.Closed, c.Why = true, "newer file "+offsetName(files[len(files)-1].off)+" exists"
		case q.open == 1:
			c.Why = "active: newest file of the sequence"
		case newer == 0:
			c.Why = "newest commit-log file: active, or created ahead of time by the broker"
		default:
			c.Why = "may be active: the broker creates the next commit-log file ahead of time, so the newest but one may still be written"
		}
		out[i] = c
	}
	s.addSequence(q.seq, out)
	return nil
}

// namedFile is a file of an offset-named sequence: the offset its name gives, its size.
type namedFile struct {
	off, size int64
}

// sizeHint says which file size the files of a sequence show, when it differs from the
// configured one, and what to set: files are named by their first byte's offset in the
// sequence, so the sizes of consecutive names' gaps are the file size, which the
// non-empty files must then have ("" when the files show no single size).
func (l *rocketMQ) sizeHint(q offsetSeq, files []namedFile) string {
	var gcd, size int64
	for _, f := range files {
		gcd = gcd64(gcd, f.off)
		switch {
		case f.size == 0:
		case size == 0:
			size = f.size
		case f.size != size:
			return "" // files of several sizes: no single setting explains them
		}
	}
	if size == 0 || size == q.fileSize || gcd%size != 0 {
		return ""
	}
	var why string
	switch {
	case gcd == size:
		why = fmt.Sprintf("the files here are named %d apart and are %d bytes", size, size)
	case gcd == 0:
		why = fmt.Sprintf("the file here is %d bytes", size)
	default:
		why = fmt.Sprintf("the files here are %d bytes, named at multiples of %d", size, size)
	}
	return fmt.Sprintf("; %s: set %s: %s for source %q (the broker's %s)", why, q.sizeName, sizeString(size), l.opts.Source, brokerSetting(q.sizeName))
}

// brokerSetting names the broker setting a size option mirrors.
func brokerSetting(option string) string {
	if option == "consumequeue_file_size" {
		return "mappedFileSizeConsumeQueue, rounded up to a multiple of 20"
	}
	return "mappedFileSizeCommitLog"
}

func gcd64(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// sizeString renders a byte count as the config writes sizes (config.Size).
func sizeString(n int64) string { return config.Size(n).String() }

func (l *rocketMQ) scanConsumeQueues(s *scan) error {
	return l.queueDirs(s, func(d SeqDir) error {
		return l.scanOffsetSeq(s, offsetSeq{
			kind: segment.KindConsumeQueue, seq: d.Name, dir: d.Name,
			fileSize: l.opts.ConsumeQueueFileSize, sizeName: "consumequeue_file_size", open: 1,
		})
	})
}

// validRocketMQTopic mirrors the broker's TopicValidator: 1 to 127 characters of
// [%|a-zA-Z0-9_-].
func validRocketMQTopic(name string) bool {
	if name == "" || len(name) > 127 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '%', c == '|', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

func (l *rocketMQ) indexFileSize() int64 {
	return indexHeaderSize + l.opts.IndexHashSlots*4 + l.opts.IndexItems*20
}

func (l *rocketMQ) scanIndex(s *scan) error {
	entries, ok, err := s.readDir("index", false)
	if err != nil || !ok {
		return err
	}
	want := l.indexFileSize()
	var files []Candidate
	for _, e := range entries {
		rel := "index/" + e.name
		if !s.regular(rel, e, "an IndexFile") {
			continue
		}
		switch size := e.info.Size(); {
		case !validIndexName(e.name):
			s.skip(rel, "unexpected name: IndexFiles are named by their creation time, yyyyMMddHHmmssSSS")
		case size == 0:
			s.skip(rel, "empty file (the broker preallocates %d bytes)", want)
		case size != want:
			s.skipOption(rel, "index_hash_slots", "size %d, want %d (40 + index_hash_slots %d x 4 + index_items %d x 20): corrupt, foreign, or a different broker setting%s",
				size, want, l.opts.IndexHashSlots, l.opts.IndexItems, l.indexHint(filepath.Join(s.root, "index", e.name), size))
		default:
			files = append(files, s.candidate(segment.KindIndex, "index", rel, e.info))
		}
	}
	slices.SortFunc(files, func(a, b Candidate) int { return strings.Compare(a.Rel, b.Rel) })
	for i := range files {
		if i < len(files)-1 {
			files[i].Closed, files[i].Why = true, "newer file "+filepath.Base(files[len(files)-1].Path)+" exists"
			continue
		}
		count, err := readIndexCount(files[i].Path)
		switch {
		case err != nil:
			files[i].Why = fmt.Sprintf("active: newest IndexFile (header unreadable: %v)", err)
		case int64(count) >= l.opts.IndexItems:
			files[i].Closed, files[i].Why = true, fmt.Sprintf("full: header indexCount %d >= index_items %d", count, l.opts.IndexItems)
		default:
			files[i].Why = fmt.Sprintf("active: newest IndexFile, not full (header indexCount %d < index_items %d)", count, l.opts.IndexItems)
		}
	}
	s.addSequence("index", files)
	return nil
}

// indexHint says which index_hash_slots and index_items an IndexFile of size bytes fits
// (index.PlausibleGeometries: its size, header and newest item), if any. It is called
// for a file whose size is wrong only, and reads at most five small pieces of it.
func (l *rocketMQ) indexHint(path string, size int64) string {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	guesses, err := index.PlausibleGeometries(f, size)
	if err != nil || len(guesses) == 0 {
		return ""
	}
	var alts []string
	for _, g := range guesses {
		why := "4 items a slot, as the broker's defaults"
		if g.Items != 4*g.Slots {
			why = "a full file"
		}
		alts = append(alts, fmt.Sprintf("index_hash_slots: %d and index_items: %d (%s)", g.Slots, g.Items, why))
	}
	return fmt.Sprintf("; its %d bytes fit %s: set them for source %q (the broker's maxHashSlotNum and maxIndexNum)", size, strings.Join(alts, ", or "), l.opts.Source)
}

// validIndexName reports whether name is a yyyyMMddHHmmssSSS creation time.
func validIndexName(name string) bool {
	if _, ok := parseDigits(name, 17); !ok {
		return false
	}
	_, err := time.Parse("20060102150405", name[:14])
	return err == nil
}

// readIndexCount reads the indexCount field of an IndexFile's 40-byte header: the only
// bytes of a segment a layout reads (but for indexHint, on a file of the wrong size).
func readIndexCount(path string) (int32, error) {
	// O_NONBLOCK: should the file be swapped for a FIFO after it was stat'ed, open must
	// not wait for a writer; fstat then refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return 0, err
	} else if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%q is no longer a regular file", path)
	}
	var h [indexHeaderSize]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return 0, fmt.Errorf("read header of %q: %w", path, err)
	}
	return int32(binary.BigEndian.Uint32(h[indexCountAt:])), nil
}
