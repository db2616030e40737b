package source

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"github.com/tierd/tierd/segment"
)

// kafka implements LayoutKafka.
type kafka struct {
	opts LayoutOptions
}

// Name implements Layout.
func (*kafka) Name() string { return LayoutKafka }

// Suffixes of files and directories in the middle of a broker operation.
var (
	kafkaBusyFileSuffixes = []string{".deleted", ".cleaned", ".swap", ".tmp"}
	kafkaBusyDirSuffixes  = []string{"-delete", "-future", "-stray"}
)

// kafkaFile describes a segment file suffix.
type kafkaFile struct {
	ext   string
	kind  segment.Kind
	entry int64 // entry size a closed file's size is a multiple of; 0: none
}

// kafkaFiles is in the order files of one base offset are listed.
var kafkaFiles = []kafkaFile{
	{".log", segment.KindKafkaLog, 0},
	{".index", segment.KindKafkaOffsetIndex, 8},
	{".timeindex", segment.KindKafkaTimeIndex, 12},
	{".txnindex", segment.KindKafkaTxnIndex, 34},
	{".snapshot", segment.KindKafkaSnapshot, 0},
}

// Scan implements Layout.
func (l *kafka) Scan(ctx context.Context, root string) (ScanResult, error) {
	if err := Recognize(LayoutKafka, root); err != nil {
		return ScanResult{}, fmt.Errorf("kafka: %w", err)
	}
	s, err := newScan(ctx, l.opts.Source, root)
	if err != nil {
		return ScanResult{}, fmt.Errorf("kafka: %w", err)
	}
	err = partitionDirs(s, func(e entry) error { return l.scanPartition(s, e.name) })
	if err != nil {
		return ScanResult{}, err
	}
	return s.finish(), nil
}

// parsePartitionDir splits a partition directory name into topic and partition.
func parsePartitionDir(name string) (topic string, partition int32, ok bool) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return "", 0, false
	}
	topic = name[:i]
	partition, ok = parseID(name[i+1:])
	if !ok || !validKafkaTopic(topic) {
		return "", 0, false
	}
	return topic, partition, true
}

