package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"math"
	"strings"
	"text/template"

	"github.com/tierd/tierd/devtools/bench"
)

//go:embed report.md.tmpl
var reportTemplate string

var funcs = template.FuncMap{
	"size": bench.FormatSize,
	"mib":  func(x any) string { return fmt.Sprintf("%.1f MiB", toFloat(x)/(1<<20)) },
	"gib":  func(x any) string { return fmt.Sprintf("%.1f GiB", toFloat(x)/(1<<30)) },
	"f0":   func(x any) string { return fmt.Sprintf("%.0f", toFloat(x)) },
	"f1":   func(x any) string { return fmt.Sprintf("%.1f", toFloat(x)) },
	"f2":   func(x any) string { return fmt.Sprintf("%.2f", toFloat(x)) },
	"f3":   func(x any) string { return fmt.Sprintf("%.3f", toFloat(x)) },
	"x":    func(x any) string { return fmt.Sprintf("%.2f×", toFloat(x)) },
	"runs": func(xs []float64, format string) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = fmt.Sprintf(format, x)
		}
		return strings.Join(s, " ")
	},
	"mibRuns": func(xs []float64) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = fmt.Sprintf("%.1f", x/(1<<20))
		}
		return strings.Join(s, " ")
	},
	"verdict": func(v any) string {
		switch v {
		case "met", true:
			return "✅ met"
		case "short", false:
			return "❌ short"
		}
		return ""
	},
	"baseline": baselineName,
	"load":     func(l [3]float64) string { return fmt.Sprintf("%.2f / %.2f / %.2f", l[0], l[1], l[2]) },
	"join":     strings.Join,
	"sizes": func(xs []int64) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = bench.FormatSize(x)
		}
		return strings.Join(s, ", ")
	},
	"ints": func(xs []int) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = fmt.Sprint(x)
		}
		return strings.Join(s, ", ")
	},
	"add":      func(a, b int64) int64 { return a + b },
	"sub":      func(a, b int) int { return a - b },
	"allow":    func() int64 { return bench.RSSAllowance },
	"callow":   func() int64 { return bench.CompactRSSAllowance },
	"sum":      worstSum,
	"goalText": func(c bench.Check) string { return ops[c.Op] + " " + withUnit(c.Target, c.Unit) },
	"value":    func(c bench.Check) string { return withUnit(c.Value, c.Unit) },
	"bytes":    func(n int64) string { return fmt.Sprintf("%.1f MiB (%s bytes)", float64(n)/(1<<20), thousands(n)) },
}

var ops = map[string]string{"<=": "≤", ">=": "≥"}

// withUnit renders a check's number with its unit: ratios as "0.95×", MiB with one
// decimal.
func withUnit(x float64, unit string) string {
	switch unit {
	case "x":
		return fmt.Sprintf("%.2f×", x)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", x)
	}
	return trim(x) + " " + unit
}

// thousands renders n with commas between groups of three digits.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// trim renders x with up to 3 significant decimals and no trailing zeros.
func trim(x float64) string {
	if math.Abs(x) >= 100 {
		return fmt.Sprintf("%.1f", x)
	}
	s := fmt.Sprintf("%.3f", x)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func toFloat(x any) float64 {
	switch v := x.(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	case int:
		return float64(v)
	}
	panic(fmt.Sprintf("BUG: template number of type %T", x))
}

// render returns BENCHMARKS.md for r.
func render(r *Report) ([]byte, error) {
	t, err := template.New("report").Funcs(funcs).Parse(reportTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse report template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, r); err != nil {
		return nil, fmt.Errorf("render report: %w", err)
	}
	// Templates leave runs of blank lines where sections are left out.
	out := b.Bytes()
	for bytes.Contains(out, []byte("\n\n\n")) {
		out = bytes.ReplaceAll(out, []byte("\n\n\n"), []byte("\n\n"))
	}
	return out, nil
}

// Short is the checks not met (for the template).
func (r *Report) Short() []bench.Check { return r.short() }

// Quick tells whether this is a quick run.
func (r *Report) Quick() bool { return r.Config.Mode == "quick" }

// Verdict is "met" when every existing check of keys is met (for the template).
func (r *Report) Verdict(keys ...string) string { return r.verdict(keys...) }
