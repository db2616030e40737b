package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/tierd/tierd/daemon"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/source"
)

// jsonScanOut streams a dry run as the JSON of daemon.ScanReport: {"sources": [...],
// "tiers": [...], "delete_local": [...]}. Within a source, "unsealed" and "skipped" come
// before "sealed" (the scan finds them first); arrays are never null.
type jsonScanOut struct {
	j       *jsonStream
	section int      // the top-level array open: index in scanSections, -1 before any
	arrays  []string // the arrays of the open source or tier, in order
	open    int      // index in arrays of the open one, -1 before any
	failed  []string
	name    string
	// skipped are held until the source's unsealed files are written: the scan finds
	// both as it goes, and skipped files (foreign or corrupt ones) are few.
	skipped []source.Skipped
}

var (
	_            daemon.ScanOutput = (*jsonScanOut)(nil)
	scanSections                   = []string{"sources", "tiers", "delete_local"}
	sourceArrays                   = []string{"unsealed", "skipped", "sealed", "changed"}
	tierArrays                     = []string{"move", "later", "expire"}
)

func newJSONScanOut(w io.Writer) *jsonScanOut {
	o := &jsonScanOut{j: newJSONStream(w), section: -1}
	o.j.open('{')
	return o
}

// enter makes scanSections[to] the open top-level array, writing any skipped one empty.
func (o *jsonScanOut) enter(to int) {
	for o.section < to {
		if o.section >= 0 {
			o.j.close(']')
		}
		o.section++
		o.j.key(scanSections[o.section])
		o.j.open('[')
	}
}

// member opens a source or tier object with the given arrays.
func (o *jsonScanOut) member(section int, arrays []string, fields ...any) error {
	o.enter(section)
	o.j.next()
	o.j.open('{')
	for i := 0; i < len(fields); i += 2 {
		o.j.key(fields[i].(string))
		o.j.value(fields[i+1])
	}
	o.arrays, o.open = arrays, -1
	return o.j.err
}

// array makes the named array of the open member the open one, writing skipped ones
// empty (arrays are never null). Arrays come in order: a call for an earlier one than the
// open one is a bug.
func (o *jsonScanOut) array(name string) {
	to := slices.Index(o.arrays, name)
	if to < o.open {
		panic("BUG: scan report array " + name + " after " + o.arrays[o.open])
	}
	for o.open < to {
		if o.open >= 0 {
			o.j.close(']')
		}
		o.open++
		o.j.key(o.arrays[o.open])
		o.j.open('[')
	}
}

// endArrays writes the member's remaining arrays empty and closes the last.
func (o *jsonScanOut) endArrays() {
	o.array(o.arrays[len(o.arrays)-1])
	o.j.close(']')
}

func (o *jsonScanOut) BeginSource(name, root string) error {
	o.name = name
	return o.member(0, sourceArrays, "name", name, "path", root)
}

func (o *jsonScanOut) Unsealed(p source.Pending) error {
	o.array("unsealed")
	return o.j.elem(p)
}

func (o *jsonScanOut) Skipped(sk source.Skipped) error {
	o.skipped = append(o.skipped, sk)
	return nil
}

// writeSkipped writes the held skipped files once the unsealed ones are written.
func (o *jsonScanOut) writeSkipped() {
	if o.open > 1 {
		return
	}
	o.array("skipped")
	for _, sk := range o.skipped {
		o.j.elem(sk)
	}
	o.skipped = o.skipped[:0]
}

func (o *jsonScanOut) Sealed(s segment.Segment) error {
	o.writeSkipped()
	o.array("sealed")
	return o.j.elem(s)
}

func (o *jsonScanOut) Changed(c daemon.Changed) error {
	o.writeSkipped()
	o.array("changed")
	return o.j.elem(c)
}

func (o *jsonScanOut) EndSource(scanErr string) error {
	o.writeSkipped()
	o.endArrays()
	if scanErr != "" {
		o.j.key("error")
		o.j.value(scanErr)
		o.failed = append(o.failed, o.name)
	}
	o.j.close('}')
	return o.j.err
}

func (o *jsonScanOut) BeginTier(name string, paused bool, present int) error {
	return o.member(1, tierArrays, "name", name, "present", present, "paused", paused)
}

func (o *jsonScanOut) Move(m string) error {
	o.array("move")
	return o.j.elem(m)
}

