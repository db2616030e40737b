package record

import "errors"

var (
	// ErrCorrupt is wrapped by every error about bytes that are not a valid record.
	ErrCorrupt = errors.New("corrupt record")
	// ErrBlank is returned for RocketMQ's BLANK end-of-file filler: the rest of the
	// commit-log file holds no message and reading continues with the next file.
	ErrBlank = errors.New("blank end-of-file filler")
	// ErrTooLarge is wrapped when a record's declared size exceeds the reader's limit.
	ErrTooLarge = errors.New("record too large")
)
