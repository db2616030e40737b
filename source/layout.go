package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tierd/tierd/segment"
)

// Layout knows how one broker lays out its files: which files are segments, which
// sequence each belongs to, and which ones the broker has moved past.
//
// What a layout touches: Scan lists directories and stats files (lstat: links are never
// followed below the owned directories). The only bytes it ever reads are the 40-byte
// header of the newest RocketMQ IndexFile. It never reads segment bodies, never opens
// anything for writing and never creates, renames or deletes anything. Files outside the
// directories a layout owns (RocketMQ: checkpoint, abort, lock, config/, timerwheel,
// timerlog, compaction, rocksdb stores, consumequeue_ext, batchconsumequeue, ...;
// Kafka: the log.dir's checkpoint files, meta.properties, .lock, leader-epoch-checkpoint,
// partition.metadata) are never touched and never reported.
//
// Concurrency: a Layout holds no state between scans; Scan may be called concurrently.
type Layout interface {
	// Name is the layout's name as configured ("rocketmq", "kafka").
	Name() string
	// Scan lists the candidate segments under root (the source directory) grouped by
	// sequence, and what it skipped. It fails only if root itself cannot be listed or ctx
	// ends; a directory below root that cannot be listed is reported in Skipped and
	// contributes no candidates.
	Scan(ctx context.Context, root string) (ScanResult, error)
}

// Layout names, as written in a source's `layout:` setting.
const (
	// LayoutRocketMQ is the layout of a RocketMQ store (storePathRootDir):
	//
	//	commitlog/<20-digit start offset>                      KindCommitLog
	//	consumequeue/<topic>/<queueId>/<20-digit start offset>  KindConsumeQueue
	//	index/<yyyyMMddHHmmssSSS>                               KindIndex
	//
	// It owns exactly these three directories; nothing else under the store root is looked
	// at. The three may be symlinks (to put the commit log on its own disk); nothing below
	// them is followed.
	//
	// Every file is preallocated by the broker, so a file whose size is not the configured
	// one is skipped as corrupt or foreign, and so is an empty file (a file the broker is
	// creating this instant is empty; it is simply seen at the next scan). Offset-named files
	// must be named by a multiple of the file size, and the files of a sequence must follow
	// one another without a gap: files older than a gap are skipped (the broker only ever
	// deletes the oldest files, so a gap means something else was here).
	//
	// Which files are closed:
	//   - consumequeue: every file but the newest of its queue.
	//   - commitlog: every file but the two newest. The broker's AllocateMappedFileService
	//     creates the *next* commit-log file ahead of time (nextNextFilePath), so the newest
	//     file may not have been written yet while the one before it is still active.
	//   - index: every file but the newest, and the newest too once its header says it is
	//     full (indexCount >= index_items, the broker's IndexFile.isWriteFull).
	LayoutRocketMQ = "rocketmq"

	// LayoutKafka is the layout of one Kafka log.dir:
	//
	//	<topic>-<partition>/<20-digit base offset>.log        KindKafkaLog
	//	<topic>-<partition>/<20-digit base offset>.index      KindKafkaOffsetIndex
	//	<topic>-<partition>/<20-digit base offset>.timeindex  KindKafkaTimeIndex
	//	<topic>-<partition>/<20-digit base offset>.txnindex   KindKafkaTxnIndex (optional)
	//	<topic>-<partition>/<20-digit offset>.snapshot        KindKafkaSnapshot (optional)
	//
	// A partition directory is named <topic>-<partition>: the partition is the digits after
	// the last '-', the topic (which may itself contain '-' and '.') everything before. Each
	// partition directory is one sequence, named like the directory.
	//
	// Never touched and never reported: the log.dir's own files (recovery-point-offset-
	// checkpoint, replication-offset-checkpoint, log-start-offset-checkpoint,
	// cleaner-offset-checkpoint, meta.properties, bootstrap.checkpoint, .lock, or any other
	// file at the top), lost+found and remote-log-index-cache; in a partition directory
	// leader-epoch-checkpoint, partition.metadata, quorum-state and KRaft snapshots
	// (*.checkpoint, *.checkpoint.part) of __cluster_metadata. Files and directories in the
	// middle of a broker operation are never offered and never reported either: files ending
	// in .deleted, .cleaned, .swap or .tmp, and directories ending in -delete, -future or
	// -stray (with everything in them).
	//
	// Which files are closed: Kafka writes only the segment with the highest base offset
	// (the active one) and trims the indexes of the previous one when it rolls, before it
	// creates the new segment. So a .log, .index, .timeindex or .txnindex is closed when a
	// .log with a higher base offset exists. An index file without the .log of its base
	// offset is skipped (a segment being deleted renames its .log first, or a foreign file),
	// and so is a closed index whose size is not a whole number of entries (8 B offset index,
	// 12 B time index, 34 B aborted transaction).
	//
	// Producer snapshots: Kafka writes <N>.snapshot when it rolls to the segment with base
	// offset N, just *after* creating N.log, without an atomic rename (and again at a clean
	// shutdown, named by the log end offset). It never rewrites a snapshot for an offset it
	// has already snapshotted. A snapshot N is therefore closed once a .log with a base offset
	// greater than N exists: the broker has rolled at least once since it wrote N.snapshot,
	// and had finished writing it by then. The snapshot taken at the roll to the active
	// segment (N = the active base offset) and any shutdown snapshot inside the active
	// segment wait for the next roll. Like every segment, a snapshot may still disappear
	// later (Kafka deletes old snapshots and those above a truncation point).
	//
	// Compacted topics (cleanup.policy=compact, e.g. __consumer_offsets): the log cleaner
	// replaces closed segments by cleaned ones under the same names (through .cleaned and
	// .swap files, the old files renamed to .deleted meanwhile), possibly merging several
	// segments into the first. The cleaned file keeps the mtime of the last segment cleaned
	// (Kafka's LogCleaner.cleanSegments), so a rewrite of one segment usually changes only
	// its size and bytes: the scan sees the size change, and the catalog makes the file a
	// new version (daemon/versions.go). The layout itself cannot tell compacted topics
	// apart: the policy is not in the log.dir.
	LayoutKafka = "kafka"
)

