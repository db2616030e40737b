package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Usage is what a measured run cost: wall time as the parent saw it (from starting the
// processes to the last one's exit), CPU time (user + system) and peak RSS (VmHWM: every
// page the process touched, pool and runtime included), summed over the processes of the
// run.
//
// The peak is read from /proc/PID/status while the process runs (and reported by Go
// children themselves at the end), not taken from the kernel's maxrss: a process started
// with vfork (as os/exec does) inherits its parent's peak RSS in maxrss at exec.
type Usage struct {
	Secs   float64 `json:"secs"`
	CPU    float64 `json:"cpu"`
	MaxRSS int64   `json:"max_rss"`
}

// add counts a finished process: its CPU time, and peak, the largest VmHWM seen (or, if
// the process ended before its status could be read, the kernel's maxrss, which may be
// the parent's peak).
func (u *Usage) add(ps *os.ProcessState, peak int64) {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		u.CPU += tvSecs(ru.Utime) + tvSecs(ru.Stime)
		if peak == 0 {
			peak = ru.Maxrss << 10 // KiB on Linux
		}
	}
	u.MaxRSS += peak
}

// hwmWatch polls a process's VmHWM until stopped and returns the largest value seen (0 if
// none): every millisecond for the first 50 ms, so that short processes are seen after
// their start-up, then every 10 ms. The peak a process reaches in its last milliseconds
// may be missed; the processes measured here reach theirs at the start (dd, whose buffer
// is allocated first) or keep it (a pool).
type hwmWatch struct {
	stop chan struct{}
	done chan int64
}

func watchHWM(pid int) *hwmWatch {
	w := &hwmWatch{stop: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		for i := 0; ; i++ {
			if _, hwm, err := procStatus(pid); err == nil {
				peak = max(peak, hwm)
			}
			wait := 10 * time.Millisecond
			if i < 50 {
				wait = time.Millisecond
			}
			select {
			case <-w.stop:
				w.done <- peak
				return
			case <-time.After(wait):
			}
		}
	}()
	return w
}

// peak stops the watch and returns the largest VmHWM seen.
func (w *hwmWatch) peak() int64 {
	close(w.stop)
	return <-w.done
}

// SelfPeakRSS returns this process's VmHWM.
func SelfPeakRSS() int64 {
	_, hwm, _ := procStatus(os.Getpid())
	return hwm
}

func tvSecs(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

// runCmds starts cmds at once, waits for all, and returns their usage. Standard error is
// kept for the error message.
func runCmds(ctx context.Context, cmds ...*exec.Cmd) (Usage, error) {
	stderr := make([]bytes.Buffer, len(cmds))
	watches := make([]*hwmWatch, len(cmds))
	start := time.Now()
	for i, c := range cmds {
		if c.Stderr == nil {
			c.Stderr = &stderr[i]
		}
		if err := c.Start(); err != nil {
			for j, s := range cmds[:i] {
				_ = s.Process.Kill()
				_ = s.Wait()
				watches[j].peak()
			}
			return Usage{}, fmt.Errorf("start %s: %w", c, err)
		}
		watches[i] = watchHWM(c.Process.Pid)
	}
	stop := context.AfterFunc(ctx, func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
		}
	})
	defer stop()
	var u Usage
	var errs []error
	for i, c := range cmds {
		err := c.Wait()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w: %s", c, err, bytes.TrimSpace(stderr[i].Bytes())))
		}
		u.add(c.ProcessState, watches[i].peak())
	}
	u.Secs = time.Since(start).Seconds()
	if err := ctx.Err(); err != nil {
		return u, err
	}
	return u, errors.Join(errs...)
}

// command returns an exec.Cmd for name args.
func command(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

// childEnv carries a child's job (JSON) from the parent.
const childEnv = "TIERD_BENCH_CHILD"

// childArgs keep a test binary that does not call MaybeChild from running its tests.
var childArgs = []string{"-test.run=^$", "-test.bench=^$"}

// MaybeChild runs the measured operation a parent process of this package asked for and
// exits; it returns at once in any other process. Every executable that runs this
// package's measurements (the report generator, and the test binaries of the packages
// whose benchmarks use it) calls it first: in main, or in TestMain before m.Run.
func MaybeChild() {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return
	}
	var job childJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		fmt.Fprintf(os.Stderr, "bench child: bad job %s: %v\n", childEnv, err)
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	res, err := job.run(context.Background(), func(ev childEvent) { _ = out.Encode(childLine{Event: &ev}) })
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench child %s: %v\n", job.Op, err)
		os.Exit(1)
	}
	res.PeakRSS = SelfPeakRSS()
	if err := out.Encode(childLine{Result: &res}); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// childLine is one line of a child's standard output: an event while it runs, its result
// last.
type childLine struct {
	Event  *childEvent  `json:"event,omitempty"`
	Result *childResult `json:"result,omitempty"`
}

// childEvent reports progress: Jobs finished at Secs after the child began working.
type childEvent struct {
	Jobs int     `json:"jobs"`
	Secs float64 `json:"secs"`
}

// child is a running child process.
type child struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	lines  chan childLine
	start  time.Time
	watch  *hwmWatch
}

// startChild starts this executable as a child running job. Events arrive on the
// returned child's lines until wait.
func startChild(job childJob) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this executable to run a child: %w", err)
	}
	spec, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	c := &child{cmd: exec.Command(exe, childArgs...), lines: make(chan childLine, 64)}
	c.cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	c.cmd.Stderr = &c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.start = time.Now()
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start child %s: %w", job.Op, err)
	}
	c.watch = watchHWM(c.cmd.Process.Pid)
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var l childLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				c.lines <- l
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return c, nil
}

// wait collects the child's result and usage, passing events to onEvent (if set) as they
// come. ctx ending kills the child.
func (c *child) wait(ctx context.Context, onEvent func(childEvent)) (childResult, Usage, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.cmd.Process.Kill() })
	defer stop()
	var res *childResult
	for l := range c.lines {
		switch {
		case l.Event != nil && onEvent != nil:
			onEvent(*l.Event)
		case l.Result != nil:
			res = l.Result
		}
	}
	err := c.cmd.Wait()
	u := Usage{Secs: time.Since(c.start).Seconds()}
	peak := c.watch.peak()
	if res != nil {
		peak = max(peak, res.PeakRSS)
	}
	u.add(c.cmd.ProcessState, peak)
	if ctx.Err() != nil {
		return childResult{}, u, fmt.Errorf("child killed: %w", ctx.Err())
	}
	if err != nil {
		return childResult{}, u, fmt.Errorf("child: %w: %s", err, bytes.TrimSpace(c.stderr.Bytes()))
	}
	if res == nil {
		return childResult{}, u, errors.New("child gave no result: does this executable call bench.MaybeChild first (in main or TestMain)?")
	}
	return *res, u, nil
}

// runChild runs job in a child process and returns its result and usage.
func runChild(ctx context.Context, job childJob) (childResult, Usage, error) {
	c, err := startChild(job)
	if err != nil {
		return childResult{}, Usage{}, err
	}
	return c.wait(ctx, nil)
}

// procStatus returns VmRSS and VmHWM of process pid in bytes.
func procStatus(pid int) (rss, hwm int64, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// procCPU returns the CPU seconds (user + system) process pid has used, from
// /proc/pid/stat; 0 if it cannot be read.
func procCPU(pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields start after its closing parenthesis.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(fields[11], 64) // field 14 of proc(5)
	st, _ := strconv.ParseFloat(fields[12], 64) // field 15
	return (ut + st) / 100                      // USER_HZ
}
