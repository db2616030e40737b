package config

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Size is a number of bytes. In YAML it is a plain integer (bytes) or a number with a unit:
// binary B, KiB, MiB, GiB, TiB, PiB (powers of 1024) or decimal kB, MB, GB, TB, PB (powers
// of 1000), optionally with a fraction ("1.5GiB") that must come out as whole bytes. Units
// are matched case-insensitively; "64M" or "64Mi" are refused as ambiguous.
type Size int64

// Common sizes.
const (
	KiB Size = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
	PiB
)

type unit struct {
	name string
	mul  int64
}

// sizeUnits are tried in this order when rendering: the first that divides a size wins.
var sizeUnits = []unit{
	{"PiB", 1 << 50}, {"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"PB", 1e15}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3},
	{"B", 1},
}

const sizeHint = "e.g. 4096, 512KiB, 64MiB, 1.5GiB, 10MB"

// ParseSize parses s as a Size.
func ParseSize(s string) (Size, error) {
	n, err := parseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size (%s): %w", s, sizeHint, err)
	}
	return Size(n), nil
}

// parseBytes parses "<number>[ ]<unit>" into whole bytes.
func parseBytes(s string) (int64, error) {
	if len(s) > 64 {
		return 0, fmt.Errorf("too long")
	}
	num := s
	for i, c := range s {
		if (c < '0' || c > '9') && c != '.' {
			num = s[:i]
			break
		}
	}
	u := strings.TrimPrefix(s[len(num):], " ")
	if num == "" || num[0] == '.' || num[len(num)-1] == '.' || strings.Count(num, ".") > 1 {
		if strings.HasPrefix(s, "-") {
			return 0, fmt.Errorf("negative")
		}
		return 0, fmt.Errorf("no number")
	}
	mul := int64(-1)
	if u == "" {
		mul = 1
	}
	for _, cand := range sizeUnits {
		if strings.EqualFold(u, cand.name) {
			mul = cand.mul
		}
	}
	if mul < 0 {
		return 0, fmt.Errorf("unknown unit %q", u)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("bad number %q", num)
	}
	r.Mul(r, new(big.Rat).SetInt64(mul))
	if !r.IsInt() {
		return 0, fmt.Errorf("not a whole number of bytes")
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("too large")
	}
	return r.Num().Int64(), nil
}

// String renders s exactly, in the largest unit that divides it: binary units first, then
// decimal ones, then bytes ("64MiB", "10MB", "4097B"). ParseSize(s.String()) == s.
func (s Size) String() string {
	if s < 0 {
		return strconv.FormatInt(int64(s), 10) + "B"
	}
	if s == 0 {
		return "0B"
	}
	for _, u := range sizeUnits {
		if int64(s)%u.mul == 0 {
			return strconv.FormatInt(int64(s)/u.mul, 10) + u.name
		}
	}
	panic("BUG: unit B divides every size")
}

// Int64 returns s in bytes.
func (s Size) Int64() int64 { return int64(s) }

// MarshalText renders s as String does.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses text as ParseSize does.
func (s *Size) UnmarshalText(text []byte) error {
	v, err := ParseSize(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

func (s *Size) parseScalar(text string) error { return s.UnmarshalText([]byte(text)) }

// Rate is a throughput in bytes per second; 0 means unlimited. In YAML it is "unlimited",
// 0, a plain integer (bytes/s) or a size followed by "/s" ("200MiB/s").
type Rate int64

// Unlimited is the Rate that imposes no limit.
const Unlimited Rate = 0

// ParseRate parses s as a Rate.
func ParseRate(s string) (Rate, error) {
	if s == "unlimited" {
		return Unlimited, nil
	}
	num, perSec := strings.CutSuffix(s, "/s")
	if !perSec {
		if _, err := strconv.ParseUint(s, 10, 63); err != nil {
			return 0, fmt.Errorf("%q is not a rate (e.g. 200MiB/s, 50MB/s, unlimited)", s)
		}
	}
	n, err := parseBytes(num)
	if err != nil {
		return 0, fmt.Errorf("%q is not a rate (e.g. 200MiB/s, 50MB/s, unlimited): %w", s, err)
	}
	return Rate(n), nil
}

// IsUnlimited reports whether r imposes no limit.
func (r Rate) IsUnlimited() bool { return r == Unlimited }

// BytesPerSecond returns r in bytes per second, or +Inf when unlimited (the form
// golang.org/x/time/rate takes as rate.Inf).
func (r Rate) BytesPerSecond() float64 {
	if r.IsUnlimited() {
		return math.Inf(1)
	}
	return float64(r)
}

// String renders r as "200MiB/s" or "unlimited".
func (r Rate) String() string {
	if r.IsUnlimited() {
		return "unlimited"
	}
	return Size(r).String() + "/s"
}

// MarshalText renders r as String does.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses text as ParseRate does.
func (r *Rate) UnmarshalText(text []byte) error {
	v, err := ParseRate(string(text))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

func (r *Rate) parseScalar(text string) error { return r.UnmarshalText([]byte(text)) }
