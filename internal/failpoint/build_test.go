package failpoint

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBuilds builds a program that reaches a failpoint with and without the build tag:
// only the tagged binary holds the hook (the environment variable's name), so a release
// build cannot be killed through it. (go test -tags failpoint runs TestHit as well.)
func TestBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	dir := t.TempDir()
	build := func(tags ...string) []byte {
		t.Helper()
		bin := filepath.Join(dir, "hitter")
		args := append([]string{"build", "-o", bin}, tags...)
		cmd := exec.Command("go", append(args, "./testdata/hitter")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if release := build(); bytes.Contains(release, []byte(EnvVar)) {
		t.Errorf("a build without the failpoint tag contains %q", EnvVar)
	}
	if tagged := build("-tags", "failpoint"); !bytes.Contains(tagged, []byte(EnvVar)) {
		t.Errorf("a build with the failpoint tag does not contain %q: this test could not see a hook", EnvVar)
	}
}
