package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestParseSize(t *testing.T) {
	f := func(in string, want int64, wantErr bool) {
		t.Helper()
		got, err := parseSize(in)
		if (err != nil) != wantErr || got != want {
			t.Fatalf("parseSize(%q) = %d, %v", in, got, err)
		}
	}
	f("6000000", 6000000, false)
	f("1GiB", 1<<30, false)
	f("256 KiB", 256<<10, false)
	f("10MiB", 10<<20, false)
	f("2MB", 2e6, false)
	f("7B", 7, false)
	f("1.5GiB", 0, true)
	f("-1", 0, true)
	f("GiB", 0, true)
	f("9999999999TiB", 0, true)
}

func TestUsageErrors(t *testing.T) {
	f := func(want string, args ...string) {
		t.Helper()
		_, _, err := run(t, args...)
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), want) {
			t.Fatalf("%v: err = %v (exit %d), want usage error %q", args, err, exitCode(err), want)
		}
	}
	f("dir: required", "rocketmq")
	f("dir: required", "kafka")
	f("unknown flag", "kafka", "--bogus")
	f("unknown command", "nats")
	f("cq-size", "rocketmq", "--dir", t.TempDir(), "--cq-size", "30")
	f("invalid argument", "rocketmq", "--dir", t.TempDir(), "--commitlog-size", "1.5GiB")
	f("--start", "kafka", "--dir", t.TempDir(), "--start", "yesterday")
}

func TestRocketMQCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	out, _, err := run(t, "rocketmq", "--dir", dir, "--messages", "500", "--commitlog-size", "64KiB",
		"--cq-size", "2000", "--index-slots", "32", "--index-items", "128", "--body-size", "64")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"wrote 500 messages", "commitlog ", "sealed, 1 active", "index "} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	// The directory now holds a store: a second run refuses it.
	if _, _, err := run(t, "rocketmq", "--dir", dir); err == nil || exitCode(err) != 1 {
		t.Fatalf("second run: %v", err)
	}
}

func TestKafkaCommandJSON(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kafka")
	out, _, err := run(t, "--json", "kafka", "--dir", dir, "--records", "300", "--segment-bytes", "16KiB",
		"--record-size", "50", "--max-index-size", "1KiB", "--partitions", "1", "--topics", "1")
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		Records int64
		Files   []struct {
			Path   string
			Kind   string
			Active bool
		}
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	sealed := 0
	for _, f := range sum.Files {
		if f.Kind == "kafka-log" && !f.Active {
			sealed++
		}
	}
	if sum.Records != 300 || sealed == 0 {
		t.Fatalf("%d records, %d sealed segments", sum.Records, sealed)
	}
}
