package miniotest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func roundTrip(t *testing.T, s *Server, key string, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := s.Client()
	if _, err := c.PutObject(ctx, s.Bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	o, err := c.GetObject(ctx, s.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	got, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get %s = %q, %v; want %q", key, got, err, data)
	}
}

func TestStopRestart(t *testing.T) {
	s := Start(t)
	roundTrip(t, s, "a/b", []byte("hello"))
	pid := s.PID()
	s.Stop()
	if s.PID() != 0 {
		t.Fatal("PID after Stop is not 0")
	}
	if _, err := s.HTTPClient().Get(s.Endpoint + "/minio/health/live"); err == nil {
		t.Fatal("stopped server still answers")
	}
	s.Restart()
	if s.PID() == 0 || s.PID() == pid {
		t.Fatalf("PID after Restart = %d (was %d)", s.PID(), pid)
	}
	// Same data directory: the object survived.
	roundTrip(t, s, "a/c", []byte("again"))
	out, err := s.MC("ls", "--recursive", Alias+"/"+s.Bucket+"/a/")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "a/b") && !strings.Contains(string(out), "b") {
		t.Fatalf("mc ls does not show the object from before the restart:\n%s", out)
	}
	out, err = s.MC("cat", Alias+"/"+s.Bucket+"/a/b")
	if err != nil || string(out) != "hello" {
		t.Fatalf("mc cat = %q, %v", out, err)
	}
}

func TestTLS(t *testing.T) {
	s := StartWith(t, Options{TLS: true, Bucket: "secure"})
	if !strings.HasPrefix(s.Endpoint, "https://") || s.CAFile == "" {
		t.Fatalf("endpoint %s, CA %q", s.Endpoint, s.CAFile)
	}
	roundTrip(t, s, "k", []byte("over tls"))
	out, err := s.MC("cat", Alias+"/secure/k")
	if err != nil || string(out) != "over tls" {
		t.Fatalf("mc cat over TLS = %q, %v", out, err)
	}
	// A client that does not trust the test CA is refused.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(s.Endpoint + "/minio/health/live")
	if err == nil {
		resp.Body.Close()
		t.Fatal("a client without the test CA trusted the server")
	}
}

// TestLaunch runs a server the way a program does (no testing.TB): it serves, mc works
// against it, and Close stops it and removes everything it made.
func TestLaunch(t *testing.T) {
	if _, err := FindBin("TIERD_MINIO_BIN", "minio"); err != nil {
		skipOrFail(t, err)
	}
	parent, dataParent := t.TempDir(), t.TempDir()
	s, err := Launch(Options{Dir: parent, DataDir: dataParent})
	if err != nil {
		t.Fatal(err)
	}
	if s.t != nil {
		t.Fatal("a launched server holds a testing.TB")
	}
	roundTrip(t, s, "x", []byte("launched"))
	if out, err := s.MC("cat", Alias+"/"+s.Bucket+"/x"); err != nil || string(out) != "launched" {
		t.Errorf("mc cat = %q, %v", out, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.PID() != 0 {
		t.Error("PID after Close is not 0")
	}
	for _, d := range []string{parent, dataParent} {
		if left, _ := os.ReadDir(d); len(left) != 0 {
			t.Errorf("Close left %d entries in %s", len(left), d)
		}
	}
}
