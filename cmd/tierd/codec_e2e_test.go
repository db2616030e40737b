package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierd/tierd/devtools/brokersim"
)

// TestEndToEndCodec offloads a Kafka store with text bodies to a compressed, encrypted
// posix tier, then reads it back with cat, verify and restore, rotates the key with keygen
// and rekey, and reads everything with the old key removed from the key file.
func TestEndToEndCodec(t *testing.T) {
	ctx := context.Background()
	d := t.TempDir()
	store, tier, keyFile, cfgPath := filepath.Join(d, "store"), filepath.Join(d, "tier"), filepath.Join(d, "keys"), filepath.Join(d, "tierd.yaml")
	keygen := func(id string) string {
		code, out, errs := cli(t, ctx, "keygen", id)
		if code != 0 || !strings.HasPrefix(out, id+" ") {
			t.Fatalf("keygen %s: exit %d: %q %s", id, code, out, errs)
		}
		return out
	}
	k1 := keygen("k1")
	if err := os.WriteFile(keyFile, []byte(k1), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`node: node-1
state_dir: %s
memory: {buffer_pool: 2MiB, buffer_size: 256KiB, codecs: 2}
sources:
  - {name: src, layout: kafka, path: %s, seal_grace: 0s}
tiers:
  - {name: hdd, type: posix, path: %s, write_mode: direct, compression: zstd, encryption: {key_file: %s}}
`, filepath.Join(d, "state"), store, tier, keyFile)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := brokersim.Kafka(ctx, brokersim.KafkaOptions{
		Dir: store, Topics: 1, Partitions: 2, Records: 6000, SegmentBytes: 256 << 10, RecordSize: 200, MaxIndexSize: 64 << 10, TextBodies: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli(t, ctx, "-c", cfgPath, "run", "--once"); code != 0 {
		t.Fatalf("run --once: exit %d: %s", code, errs)
	}
	var log *brokersim.File
	for i, f := range sum.Files {
		if !f.Active && strings.HasSuffix(f.Path, ".log") {
			log = &sum.Files[i]
			break
		}
	}
	if log == nil {
		t.Fatal("no sealed .log segment")
	}
	want, err := os.ReadFile(filepath.Join(store, log.Path))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := os.ReadFile(filepath.Join(tier, "node-1", "src", log.Path))
	if err != nil {
		t.Fatal(err)
	}
	if len(stored)*2 > len(want) || bytes.Contains(stored, want[len(want)/2:len(want)/2+64]) {
		t.Fatalf("%s stored in %d bytes for %d (want < half, and no plaintext)", log.Path, len(stored), len(want))
	}
	key := "node-1/src/" + log.Path
	check := func(when string) {
		t.Helper()
		if code, out, errs := cli(t, ctx, "-c", cfgPath, "verify"); code != 0 || !strings.Contains(out, " 0 failed") {
			t.Fatalf("%s: verify: exit %d: %s %s", when, code, out, errs)
		}
		code, out, errs := cli(t, ctx, "-c", cfgPath, "cat", key, "--offset", "1000", "--length", "5000")
		if code != 0 || out != string(want[1000:6000]) {
			t.Fatalf("%s: cat --offset --length: exit %d (%d bytes): %s", when, code, len(out), errs)
		}
		to := t.TempDir()
		if code, _, errs := cli(t, ctx, "-c", cfgPath, "restore", key, "--to", to); code != 0 {
			t.Fatalf("%s: restore: exit %d: %s", when, code, errs)
		}
		got, err := os.ReadFile(filepath.Join(to, log.Path))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: restored file differs (%v)", when, err)
		}
	}
	check("after offload")

	k2 := keygen("k2")
	if err := os.WriteFile(keyFile, []byte(k1+k2), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(t, ctx, "-c", cfgPath, "rekey", "--tier", "hdd", "--json")
	if code != 0 || !strings.Contains(out, `"key_id": "k2"`) || strings.Contains(out, `"rekeyed": 0`) {
		t.Fatalf("rekey: exit %d: %s %s", code, out, errs)
	}
	if err := os.WriteFile(keyFile, []byte(k2), 0o600); err != nil {
		t.Fatal(err)
	}
	check("after rekey, k1 removed")

	// A key file without the key is a clear error, not garbage.
	if err := os.WriteFile(keyFile, []byte(keygen("k3")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = cli(t, ctx, "-c", cfgPath, "cat", key)
	if code == 0 || out != "" || !strings.Contains(errs, "not in key file") {
		t.Fatalf("cat with the wrong key file: exit %d, %d bytes out: %s", code, len(out), errs)
	}
}
