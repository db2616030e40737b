package bench

import (
	"context"
	"fmt"
	"strings"
)

// Check is one goal stated in the issues next to the value measured for it.
type Check struct {
	// Key names the check stably, e.g. "posix/1GiB/direct/ratio" or "soak/slope".
	Key    string  `json:"key"`
	Area   string  `json:"area"` // posix, s3, compaction, soak
	What   string  `json:"what"`
	Value  float64 `json:"value"`
	Op     string  `json:"op"` // ">=" or "<="
	Target float64 `json:"target"`
	Unit   string  `json:"unit"` // "x" (a ratio), "MiB", "B/item", "reads", "MiB/round"
	Met    bool    `json:"met"`
}

func newCheck(key, what string, value float64, op string, target float64, unit string) Check {
	area, _, _ := strings.Cut(key, "/")
	if area == "rss" {
		area = "posix"
	}
	met := value <= target
	if op == ">=" {
		met = value >= target
	}
	return Check{Key: key, Area: area, What: what, Value: value, Op: op, Target: target, Unit: unit, Met: met}
}

// Runs is one contender's measurements over the runs of one configuration.
type Runs struct {
	Name string `json:"name"`
	// Bytes is what one run moved (input bytes, summed over concurrent copies).
	Bytes       int64 `json:"bytes"`
	Secs        Stat  `json:"secs"`
	MBps        Stat  `json:"mbps"`        // Bytes / Secs, 10^6 bytes a second
	CPUPerGiB   Stat  `json:"cpu_per_gib"` // CPU seconds (user + system) per GiB of Bytes
	MaxRSS      Stat  `json:"max_rss"`     // bytes, summed over the run's processes
	SrcResident Stat  `json:"src_resident"`
	DstResident Stat  `json:"dst_resident"`
	// ServerCPUPerGiB is the object store's CPU seconds per GiB (S3 only).
	ServerCPUPerGiB Stat `json:"server_cpu_per_gib,omitzero"`
	// Baseline names the contender Ratio is taken against; Ratio is this contender's
	// median throughput over the baseline's (higher is better), or for compaction the
	// median time over the baseline's (lower is better).
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
}

// sample is one run of one contender.
type sample struct {
	u         Usage
	src, dst  int64
	serverCPU float64
	res       childResult
}

func summarize(name string, bytes int64, ss []sample) Runs {
	var sec, mbps, cpu, rss, src, dst, srv []float64
	for _, s := range ss {
		sec = append(sec, s.u.Secs)
		mbps = append(mbps, MBps(bytes, s.u.Secs))
		cpu = append(cpu, s.u.CPU/GiB(bytes))
		rss = append(rss, float64(s.u.MaxRSS))
		src = append(src, float64(s.src))
		dst = append(dst, float64(s.dst))
		srv = append(srv, s.serverCPU/GiB(bytes))
	}
	r := Runs{Name: name, Bytes: bytes, Secs: newStat(sec), MBps: newStat(mbps), CPUPerGiB: newStat(cpu),
		MaxRSS: newStat(rss), SrcResident: newStat(src), DstResident: newStat(dst)}
	if s := newStat(srv); s.Max() > 0 {
		r.ServerCPUPerGiB = s
	}
	return r
}

// contender is one way of doing a measured operation.
type contender struct {
	name string
	run  func(ctx context.Context) (sample, error)
}

// interleave runs every contender once per run, in an order rotated every run so that no
// contender always goes first, calling before ahead of each, and returns each contender's
// samples.
func interleave(ctx context.Context, runs int, cs []contender, before func() error, logf func(string, ...any)) (map[string][]sample, error) {
	out := map[string][]sample{}
	for run := range runs {
		for i := range cs {
			c := cs[(i+run)%len(cs)]
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if before != nil {
				if err := before(); err != nil {
					return nil, err
				}
			}
			s, err := c.run(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s, run %d: %w", c.name, run+1, err)
			}
			logf("  run %d/%d %-14s %7.2fs  cpu %6.2fs  maxrss %7.1f MiB  cache src %6.1f dst %6.1f MiB",
				run+1, runs, c.name, s.u.Secs, s.u.CPU, MiB(s.u.MaxRSS), MiB(s.src), MiB(s.dst))
			out[c.name] = append(out[c.name], s)
		}
	}
	return out, nil
}

// logger returns logf, or a function that drops everything.
func logger(logf func(string, ...any)) func(string, ...any) {
	if logf == nil {
		return func(string, ...any) {}
	}
	return logf
}