// Defaults of the RocketMQ broker settings the rocketmq layout checks file sizes against.
const (
	// DefaultCommitLogFileSize is RocketMQ's mappedFileSizeCommitLog.
	DefaultCommitLogFileSize = 1 << 30
	// DefaultConsumeQueueFileSize is RocketMQ's mappedFileSizeConsumeQueue (300,000 x 20 B).
	DefaultConsumeQueueFileSize = 300_000 * 20
	// DefaultIndexHashSlots is RocketMQ's maxHashSlotNum.
	DefaultIndexHashSlots = 5_000_000
	// DefaultIndexItems is RocketMQ's maxIndexNum.
	DefaultIndexItems = 20_000_000
)

// LayoutOptions configure a layout. Zero values mean the broker's defaults. The RocketMQ
// sizes must match the broker's settings: the broker preallocates every file to exactly
// that size, so a file of any other size is reported as corrupt or foreign. The kafka
// layout ignores them.
type LayoutOptions struct {
	// Source is the configured source name, copied into every Segment.
	Source string
	// CommitLogFileSize is commitlog_file_size (RocketMQ mappedFileSizeCommitLog).
	CommitLogFileSize int64
	// ConsumeQueueFileSize is consumequeue_file_size (RocketMQ
	// mappedFileSizeConsumeQueue). The broker rounds it up to a multiple of the 20-byte
	// entry; this must be the rounded value.
	ConsumeQueueFileSize int64
	// IndexHashSlots is index_hash_slots (RocketMQ maxHashSlotNum).
	IndexHashSlots int64
	// IndexItems is index_items (RocketMQ maxIndexNum).
	IndexItems int64
}

// withDefaults fills zero fields with the broker's defaults and checks the result.
func (o LayoutOptions) withDefaults() (LayoutOptions, error) {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.CommitLogFileSize, DefaultCommitLogFileSize)
	def(&o.ConsumeQueueFileSize, DefaultConsumeQueueFileSize)
	def(&o.IndexHashSlots, DefaultIndexHashSlots)
	def(&o.IndexItems, DefaultIndexItems)
	var errs []error
	if err := segment.CheckName(o.Source); err != nil {
		errs = append(errs, fmt.Errorf("source: %w", err))
	}
	// The broker holds each of these in a Java int.
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"commitlog_file_size", o.CommitLogFileSize},
		{"consumequeue_file_size", o.ConsumeQueueFileSize},
		{"index_hash_slots", o.IndexHashSlots},
		{"index_items", o.IndexItems},
	} {
		if f.v < 0 || f.v > math.MaxInt32 {
			errs = append(errs, fmt.Errorf("%s: %d is not between 1 and %d", f.name, f.v, math.MaxInt32))
		}
	}
	if o.ConsumeQueueFileSize > 0 && o.ConsumeQueueFileSize%cqEntrySize != 0 {
		errs = append(errs, fmt.Errorf("consumequeue_file_size: %d is not a multiple of %d (the broker rounds it up to %d)",
			o.ConsumeQueueFileSize, cqEntrySize, (o.ConsumeQueueFileSize+cqEntrySize-1)/cqEntrySize*cqEntrySize))
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("layout options: %w", err)
	}
	return o, nil
}

// NewLayout returns the layout called name ("rocketmq" or "kafka") configured by opts.
func NewLayout(name string, opts LayoutOptions) (Layout, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	switch name {
	case LayoutRocketMQ:
		return &rocketMQ{opts: o}, nil
	case LayoutKafka:
		return &kafka{opts: o}, nil
	}
	return nil, fmt.Errorf("unknown layout %q (want %q or %q)", name, LayoutRocketMQ, LayoutKafka)
}

