package segment

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestObjectKeyRoundTrip(t *testing.T) {
	f := func(node, source, rel, want string) {
		t.Helper()
		k, err := ObjectKey(node, source, rel)
		if err != nil || string(k) != want {
			t.Fatalf("ObjectKey(%q, %q, %q) = %q, %v; want %q", node, source, rel, k, err, want)
		}
		ck, err := CompactedKey(node, source, rel)
		if err != nil || string(ck) != want+CompactedSuffix {
			t.Fatalf("CompactedKey(%q, %q, %q) = %q, %v", node, source, rel, ck, err)
		}
		for _, tc := range []struct {
			k         Key
			compacted bool
		}{{k, false}, {ck, true}} {
			n, s, r, c, err := ParseObjectKey(tc.k)
			if err != nil || n != node || s != source || r != rel || c != tc.compacted {
				t.Fatalf("ParseObjectKey(%q) = %q %q %q %v %v", tc.k, n, s, r, c, err)
			}
		}
		// Same inputs, same key: retries are idempotent.
		if again, _ := ObjectKey(node, source, rel); again != k {
			t.Fatalf("ObjectKey is not deterministic: %q then %q", k, again)
		}
	}
	f("broker-a", "rmq", "commitlog/00000000001073741824", "broker-a/rmq/commitlog/00000000001073741824")
	f("broker-a", "rmq", "consumequeue/%RETRY%g|x/3/00000000000006000000", "broker-a/rmq/consumequeue/%RETRY%g|x/3/00000000000006000000")
	f("broker-a", "rmq", "index/20240101000000000", "broker-a/rmq/index/20240101000000000")
	f("n", "kafka", "my-topic.v2-12/00000000000000000000.timeindex", "n/kafka/my-topic.v2-12/00000000000000000000.timeindex")
	f("n", "kafka", ".hidden-topic-3/00000000000000000000.log", "n/kafka/.hidden-topic-3/00000000000000000000.log")
	f("nœud", "s rc", "x.tixy", "nœud/s rc/x.tixy")
}

func TestSegmentKey(t *testing.T) {
	s := Segment{Source: "rmq", Kind: KindIndex, Rel: "index/20240101000000000", Path: "/data/store/index/20240101000000000"}
	k, err := s.Key("b")
	if err != nil || k != "b/rmq/index/20240101000000000" {
		t.Fatalf("Key = %q, %v", k, err)
	}
	ck, err := s.CompactedKey("b")
	if err != nil || ck != "b/rmq/index/20240101000000000.tix" {
		t.Fatalf("CompactedKey = %q, %v", ck, err)
	}
}

func TestObjectKeyRejects(t *testing.T) {
	f := func(node, source, rel, want string) {
		t.Helper()
		k, err := ObjectKey(node, source, rel)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("ObjectKey(%q, %q, %q) = %q, %v; want error containing %q", node, source, rel, k, err, want)
		}
		if k, err := CompactedKey(node, source, rel); err == nil {
			t.Fatalf("CompactedKey(%q, %q, %q) = %q, want error", node, source, rel, k)
		}
	}
	// Names.
	f("", "s", "r", "node: empty name")
	f("n", "", "r", "source: empty name")
	f("a/b", "s", "r", `contains '/'`)
	f("n", "a/b", "r", `contains '/'`)
	f("..", "s", "r", "starts with '.'")
	f("n", "..", "r", "starts with '.'")
	f("n", ".hidden", "r", "starts with '.'")
	f("n", MarkerDir, "r", "reserved")
	f("_n", "s", "r", "reserved")
	f(`a\b`, "s", "r", `contains '\\'`)
	f("n", "s\x00", "r", "contains")
	f("n", "s\n", "r", "contains")
	f("n", "\xff", "r", "not UTF-8")
	f(strings.Repeat("n", 256), "s", "r", "longer than 255")
	// Relative paths that would escape or be ambiguous.
	f("n", "s", "", "empty")
	f("n", "s", "/etc/passwd", "absolute")
	f("n", "s", "..", `component ".."`)
	f("n", "s", "../other/x", `component ".."`)
	f("n", "s", "a/../../x", `component ".."`)
	f("n", "s", "a/./x", `component "."`)
	f("n", "s", "a//x", "empty path component")
	f("n", "s", "a/", "empty path component")
	f("n", "s", `a\..\x`, "backslash")
	f("n", "s", "a\x00", "NUL")
	f("n", "s", "x\xff", "not UTF-8")
	f("n", "s", "index/20240101000000000.tix", "ends in .tix")
	f("n", "s", strings.Repeat("a", MaxKeyLen), "longer than")
}

