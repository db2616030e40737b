package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a length of time. In YAML it is a Go duration ("30s", "1h30m", "250ms"),
// optionally led by whole days ("7d", "1d12h"), or "never" where a field allows it. A bare
// number is refused: "30" could mean seconds or minutes.
//
// Never is the longest representable duration, so an age compared against it is simply
// never old enough; check IsNever to treat it specially.
type Duration time.Duration

// Never is the Duration written "never": the event it schedules does not happen.
const Never = Duration(math.MaxInt64)

// ParseDuration parses s as a Duration. It accepts "never"; fields that do not allow it
// are refused by Validate.
func ParseDuration(s string) (Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30s, 5m, 1h30m, 7d): %w", s, err)
	}
	return d, nil
}

func parseDuration(s string) (Duration, error) {
	if s == "never" {
		return Never, nil
	}
	if len(s) > 64 {
		return 0, fmt.Errorf("too long")
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("negative")
	}
	var days int64
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || s[:i] == "" || s[0] == '+' {
			return 0, fmt.Errorf("days must be a whole number before \"d\"")
		}
		if n > int64(math.MaxInt64/(24*time.Hour)) {
			return 0, fmt.Errorf("too long")
		}
		days, s = n, s[i+1:]
		if s == "" {
			return Duration(time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil && s != "0" {
		return 0, fmt.Errorf("missing unit")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%w", unwrapDurationErr(err))
	}
	if d < 0 {
		return 0, fmt.Errorf("negative")
	}
	total := time.Duration(days) * 24 * time.Hour
	if d > time.Duration(math.MaxInt64)-total {
		return 0, fmt.Errorf("too long")
	}
	return Duration(total + d), nil
}

// unwrapDurationErr drops time.ParseDuration's repetition of the input.
func unwrapDurationErr(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, " in duration "); i >= 0 {
		msg = strings.TrimPrefix(msg[:i], "time: ")
	} else {
		msg = "invalid"
	}
	return fmt.Errorf("%s", msg)
}

// IsNever reports whether d is Never.
func (d Duration) IsNever() bool { return d == Never }

// Std returns d as a time.Duration (Never is math.MaxInt64 nanoseconds).
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String renders d as "never", in days when it is a whole number of days from two up
// ("7d"), or as time.Duration does without zero tails ("1h30m", "5m", "24h").
// ParseDuration(d.String()) == d.
func (d Duration) String() string {
	const day = 24 * time.Hour
	switch {
	case d.IsNever():
		return "never"
	case d >= Duration(2*day) && time.Duration(d)%day == 0:
		return strconv.FormatInt(int64(time.Duration(d)/day), 10) + "d"
	}
	s := time.Duration(d).String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

// MarshalText renders d as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses text as ParseDuration does.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

func (d *Duration) parseScalar(text string) error { return d.UnmarshalText([]byte(text)) }
