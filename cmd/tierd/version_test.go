package main

import (
	"context"
	"encoding/json"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// `tierd --version` and `tierd version` print the same line with the commit and the Go
// version; `version --json` is snake_case with every field present.
func TestVersion(t *testing.T) {
	ctx := context.Background()
	code, flag, errs := cli(t, ctx, "--version")
	if code != 0 {
		t.Fatalf("--version: exit %d: %s", code, errs)
	}
	code, cmd, errs := cli(t, ctx, "version")
	if code != 0 {
		t.Fatalf("version: exit %d: %s", code, errs)
	}
	line := regexp.MustCompile(`^tierd \S+ \(commit \S+, go\S+, \w+/\w+\)\n$`)
	if flag != cmd || !line.MatchString(cmd) || !strings.Contains(cmd, runtime.Version()) {
		t.Fatalf("--version %q, version %q: want the same line with the commit and %s", flag, cmd, runtime.Version())
	}
	code, out, errs := cli(t, ctx, "version", "--json")
	if code != 0 {
		t.Fatalf("version --json: exit %d: %s", code, errs)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(out), &fields); err != nil {
		t.Fatalf("version --json: %v: %s", err, out)
	}
	var keys []string
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"arch", "commit", "commit_time", "go_version", "modified", "os", "version"}; !slices.Equal(keys, want) {
		t.Fatalf("version --json keys %v, want %v", keys, want)
	}
	if fields["go_version"] != runtime.Version() || fields["commit"] == "" {
		t.Fatalf("version --json: %s", out)
	}
}