func (o *jsonScanOut) Later(l daemon.DueLater) error {
	o.array("later")
	return o.j.elem(l)
}

func (o *jsonScanOut) Expire(e string) error {
	o.array("expire")
	return o.j.elem(e)
}

func (o *jsonScanOut) EndTier() error {
	o.endArrays()
	o.j.close('}')
	return o.j.err
}

func (o *jsonScanOut) DeleteLocal(p string) error {
	o.enter(2)
	return o.j.elem(p)
}

// finish closes the document; sections nothing was written to are written empty.
func (o *jsonScanOut) finish() error {
	o.enter(len(scanSections) - 1)
	o.j.close(']')
	o.j.close('}')
	return o.j.end()
}

// textScanOut streams a dry run as text: per source its unsealed and skipped files, then
// a summary line; per tier what would move, wait and expire, then a summary line.
type textScanOut struct {
	w                      *tabwriter.Writer
	failed                 []string
	name                   string
	sealed, unsealed, skip int
	changed                int
	move, later, exp       int
	tierName, tierState    string
	present, deleted       int
}

var _ daemon.ScanOutput = (*textScanOut)(nil)

func newTextScanOut(w io.Writer) *textScanOut {
	return &textScanOut{w: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
}

func (o *textScanOut) BeginSource(name, root string) error {
	o.name, o.sealed, o.unsealed, o.skip, o.changed = name, 0, 0, 0, 0
	_, err := fmt.Fprintf(o.w, "source %s (%s)\n", name, root)
	return err
}

func (o *textScanOut) Unsealed(p source.Pending) error {
	o.unsealed++
	_, err := fmt.Fprintf(o.w, "  not sealed\t%s\t%s\n", p.Rel, p.Why)
	return err
}

func (o *textScanOut) Skipped(sk source.Skipped) error {
	o.skip++
	_, err := fmt.Fprintf(o.w, "  skipped\t%s\t%s\n", sk.Path, sk.Reason)
	return err
}

func (o *textScanOut) Sealed(segment.Segment) error { o.sealed++; return nil }

func (o *textScanOut) Changed(c daemon.Changed) error {
	o.changed++
	_, err := fmt.Fprintf(o.w, "  changed\t%s\t%s\n", c.Rel, c.Why)
	return err
}

func (o *textScanOut) EndSource(scanErr string) error {
	if scanErr != "" {
		o.failed = append(o.failed, o.name)
		fmt.Fprintf(o.w, "  error: %s\n", scanErr)
	}
	_, err := fmt.Fprintf(o.w, "source %s: %d sealed, %d not sealed, %d skipped, %d changed since offload\n", o.name, o.sealed, o.unsealed, o.skip, o.changed)
	return err
}

func (o *textScanOut) BeginTier(name string, paused bool, present int) error {
	o.tierName, o.present, o.move, o.later, o.exp, o.tierState = name, present, 0, 0, 0, ""
	if paused {
		o.tierState = " (paused: filesystem too full)"
	}
	_, err := fmt.Fprintf(o.w, "tier %s%s\n", name, o.tierState)
	return err
}

func (o *textScanOut) Move(m string) error {
	o.move++
	_, err := fmt.Fprintf(o.w, "  move\t%s\n", m)
	return err
}

func (o *textScanOut) Later(l daemon.DueLater) error {
	o.later++
	_, err := fmt.Fprintf(o.w, "  later\t%s\tdue %s\n", l.Path, l.Due.Format(time.RFC3339))
	return err
}

func (o *textScanOut) Expire(e string) error {
	o.exp++
	_, err := fmt.Fprintf(o.w, "  expire\t%s\n", e)
	return err
}

func (o *textScanOut) EndTier() error {
	_, err := fmt.Fprintf(o.w, "tier %s%s: %d to move now, %d later, %d to expire, %d already there\n", o.tierName, o.tierState, o.move, o.later, o.exp, o.present)
	return err
}

func (o *textScanOut) DeleteLocal(p string) error {
	o.deleted++
	_, err := fmt.Fprintf(o.w, "  delete\t%s\n", p)
	return err
}

func (o *textScanOut) finish() error {
	if o.deleted > 0 {
		fmt.Fprintf(o.w, "local: %d to delete (local.delete_after; every required tier holds a verified copy)\n", o.deleted)
	}
	return o.w.Flush()
}
