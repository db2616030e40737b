package bench

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Median returns the median of xs (the mean of the middle two for an even count), or 0
// for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Slope fits y = a + b*x by least squares and returns b; ok is false with fewer than
// two distinct x.
func Slope(xs, ys []float64) (b float64, ok bool) {
	n := float64(len(xs))
	if len(xs) != len(ys) || len(xs) < 2 {
		return 0, false
	}
	var sx, sy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
	}
	mx, my := sx/n, sy/n
	var sxx, sxy float64
	for i := range xs {
		dx := xs[i] - mx
		sxx += dx * dx
		sxy += dx * (ys[i] - my)
	}
	if sxx == 0 {
		return 0, false
	}
	return sxy / sxx, true
}

// ParseSize parses "4GiB", "256MiB", "64KiB" or a byte count.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v, ok := strings.CutSuffix(s, u.suf); ok {
			s, mult = v, u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("bad size %q: want a positive byte count or a number with KiB, MiB or GiB", s)
	}
	return n * mult, nil
}

// ParseSizes parses a comma-separated list of sizes.
func ParseSizes(s string) ([]int64, error) {
	var out []int64
	for f := range strings.SplitSeq(s, ",") {
		n, err := ParseSize(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// FormatSize renders n as "4GiB", "256MiB", "64KiB" or a byte count.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}

// MiB returns n bytes in MiB.
func MiB(n int64) float64 { return float64(n) / (1 << 20) }

// GiB returns n bytes in GiB.
func GiB(n int64) float64 { return float64(n) / (1 << 30) }

// MBps returns n bytes over d in MB/s (10^6 bytes a second, as dd prints).
func MBps(n int64, secs float64) float64 { return float64(n) / secs / 1e6 }

// Stat is one measured quantity over the runs of a contender: every run's value in run
// order, and their median.
type Stat struct {
	Runs   []float64 `json:"runs"`
	Median float64   `json:"median"`
}

func newStat(xs []float64) Stat { return Stat{Runs: xs, Median: Median(xs)} }

// Max returns the largest run, or 0 for none.
func (s Stat) Max() float64 {
	if len(s.Runs) == 0 {
		return 0
	}
	return slices.Max(s.Runs)
}
