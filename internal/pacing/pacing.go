// Package pacing slows tierd down while the broker's disk is busy, on top of the fixed
// per-tier rate limits: offloading cold data must never starve the broker's own I/O.
//
// A Pacer samples the utilisation of one block device from /proc/diskstats (the share
// of wall time the device had I/O in flight: field 13, io_ticks) and adjusts a byte rate
// that tierd's reads from the broker's disk wait for: while utilisation is above the
// threshold the rate is halved every sample, down to a floor; below it the rate grows
// again by half every sample until it is unlimited (additive-increase would take minutes
// to recover from a burst; multiplicative both ways settles within seconds).
package pacing

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"
)

// Config configures a Pacer.
type Config struct {
	// Device is the block device name as /proc/diskstats lists it (e.g. "vda", "nvme0n1").
	Device string
	// Busy is the utilisation (0..1) above which tierd slows down.
	Busy float64
	// Interval is the sampling interval (default 1s).
	Interval time.Duration
	// MinRate is the floor of the paced rate in bytes/s (default 1 MiB/s): tierd always
	// makes some progress.
	MinRate float64
	// StartRate is the rate the first slowdown halves from (default 512 MiB/s).
	StartRate float64
	// Path is the diskstats file (default /proc/diskstats; tests use a fake).
	Path string
	Log  *zap.Logger
}

// Pacer is a byte-rate gate driven by disk utilisation. Safe for concurrent use.
type Pacer struct {
	cfg Config
	lim *rate.Limiter

	mu      sync.Mutex
	last    sample
	util    float64
	limited bool
}

type sample struct {
	ticks uint64 // io_ticks, ms
	at    time.Time
}

// New returns a Pacer; call Run to start sampling.
func New(cfg Config) (*Pacer, error) {
	if cfg.Device == "" {
		return nil, errors.New("pacing: no device")
	}
	if cfg.Busy <= 0 || cfg.Busy > 1 {
		return nil, fmt.Errorf("pacing: busy threshold %v not in (0, 1]", cfg.Busy)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.MinRate <= 0 {
		cfg.MinRate = 1 << 20
	}
	if cfg.StartRate <= 0 {
		cfg.StartRate = 512 << 20
	}
	if cfg.Path == "" {
		cfg.Path = "/proc/diskstats"
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	p := &Pacer{cfg: cfg, lim: rate.NewLimiter(rate.Inf, burst(cfg.StartRate))}
	if _, err := readTicks(cfg.Path, cfg.Device); err != nil {
		return nil, err
	}
	return p, nil
}

func burst(r float64) int { return int(min(max(r/10, 64<<10), math.MaxInt32)) }

// Run samples every Interval until ctx ends.
func (p *Pacer) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	p.Sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.Sample(now)
		}
	}
}

// Sample reads the device's counters at now and adjusts the rate. Run calls it; tests
// call it directly with their own clock.
func (p *Pacer) Sample(now time.Time) {
	ticks, err := readTicks(p.cfg.Path, p.cfg.Device)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.cfg.Log.Warn("read disk statistics", zap.Error(err))
		return
	}
	prev := p.last
	p.last = sample{ticks, now}
	if prev.at.IsZero() || !now.After(prev.at) || ticks < prev.ticks {
		return
	}
	p.util = min(1, float64(ticks-prev.ticks)/float64(now.Sub(prev.at).Milliseconds()))
	cur := float64(p.lim.Limit())
	switch {
	case p.util > p.cfg.Busy:
		next := p.cfg.StartRate
		if p.limited {
			next = max(p.cfg.MinRate, cur/2)
		}
		if !p.limited {
			p.cfg.Log.Info("broker disk busy: slowing down", zap.String("device", p.cfg.Device), zap.Float64("utilisation", p.util), zap.Float64("bytes_per_second", next))
		}
		p.limited = true
		p.set(next)
	case p.limited:
		next := cur * 1.5
		if next >= p.cfg.StartRate {
			p.limited = false
			p.cfg.Log.Info("broker disk calm: full speed", zap.String("device", p.cfg.Device), zap.Float64("utilisation", p.util))
			p.lim.SetLimit(rate.Inf)
			return
		}
		p.set(next)
	}
}

func (p *Pacer) set(r float64) {
	p.lim.SetLimit(rate.Limit(r))
	p.lim.SetBurst(burst(r))
}

// Rate returns the current paced rate in bytes/s (+Inf when not slowed) and the last
// utilisation seen.
func (p *Pacer) Rate() (bytesPerSecond, utilisation float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lim.Limit() == rate.Inf {
		return math.Inf(1), p.util
	}
	return float64(p.lim.Limit()), p.util
}

// WaitN waits until n bytes may pass at the paced rate, or ctx ends.
func (p *Pacer) WaitN(ctx context.Context, n int) error {
	for n > 0 {
		c := min(n, p.lim.Burst())
		if err := p.lim.WaitN(ctx, c); err != nil {
			return fmt.Errorf("pacing: %w", err)
		}
		n -= c
	}
	return nil
}

// readTicks returns field 13 (io_ticks, ms) of device in a diskstats file.
func readTicks(path, device string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("pacing: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 13 || fields[2] != device {
			continue
		}
		v, err := strconv.ParseUint(fields[12], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("pacing: %s: io_ticks %q: %w", device, fields[12], err)
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("pacing: read %s: %w", path, err)
	}
	return 0, fmt.Errorf("pacing: device %q not in %s", device, path)
}

// DeviceOf returns the /proc/diskstats name of the block device holding path (its
// major:minor found in the diskstats file).
func DeviceOf(path, diskstats string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", fmt.Errorf("pacing: stat %s: %w", path, err)
	}
	if diskstats == "" {
		diskstats = "/proc/diskstats"
	}
	data, err := os.ReadFile(diskstats)
	if err != nil {
		return "", fmt.Errorf("pacing: %w", err)
	}
	maj, mnr := unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)) // st.Dev is int32 on some platforms
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == strconv.FormatUint(uint64(maj), 10) && f[1] == strconv.FormatUint(uint64(mnr), 10) {
			return f[2], nil
		}
	}
	return "", fmt.Errorf("pacing: the device of %s (%d:%d) is not in %s; set pacing.device", path, maj, mnr, diskstats)
}
