package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// tb is a testing.TB for helpers written for tests (miniotest starts MinIO for one) used
// from this program. Fatal and Skip end the calling goroutine's section through a panic
// that section recovers (see guard); cleanups run in reverse order at cleanup.
type tb struct {
	testing.TB // nil: only to have the interface's unexported method; every used method is below

	name    string
	tempDir string // made under this directory
	log     io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	skipped  bool
	ctx      context.Context
	cancel   context.CancelFunc
}

// stop is what FailNow and SkipNow panic with.
type stop struct {
	skipped bool
	msg     string
}

func newTB(name, tempDir string, log io.Writer) *tb {
	ctx, cancel := context.WithCancel(context.Background())
	return &tb{name: name, tempDir: tempDir, log: log, ctx: ctx, cancel: cancel}
}

func (t *tb) ArtifactDir() string      { return t.TempDir() }
func (t *tb) Attr(key, value string)   {}
func (t *tb) Chdir(dir string)         { t.Fatalf("Chdir is not supported outside tests") }
func (t *tb) Context() context.Context { return t.ctx }
func (t *tb) Output() io.Writer        { return t.log }
func (t *tb) Helper()                  {}
func (t *tb) Name() string             { return t.name }
func (t *tb) Setenv(key, value string) {
	prev, had := os.LookupEnv(key)
	_ = os.Setenv(key, value)
	t.Cleanup(func() {
		if had {
			_ = os.Setenv(key, prev)
		} else {
			_ = os.Unsetenv(key)
		}
	})
}

func (t *tb) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// cleanup runs the cleanups, last registered first.
func (t *tb) cleanup() {
	t.cancel()
	for {
		t.mu.Lock()
		if len(t.cleanups) == 0 {
			t.mu.Unlock()
			return
		}
		f := t.cleanups[len(t.cleanups)-1]
		t.cleanups = t.cleanups[:len(t.cleanups)-1]
		t.mu.Unlock()
		f()
	}
}

func (t *tb) Log(args ...any)                 { fmt.Fprintln(t.log, args...) }
func (t *tb) Logf(format string, args ...any) { fmt.Fprintf(t.log, format+"\n", args...) }
func (t *tb) Error(args ...any)               { t.Log(args...); t.Fail() }
func (t *tb) Errorf(format string, args ...any) {
	t.Logf(format, args...)
	t.Fail()
}
func (t *tb) Fail() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
}
func (t *tb) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}
func (t *tb) FailNow()          { t.Fail(); panic(stop{msg: "failed"}) }
func (t *tb) Fatal(args ...any) { t.Fail(); panic(stop{msg: fmt.Sprint(args...)}) }
func (t *tb) Fatalf(format string, args ...any) {
	t.Fail()
	panic(stop{msg: fmt.Sprintf(format, args...)})
}
func (t *tb) Skip(args ...any)                 { t.skip(fmt.Sprint(args...)) }
func (t *tb) Skipf(format string, args ...any) { t.skip(fmt.Sprintf(format, args...)) }
func (t *tb) SkipNow()                         { t.skip("skipped") }
func (t *tb) skip(msg string) {
	t.mu.Lock()
	t.skipped = true
	t.mu.Unlock()
	panic(stop{skipped: true, msg: msg})
}
func (t *tb) Skipped() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.skipped
}

func (t *tb) TempDir() string {
	d, err := os.MkdirTemp(t.tempDir, "benchreport-")
	if err != nil {
		t.Fatalf("temporary directory: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// guard runs f, turning a Fatal or Skip of t inside it into an error.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s, ok := r.(stop)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%s", s.msg)
		}
	}()
	return f()
}
