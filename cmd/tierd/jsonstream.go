package main

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
)

// jsonStream writes one JSON document piece by piece, indented as printJSON indents a
// whole value, so that a listing of a million entries is never held whole (arrays are
// never null: an empty one is written []).
type jsonStream struct {
	w     *bufio.Writer
	empty []bool // per open container: nothing written in it yet
	err   error
}

func newJSONStream(w io.Writer) *jsonStream { return &jsonStream{w: bufio.NewWriterSize(w, 64<<10)} }

func (j *jsonStream) write(s string) {
	if j.err == nil {
		_, j.err = j.w.WriteString(s)
	}
}

func (j *jsonStream) indent() string { return strings.Repeat("  ", len(j.empty)) }

// next starts a member of the innermost container.
func (j *jsonStream) next() {
	if n := len(j.empty); n > 0 {
		if !j.empty[n-1] {
			j.write(",")
		}
		j.empty[n-1] = false
		j.write("\n" + j.indent())
	}
}

// open starts an object ('{') or array ('['), as the next member when inside one.
func (j *jsonStream) open(c byte) {
	j.write(string(c))
	j.empty = append(j.empty, true)
}

// close ends the innermost container.
func (j *jsonStream) close(c byte) {
	n := len(j.empty)
	wasEmpty := j.empty[n-1]
	j.empty = j.empty[:n-1]
	if !wasEmpty {
		j.write("\n" + j.indent())
	}
	j.write(string(c))
}

// key starts the member name of the innermost object.
func (j *jsonStream) key(name string) {
	j.next()
	b, _ := json.Marshal(name)
	j.write(string(b) + ": ")
}

// value writes v (after key, or as the next element of an array).
func (j *jsonStream) value(v any) {
	b, err := json.MarshalIndent(v, j.indent(), "  ")
	if err != nil && j.err == nil {
		j.err = err
	}
	j.write(string(b))
}

// elem writes v as the next element of the innermost array.
func (j *jsonStream) elem(v any) error {
	j.next()
	j.value(v)
	return j.err
}

// end finishes the document.
func (j *jsonStream) end() error {
	j.write("\n")
	if j.err == nil {
		j.err = j.w.Flush()
	}
	return j.err
}
