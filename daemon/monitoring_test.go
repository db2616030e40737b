package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// The alert rules are parsed with Prometheus's own rule-file parser (rulefmt, the code
// `promtool check rules` runs: strict YAML, valid PromQL, valid templates) rather than a
// hand-written decoder: it adds one module to go.mod (github.com/prometheus/prometheus;
// with module graph pruning, its requirements stay out of our go.mod) and is used by this
// test only, so the tierd binary does not grow.
const monitoringDir = "../deploy/monitoring"

// exported returns the names of the series tierd's registry exports right after New,
// before any scan or job: a histogram's _bucket, _sum and _count.
func exported(t *testing.T, d *Daemon) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := d.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		names[f.GetName()] = f
		if f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[f.GetName()+suffix] = f
			}
		}
	}
	return names
}

// promql parses as Prometheus does by default (no experimental functions).
var promql = parser.NewParser(parser.Options{})

// Series Prometheus makes itself for every target.
var synthetic = []string{"up", "scrape_duration_seconds"}

// metricNames returns the metric names an expression selects.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Fatalf("%s: %q: %v", where, expr, err)
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				t.Errorf("%s: %q selects without a metric name", where, expr)
			}
			names = append(names, vs.Name)
		}
		return nil
	})
	if len(names) == 0 {
		t.Errorf("%s: %q selects no metric", where, expr)
	}
	return names
}

func TestMonitoringUsesExportedMetrics(t *testing.T) {
	e := newEnv(t)
	d := e.daemon()
	have := exported(t, d)
	check := func(where, expr string) {
		for _, name := range metricNames(t, where, expr) {
			if have[name] == nil && !slices.Contains(synthetic, name) {
				t.Errorf("%s uses %s, which tierd does not export", where, name)
			}
		}
	}

	groups, errs := rulefmt.ParseFile(filepath.Join(monitoringDir, "tierd-alerts.yaml"), false, model.LegacyValidation, promql, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("tierd-alerts.yaml: %v", errs)
	}
	alerts := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			check("alert "+r.Alert, r.Expr)
			if r.Alert != "" {
				alerts++
				if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("alert %s lacks a severity, a summary or a description", r.Alert)
				}
			}
		}
	}
	// The alerts the README and the issue ask for are there.
	for _, m := range []string{"tierd_overdue_seconds", "tierd_tier_failing", "tierd_tier_paused", "tierd_offload_errors_total", "tierd_source_scan_failing"} {
		found := false
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				found = found || strings.Contains(r.Expr, m)
			}
		}
		if !found {
			t.Errorf("no alert on %s", m)
		}
	}

	data, err := os.ReadFile(filepath.Join(monitoringDir, "tierd-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query string `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("tierd-dashboard.json: %v", err)
	}
	// Grafana's variables are not PromQL: give them values before parsing.
	vars := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*")
	targets := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			check("panel "+p.Title, vars.Replace(tg.Expr))
			targets++
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for _, v := range dash.Templating.List {
		if v.Type == "query" {
			m := labelValues.FindStringSubmatch(v.Query)
			if m == nil {
				t.Fatalf("variable %s: query %q is not label_values(SELECTOR, LABEL)", v.Name, v.Query)
			}
			check("variable "+v.Name, m[1])
		}
	}
	if dash.UID == "" || targets < 10 || alerts < 5 {
		t.Fatalf("dashboard uid %q with %d targets, %d alerts: want a uid, 10 targets and 5 alerts at least", dash.UID, targets, alerts)
	}
}

