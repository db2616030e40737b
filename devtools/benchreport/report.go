package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tierd/tierd/devtools/bench"
)

// Report is everything a run measured, as written to results.json and rendered into
// BENCHMARKS.md.
type Report struct {
	Command     string            `json:"command"`
	Config      config            `json:"config"`
	Started     time.Time         `json:"started"`
	Finished    time.Time         `json:"finished"`
	Elapsed     string            `json:"elapsed"`
	Took        map[string]string `json:"took"` // per section
	LoadStart   [3]float64        `json:"load_start"`
	LoadEnd     [3]float64        `json:"load_end"`
	Machine     bench.Machine     `json:"machine"`
	Rclone      Rclone            `json:"rclone"`
	CeilingNote string            `json:"ceiling_note,omitempty"`

	Posix      *bench.PosixResult    `json:"posix,omitempty"`
	RSS        *bench.PosixRSSResult `json:"rss,omitempty"`
	Compaction *bench.CompactResult  `json:"compaction,omitempty"`
	S3         *bench.S3Result       `json:"s3,omitempty"`
	Soak       *bench.SoakResult     `json:"soak,omitempty"`
	Scale      *bench.ScaleResult    `json:"scale,omitempty"`
	Errors     []string              `json:"errors,omitempty"`
	// Kept are sections taken from an earlier run's results (-keep), not measured in this one.
	Kept []Kept `json:"kept,omitempty"`

	// Checks are every goal with its measurement, in section order; Headline sums them up.
	Checks   []bench.Check     `json:"checks"`
	Headline []Row             `json:"headline"`
	Plots    map[string]string `json:"plots"`
}

// Kept says where a section measured by an earlier run came from.
type Kept struct {
	Section   string     `json:"section"`
	Command   string     `json:"command"`
	Started   time.Time  `json:"started"`
	Took      string     `json:"took"`
	LoadStart [3]float64 `json:"load_start"`
	LoadEnd   [3]float64 `json:"load_end"`
}

// has tells whether the report holds results of section.
func (r *Report) has(section string) bool {
	switch section {
	case "posix":
		return r.Posix != nil
	case "rss":
		return r.RSS != nil
	case "compaction":
		return r.Compaction != nil
	case "s3":
		return r.S3 != nil
	case "soak":
		return r.Soak != nil
	case "scale":
		return r.Scale != nil
	}
	return false
}

// Row is a line of the headline table.
type Row struct {
	What     string `json:"what"`
	Tierd    string `json:"tierd"`
	Baseline string `json:"baseline"`
	Ratio    string `json:"ratio"`
	Goal     string `json:"goal"`
	// Verdict is "met", "short" or "" (no goal); Keys are the checks it stands for.
	Verdict string   `json:"verdict"`
	Keys    []string `json:"keys"`
}

// collect gathers the checks of every section and builds the headline table.
func (r *Report) collect() {
	r.Checks = nil
	if r.Posix != nil {
		for _, s := range r.Posix.Sizes {
			r.Checks = append(r.Checks, s.Checks...)
		}
	}
	if r.RSS != nil {
		r.Checks = append(r.Checks, r.RSS.Checks...)
	}
	if r.Compaction != nil {
		for _, f := range r.Compaction.Fills {
			r.Checks = append(r.Checks, f.Checks...)
		}
	}
	if r.S3 != nil {
		for _, c := range r.S3.Configs {
			r.Checks = append(r.Checks, c.Checks...)
		}
	}
	if r.Soak != nil {
		r.Checks = append(r.Checks, r.Soak.Checks...)
	}
	if r.Scale != nil {
		for _, s := range r.Scale.Stores {
			r.Checks = append(r.Checks, s.Checks...)
		}
	}
	r.Headline = r.headline()
}

// verdict is "met" when every check of keys that exists is met, "short" when one is not,
// "" when none exists.
func (r *Report) verdict(keys ...string) string {
	v := ""
	for _, k := range keys {
		for _, c := range r.Checks {
			if c.Key != k {
				continue
			}
			if !c.Met {
				return "short"
			}
			v = "met"
		}
	}
	return v
}

func (r *Report) row(what, tierd, baseline, ratio, goal string, keys ...string) Row {
	return Row{What: what, Tierd: tierd, Baseline: baseline, Ratio: ratio, Goal: goal, Verdict: r.verdict(keys...), Keys: keys}
}

func mbps(x float64) string    { return fmt.Sprintf("%.0f MB/s", x) }
func mib(x float64) string     { return fmt.Sprintf("%.1f MiB", x/(1<<20)) }
func times(x float64) string   { return fmt.Sprintf("%.2f×", x) }
func seconds(x float64) string { return fmt.Sprintf("%.2f s", x) }

