package source

import "github.com/tierd/tierd/segment"

// Candidate is a segment file as a Layout sees it, with the layout's verdict on whether
// the broker is done writing it.
type Candidate struct {
	segment.Segment
	// Closed says the broker has moved past the file: a newer file of the same
	// sequence exists that the broker has started writing (or, for a RocketMQ IndexFile,
	// the file's header says it is full). It is necessary for the file to be sealed, not
	// sufficient: the Sealer also wants it unchanged across two scans and older than
	// seal_grace. A file that is not Closed is never offered.
	Closed bool
	// Why explains the verdict in a few words: why the file is not closed yet
	// ("active: newest file of the sequence"), or how the layout knows it is.
	Why string
}

// Sequence is one run of files a broker writes one after the other, oldest first.
type Sequence struct {
	// Name is the Seq of every file in the sequence.
	Name string
	// Files are the sequence's candidates in the broker's order (by start offset or
	// creation time; Kafka files of one segment are ordered log, index, timeindex,
	// txnindex, with snapshots at their offset).
	Files []Candidate
}

// Skipped is a file or directory, inside the directories a layout owns, that is not a
// segment the layout can vouch for: foreign, corrupt-looking, of the wrong size, or a
// symlink. Skipped files are never offered; tierd reports them so an operator can look.
type Skipped struct {
	// Path is the absolute local path.
	Path string
	// Reason says what is wrong with it.
	Reason string
	// Option, when set, is the source setting (YAML key) the file disagrees with, such as
	// commitlog_file_size: Reason then says the value that would fit, if one does.
	Option string
}

// ScanResult is what a Layout found under a source directory at one moment.
type ScanResult struct {
	// Source is the source name (LayoutOptions.Source).
	Source string
	// Root is the scanned directory, absolute and clean.
	Root string
	// Sequences are sorted by Name. A sequence has at least one file.
	Sequences []Sequence
	// Skipped are sorted by Path.
	Skipped []Skipped
}

// Candidates returns every candidate of every sequence, in order.
func (r ScanResult) Candidates() []Candidate {
	var n int
	for _, s := range r.Sequences {
		n += len(s.Files)
	}
	out := make([]Candidate, 0, n)
	for _, s := range r.Sequences {
		out = append(out, s.Files...)
	}
	return out
}
