package record

import (
	"fmt"
	"strings"
)

const (
	nameValueSeparator = '\x01'
	propertySeparator  = '\x02'
)

// propertiesLen checks props and returns their encoded length.
func propertiesLen(props []Property) (int, error) {
	n := 0
	for _, p := range props {
		switch {
		case p.Name == "":
			return 0, fmt.Errorf("encode message: property with an empty name")
		case p.Value == "":
			return 0, fmt.Errorf("encode message: property %q has an empty value (the broker drops it on read)", p.Name)
		case strings.ContainsAny(p.Name, "\x01\x02"):
			return 0, fmt.Errorf("encode message: property name %q contains a separator byte", p.Name)
		case strings.IndexByte(p.Value, propertySeparator) >= 0:
			return 0, fmt.Errorf("encode message: property %q value contains the \\x02 separator", p.Name)
		}
		n += len(p.Name) + len(p.Value) + 2
	}
	return n, nil
}

func appendProperties(dst []byte, props []Property) []byte {
	for _, p := range props {
		dst = append(dst, p.Name...)
		dst = append(dst, nameValueSeparator)
		dst = append(dst, p.Value...)
		dst = append(dst, propertySeparator)
	}
	return dst
}

// parseProperties parses name\x01value\x02 pairs as RocketMQ's
// MessageDecoder.string2messageProperties does: a missing final \x02 is tolerated, and an
// entry without a non-empty name and a non-empty value is skipped.
func parseProperties(b []byte) []Property {
	if len(b) == 0 {
		return nil
	}
	var props []Property
	for len(b) > 0 {
		end := indexByte(b, propertySeparator)
		if end < 0 {
			end = len(b)
		}
		entry := b[:end]
		if sep := indexByte(entry, nameValueSeparator); sep > 0 && sep < len(entry)-1 {
			props = append(props, Property{Name: string(entry[:sep]), Value: string(entry[sep+1:])})
		}
		if end == len(b) {
			break
		}
		b = b[end+1:]
	}
	return props
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
