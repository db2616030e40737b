package segment

import "time"

// Segment is one broker file that a Layout found: the unit tierd seals, copies and keys.
// A Segment is a value observed at one scan; the file may have changed since.
type Segment struct {
	// Source is the name of the configured source the file belongs to.
	Source string
	// Kind says what broker file this is.
	Kind Kind
	// Path is the file's absolute local path.
	Path string
	// Rel is the path relative to the source directory, slash-separated. Together with
	// the node and Source it makes the segment's Key (ObjectKey), so it never changes
	// for a given file.
	Rel string
	// Seq names the sequence the file belongs to: files of one sequence are written one
	// after the other, and only the newest ones may still be written. Sequences are
	// "commitlog", "consumequeue/<topic>/<queueId>" and "index" for RocketMQ and
	// "<topic>-<partition>" for Kafka.
	Seq string
	// Size is the file's size in bytes when scanned.
	Size int64
	// ModTime is the file's modification time when scanned.
	ModTime time.Time
	// Group names the unit the file is deleted and restored with (DESIGN.md invariant 11),
	// "" when the file is a unit by itself. A Kafka segment's files share the group
	// "<topic>-<partition>/<20-digit base offset>": its .log, .index, .timeindex and
	// .txnindex, and a producer snapshot whose offset falls in it (the snapshot the broker
	// took when it rolled to it, named by its base offset).
	Group string `json:",omitempty"`
}

// GroupName is s.Group, or s.Rel for a file that is a unit by itself.
func (s Segment) GroupName() string {
	if s.Group != "" {
		return s.Group
	}
	return s.Rel
}

// Key returns the segment's object key on node: ObjectKey(node, s.Source, s.Rel).
func (s Segment) Key(node string) (Key, error) { return ObjectKey(node, s.Source, s.Rel) }

// CompactedKey returns the key of the segment's compacted form on node:
// CompactedKey(node, s.Source, s.Rel).
func (s Segment) CompactedKey(node string) (Key, error) {
	return CompactedKey(node, s.Source, s.Rel)
}

// Candidate is a segment file as a Layout sees it, with the layout's verdict on whether
// the broker is done writing it.
type Candidate struct {
	Segment
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
