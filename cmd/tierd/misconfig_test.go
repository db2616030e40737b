package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMisconfiguredSources points sources at directories of the wrong kind (the
// fixtures in ../../testdata/brokers) and checks every command says what is wrong and
// how to fix it: config check exits 2, scan and run --once exit 1, and a running daemon
// is not ready, with the reason on /readyz.
func TestMisconfiguredSources(t *testing.T) {
	brokers, err := filepath.Abs(filepath.Join("..", "..", "testdata", "brokers"))
	if err != nil {
		t.Fatal(err)
	}
	kafkaDir, store := filepath.Join(brokers, "kafka"), filepath.Join(brokers, "rocketmq", "store")
	f := func(layout, path string, want ...string) {
		t.Helper()
		w := newWorld(t, layout, "")
		cfg, err := os.ReadFile(w.cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg = bytes.Replace(cfg, []byte("path: "+w.store+"\n"), []byte("path: "+path+"\n"), 1)
		if err := os.WriteFile(w.cfg, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		check := func(what string, code, wantCode int, text string) {
			t.Helper()
			if code != wantCode {
				t.Fatalf("%s at %s: %s exit %d, want %d:\n%s", layout, path, what, code, wantCode, text)
			}
			for _, s := range want {
				if !strings.Contains(text, s) {
					t.Fatalf("%s at %s: %s says\n%s\nwant it to contain %q", layout, path, what, text, s)
				}
			}
		}
		code, out, errs := cli(t, context.Background(), "-c", w.cfg, "config", "check")
		check("config check", code, exitUsage, out+errs)
		if !strings.Contains(errs, "sources[0].path: ") {
			t.Fatalf("config check does not name the field: %s", errs)
		}
		code, out, errs = cli(t, context.Background(), "-c", w.cfg, "scan")
		check("scan", code, exitFailed, out+errs)
		code, out, _ = cli(t, context.Background(), "-c", w.cfg, "scan", "--json")
		check("scan --json", code, exitFailed, out)
		code, out, errs = cli(t, context.Background(), "-c", w.cfg, "run", "--once")
		check("run --once", code, exitFailed, out+errs)
	}
	f("rocketmq", filepath.Dir(store), "holds a RocketMQ store in store/", "fix: point path at "+store)
	f("rocketmq", kafkaDir, "is a Kafka log.dir", "fix: set layout: kafka")
	f("kafka", filepath.Join(kafkaDir, "orders-0"), "is one partition directory (orders-0)", "fix: point path at the log.dir that holds it, "+kafkaDir)
	f("kafka", store, "is a RocketMQ store", "fix: set layout: rocketmq")
	f("kafka", filepath.Join(t.TempDir(), "missing"), "does not exist", "fix: point path at the broker's log.dir")

	// The right directories pass config check.
	for layout, path := range map[string]string{"kafka": kafkaDir, "rocketmq": store} {
		w := newWorld(t, layout, "")
		cfg, _ := os.ReadFile(w.cfg)
		os.WriteFile(w.cfg, bytes.Replace(cfg, []byte("path: "+w.store+"\n"), []byte("path: "+path+"\n"), 1), 0o644)
		if code, out, errs := cli(t, context.Background(), "-c", w.cfg, "config", "check"); code != 0 || !strings.Contains(out, ": ok") {
			t.Fatalf("config check of a %s source at %s: exit %d: %s%s", layout, path, code, out, errs)
		}
	}
}

// TestMisconfiguredSourceNotReady: a daemon whose source is one Kafka partition
// directory runs, but /readyz answers 503 with the reason and the fix.
func TestMisconfiguredSourceNotReady(t *testing.T) {
	brokers, err := filepath.Abs(filepath.Join("..", "..", "testdata", "brokers"))
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	w := newWorld(t, "kafka", "http: {listen: \""+port+"\"}\n")
	cfg, _ := os.ReadFile(w.cfg)
	part := filepath.Join(brokers, "kafka", "orders-0")
	os.WriteFile(w.cfg, bytes.Replace(cfg, []byte("path: "+w.store+"\n"), []byte("path: "+part+"\n"), 1), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	cliMu.Lock()
	stdout, logOutput = io.Discard, io.Discard
	cliMu.Unlock()
	go func() { done <- run(ctx, []string{"-c", w.cfg, "run"}) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("daemon exit %d after stop", code)
		}
	}()
	want := "source src cannot be scanned: kafka: " + part + " is not a Kafka log.dir: it is one partition directory (orders-0); fix: point path at the log.dir that holds it, " + filepath.Dir(part)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + port + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz: %d %s\nwant 503 with %q", resp.StatusCode, body, want)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("/readyz: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
