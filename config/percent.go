package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Percent is a fraction stored as 0..1 (0.9 for 90%). In YAML it is written "90%" or as a
// bare number of percent (90). A bare number between 0 and 1 (0.9) is refused as
// ambiguous: write "90%" or "0.9%".
type Percent float64

// ParsePercent parses s as a Percent.
func ParsePercent(s string) (Percent, error) {
	num, sign := strings.CutSuffix(s, "%")
	num = strings.TrimSuffix(num, " ")
	bad := func(why string) (Percent, error) {
		return 0, fmt.Errorf("%q is not a percentage (e.g. 90%%): %s", s, why)
	}
	if num == "" || len(num) > 32 || strings.ContainsAny(num, "eEiInNxX_") {
		return bad("not a number")
	}
	v, err := strconv.ParseFloat(num, 64)
	switch {
	case err != nil:
		return bad("not a number")
	case v < 0:
		return bad("negative")
	case !sign && v > 0 && v < 1:
		return 0, fmt.Errorf("%q is ambiguous: write %q or %q", s, strconv.FormatFloat(v*100, 'f', -1, 64)+"%", s+"%")
	}
	return Percent(v / 100), nil
}

// Fraction returns p as a fraction of 1.
func (p Percent) Fraction() float64 { return float64(p) }

// String renders p as "90%" (at most six decimals).
func (p Percent) String() string {
	v := math.Round(float64(p)*100*1e6) / 1e6
	return strconv.FormatFloat(v, 'f', -1, 64) + "%"
}

// MarshalText renders p as String does.
func (p Percent) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses text as ParsePercent does.
func (p *Percent) UnmarshalText(text []byte) error {
	v, err := ParsePercent(string(text))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

func (p *Percent) parseScalar(text string) error { return p.UnmarshalText([]byte(text)) }
