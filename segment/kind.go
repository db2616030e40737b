package segment

import "fmt"

// Kind says what broker file a Segment is. Its string form is stable: it is stored in the
// catalog and in marker objects.
type Kind string

// The kinds of segment files the layouts find.
const (
	// KindCommitLog is a RocketMQ commit-log file: commitlog/<20-digit start offset>.
	KindCommitLog Kind = "commitlog"
	// KindConsumeQueue is a RocketMQ consume-queue file:
	// consumequeue/<topic>/<queueId>/<20-digit start offset>.
	KindConsumeQueue Kind = "consumequeue"
	// KindIndex is a RocketMQ IndexFile (hash index of message keys): index/<yyyyMMddHHmmssSSS>.
	KindIndex Kind = "index"
	// KindKafkaLog is a Kafka log segment (record batches): <base offset>.log.
	KindKafkaLog Kind = "kafka-log"
	// KindKafkaOffsetIndex is a Kafka offset index: <base offset>.index.
	KindKafkaOffsetIndex Kind = "kafka-offset-index"
	// KindKafkaTimeIndex is a Kafka time index: <base offset>.timeindex.
	KindKafkaTimeIndex Kind = "kafka-time-index"
	// KindKafkaTxnIndex is a Kafka aborted-transaction index: <base offset>.txnindex.
	KindKafkaTxnIndex Kind = "kafka-txn-index"
	// KindKafkaSnapshot is a Kafka producer-state snapshot: <offset>.snapshot.
	KindKafkaSnapshot Kind = "kafka-snapshot"
)

// kinds lists every Kind, in the order tierd prints them.
var kinds = []Kind{
	KindCommitLog, KindConsumeQueue, KindIndex,
	KindKafkaLog, KindKafkaOffsetIndex, KindKafkaTimeIndex, KindKafkaTxnIndex, KindKafkaSnapshot,
}

// ParseKind returns the Kind named s, or an error if s names none.
func ParseKind(s string) (Kind, error) {
	for _, k := range kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown segment kind %q", s)
}

// String returns the kind's name.
func (k Kind) String() string { return string(k) }

// IsIndex reports whether files of this kind index data held in other segments (a
// RocketMQ IndexFile; Kafka offset, time and transaction indexes) rather than being data
// or a queue of their own.
func (k Kind) IsIndex() bool {
	switch k {
	case KindIndex, KindKafkaOffsetIndex, KindKafkaTimeIndex, KindKafkaTxnIndex:
		return true
	}
	return false
}

// Compactable reports whether tierd stores this kind in its compacted index format
// (index/FORMAT.md) under CompactedKey rather than byte for byte under ObjectKey. Only the
// RocketMQ IndexFile is: it is preallocated to ~400 MB whatever it holds, while Kafka's
// indexes are already dense and trimmed at roll.
func (k Kind) Compactable() bool { return k == KindIndex }
