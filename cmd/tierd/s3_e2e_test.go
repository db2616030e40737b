package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tierd/tierd/devtools/brokersim"
	"github.com/tierd/tierd/devtools/miniotest"
)

// s3World is a store offloaded to a MinIO tier by an installation with its own state_dir.
func s3Config(t *testing.T, srv *miniotest.Server, driver, store, state, prefix string) string {
	t.Helper()
	cfg := fmt.Sprintf(`node: node-1
state_dir: %s
memory: {buffer_pool: 20MiB, buffer_size: 5MiB}
scan_interval: 200ms
retry: {initial: 10ms, max: 100ms}
sources:
  - {name: src, layout: rocketmq, path: %s, seal_grace: 0s, commitlog_file_size: 256KiB,
     consumequeue_file_size: 6000, index_hash_slots: 64, index_items: 256}
tiers:
  - {name: s3, type: s3, driver: %s, endpoint: "%s", bucket: %s, region: %s, prefix: %s,
     access_key: "${TEST_S3_ACCESS}", secret_key: "${TEST_S3_SECRET}", ca_file: "%s"}
log: {level: info, format: json}
`, state, store, driver, srv.Endpoint, srv.Bucket, srv.Region, prefix, srv.CAFile)
	p := filepath.Join(t.TempDir(), "tierd.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestS3EndToEnd(t *testing.T) {
	srv := miniotest.Start(t)
	t.Setenv("TEST_S3_ACCESS", srv.AccessKey)
	t.Setenv("TEST_S3_SECRET", srv.SecretKey)
	for _, driver := range []string{"aws", "minio"} {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			store := filepath.Join(dir, "store")
			sum, err := brokersim.RocketMQ(ctx, brokersim.RocketMQOptions{
				Dir: store, Topics: 1, Queues: 2, Messages: 3000, CommitLogSize: 256 << 10, CQSize: 6000,
				IndexSlots: 64, IndexItems: 256, BodySize: 200, PreallocateNext: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			sealed := 0
			for _, f := range sum.Files {
				if !f.Active && f.Kind != brokersim.KindMeta {
					sealed++
				}
			}
			cfgA := s3Config(t, srv, driver, store, filepath.Join(dir, "state-a"), "e2e-"+driver)
			if code, _, errs := cli(t, ctx, "-c", cfgA, "run", "--once"); code != 0 {
				t.Fatalf("run --once: exit %d: %s", code, errs)
			}
			if code, out, errs := cli(t, ctx, "-c", cfgA, "verify"); code != 0 || !strings.Contains(out, fmt.Sprintf("%d checked, 0 failed", sealed)) {
				t.Fatalf("verify: exit %d: %s %s", code, out, errs)
			}
			// Restore through the CLI, and read the same object with mc: byte-identical.
			key := "node-1/src/commitlog/00000000000000000000"
			want, _ := os.ReadFile(filepath.Join(store, "commitlog/00000000000000000000"))
			to := t.TempDir()
			if code, _, errs := cli(t, ctx, "-c", cfgA, "restore", key, "--to", to); code != 0 {
				t.Fatalf("restore: %d %s", code, errs)
			}
			if got, _ := os.ReadFile(filepath.Join(to, "commitlog/00000000000000000000")); !bytes.Equal(got, want) {
				t.Fatal("restored file differs")
			}
			// A compacted IndexFile is copied from S3 into an unlinked temp file, then
			// rehydrated: it answers the lookups of every key hash it holds as the original.
			for _, f := range sum.Files {
				if f.Kind != brokersim.KindIndexFile || f.Active {
					continue
				}
				if code, out, errs := cli(t, ctx, "-c", cfgA, "restore", "node-1/src/"+f.Path+".tix", "--to", to); code != 0 || !strings.Contains(out, "rehydrated IndexFile") {
					t.Fatalf("restore of %s.tix: %d %s %s", f.Path, code, out, errs)
				}
				sameIndexLookups(t, filepath.Join(store, f.Path), filepath.Join(to, f.Path), 64, 256)
				break
			}
			if entries, _ := os.ReadDir(filepath.Join(to, "index")); len(entries) != 1 {
				t.Fatalf("index/ under --to holds %d entries, want the one IndexFile", len(entries))
			}
			mcOut, err := srv.MC("cat", miniotest.Alias+"/"+srv.Bucket+"/e2e-"+driver+"/"+key)
			if err != nil || !bytes.Equal(mcOut, want) {
				t.Fatalf("mc cat: %v (%d bytes)", err, len(mcOut))
			}
			if code, out, errs := cli(t, ctx, "-c", cfgA, "reap", "--older-than", "0s"); code != 0 || !strings.Contains(out, "tier s3") {
				t.Fatalf("reap: %d %s %s", code, out, errs)
			}

			// A second installation of node-1 (its own state_dir) on the same bucket is
			// fenced out while the first runs.
			cfgB := s3Config(t, srv, driver, store, filepath.Join(dir, "state-b"), "e2e-"+driver)
			runCtx, cancel := context.WithCancel(ctx)
			var logs syncBuffer
			cliMu.Lock()
			logOutput = &logs
			cliMu.Unlock()
			done := make(chan int, 1)
			go func() { done <- run(runCtx, []string{"-c", cfgA, "run"}) }()
			lease := miniotest.Alias + "/" + srv.Bucket + "/e2e-" + driver + "/node-1/_tierd/lease"
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				if _, err := srv.MC("stat", lease); err == nil {
					break // the first installation holds the node's lease
				}
				if time.Now().After(deadline) {
					t.Fatalf("the running tierd took no lease: %s", logs.String())
				}
			}
			code, _, errs := cli(t, ctx, "-c", cfgB, "run", "--once")
			if code != 1 || !strings.Contains(errs, "is held by another tierd") {
				t.Fatalf("second installation: exit %d, want 1 and a clear refusal: %s", code, errs)
			}
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("first installation exit %d: %s", code, logs.String())
			}

			// The catalog comes back from the tier's markers alone.
			code, before, _ := cli(t, ctx, "-c", cfgA, "ls", "--json")
			if code != 0 {
				t.Fatal("ls")
			}
			os.RemoveAll(filepath.Join(dir, "state-a"))
			if code, out, errs := cli(t, ctx, "-c", cfgA, "catalog", "rebuild", "--tier", "s3"); code != 0 || !strings.Contains(out, fmt.Sprintf("%d records restored", sealed)) {
				t.Fatalf("catalog rebuild: exit %d: %s %s", code, out, errs)
			}
			if code, after, _ := cli(t, ctx, "-c", cfgA, "ls", "--json"); code != 0 || after != before {
				t.Fatalf("rebuilt catalog differs:\n%s\nvs\n%s", after, before)
			}
		})
	}
}
