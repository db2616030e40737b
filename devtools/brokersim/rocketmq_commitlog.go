package brokersim

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tierd/tierd/record"
)

// writeBufSize is the commit-log write buffer.
const writeBufSize = 64 << 10

// commitLog appends messages to preallocated commit-log files, ending each full file with
// a BLANK filler as CommitLog.DefaultAppendMessageCallback.doAppend does.
type commitLog struct {
	dir        string // <store>/commitlog
	size       int64
	preNext    bool
	seq        *sequence
	f          *os.File
	start      int64  // physical offset of the active file
	wpos       int64  // write position in the active file
	buf        []byte // bytes not yet written, from file position bufPos
	bufPos     int64
	onRoll     func(name string)
	preallocOK map[int64]bool // files created ahead (PreallocateNext)
}

func newCommitLog(storeDir string, size int64, preNext bool) *commitLog {
	return &commitLog{
		dir:        filepath.Join(storeDir, "commitlog"),
		size:       size,
		preNext:    preNext,
		seq:        &sequence{kind: KindCommitLog, ahead: preNext},
		buf:        make([]byte, 0, writeBufSize),
		preallocOK: map[int64]bool{},
	}
}

// open makes the file starting at physical offset start the active one.
func (c *commitLog) open(start int64) error {
	name := offsetName(start)
	path := filepath.Join(c.dir, name)
	var f *os.File
	var err error
	if c.preallocOK[start] {
		f, err = os.OpenFile(path, os.O_RDWR, 0)
		delete(c.preallocOK, start)
	} else {
		f, err = createFile(path, c.size)
		c.seq.add("commitlog/" + name)
	}
	if err != nil {
		return fmt.Errorf("open commit-log file: %w", err)
	}
	c.f, c.start, c.wpos, c.bufPos = f, start, 0, 0
	if c.preNext {
		next := start + c.size
		nf, err := createFile(filepath.Join(c.dir, offsetName(next)), c.size)
		if err != nil {
			return fmt.Errorf("preallocate next commit-log file: %w", err)
		}
		if err := nf.Close(); err != nil {
			return fmt.Errorf("preallocate next commit-log file: %w", err)
		}
		c.preallocOK[next] = true
		c.seq.add("commitlog/" + offsetName(next))
	}
	if c.onRoll != nil {
		c.onRoll(name)
	}
	return nil
}

// reserve returns the physical offset at which a message of size bytes goes: at the
// write position if the message and an 8-byte BLANK still fit in the file, else at the
// start of the next file, after ending this one with a BLANK of the bytes left.
func (c *commitLog) reserve(size int) (int64, error) {
	if int64(size)+record.EndFileMinBlankLength > c.size {
		return 0, fmt.Errorf("BUG: message of %d bytes cannot fit a %d-byte commit-log file", size, c.size)
	}
	if c.f == nil {
		if err := c.open(0); err != nil {
			return 0, err
		}
	}
	if left := c.size - c.wpos; int64(size)+record.EndFileMinBlankLength > left {
		var blank [8]byte
		binary.BigEndian.PutUint32(blank[:], uint32(left))
		magic := record.MagicBlank
		binary.BigEndian.PutUint32(blank[4:], uint32(magic))
		if err := c.write(blank[:]); err != nil {
			return 0, err
		}
		if err := c.close(); err != nil {
			return 0, err
		}
		if err := c.open(c.start + c.size); err != nil {
			return 0, err
		}
	}
	return c.start + c.wpos, nil
}

// write appends b at the write position.
func (c *commitLog) write(b []byte) error {
	if len(c.buf)+len(b) > cap(c.buf) {
		if err := c.flush(); err != nil {
			return err
		}
	}
	if len(b) > cap(c.buf) {
		if _, err := c.f.WriteAt(b, c.wpos); err != nil {
			return fmt.Errorf("write commit log at %d: %w", c.start+c.wpos, err)
		}
		c.wpos += int64(len(b))
		c.bufPos = c.wpos
		return nil
	}
	c.buf = append(c.buf, b...)
	c.wpos += int64(len(b))
	return nil
}

func (c *commitLog) flush() error {
	if len(c.buf) == 0 || c.f == nil {
		return nil
	}
	if _, err := c.f.WriteAt(c.buf, c.bufPos); err != nil {
		return fmt.Errorf("write commit log at %d: %w", c.start+c.bufPos, err)
	}
	c.bufPos += int64(len(c.buf))
	c.buf = c.buf[:0]
	return nil
}

func (c *commitLog) close() error {
	if c.f == nil {
		return nil
	}
	err := c.flush()
	if cerr := c.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close commit-log file: %w", cerr)
	}
	c.f = nil
	return err
}

// end returns the physical offset after the last byte written.
func (c *commitLog) end() int64 { return c.start + c.wpos }
