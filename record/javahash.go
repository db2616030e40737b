package record

import "unicode/utf16"

// JavaStringHashCode returns Java's String.hashCode of s: h = 31*h + c over the UTF-16
// code units of s (a rune above U+FFFF counts as its surrogate pair), with int32
// wrap-around.
//
// s is read as UTF-8; each byte that is not part of a valid UTF-8 sequence counts as
// U+FFFD, as Go's range loop yields it. (Java's decoder may merge some malformed
// sequences into one U+FFFD; brokers only hash strings that were valid text.)
func JavaStringHashCode(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			hi, lo := utf16.EncodeRune(r)
			h = 31*h + int32(hi)
			h = 31*h + int32(lo)
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// TagsCode is the tags code RocketMQ stores in a consume-queue entry for a message with
// the given TAGS property (MessageExtBrokerInner.tagsString2tagsCode: tags.hashCode()).
// An empty tags string has code 0.
func TagsCode(tags string) int64 {
	return int64(JavaStringHashCode(tags))
}
