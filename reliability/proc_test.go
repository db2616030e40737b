package reliability

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tierd/tierd/internal/failpoint"
)

// proc is one tierd process (usually `tierd run`) whose stderr (its log) goes to a file.
type proc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	killed  bool          // we sent SIGKILL
}

// tierdEnv is the environment of every tierd the tests run: the test's, without a
// failpoint, plus extra.
func tierdEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, failpoint.EnvVar+"=") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	// A race in the tierd binary (built with -tierd-race) makes it exit 66 at once.
	env = append(env, "GORACE=halt_on_error=1 exitcode=66")
	return append(env, extra...)
}

// startTierd starts tierd with args, logging to logPath, and kills it when t ends.
func startTierd(t *testing.T, name, logPath string, env []string, args ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tierdBin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start tierd: %v", err)
	}
	p := &proc{t: t, name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.kill()
		}
	})
	return p
}

// log returns everything the process has logged so far.
func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// tail returns the last lines of the log, for failure messages.
func (p *proc) tail() string {
	s := p.log()
	if len(s) > 6000 {
		s = "...\n" + s[len(s)-6000:]
	}
	return s
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond every 20 ms until it holds (true), the process exits or timeout
// passes (false).
func (p *proc) waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || p.exited() {
			return cond()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog waits until the log contains s.
func (p *proc) waitLog(s string, timeout time.Duration) bool {
	return p.waitFor(timeout, func() bool { return strings.Contains(p.log(), s) })
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if !p.exited() {
		p.killed = true
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	p.wait(30 * time.Second)
}

// term sends SIGTERM and returns the exit code (-1 if it did not exit within timeout,
// after which it is killed).
func (p *proc) term(timeout time.Duration) int {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if !p.wait(timeout) {
		p.kill()
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// wait waits up to timeout for the process to exit.
func (p *proc) wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// diedOfSIGKILL reports whether the exited process was killed by SIGKILL.
func (p *proc) diedOfSIGKILL() bool {
	st, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && st.Signaled() && st.Signal() == syscall.SIGKILL
}

// cliResult is the outcome of one tierd command.
type cliResult struct {
	code        int
	out, errOut string
}

// runCLI runs one tierd command to completion (at most 3 minutes).
func runCLI(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tierdBin, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("tierd %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("tierd %s did not finish in 3 minutes:\n%s", strings.Join(args, " "), errOut.String())
	}
	return cliResult{code, out.String(), errOut.String()}
}

// freeAddr returns a free loopback address for http.listen.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// httpGet returns the status and body of GET http://addr/path ("" and 0 on error).
func httpGet(addr, path string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// logDir makes the directory process logs of t go to.
func logDir(t *testing.T) string {
	d := filepath.Join(t.TempDir(), "logs")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}
