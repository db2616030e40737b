package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/tierd/tierd/config"
)

// auto is json for a pipe or a buffer, console for a terminal; an explicit format wins.
func TestLogFormat(t *testing.T) {
	var buf bytes.Buffer
	if f := logFormat("auto", &buf); f != "json" {
		t.Fatalf("auto to a buffer: %s", f)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if f := logFormat("auto", w); f != "json" {
		t.Fatalf("auto to a pipe: %s", f)
	}
	if f := logFormat("console", &buf); f != "console" {
		t.Fatalf("console: %s", f)
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if f := logFormat("auto", tty); f != "console" {
			t.Fatalf("auto to a terminal: %s", f)
		}
	}
}

// Empty string fields are left out of log lines, in With and per entry; others stay.
func TestLogDropsEmptyFields(t *testing.T) {
	var buf bytes.Buffer
	old := logOutput
	logOutput = &buf
	defer func() { logOutput = old }()
	log, err := newLogger(config.Log{Level: "info", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	log.With(zap.String("prefix", "")).Info("offloaded", zap.String("why", ""), zap.String("tier", "s3"), zap.Int("n", 0))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if _, ok := line["why"]; ok {
		t.Errorf("empty why logged: %s", buf.String())
	}
	if _, ok := line["prefix"]; ok {
		t.Errorf("empty prefix logged: %s", buf.String())
	}
	if line["tier"] != "s3" || line["n"] != 0.0 {
		t.Errorf("non-empty fields lost: %s", buf.String())
	}
}

// --log-format overrides log.format and refuses an unknown format.
func TestLogFormatFlag(t *testing.T) {
	dir := t.TempDir()
	cfg := dir + "/tierd.yaml"
	if err := os.WriteFile(cfg, []byte("node: n1\nstate_dir: "+dir+"/state\nsources: [{name: rmq, layout: rocketmq, path: "+dir+"/store}]\ntiers: [{name: hdd, type: posix, path: "+dir+"/hdd}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(&globals{configPath: cfg, logFormat: "console"})
	if err != nil || c.Log.Format != "console" {
		t.Fatalf("--log-format console: %v %+v", err, c)
	}
	if _, err := loadConfig(&globals{configPath: cfg, logFormat: "text"}); err == nil || !strings.Contains(err.Error(), "auto, json or console") {
		t.Fatalf("--log-format text: %v", err)
	}
}