func TestParseObjectKeyRejects(t *testing.T) {
	f := func(k, want string) {
		t.Helper()
		n, s, r, c, err := ParseObjectKey(Key(k))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("ParseObjectKey(%q) = %q %q %q %v %v; want error containing %q", k, n, s, r, c, err, want)
		}
	}
	f("", "empty")
	f("n", "not <node>/<source>/<path>")
	f("n/s", "not <node>/<source>/<path>")
	f("/n/s/x", "absolute")
	f("n/s/../x", `component ".."`)
	f("../s/x", `component ".."`)
	f("n/s/a//x", "empty path component")
	f("n/_tierd/markers/s/x.json", "reserved")
	f("n/.s/x", "starts with '.'")
	f("n/s/.tix", "empty")
	f("n/s/a/.tix", "empty path component")
	f("n/s/x.tix.tix", "ends in .tix")
	f(`n/s/a\b`, "backslash")
}

func TestLocalPath(t *testing.T) {
	dir := t.TempDir()
	p, err := LocalPath(dir, "consumequeue/T/0/00000000000000000000")
	if want := filepath.Join(dir, "consumequeue", "T", "0", "00000000000000000000"); err != nil || p != want {
		t.Fatalf("LocalPath = %q, %v; want %q", p, err, want)
	}
	for _, rel := range []string{"", "..", "../x", "a/../../x", "/abs", "a//b", "x.tix"} {
		if p, err := LocalPath(dir, rel); err == nil {
			t.Fatalf("LocalPath(%q) = %q, want error", rel, p)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"broker-a", "rmq", "a.b", "x_y", "ünï", strings.Repeat("n", 255)} {
		if err := CheckName(ok); err != nil {
			t.Fatalf("CheckName(%q) = %v", ok, err)
		}
	}
}

// FuzzParseObjectKey checks that ParseObjectKey never panics, and that whatever it
// accepts maps back to the same key and is safe to join under a directory.
func FuzzParseObjectKey(f *testing.F) {
	for _, s := range []string{
		"broker-a/rmq/commitlog/00000000001073741824", "n/s/index/20240101000000000.tix",
		"n/s/x.tix.tix", "n/_tierd/markers/x", "n/s/../x", "n/s/.tix", "n/s", "a\\b/c/d", "n/s/a/",
		"n/k/t-0/00000000000000000000.log@v2", "n/s/index/20240101000000000@v12.tix", "n/s/x@v1", "n/s/x@v02", "n/s/@v3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		node, source, rel, compacted, err := ParseObjectKey(Key(s))
		if err != nil {
			return
		}
		build := ObjectKey
		if compacted {
			build = CompactedKey
		}
		k, err := build(node, source, rel)
		k = WithVersion(k, KeyVersion(Key(s)))
		if err != nil || string(k) != s {
			t.Fatalf("%q parsed to %q %q %q %v, which maps to %q, %v", s, node, source, rel, compacted, k, err)
		}
		base := filepath.FromSlash("/base")
		p, err := LocalPath(base, rel)
		if err != nil {
			t.Fatalf("LocalPath of accepted rel %q: %v", rel, err)
		}
		if r, err := filepath.Rel(base, p); err != nil || r == "." || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			t.Fatalf("LocalPath of accepted rel %q = %q, outside %q", rel, p, base)
		}
	})
}

// TestVersionedKeys: version 1 is today's key; later versions add "@v<N>" (before
// ".tix"), parse back to the same rel, and rels that look versioned are refused.
func TestVersionedKeys(t *testing.T) {
	f := func(k Key, v int, want string) {
		t.Helper()
		got := WithVersion(k, v)
		if string(got) != want {
			t.Fatalf("WithVersion(%s, %d) = %s, want %s", k, v, got, want)
		}
		_, _, rel, compacted, err := ParseObjectKey(got)
		if err != nil || KeyVersion(got) != max(v, 1) {
			t.Fatalf("ParseObjectKey(%s) = %q, %v; version %d, want %d", got, rel, err, KeyVersion(got), max(v, 1))
		}
		if compacted != strings.HasSuffix(want, ".tix") || strings.Contains(rel, "@") {
			t.Fatalf("ParseObjectKey(%s): rel %q compacted %v", got, rel, compacted)
		}
	}
	log, _ := ObjectKey("n", "k", "t-0/00000000000000000000.log")
	tix, _ := CompactedKey("n", "r", "index/20240101000000000")
	f(log, 0, "n/k/t-0/00000000000000000000.log")
	f(log, 1, "n/k/t-0/00000000000000000000.log")
	f(log, 2, "n/k/t-0/00000000000000000000.log@v2")
	f(log, 31, "n/k/t-0/00000000000000000000.log@v31")
	f(tix, 1, "n/r/index/20240101000000000.tix")
	f(tix, 3, "n/r/index/20240101000000000@v3.tix")
	if _, err := ObjectKey("n", "k", "t-0/x.log@v2"); err == nil {
		t.Fatal("a rel ending in a version suffix was accepted")
	}
	if v := KeyVersion("n/k/x@v1"); v != 1 {
		t.Fatalf("@v1 is not a version suffix, got version %d", v)
	}
}
