package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs what `make demo` runs: the broker simulator's command of demoStoreCommand
// (through go run, from the repository root), then tierd demo; and checks that the
// Makefile's demo target runs that same command.
func TestDemo(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(demoStoreCommand, "go run", "$(GO) run"); !strings.Contains(string(mk), strings.ReplaceAll(want, "DIR", "$(DEMO_DIR)")) {
		t.Fatalf("the Makefile's demo target does not run\n  %s", want)
	}
	dir := filepath.Join(t.TempDir(), "demo")
	ctx := context.Background()
	code, _, errs := cli(t, ctx, "demo", "--dir", dir)
	if code != exitUsage || !strings.Contains(errs, "holds no RocketMQ store: generate one with") {
		t.Fatalf("demo without a store: exit %d, %s", code, errs)
	}
	args := strings.Fields(strings.ReplaceAll(demoStoreCommand, "DIR", dir))
	gen := exec.Command(args[0], args[1:]...)
	gen.Dir = "../.."
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	code, out, errs := cli(t, ctx, "demo", "--dir", dir)
	if code != exitOK || !strings.Contains(out, "sealed segments to tier hdd") {
		t.Fatalf("demo: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if strings.Contains(out, "tierd moved 0 ") {
		t.Fatalf("demo moved nothing:\n%s", out)
	}
	if code, _, errs := cli(t, ctx, "demo", "--dir", dir); code != exitUsage || !strings.Contains(errs, "runs once per directory") {
		t.Fatalf("second demo in the same directory: exit %d, %s", code, errs)
	}
}
