package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tierd/tierd/segment"
)

// SeqDir is one sequence directory a Walker found.
type SeqDir struct {
	// Name is the sequence's name (Segment.Seq), which is also its directory relative
	// to the root, slash-separated.
	Name string
	// ModTime is the directory's mtime when it was listed. While it does not change, no
	// file was created, renamed or deleted in the directory, so which of its files are
	// closed has not changed either.
	ModTime time.Time
	// Volatile says whether a file may become closed without the directory changing (the
	// newest RocketMQ IndexFile is closed once its header says it is full): such a
	// sequence is scanned at every scan.
	Volatile bool
}

// Walker is a Layout that scans one sequence at a time, so that a scan holds one
// sequence's files at a time and can leave out directories that did not change
// (docs/DESIGN.md invariant 9). Both layouts are Walkers.
//
// Concurrency: as Layout.
type Walker interface {
	Layout
	// Sequences checks root (as Scan does) and calls fn with each sequence directory under
	// it, without listing the sequences' files. It returns what it skipped above the
	// sequence level. An error from fn stops it and is returned.
	Sequences(ctx context.Context, root string, fn func(SeqDir) error) ([]Skipped, error)
	// ScanSequence lists one sequence directory, as Scan would: its candidates (none if
	// the directory is gone or holds no segment) and the files it skipped.
	ScanSequence(ctx context.Context, root string, dir SeqDir) (Sequence, []Skipped, error)
}

var (
	_ Walker = (*kafka)(nil)
	_ Walker = (*rocketMQ)(nil)
)

// seqScan is a scan of one sequence of an absolute root.
func seqScan(ctx context.Context, source, root string) (*scan, error) {
	if !filepath.IsAbs(root) {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, fmt.Errorf("scan %q: %w", root, err)
		}
		root = abs
	}
	return &scan{ctx: ctx, root: root, res: ScanResult{Source: source, Root: root}}, nil
}

// one returns the scan's single sequence (or an empty one named name) and what it skipped.
func (s *scan) one(name string) (Sequence, []Skipped) {
	res := s.finish()
	if len(res.Sequences) == 0 {
		return Sequence{Name: name}, res.Skipped
	}
	return res.Sequences[0], res.Skipped
}

// Sequences implements Walker: every partition directory is a sequence.
func (l *kafka) Sequences(ctx context.Context, root string, fn func(SeqDir) error) ([]Skipped, error) {
	if err := Recognize(LayoutKafka, root); err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	s, err := newScan(ctx, l.opts.Source, root)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	err = partitionDirs(s, func(e entry) error {
		return fn(SeqDir{Name: e.name, ModTime: e.info.ModTime()})
	})
	if err != nil {
		return nil, err
	}
	return s.finish().Skipped, nil
}

// ScanSequence implements Walker.
func (l *kafka) ScanSequence(ctx context.Context, root string, dir SeqDir) (Sequence, []Skipped, error) {
	s, err := seqScan(ctx, l.opts.Source, root)
	if err != nil {
		return Sequence{}, nil, err
	}
	if err := l.scanPartition(s, dir.Name); err != nil {
		return Sequence{}, nil, err
	}
	seq, skipped := s.one(dir.Name)
	return seq, skipped, nil
}

// Sequences implements Walker: the commit log, each consume queue and the index
// directory are sequences; the index directory is Volatile.
func (l *rocketMQ) Sequences(ctx context.Context, root string, fn func(SeqDir) error) ([]Skipped, error) {
	if err := Recognize(LayoutRocketMQ, root); err != nil {
		return nil, fmt.Errorf("rocketmq: %w", err)
	}
	s, err := newScan(ctx, l.opts.Source, root)
	if err != nil {
		return nil, fmt.Errorf("rocketmq: %w", err)
	}
	for _, name := range []string{"commitlog", "consumequeue", "index"} {
		ok, err := l.ownedDir(s, name)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if name == "consumequeue" {
			if err := l.queueDirs(s, fn); err != nil {
				return nil, err
			}
			continue
		}
		fi, err := os.Stat(filepath.Join(s.root, name)) // the commit log's may be a link
		if err != nil {
			continue // gone since ownedDir looked
		}
		if err := fn(SeqDir{Name: name, ModTime: fi.ModTime(), Volatile: name == "index"}); err != nil {
			return nil, err
		}
	}
	return s.finish().Skipped, nil
}

// queueDirs calls fn with every consume queue directory.
func (l *rocketMQ) queueDirs(s *scan, fn func(SeqDir) error) error {
	topics, ok, err := s.readDir("consumequeue", false)
	if err != nil || !ok {
		return err
	}
	for _, t := range topics {
		trel := "consumequeue/" + t.name
		if !s.directory(trel, t, "a topic directory") {
			continue
		}
		if !validRocketMQTopic(t.name) {
			s.skip(trel, "not a RocketMQ topic name (1-127 of A-Z a-z 0-9 %% | - _)")
			continue
		}
		queues, ok, err := s.readDir(trel, false)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for _, q := range queues {
			qrel := trel + "/" + q.name
			if !s.directory(qrel, q, "a queue directory") {
				continue
			}
			if _, ok := parseID(q.name); !ok {
				s.skip(qrel, "queue directory name is not a queue id")
				continue
			}
			if err := fn(SeqDir{Name: qrel, ModTime: q.info.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// ScanSequence implements Walker.
func (l *rocketMQ) ScanSequence(ctx context.Context, root string, dir SeqDir) (Sequence, []Skipped, error) {
	s, err := seqScan(ctx, l.opts.Source, root)
	if err != nil {
		return Sequence{}, nil, err
	}
	switch {
	case dir.Name == "commitlog":
		err = l.scanOffsetSeq(s, offsetSeq{
			kind: segment.KindCommitLog, seq: "commitlog", dir: "commitlog",
			fileSize: l.opts.CommitLogFileSize, sizeName: "commitlog_file_size", open: 2,
		})
	case dir.Name == "index":
		err = l.scanIndex(s)
	case strings.HasPrefix(dir.Name, "consumequeue/") && strings.Count(dir.Name, "/") == 2:
		err = l.scanOffsetSeq(s, offsetSeq{
			kind: segment.KindConsumeQueue, seq: dir.Name, dir: dir.Name,
			fileSize: l.opts.ConsumeQueueFileSize, sizeName: "consumequeue_file_size", open: 1,
		})
	default:
		return Sequence{}, nil, fmt.Errorf("rocketmq: %q is not a sequence of this layout", dir.Name)
	}
	if err != nil {
		return Sequence{}, nil, err
	}
	seq, skipped := s.one(dir.Name)
	return seq, skipped, nil
}