// scan is the state of one Scan: the result being built and the context.
type scan struct {
	ctx  context.Context
	root string
	res  ScanResult
}

func newScan(ctx context.Context, source, root string) (*scan, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("scan %q: %w", root, err)
	}
	fi, err := os.Stat(abs) // the root itself may be a link
	if err != nil {
		return nil, fmt.Errorf("scan %q: %w", abs, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("scan %q: not a directory", abs)
	}
	return &scan{ctx: ctx, root: abs, res: ScanResult{Source: source, Root: abs}}, nil
}

// skip records a skipped path (relative to the root) and why.
func (s *scan) skip(rel, format string, args ...any) {
	s.skipOption(rel, "", format, args...)
}

// skipOption skips rel for disagreeing with the source setting option.
func (s *scan) skipOption(rel, option, format string, args ...any) {
	s.res.Skipped = append(s.res.Skipped, Skipped{
		Path:   filepath.Join(s.root, filepath.FromSlash(rel)),
		Reason: fmt.Sprintf(format, args...),
		Option: option,
	})
}

// candidate makes a candidate for the file at rel.
func (s *scan) candidate(kind segment.Kind, seq, rel string, fi fs.FileInfo) Candidate {
	return Candidate{Segment: segment.Segment{
		Source:  s.res.Source,
		Kind:    kind,
		Path:    filepath.Join(s.root, filepath.FromSlash(rel)),
		Rel:     rel,
		Seq:     seq,
		Size:    fi.Size(),
		ModTime: fi.ModTime(),
	}}
}

// addSequence appends a non-empty sequence.
func (s *scan) addSequence(name string, files []Candidate) {
	if len(files) > 0 {
		s.res.Sequences = append(s.res.Sequences, Sequence{Name: name, Files: files})
	}
}

// finish sorts the result.
func (s *scan) finish() ScanResult {
	slices.SortFunc(s.res.Sequences, func(a, b Sequence) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(s.res.Skipped, func(a, b Skipped) int { return strings.Compare(a.Path, b.Path) })
	return s.res
}

// entry is a directory entry with its lstat information.
type entry struct {
	name string
	info fs.FileInfo
}

// readDir lists the directory at rel (relative to the root) and lstats its entries.
// Hidden entries (leading '.') are left out unless keepHidden is set. Entries that vanish
// while being listed are left out (the broker deletes files at any time); entries that
// cannot be stat'ed are skipped with the reason. ok is false if the directory could not
// be listed: it is then skipped with the reason, or silently if it no longer exists.
func (s *scan) readDir(rel string, keepHidden bool) (entries []entry, ok bool, err error) {
	if err := s.ctx.Err(); err != nil {
		return nil, false, err
	}
	dir := filepath.Join(s.root, filepath.FromSlash(rel))
	des, err := os.ReadDir(dir)
	if err != nil {
		if rel == "" {
			return nil, false, fmt.Errorf("scan %q: %w", s.root, err)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			s.skip(rel, "cannot list directory: %v", err)
		}
		return nil, false, nil
	}
	for _, de := range des {
		name := de.Name()
		if !keepHidden && strings.HasPrefix(name, ".") {
			continue
		}
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			s.skip(joinRel(rel, name), "cannot stat: %v", err)
			continue
		}
		entries = append(entries, entry{name: name, info: fi})
	}
	return entries, true, nil
}

// regular reports whether e is a regular file; if not, it skips e with the reason, where
// what names what was expected there.
func (s *scan) regular(rel string, e entry, what string) bool {
	switch m := e.info.Mode(); {
	case m&fs.ModeSymlink != 0:
		s.skip(rel, "symlink where %s is expected (tierd does not follow links)", what)
	case m.IsDir():
		s.skip(rel, "directory where %s is expected", what)
	case !m.IsRegular():
		s.skip(rel, "not a regular file (%v) where %s is expected", m.Type(), what)
	default:
		return true
	}
	return false
}

// directory reports whether e is a directory; if not, it skips e with the reason.
func (s *scan) directory(rel string, e entry, what string) bool {
	switch m := e.info.Mode(); {
	case m&fs.ModeSymlink != 0:
		s.skip(rel, "symlink where %s is expected (tierd does not follow links)", what)
	case !m.IsDir():
		s.skip(rel, "file where %s is expected", what)
	default:
		return true
	}
	return false
}

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// parseDigits parses a fixed-width, zero-padded decimal name of exactly n digits into a
// non-negative int64.
func parseDigits(s string, n int) (int64, bool) {
	if len(s) != n {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseID parses a decimal id as the brokers write one (Integer.toString): 0 or digits
// without a leading zero, at most math.MaxInt32.
func parseID(s string) (int32, bool) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + int64(s[i]-'0')
	}
	if v > math.MaxInt32 {
		return 0, false
	}
	return int32(v), true
}

// offsetName formats an offset as the brokers name files: 20 zero-padded digits.
func offsetName(off int64) string { return fmt.Sprintf("%020d", off) }