// validKafkaTopic mirrors Kafka's Topic.validate: 1 to 249 characters of
// [a-zA-Z0-9._-], not "." or "..".
func validKafkaTopic(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// kafkaMetaFile reports whether name is one of the broker's own partition files.
func kafkaMetaFile(name string) bool {
	switch name {
	case "leader-epoch-checkpoint", "partition.metadata", "quorum-state":
		return true
	}
	return strings.HasSuffix(name, ".checkpoint") || strings.HasSuffix(name, ".checkpoint.part")
}

// parseKafkaFile parses "<20-digit offset><ext>".
func parseKafkaFile(name string) (int64, kafkaFile, bool) {
	for _, f := range kafkaFiles {
		if base, ok := strings.CutSuffix(name, f.ext); ok {
			off, ok := parseDigits(base, 20)
			return off, f, ok
		}
	}
	return 0, kafkaFile{}, false
}

func (l *kafka) scanPartition(s *scan, dir string) error {
	entries, ok, err := s.readDir(dir, false)
	if err != nil || !ok {
		return err
	}
	type file struct {
		off   int64
		order int
		kf    kafkaFile
		c     Candidate
	}
	var files []file
	logs := map[int64]bool{}
	active, hasLog := int64(-1), false
	for _, e := range entries {
		if hasAnySuffix(e.name, kafkaBusyFileSuffixes) || kafkaMetaFile(e.name) {
			continue
		}
		rel := dir + "/" + e.name
		if !s.regular(rel, e, "a segment file") {
			continue
		}
		off, kf, ok := parseKafkaFile(e.name)
		if !ok {
			s.skip(rel, "unexpected file in a partition directory (want <20-digit offset>.log, .index, .timeindex, .txnindex or .snapshot)")
			continue
		}
		files = append(files, file{off, slices.Index(kafkaFiles, kf), kf, s.candidate(kf.kind, dir, rel, e.info)})
		if kf.kind == segment.KindKafkaLog {
			logs[off] = true
			active, hasLog = max(active, off), true
		}
	}
	slices.SortFunc(files, func(a, b file) int {
		return cmp.Or(cmp.Compare(a.off, b.off), cmp.Compare(a.order, b.order))
	})
	activeName := offsetName(active) + ".log"
	bases := slices.Sorted(maps.Keys(logs))
	var out []Candidate
	for _, f := range files {
		c := f.c
		c.Group = KafkaGroup(dir, bases, f.off)
		switch {
		case f.kf.kind == segment.KindKafkaSnapshot && !hasLog:
			c.Why = "producer snapshot in a partition without a log segment"
		case f.kf.kind == segment.KindKafkaSnapshot && f.off >= active:
			c.Why = "producer snapshot at or after the active segment's base offset: it may still be being written"
		case f.kf.kind == segment.KindKafkaSnapshot:
			c.Closed, c.Why = true, "the broker has rolled past it: "+activeName+" exists"
		case !logs[f.off]:
			s.skip(c.Rel, "no %s.log for this index: the segment is being deleted, or the file is foreign", offsetName(f.off))
			continue
		case f.off == active:
			c.Why = "active segment"
		case f.kf.entry > 0 && c.Size%f.kf.entry != 0:
			s.skip(c.Rel, "size %d is not a whole number of %d-byte entries: corrupt or foreign", c.Size, f.kf.entry)
			continue
		default:
			c.Closed, c.Why = true, "newer segment "+activeName+" exists"
		}
		out = append(out, c)
	}
	s.addSequence(dir, out)
	return nil
}

// KafkaGroup is the group (Segment.Group) of a file at offset off in partition dir whose
// segments have the base offsets bases (sorted): the segment whose base offset is the
// greatest at most off ("" when off is below every segment's).
func KafkaGroup(dir string, bases []int64, off int64) string {
	i, found := slices.BinarySearch(bases, off)
	switch {
	case found:
	case i == 0:
		return ""
	default:
		i--
	}
	return dir + "/" + offsetName(bases[i])
}

func hasAnySuffix(s string, suffixes []string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
}

// ParseKafkaRel splits the path of a Kafka segment file relative to its log.dir
// ("<topic>-<partition>/<20-digit offset>.<ext>") into its partition directory, its
// offset (a base offset; a producer snapshot's own offset) and its kind.
func ParseKafkaRel(rel string) (dir string, offset int64, kind segment.Kind, ok bool) {
	dir, name, found := strings.Cut(rel, "/")
	if !found || strings.Contains(name, "/") {
		return "", 0, "", false
	}
	if _, _, ok := parsePartitionDir(dir); !ok {
		return "", 0, "", false
	}
	off, kf, ok := parseKafkaFile(name)
	if !ok {
		return "", 0, "", false
	}
	return dir, off, kf.kind, true
}

// KafkaRel is the path of the Kafka segment file of kind at offset in partition
// directory dir, relative to the log.dir ("" for a kind that is not Kafka's).
func KafkaRel(dir string, offset int64, kind segment.Kind) string {
	for _, f := range kafkaFiles {
		if f.kind == kind {
			return dir + "/" + offsetName(offset) + f.ext
		}
	}
	return ""
}

// partitionDirs calls fn with every partition directory of the log.dir, skipping (with a
// reason) what is not one and leaving alone what the broker is in the middle of.
func partitionDirs(s *scan, fn func(entry) error) error {
	entries, _, err := s.readDir("", true)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	for _, e := range entries {
		m := e.info.Mode()
		if !m.IsDir() && m&fs.ModeSymlink == 0 {
			continue // the log.dir's own files
		}
		if hasAnySuffix(e.name, kafkaBusyDirSuffixes) || e.name == "lost+found" || e.name == "remote-log-index-cache" {
			continue
		}
		if _, _, ok := parsePartitionDir(e.name); !ok {
			if m.IsDir() && !strings.HasPrefix(e.name, ".") {
				s.skip(e.name, "not a <topic>-<partition> directory")
			}
			continue
		}
		if !s.directory(e.name, e, "a partition directory") {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}