var baselineNames = map[string]string{
	"dd-direct": "dd O_DIRECT", "dd-fsync": "dd conv=fsync", "mc": "mc cp", "dd-read+write": "dd read + write",
}

func baselineName(n string) string {
	if b, ok := baselineNames[n]; ok {
		return b
	}
	return n
}

func find(rs []bench.Runs, name string) bench.Runs {
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	return bench.Runs{}
}

func (r *Report) headline() []Row {
	var rows []Row
	if r.Posix != nil {
		for _, s := range r.Posix.Sizes {
			sz := bench.FormatSize(s.Size)
			for _, m := range bench.PosixModes {
				t := find(s.Contenders, "tierd-"+m)
				b := find(s.Contenders, t.Baseline)
				goal := "≥ 0.90×"
				if m == "direct" {
					goal = "≥ 0.95×"
				}
				rows = append(rows, r.row(fmt.Sprintf("posix %s, %s", sz, m), mbps(t.MBps.Median), baselineName(b.Name)+" "+mbps(b.MBps.Median),
					times(t.Ratio), goal, "posix/"+sz+"/"+m+"/ratio"))
			}
			d, b := find(s.Contenders, "tierd-direct"), find(s.Contenders, "dd-direct")
			rows = append(rows, r.row(fmt.Sprintf("posix %s, direct: page cache left of source + destination", sz),
				mib(worstSum(d)), "dd O_DIRECT "+mib(worstSum(b)), "", "≤ 64 MiB", "posix/"+sz+"/cache"))
		}
	}
	if r.RSS != nil {
		for _, pool := range uniq(r.RSS.Runs, func(x bench.RSSRun) int64 { return x.Pool }) {
			for _, conc := range uniq(r.RSS.Runs, func(x bench.RSSRun) int { return x.Conc }) {
				var worst bench.RSSRun
				var keys []string
				for _, x := range r.RSS.Runs {
					if x.Pool == pool && x.Conc == conc {
						if x.MaxRSS > worst.MaxRSS {
							worst = x
						}
						keys = append(keys, fmt.Sprintf("rss/%s/%d/%s", bench.FormatSize(pool), conc, x.Mode))
					}
				}
				copies := "1 copy"
				if conc > 1 {
					copies = fmt.Sprintf("%d concurrent copies", conc)
				}
				rows = append(rows, r.row(fmt.Sprintf("posix peak RSS, pool %s, %s of %s (worst mode: %s)", bench.FormatSize(pool), copies, bench.FormatSize(r.RSS.Size), worst.Mode),
					mib(float64(worst.MaxRSS)), "", "", "≤ "+mib(float64(worst.Limit)), keys...))
			}
		}
	}
	if r.S3 != nil {
		for _, c := range r.S3.Configs {
			what := fmt.Sprintf("%s × %d", bench.FormatSize(c.Size), c.Conc)
			if c.Skipped != "" {
				rows = append(rows, Row{What: "S3 " + what, Tierd: "skipped: " + c.Skipped})
				continue
			}
			mc := find(c.Contenders, "mc")
			for _, d := range bench.S3Drivers {
				t := find(c.Contenders, "tierd-"+d)
				key := fmt.Sprintf("s3/%sx%d/%s", bench.FormatSize(c.Size), c.Conc, d)
				rows = append(rows, r.row(fmt.Sprintf("S3 %s, %s driver: throughput", what, d), mbps(t.MBps.Median), "mc "+mbps(mc.MBps.Median), times(t.Ratio), "≥ 1.20×", key+"/ratio"))
				rows = append(rows, r.row(fmt.Sprintf("S3 %s, %s driver: CPU per GiB", what, d), fmt.Sprintf("%.2f s", t.CPUPerGiB.Median), fmt.Sprintf("mc %.2f s", mc.CPUPerGiB.Median),
					times(t.CPUPerGiB.Median/mc.CPUPerGiB.Median), "≤ 1.00×", key+"/cpu"))
			}
			var worst bench.Runs
			var keys []string
			for _, d := range bench.S3Drivers {
				t := find(c.Contenders, "tierd-"+d)
				if t.MaxRSS.Max() > worst.MaxRSS.Max() {
					worst = t
				}
				keys = append(keys, fmt.Sprintf("s3/%sx%d/%s/rss", bench.FormatSize(c.Size), c.Conc, d))
			}
			rows = append(rows, r.row(fmt.Sprintf("S3 %s: peak RSS (worst driver: %s)", what, strings.TrimPrefix(worst.Name, "tierd-")), mib(worst.MaxRSS.Max()),
				"mc "+mib(mc.MaxRSS.Max()), "", "≤ "+mib(float64(r.S3.Pool+bench.RSSAllowance)), keys...))
		}
	}
	if r.Compaction != nil {
		var worstRSS float64
		var rssKeys []string
		for _, f := range r.Compaction.Fills {
			t, b := f.Contenders[0], f.Contenders[len(f.Contenders)-1]
			k := fmt.Sprintf("compaction/%d/", f.Fill)
			rows = append(rows, r.row(fmt.Sprintf("compaction, fill %d%%: time", f.Fill), seconds(t.Secs.Median), "dd read + write "+seconds(b.Secs.Median), times(t.Ratio), "≤ 1.50×", k+"ratio"))
			if f.Items > 0 {
				rows = append(rows, r.row(fmt.Sprintf("compaction, fill %d%%: size and lookups", f.Fill), fmt.Sprintf("%.2f B/item, ≤ %d reads/lookup", f.BytesPerItem, f.MaxReads),
					fmt.Sprintf("IndexFile %.1f B/item", float64(f.SrcSize)/float64(f.Items)), "", "≤ 18 B/item, ≤ 2 reads", k+"bytes", k+"reads"))
			}
			worstRSS = max(worstRSS, t.MaxRSS.Max())
			rssKeys = append(rssKeys, k+"rss")
		}
		rows = append(rows, r.row("compaction peak RSS (worst fill)", mib(worstRSS), "", "", "≤ "+mib(float64(r.Compaction.Pool+bench.CompactRSSAllowance)), rssKeys...))
	}
	if s := r.Soak; s != nil {
		naiveSlope, naivePeak := "not run", ""
		if n := s.Naive; n != nil {
			naiveSlope = fmt.Sprintf("naive %.0f MiB/round", n.Slope)
			naivePeak = "naive " + mib(float64(n.MaxRSS))
			if n.Stopped != "" {
				naivePeak += fmt.Sprintf(" (stopped after %.1f rounds)", n.Rounds)
			}
		}
		rows = append(rows, r.row(fmt.Sprintf("soak, %d × %d IndexFiles: RSS slope", s.Rounds, s.Workers), fmt.Sprintf("%.3f MiB/round", s.Tierd.Slope), naiveSlope, "", "≤ 0.5 MiB/round", "soak/slope", "soak/rounds"))
		rows = append(rows, r.row("soak: peak RSS", mib(float64(s.Tierd.MaxRSS)), naivePeak, "", "≤ "+mib(float64(s.Pool+bench.RSSAllowance)), "soak/peak"))
	}
	if s := r.Scale; s != nil {
		goal := "≤ " + mib(float64(s.Pool+bench.RSSAllowance))
		for _, x := range s.Stores {
			if len(x.Checks) == 0 {
				continue // failed before measuring
			}
			k := "scale/" + x.Name + "/"
			what := fmt.Sprintf("scale, %s files (%s)", thousands(x.Files), x.Name)
			rows = append(rows, r.row(what+": scan time", seconds(x.Scan.Secs.Median), "find "+seconds(x.Find.Secs.Median), times(x.ScanRatio), "≤ 3.00×", k+"scan"))
			peak := max(x.Scan.MaxRSS.Max(), float64(x.Once.MaxRSS), float64(x.Daemon.MaxRSS))
			rows = append(rows, r.row(what+": peak RSS of scan, run --once, idle daemon", fmt.Sprintf("%s, %s, %s", mib(x.Scan.MaxRSS.Max()), mib(float64(x.Once.MaxRSS)), mib(float64(x.Daemon.MaxRSS))),
				"", "", goal+" (largest "+mib(peak)+")", k+"scan-rss", k+"once-rss", k+"daemon-rss"))
			if x.Rsync.Skipped == "" {
				rows = append(rows, r.row(what+": small-segment offload", fmt.Sprintf("%.0f files/s", x.Once.Rate), fmt.Sprintf("rsync %.0f files/s", x.Rsync.Rate), times(x.Ratio), "≥ 0.50×", k+"offload"))
			}
		}
	}
	return rows
}

// worstSum is the largest source + destination residency of a contender's runs.
func worstSum(r bench.Runs) float64 {
	w := 0.0
	for i := range r.SrcResident.Runs {
		w = max(w, r.SrcResident.Runs[i]+r.DstResident.Runs[i])
	}
	return w
}

func uniq[T any, K comparable](xs []T, key func(T) K) []K {
	var out []K
	for _, x := range xs {
		if k := key(x); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// short returns the checks not met.
func (r *Report) short() []bench.Check {
	var out []bench.Check
	for _, c := range r.Checks {
		if !c.Met {
			out = append(out, c)
		}
	}
	return out
}