// Every series tierd describes is exported from the start, at 0 for counters, with a
// series per configured tier or source: an alert on increase(tierd_offload_errors_total)
// works before the first error, and a dashboard shows 0 rather than no data.
func TestMetricsExportedFromStart(t *testing.T) {
	e := newEnv(t)
	d := e.daemon()
	have := exported(t, d)
	for _, c := range d.m.collectors {
		descs := make(chan *prometheus.Desc, 64)
		c.Describe(descs)
		close(descs)
		for desc := range descs {
			name := descName(t, desc)
			f := have[name]
			if f == nil {
				t.Errorf("%s is described but not exported before its first event", name)
				continue
			}
			if f.GetType() != dto.MetricType_COUNTER || !strings.HasPrefix(name, "tierd_") { // go_ and process_ count from the process start
				continue
			}
			for _, m := range f.GetMetric() {
				if v := m.GetCounter().GetValue(); v != 0 {
					t.Errorf("counter %s%v starts at %v", name, m.GetLabel(), v)
				}
			}
		}
	}
	for _, name := range []string{"tierd_offload_errors_total", "tierd_offload_retries_total", "tierd_offloaded_segments_total", "tierd_tier_paused", "tierd_overdue_seconds"} {
		if !hasLabel(have[name], "tier", "hdd") {
			t.Errorf("%s has no series for tier hdd", name)
		}
	}
	for _, name := range []string{"tierd_scan_errors_total", "tierd_source_scan_failing", "tierd_local_deleted_segments_total"} {
		if !hasLabel(have[name], "source", testSrc) {
			t.Errorf("%s has no series for source %s", name, testSrc)
		}
	}
	bi := have["tierd_build_info"]
	if bi == nil || len(bi.GetMetric()) != 1 || bi.GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Fatalf("tierd_build_info: %v", bi)
	}
	labels := map[string]string{}
	for _, l := range bi.GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] == "" || labels["commit"] == "" || !strings.HasPrefix(labels["go_version"], "go") {
		t.Fatalf("tierd_build_info labels %v", labels)
	}
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func descName(t *testing.T, d *prometheus.Desc) string {
	t.Helper()
	m := fqName.FindStringSubmatch(d.String())
	if m == nil {
		t.Fatalf("cannot read the name of %s", d)
	}
	return m[1]
}

func hasLabel(f *dto.MetricFamily, name, value string) bool {
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == name && l.GetValue() == value {
				return true
			}
		}
	}
	return false
}

// tierd_overdue_seconds is the oldest due segment's age past offload_after:
// tierd_oldest_pending_seconds minus offload_after.
func TestOverdueSeconds(t *testing.T) {
	e := newEnv(t)
	store(t, e.root)
	d := e.daemon(func(c *Config) {
		c.Tiers[0].OffloadAfter = 30 * time.Minute
		c.Tiers[0].MaxUsed = 0.0001 // paused: the due segments stay due
	})
	if err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	have := exported(t, d)
	value := func(name string) float64 {
		for _, m := range have[name].GetMetric() {
			if hasLabel(&dto.MetricFamily{Metric: []*dto.Metric{m}}, "tier", "hdd") {
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("no %s{tier=\"hdd\"}", name)
		return 0
	}
	oldest, overdue := value("tierd_oldest_pending_seconds"), value("tierd_overdue_seconds")
	if overdue <= 0 || math.Abs(oldest-overdue-1800) > 5 {
		t.Fatalf("oldest pending %vs, overdue %vs: want overdue = oldest - 1800s > 0", oldest, overdue)
	}
	if value("tierd_tier_paused") != 1 {
		t.Fatal("tierd_tier_paused is not 1 for the paused tier")
	}
}

// A source whose directory cannot be read counts a scan error and shows as failing.
func TestScanErrorMetrics(t *testing.T) {
	e := newEnv(t)
	d := e.daemon(func(c *Config) { c.Sources[0].Root = filepath.Join(e.root, "missing") })
	_ = d.RunOnce(context.Background())
	have := exported(t, d)
	if v := have["tierd_scan_errors_total"].GetMetric()[0].GetCounter().GetValue(); v < 1 {
		t.Fatalf("tierd_scan_errors_total = %v after a scan of a missing directory", v)
	}
	if v := have["tierd_source_scan_failing"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Fatalf("tierd_source_scan_failing = %v", v)
	}
}
