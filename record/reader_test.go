package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// commitLogFile builds a commit-log file of size bytes holding msgs at their physical
// offsets, sealed with a BLANK filler when blank is true (else zero-filled).
func commitLogFile(t *testing.T, size int, bodies []int, blank bool) ([]byte, []Message) {
	t.Helper()
	var file []byte
	var msgs []Message
	for i, n := range bodies {
		m := sampleMessage()
		m.QueueOffset = int64(i)
		m.PhysicalOffset = int64(len(file))
		m.Body = bytes.Repeat([]byte{byte(i)}, n)
		var err error
		if file, err = AppendMessage(file, &m); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if len(file)+EndFileMinBlankLength > size {
		t.Fatalf("messages take %d bytes, file is %d", len(file), size)
	}
	if blank {
		be := binary.BigEndian
		file = be.AppendUint32(file, uint32(size-len(file)))
		file = be.AppendUint32(file, blankMagic)
	}
	return append(file, make([]byte, size-len(file))...), msgs
}

func readAll(r *MessageReader) ([]Message, []int64, error) {
	var msgs []Message
	var offs []int64
	for range 1 << 20 {
		m, err := r.Next()
		if err != nil {
			return msgs, offs, err
		}
		m.Body = bytes.Clone(m.Body)
		msgs = append(msgs, m)
		offs = append(offs, r.Offset())
	}
	panic("BUG: reader did not stop")
}

func TestMessageReader(t *testing.T) {
	f := func(name string, bodies []int, size int, blank bool, buf []byte) {
		t.Run(name, func(t *testing.T) {
			file, want := commitLogFile(t, size, bodies, blank)
			r := NewMessageReader(bytes.NewReader(file), 0, int64(len(file)), buf)
			got, offs, err := readAll(r)
			wantErr := io.EOF
			if blank {
				wantErr = ErrBlank
			}
			if err != wantErr {
				t.Fatalf("stopped with %v, want %v", err, wantErr)
			}
			if len(got) != len(want) {
				t.Fatalf("%d messages, want %d", len(got), len(want))
			}
			for i := range got {
				if !messagesEqual(got[i], want[i]) || offs[i] != want[i].PhysicalOffset {
					t.Fatalf("message %d at %d differs", i, offs[i])
				}
			}
			if blank && r.Pos() != int64(size) {
				t.Fatalf("after BLANK Pos = %d, want %d", r.Pos(), size)
			}
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("after the end: %v", err)
			}
		})
	}
	f("blank", []int{10, 20, 30}, 1000, true, nil)
	f("zero tail", []int{10, 20, 30}, 1000, false, nil)
	f("empty active file", nil, 100, false, nil)
	f("small buffer shifts", []int{100, 150, 100, 150, 100}, 2000, true, make([]byte, 400))
	f("buffer grows", []int{10, 200 << 10, 10}, 300<<10, true, nil)
}

func TestMessageReaderExactEnd(t *testing.T) {
	// A region ending right after the last message (no filler, no tail) ends with io.EOF.
	file, _ := commitLogFile(t, 1000, []int{10, 20}, false)
	end := 0
	for range 2 {
		end += int(binary.BigEndian.Uint32(file[end:]))
	}
	got, _, err := readAll(NewMessageReader(bytes.NewReader(file[:end]), 0, int64(end), nil))
	if err != io.EOF || len(got) != 2 {
		t.Fatalf("%d messages, %v", len(got), err)
	}
	// The same bytes read from the middle: start at the second message.
	first := int64(binary.BigEndian.Uint32(file))
	got, offs, err := readAll(NewMessageReader(bytes.NewReader(file), first, 1000, nil))
	if err != io.EOF || len(got) != 1 || offs[0] != first {
		t.Fatalf("from %d: %d messages %v, %v", first, len(got), offs, err)
	}
}

func TestMessageReaderErrors(t *testing.T) {
	file, _ := commitLogFile(t, 1000, []int{10, 20, 30}, true)
	second := int(binary.BigEndian.Uint32(file))
	f := func(file []byte, buf []byte, wantIs error, want string) {
		t.Helper()
		got, _, err := readAll(NewMessageReader(bytes.NewReader(file), 0, int64(len(file)), buf))
		if !errors.Is(err, wantIs) || !strings.Contains(err.Error(), want) {
			t.Fatalf("after %d messages: err = %v, want %v containing %q", len(got), err, wantIs, want)
		}
	}
	f(file[:second+50], nil, io.ErrUnexpectedEOF, fmt.Sprintf("message at offset %d", second))
	f(file[:second+5], nil, io.ErrUnexpectedEOF, "need 8")
	f(file, make([]byte, 100), ErrTooLarge, "limit 100")
	bad := bytes.Clone(file)
	bad[second+4] = 0
	f(bad, nil, ErrCorrupt, "bad magic")
	bad = bytes.Clone(file)
	binary.BigEndian.PutUint32(bad[second:], 0)
	f(bad, nil, ErrCorrupt, "")
	bad = bytes.Clone(file)
	binary.BigEndian.PutUint32(bad[second:], 1<<30)
	f(bad, nil, ErrTooLarge, "")
	bad = bytes.Clone(file)
	bad[second+100] ^= 0xFF
	f(bad, nil, ErrCorrupt, "")
}

type errReaderAt struct{ err error }

func (e errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, e.err }

func TestMessageReaderIOError(t *testing.T) {
	boom := errors.New("boom")
	_, err := NewMessageReader(errReaderAt{boom}, 0, 100, nil).Next()
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}
