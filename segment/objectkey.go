package segment

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The object-key scheme, the one place where segments become keys (docs/DESIGN.md "Keys"):
//
//	<node>/<source>/<rel>            a segment file, byte for byte
//	<node>/<source>/<rel>.tix        the compacted form of an index file
//	<node>/<source>/<rel>@v<N>       version N >= 2 of a segment file the broker rewrote
//	<node>/<source>/<rel>@v<N>.tix   (docs/DESIGN.md invariant 10), compacted or not
//	<node>/_tierd/...                tierd's own objects (markers)
//
// The first version of a file has no version suffix, so keys written before versions
// existed are version 1 as they are.
//
// A tier adds its own prefix in front. The mapping depends only on node, source name and
// the file's path relative to the source directory, so the same segment always maps to
// the same key and retries are idempotent (docs/DESIGN.md invariant 3).

// CompactedSuffix ends the key of a compacted index.
const CompactedSuffix = ".tix"

// VersionMark starts the version suffix "@v<N>" of a key of version N >= 2.
const VersionMark = "@v"

// maxVersion bounds a key's version (a version is an int32 in markers' users).
const maxVersion = 1<<31 - 1

// WithVersion returns k, a key ObjectKey or CompactedKey made (version 1), as the key of
// version v: k itself for v <= 1, else with "@v<v>" before a compacted key's ".tix" or
// at the end.
func WithVersion(k Key, v int) Key {
	if v <= 1 {
		return k
	}
	suffix := VersionMark + strconv.Itoa(v)
	if base, ok := strings.CutSuffix(string(k), CompactedSuffix); ok {
		return Key(base + suffix + CompactedSuffix)
	}
	return Key(string(k) + suffix)
}

// cutVersion splits a trailing "@v<N>" (N >= 2, no leading zero) off s.
func cutVersion(s string) (string, int, bool) {
	i := strings.LastIndex(s, VersionMark)
	if i < 0 {
		return s, 1, false
	}
	digits := s[i+len(VersionMark):]
	if digits == "" || len(digits) > 10 || digits[0] == '0' {
		return s, 1, false
	}
	v, err := strconv.Atoi(digits)
	if err != nil || v < 2 || v > maxVersion {
		return s, 1, false
	}
	return s[:i], v, true
}

// MarkerDir is the key component, directly under a node, that holds tierd's own objects.
// Source names cannot collide with it: names starting with '_' are reserved.
const MarkerDir = "_tierd"

// maxNameLen bounds node and source names (a file-name component on every filesystem).
const maxNameLen = 255

// CheckName reports why name cannot be a node or source name, or nil. A name is one
// non-empty key component of at most 255 bytes of UTF-8, without '/', '\', NUL or other
// control characters, not starting with '.' (hidden files on posix tiers) or '_'
// (reserved for tierd's own objects, such as MarkerDir).
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty name")
	case len(name) > maxNameLen:
		return fmt.Errorf("name %q is longer than %d bytes", name, maxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not UTF-8", name)
	case name[0] == '.':
		return fmt.Errorf("name %q starts with '.'", name)
	case name[0] == '_':
		return fmt.Errorf("name %q starts with '_' (reserved for tierd)", name)
	}
	for _, r := range name {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("name %q contains %q", name, r)
		}
	}
	return nil
}

// checkRel reports why rel cannot be a segment's relative path, or nil: it must be a
// valid key on its own (relative, no empty, "." or ".." component) and must not end in
// CompactedSuffix or a version suffix, which would make keys ambiguous. (No broker names
// a file so.)
func checkRel(rel string) error {
	if err := checkKey(rel); err != nil {
		return fmt.Errorf("relative path %q: %w", rel, err)
	}
	if strings.HasSuffix(rel, CompactedSuffix) {
		return fmt.Errorf("relative path %q ends in %s", rel, CompactedSuffix)
	}
	if _, _, ok := cutVersion(rel); ok {
		return fmt.Errorf("relative path %q ends in a version suffix (%s<N>)", rel, VersionMark)
	}
	return nil
}

// ObjectKey returns the key of the segment file at rel (slash-separated, relative to the
// source directory) of source on node: "<node>/<source>/<rel>". It refuses invalid names
// (CheckName) and any rel that is absolute, contains an empty, "." or ".." component, or
// ends in CompactedSuffix.
func ObjectKey(node, source, rel string) (Key, error) {
	if err := CheckName(node); err != nil {
		return "", fmt.Errorf("object key: node: %w", err)
	}
	if err := CheckName(source); err != nil {
		return "", fmt.Errorf("object key: source: %w", err)
	}
	if err := checkRel(rel); err != nil {
		return "", fmt.Errorf("object key: %w", err)
	}
	return NewKey(node, source, rel)
}

// CompactedKey returns the key of the compacted form of the index file at rel:
// ObjectKey(node, source, rel) + CompactedSuffix.
func CompactedKey(node, source, rel string) (Key, error) {
	k, err := ObjectKey(node, source, rel)
	if err != nil {
		return "", err
	}
	return ParseKey(string(k) + CompactedSuffix)
}

// ParseObjectKey is the inverse of ObjectKey and CompactedKey, also of their versions
// (WithVersion): it splits k (without a tier prefix) into node, source and rel, and says
// whether k names a compacted index; KeyVersion says which version. It refuses every key
// those would not produce, so a rel it returns is safe to join under a directory (see
// LocalPath).
func ParseObjectKey(k Key) (node, source, rel string, compacted bool, err error) {
	node, source, rel, compacted, _, err = parseObjectKey(k)
	return node, source, rel, compacted, err
}

// KeyVersion is the version of the segment key k names: 1 for a key without a version
// suffix (or one ParseObjectKey refuses).
func KeyVersion(k Key) int {
	_, _, _, _, v, err := parseObjectKey(k)
	if err != nil {
		return 1
	}
	return v
}

func parseObjectKey(k Key) (node, source, rel string, compacted bool, version int, err error) {
	if err := k.Valid(); err != nil {
		return "", "", "", false, 0, err
	}
	parts := strings.SplitN(string(k), "/", 3)
	if len(parts) != 3 {
		return "", "", "", false, 0, fmt.Errorf("key %q is not <node>/<source>/<path>", k)
	}
	node, source, rel = parts[0], parts[1], parts[2]
	if r, ok := strings.CutSuffix(rel, CompactedSuffix); ok {
		rel, compacted = r, true
	}
	rel, version, _ = cutVersion(rel)
	want, err := ObjectKey(node, source, rel)
	if err == nil && compacted {
		want, err = CompactedKey(node, source, rel)
	}
	if err != nil {
		return "", "", "", false, 0, fmt.Errorf("parse key %q: %w", k, err)
	}
	if want = WithVersion(want, version); want != k {
		panic(fmt.Sprintf("BUG: key %q parsed into %q %q %q v%d but maps back to %q", k, node, source, rel, version, want))
	}
	return node, source, rel, compacted, version, nil
}

// LocalPath returns where the segment at rel lives under dir (a source directory, or a
// restore target). It refuses any rel that ObjectKey refuses, so the result is always
// inside dir.
func LocalPath(dir, rel string) (string, error) {
	if err := checkRel(rel); err != nil {
		return "", fmt.Errorf("local path under %q: %w", dir, err)
	}
	return filepath.Join(dir, filepath.FromSlash(rel)), nil
}
