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
	// Group names the unit the file is deleted and restored with (docs/DESIGN.md invariant 11),
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
