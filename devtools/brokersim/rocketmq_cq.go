package brokersim

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/tierd/tierd/record"
)

// cqBufEntries is how many consume-queue entries are buffered per queue (4000 bytes).
const cqBufEntries = 200

// consumeQueue appends entries to one topic/queue's preallocated consume-queue files.
type consumeQueue struct {
	dir    string // <store>/consumequeue/<topic>/<queueId>
	rel    string // the same, relative to the store
	size   int64
	seq    *sequence
	files  *openFiles
	f      *handle
	start  int64 // byte offset of the active file in the queue
	wpos   int64
	buf    []byte
	bufPos int64
}

func newConsumeQueue(files *openFiles, storeDir, topic string, queue int, size int64) *consumeQueue {
	rel := "consumequeue/" + topic + "/" + strconv.Itoa(queue)
	return &consumeQueue{
		files: files,
		dir:   filepath.Join(storeDir, filepath.FromSlash(rel)),
		rel:   rel,
		size:  size,
		seq:   &sequence{kind: KindConsumeQueue},
	}
}

func (q *consumeQueue) append(e record.CQEntry) error {
	if q.f != nil && q.wpos >= q.size {
		if err := q.close(); err != nil {
			return err
		}
		q.start += q.size
	}
	if q.f == nil {
		name := offsetName(q.start)
		f, err := q.files.create(filepath.Join(q.dir, name), q.size)
		if err != nil {
			return fmt.Errorf("open consume-queue file: %w", err)
		}
		q.f, q.wpos, q.bufPos = f, 0, 0
		q.seq.add(q.rel + "/" + name)
		if q.buf == nil {
			q.buf = make([]byte, 0, cqBufEntries*record.CQEntrySize)
		}
	}
	if len(q.buf)+record.CQEntrySize > cap(q.buf) {
		if err := q.flush(); err != nil {
			return err
		}
	}
	q.buf = record.AppendCQEntry(q.buf, e)
	q.wpos += record.CQEntrySize
	return nil
}

func (q *consumeQueue) flush() error {
	if len(q.buf) == 0 || q.f == nil {
		return nil
	}
	if _, err := q.f.WriteAt(q.buf, q.bufPos); err != nil {
		return fmt.Errorf("write consume queue %s at %d: %w", q.rel, q.start+q.bufPos, err)
	}
	q.bufPos += int64(len(q.buf))
	q.buf = q.buf[:0]
	return nil
}

func (q *consumeQueue) close() error {
	if q.f == nil {
		return nil
	}
	err := q.flush()
	if cerr := q.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close consume-queue file: %w", cerr)
	}
	q.f = nil
	return err
}
