package brokersim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tierd/tierd/index"
)

// indexFiles keeps the active IndexFile and rolls to a new one when it is full, as the
// broker's IndexService does: the new file starts from the full one's end offset and time.
type indexFiles struct {
	dir          string // <store>/index
	slots, items int
	loc          *time.Location
	seq          *sequence
	f            *os.File
	w            *index.IndexFileWriter
	lastName     int64 // creation time (ms) of the newest file, to keep names unique
	onRoll       func(name string)
}

func newIndexFiles(storeDir string, slots, items int, loc *time.Location) *indexFiles {
	return &indexFiles{
		dir:   filepath.Join(storeDir, "index"),
		slots: slots, items: items, loc: loc,
		seq: &sequence{kind: KindIndexFile},
	}
}

// put indexes key; now (ms) names a file created for it.
func (x *indexFiles) put(key string, phyOffset, storeTimestamp, now int64) error {
	if x.w == nil {
		if err := x.create(0, 0, now); err != nil {
			return err
		}
	}
	err := x.w.Put(key, phyOffset, storeTimestamp)
	if errors.Is(err, index.ErrIndexFileFull) {
		h := x.w.Header()
		if err := x.close(); err != nil {
			return err
		}
		if err := x.create(h.EndPhyOffset, h.EndTimestamp, now); err != nil {
			return err
		}
		err = x.w.Put(key, phyOffset, storeTimestamp)
	}
	if err != nil {
		return fmt.Errorf("index key %q: %w", key, err)
	}
	return nil
}

func (x *indexFiles) create(prevEndPhy, prevEndTs, now int64) error {
	// Names are creation times in ms; a file filled within one ms gets the next ms.
	ms := max(now, x.lastName+1)
	x.lastName = ms
	name := timeName(ms, x.loc)
	f, err := createFile(filepath.Join(x.dir, name), index.IndexFileSize(x.slots, x.items))
	if err != nil {
		return fmt.Errorf("open index file: %w", err)
	}
	w, err := index.NewIndexFileWriter(f, x.slots, x.items, prevEndPhy, prevEndTs)
	if err != nil {
		f.Close()
		return err
	}
	x.f, x.w = f, w
	x.seq.add("index/" + name)
	if x.onRoll != nil {
		x.onRoll(name)
	}
	return nil
}

func (x *indexFiles) flush() error {
	if x.w == nil {
		return nil
	}
	if err := x.w.Flush(); err != nil {
		return fmt.Errorf("flush index file %s: %w", x.f.Name(), err)
	}
	return nil
}

func (x *indexFiles) close() error {
	if x.w == nil {
		return nil
	}
	err := x.flush()
	if cerr := x.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close index file: %w", cerr)
	}
	x.f, x.w = nil, nil
	return err
}
