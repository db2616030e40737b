package segment

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Key names an object on a tier: slash-separated, relative, with no empty, "." or ".."
// component, so that joining it under a tier's root can never escape that root. Keys are
// made by NewKey or ParseKey, which enforce this; backends check Valid before use.
type Key string

// MaxKeyLen is the longest key accepted: S3's limit for object names, which a tier prefix
// is added to.
const MaxKeyLen = 900

// ParseKey validates s as a Key.
func ParseKey(s string) (Key, error) {
	if err := checkKey(s); err != nil {
		return "", fmt.Errorf("invalid key %q: %w", s, err)
	}
	return Key(s), nil
}

// NewKey joins path elements (each may itself contain slashes) into a Key.
func NewKey(elem ...string) (Key, error) {
	return ParseKey(strings.Join(elem, "/"))
}

// Valid reports why k is not a valid key, or nil.
func (k Key) Valid() error {
	if err := checkKey(string(k)); err != nil {
		return fmt.Errorf("invalid key %q: %w", string(k), err)
	}
	return nil
}

// String returns the key as a string.
func (k Key) String() string { return string(k) }

// HasPrefix reports whether k starts with prefix (plain string prefix, as S3 lists).
func (k Key) HasPrefix(prefix Key) bool { return strings.HasPrefix(string(k), string(prefix)) }

func checkKey(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > MaxKeyLen:
		return fmt.Errorf("longer than %d bytes", MaxKeyLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("not UTF-8")
	case strings.ContainsAny(s, "\x00\\"):
		return fmt.Errorf("contains NUL or backslash")
	case s[0] == '/':
		return fmt.Errorf("absolute")
	}
	for _, c := range strings.Split(s, "/") {
		switch c {
		case "":
			return fmt.Errorf("empty path component")
		case ".", "..":
			return fmt.Errorf("path component %q", c)
		}
	}
	return nil
}
