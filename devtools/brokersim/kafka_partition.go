package brokersim

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tierd/tierd/index"
)

// partition is one <topic>-<partition> log: its segments and the next offset.
type partition struct {
	o        *KafkaOptions
	topic    string
	id       int
	dir      string // <log.dir>/<topic>-<id>
	rel      string
	topicID  string
	next     int64 // log end offset
	seg      *segment
	logs     *sequence
	idxs     *sequence
	tidxs    *sequence
	onRoll   func(p *partition, base int64)
	segCount int
	files    *openFiles
}

// segment is the active segment of a partition, appended to as LogSegment.append does.
type segment struct {
	base                     int64
	log, oidxF, tidxF        *handle
	size                     int64
	oidx                     *index.OffsetIndexWriter
	tidx                     *index.TimeIndexWriter
	bytesSinceLastIndexEntry int
	maxTs, maxTsOffset       int64
}

func newPartition(o *KafkaOptions, files *openFiles, topic string, id int, topicID string) *partition {
	rel := fmt.Sprintf("%s-%d", topic, id)
	return &partition{
		o: o, files: files, topic: topic, id: id, topicID: topicID,
		dir:   filepath.Join(o.Dir, rel),
		rel:   rel,
		logs:  &sequence{kind: KindKafkaLog},
		idxs:  &sequence{kind: KindKafkaIndex},
		tidxs: &sequence{kind: KindKafkaTimeIndex},
	}
}

// roll seals the active segment, if any (final time-index entry, indexes trimmed), and
// opens a new one at the log end offset, its indexes preallocated.
func (p *partition) roll() error {
	if err := p.seal(); err != nil {
		return err
	}
	base := p.next
	name := offsetName(base)
	s := &segment{base: base, maxTs: -1, maxTsOffset: -1}
	var err error
	if s.log, err = p.files.create(filepath.Join(p.dir, name+".log"), 0); err != nil {
		return err
	}
	if s.oidxF, err = p.files.create(filepath.Join(p.dir, name+".index"), 0); err != nil {
		s.log.Close()
		return err
	}
	if s.tidxF, err = p.files.create(filepath.Join(p.dir, name+".timeindex"), 0); err != nil {
		s.log.Close()
		s.oidxF.Close()
		return err
	}
	p.seg = s
	p.logs.add(p.rel + "/" + name + ".log")
	p.idxs.add(p.rel + "/" + name + ".index")
	p.tidxs.add(p.rel + "/" + name + ".timeindex")
	if s.oidx, err = index.NewOffsetIndexWriter(s.oidxF, p.o.MaxIndexSize); err != nil {
		return fmt.Errorf("segment %s/%s: %w", p.rel, name, err)
	}
	if s.tidx, err = index.NewTimeIndexWriter(s.tidxF, p.o.MaxIndexSize); err != nil {
		return fmt.Errorf("segment %s/%s: %w", p.rel, name, err)
	}
	p.segCount++
	if p.onRoll != nil {
		p.onRoll(p, base)
	}
	return nil
}

// seal ends the active segment as LogSegment.onBecomeInactiveSegment does. With Static,
// its files get the time of its newest record as their modification time.
func (p *partition) seal() error {
	s := p.seg
	if s == nil {
		return nil
	}
	err := p.sealIndexes(s)
	if cerr := s.close(); err == nil {
		err = cerr
	}
	p.seg = nil
	if err == nil && p.o.Static && s.maxTs >= 0 {
		t := time.UnixMilli(s.maxTs)
		for _, f := range []*handle{s.log, s.oidxF, s.tidxF} {
			if err := os.Chtimes(f.Name(), t, t); err != nil {
				return fmt.Errorf("set the modification time of a sealed segment: %w", err)
			}
		}
	}
	return err
}

// closeActive closes the active segment's files, if any, leaving it active (its indexes
// preallocated, as Kafka leaves an active segment).
func (p *partition) closeActive() error {
	if p.seg == nil {
		return nil
	}
	return p.seg.close()
}

// close closes the segment's three files, keeping the first error.
func (s *segment) close() error {
	var err error
	for _, f := range []*handle{s.log, s.oidxF, s.tidxF} {
		if f.closed {
			continue
		}
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close segment file: %w", cerr)
		}
	}
	return err
}

func (p *partition) sealIndexes(s *segment) error {
	if s.maxTs >= 0 {
		if err := s.tidx.MaybeAppend(s.maxTs, int32(s.maxTsOffset-s.base), true); err != nil {
			return fmt.Errorf("segment %s/%d: %w", p.rel, s.base, err)
		}
	}
	if err := s.oidx.Trim(); err != nil {
		return fmt.Errorf("segment %s/%d: %w", p.rel, s.base, err)
	}
	if err := s.tidx.Trim(); err != nil {
		return fmt.Errorf("segment %s/%d: %w", p.rel, s.base, err)
	}
	return nil
}

// append writes the encoded batch b (whose records start at p.next) and indexes it.
// It returns the segment base and position the batch went to.
func (p *partition) append(b []byte, lastOffset, maxTs int64) (int64, int64, error) {
	s := p.seg
	// UnifiedLog.maybeRoll / LogSegment.shouldRoll: size, full indexes, or offsets that
	// no longer fit an int32 relative to the base.
	if s == nil || s.size > p.o.SegmentBytes-int64(len(b)) || s.oidx.Full() || s.tidx.Full() || lastOffset-s.base > 1<<31-1 {
		if err := p.roll(); err != nil {
			return 0, 0, err
		}
		s = p.seg
	}
	pos := s.size
	if _, err := s.log.WriteAt(b, pos); err != nil {
		return 0, 0, fmt.Errorf("write %s/%d.log at %d: %w", p.rel, s.base, pos, err)
	}
	s.size += int64(len(b))
	if maxTs > s.maxTs {
		s.maxTs, s.maxTsOffset = maxTs, lastOffset
	}
	if s.bytesSinceLastIndexEntry > p.o.IndexIntervalBytes {
		if err := s.oidx.Append(index.OffsetEntry{RelOffset: int32(lastOffset - s.base), Position: int32(pos)}); err != nil {
			return 0, 0, fmt.Errorf("segment %s/%d: %w", p.rel, s.base, err)
		}
		if err := s.tidx.MaybeAppend(s.maxTs, int32(s.maxTsOffset-s.base), false); err != nil {
			return 0, 0, fmt.Errorf("segment %s/%d: %w", p.rel, s.base, err)
		}
		s.bytesSinceLastIndexEntry = 0
	}
	s.bytesSinceLastIndexEntry += len(b)
	p.next = lastOffset + 1
	return s.base, pos, nil
}
