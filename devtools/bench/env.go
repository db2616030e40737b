package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The knobs of the `go test -bench` entry points, read from the environment.

// EnvSizes returns the sizes listed in the environment variable name ("1GiB,4GiB"), or
// def's when it is unset.
func EnvSizes(name, def string) ([]int64, error) {
	s := os.Getenv(name)
	if s == "" {
		s = def
	}
	sizes, err := ParseSizes(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return sizes, nil
}

// EnvSize returns the size in the environment variable name, or def when it is unset.
func EnvSize(name string, def int64) (int64, error) {
	s := os.Getenv(name)
	if s == "" {
		return def, nil
	}
	n, err := ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return n, nil
}

// EnvInt returns the positive integer in the environment variable name, or def when it
// is unset or not one.
func EnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// String renders a contender's runs on one line: median throughput and every run's,
// CPU per GiB, peak RSS, the page cache left, and the ratio to its baseline.
func (r Runs) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-14s median %7.1f MB/s %s, %.2fs", r.Name, r.MBps.Median, fmtRuns(r.MBps.Runs, "%.0f"), r.Secs.Median)
	fmt.Fprintf(&b, ", CPU %.2f s/GiB, peak RSS %.1f MiB (largest %.1f)", r.CPUPerGiB.Median, r.MaxRSS.Median/(1<<20), r.MaxRSS.Max()/(1<<20))
	if r.ServerCPUPerGiB.Median > 0 {
		fmt.Fprintf(&b, ", server CPU %.2f s/GiB", r.ServerCPUPerGiB.Median)
	}
	fmt.Fprintf(&b, ", page cache after: src %.1f MiB, dst %.1f MiB", r.SrcResident.Median/(1<<20), r.DstResident.Median/(1<<20))
	if r.Baseline != "" {
		fmt.Fprintf(&b, ", %.3f x %s", r.Ratio, r.Baseline)
	}
	return b.String()
}

func fmtRuns(xs []float64, format string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf(format, x)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// String renders a check: "what: value (goal op target) met|SHORT".
func (c Check) String() string {
	verdict := "met"
	if !c.Met {
		verdict = "SHORT"
	}
	return fmt.Sprintf("%s: %.3g %s (goal %s %.3g) %s", c.What, c.Value, c.Unit, c.Op, c.Target, verdict)
}
