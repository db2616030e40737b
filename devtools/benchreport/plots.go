package main

import (
	"cmp"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/tierd/tierd/devtools/bench"
)

// drawPlots draws the report's plots into dir as files of format (svg or png) and returns
// their names by key. A section without results gets no plot; plots of an earlier run
// under the same names are removed.
func drawPlots(r *Report, dir, format string) (map[string]string, error) {
	out := map[string]string{}
	save := func(key string, p *plot.Plot, w, h vg.Length) error {
		name := key + "." + format
		if err := p.Save(w, h, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		out[key] = name
		return nil
	}
	for _, key := range []string{"posix-throughput", "posix-rss", "s3-throughput", "s3-cpu", "compaction", "soak-rss", "soak-tierd", "scale-rss", "scale-time"} {
		for _, ext := range []string{".svg", ".png"} {
			_ = os.Remove(filepath.Join(dir, key+ext))
		}
	}
	if r.Posix != nil && len(r.Posix.Sizes) > 0 {
		var groups []string
		for _, s := range r.Posix.Sizes {
			groups = append(groups, bench.FormatSize(s.Size))
		}
		var ss []series
		for _, c := range r.Posix.Sizes[0].Contenders {
			s := series{name: c.Name, baseline: !strings.HasPrefix(c.Name, "tierd")}
			for _, size := range r.Posix.Sizes {
				s.values = append(s.values, find(size.Contenders, c.Name).MBps.Median)
			}
			ss = append(ss, s)
		}
		p, err := groupedBars(fmt.Sprintf("posix tier: copy of a cold file (median of %d runs)", r.Posix.Runs), "MB/s", groups, ss, nil)
		if err != nil {
			return nil, err
		}
		if err := save("posix-throughput", p, 7*vg.Inch, 3.5*vg.Inch); err != nil {
			return nil, err
		}
	}
	if r.RSS != nil && len(r.RSS.Runs) > 0 {
		type cell struct {
			pool int64
			conc int
		}
		var groups []string
		var limits []float64
		var cells []cell
		for _, pool := range uniq(r.RSS.Runs, func(x bench.RSSRun) int64 { return x.Pool }) {
			for _, conc := range uniq(r.RSS.Runs, func(x bench.RSSRun) int { return x.Conc }) {
				groups = append(groups, fmt.Sprintf("pool %s, %d cop%s", bench.FormatSize(pool), conc, map[bool]string{true: "y", false: "ies"}[conc == 1]))
				limits = append(limits, bench.MiB(pool+bench.RSSAllowance))
				cells = append(cells, cell{pool, conc})
			}
		}
		var ss []series
		for _, m := range bench.PosixModes {
			s := series{name: m}
			for _, c := range cells {
				v := 0.0 // not measured
				for _, x := range r.RSS.Runs {
					if x.Mode == m && x.Pool == c.pool && x.Conc == c.conc {
						v = bench.MiB(x.MaxRSS)
					}
				}
				s.values = append(s.values, v)
			}
			ss = append(ss, s)
		}
		p, err := groupedBars(fmt.Sprintf("posix tier: peak RSS of one process copying %s files", bench.FormatSize(r.RSS.Size)), "MiB", groups, ss, limits)
		if err != nil {
			return nil, err
		}
		if err := save("posix-rss", p, 7*vg.Inch, 3.5*vg.Inch); err != nil {
			return nil, err
		}
	}
	if r.S3 != nil {
		var groups []string
		var cfgs []bench.S3Config
		for _, c := range r.S3.Configs {
			if c.Skipped == "" {
				groups = append(groups, fmt.Sprintf("%s × %d", bench.FormatSize(c.Size), c.Conc))
				cfgs = append(cfgs, c)
			}
		}
		if len(cfgs) > 0 {
			for _, kind := range []struct {
				key, title, unit string
				value            func(bench.Runs) float64
			}{
				{"s3-throughput", "S3 tier: upload of a cold file to MinIO (median of %d runs)", "MB/s", func(x bench.Runs) float64 { return x.MBps.Median }},
				{"s3-cpu", "S3 tier: uploader CPU per GiB (median of %d runs)", "CPU seconds per GiB", func(x bench.Runs) float64 { return x.CPUPerGiB.Median }},
			} {
				var ss []series
				for _, c := range cfgs[0].Contenders {
					s := series{name: c.Name, baseline: !strings.HasPrefix(c.Name, "tierd")}
					for _, cfg := range cfgs {
						s.values = append(s.values, kind.value(find(cfg.Contenders, c.Name)))
					}
					ss = append(ss, s)
				}
				p, err := groupedBars(fmt.Sprintf(kind.title, r.S3.Runs), kind.unit, groups, ss, nil)
				if err != nil {
					return nil, err
				}
				if err := save(kind.key, p, 7*vg.Inch, 3.5*vg.Inch); err != nil {
					return nil, err
				}
			}
		}
	}
	if r.Compaction != nil && len(r.Compaction.Fills) > 0 {
		var groups []string
		ss := []series{{name: "tierd compaction"}, {name: "dd read + write", baseline: true}}
		for _, f := range r.Compaction.Fills {
			groups = append(groups, fmt.Sprintf("fill %d%%", f.Fill))
			ss[0].values = append(ss[0].values, f.Contenders[0].Secs.Median)
			ss[1].values = append(ss[1].values, f.Contenders[len(f.Contenders)-1].Secs.Median)
		}
		p, err := groupedBars(fmt.Sprintf("compaction of a %.0f MB IndexFile (median of %d runs)", float64(r.Compaction.Fills[0].SrcSize)/1e6, r.Compaction.Runs), "seconds", groups, ss, nil)
		if err != nil {
			return nil, err
		}
		if err := save("compaction", p, 7*vg.Inch, 3.5*vg.Inch); err != nil {
			return nil, err
		}
	}
	if s := r.Soak; s != nil && len(s.Tierd.Samples) > 0 {
		p, err := soakPlot(s)
		if err != nil {
			return nil, err
		}
		if err := save("soak-rss", p, 7*vg.Inch, 4*vg.Inch); err != nil {
			return nil, err
		}
		if p, err = soakTierdPlot(s); err != nil {
			return nil, err
		}
		if err := save("soak-tierd", p, 7*vg.Inch, 3.5*vg.Inch); err != nil {
			return nil, err
		}
	}
	if sc := r.Scale; sc != nil {
		var measured []bench.ScaleRun
		for _, x := range sc.Stores {
			if len(x.Checks) > 0 {
				measured = append(measured, x)
			}
		}
		if len(measured) > 0 {
			p, err := scalePlot(measured, "scale: peak RSS against the number of files", "peak RSS, MiB", false, []scaleLine{
				{"tierd scan", func(x bench.ScaleRun) float64 { return bench.MiB(int64(x.Scan.MaxRSS.Max())) }},
				{"tierd run --once", func(x bench.ScaleRun) float64 { return bench.MiB(x.Once.MaxRSS) }},
				{"tierd run (idle daemon)", func(x bench.ScaleRun) float64 { return bench.MiB(x.Daemon.MaxRSS) }},
			}, bench.MiB(sc.Pool+bench.RSSAllowance))
			if err != nil {
				return nil, err
			}
			if err := save("scale-rss", p, 7*vg.Inch, 4*vg.Inch); err != nil {
				return nil, err
			}
			if p, err = scalePlot(measured, "scale: time against the number of files", "seconds (log scale)", true, []scaleLine{
				{"tierd scan (wall)", func(x bench.ScaleRun) float64 { return x.Scan.Secs.Median }},
				{"find -printf '%s %T@' (wall)", func(x bench.ScaleRun) float64 { return x.Find.Secs.Median }},
				{"idle daemon: CPU per scan", func(x bench.ScaleRun) float64 { return x.Daemon.CPUPerScan }},
			}, 0); err != nil {
				return nil, err
			}
			if err := save("scale-time", p, 7*vg.Inch, 4*vg.Inch); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// scaleLine is one measurement drawn against the stores' file counts.
type scaleLine struct {
	name  string
	value func(bench.ScaleRun) float64
}

// scalePlot draws lines over the stores' file counts (logarithmic x), the y axis
// logarithmic if logY, and a dashed goal line at goal if it is above 0.
func scalePlot(runs []bench.ScaleRun, title, ylabel string, logY bool, lines []scaleLine, goal float64) (*plot.Plot, error) {
	runs = slices.Clone(runs)
	slices.SortFunc(runs, func(a, b bench.ScaleRun) int { return cmp.Compare(a.Files, b.Files) })
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "files in the store (log scale)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Label.Text = ylabel
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	} else {
		p.Y.Min = 0
	}
	p.Legend.Top = true
	p.Legend.Left = true
	for i, l := range lines {
		var xys plotter.XYs
		for _, x := range runs {
			if v := l.value(x); v > 0 || !logY {
				xys = append(xys, plotter.XY{X: float64(x.Files), Y: v})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		line.Width = vg.Points(1.5)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(l.name, line, points)
	}
	if goal > 0 {
		lo, hi := float64(runs[0].Files), float64(runs[len(runs)-1].Files)
		g, err := lineOf(plotter.XYs{{X: lo, Y: goal}, {X: hi, Y: goal}}, color.RGBA{R: 200, A: 255}, true)
		if err != nil {
			return nil, err
		}
		p.Add(g)
		p.Legend.Add("goal: pool + 48 MiB", g)
		p.Y.Max = max(p.Y.Max, goal) * 1.3
	}
	return p, nil
}

// series is one contender's bar in every group.
type series struct {
	name     string
	values   []float64
	baseline bool
}

var baselineColors = []color.Color{color.Gray{Y: 96}, color.Gray{Y: 160}, color.Gray{Y: 200}}

// groupedBars draws one bar per series in each group; limits, if set, draw a dashed red
// line across each group at its value.
func groupedBars(title, ylabel string, groups []string, ss []series, limits []float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	p.Y.Padding = 0
	w := vg.Points(min(22, 380/float64(len(ss)*len(groups))))
	nt, nb := 0, 0
	for i, s := range ss {
		bars, err := plotter.NewBarChart(plotter.Values(s.values), w)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", title, err)
		}
		bars.Offset = vg.Length(float64(i)-float64(len(ss)-1)/2) * w
		bars.LineStyle.Width = 0
		if s.baseline {
			bars.Color = baselineColors[nb%len(baselineColors)]
			nb++
		} else {
			bars.Color = plotutil.Color(nt)
			nt++
		}
		p.Add(bars)
		p.Legend.Add(s.name, bars)
	}
	for g, l := range limits {
		line, err := plotter.NewLine(plotter.XYs{{X: float64(g) - 0.45, Y: l}, {X: float64(g) + 0.45, Y: l}})
		if err != nil {
			return nil, err
		}
		line.Color = color.RGBA{R: 200, A: 255}
		line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		line.Width = vg.Points(1.5)
		p.Add(line)
		if g == 0 {
			p.Legend.Add("goal: pool + 48 MiB", line)
		}
	}
	p.NominalX(groups...)
	p.Y.Max *= 1.25 // room for the legend
	return p, nil
}

func lineOf(xys plotter.XYs, c color.Color, dashed bool) (*plotter.Line, error) {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	return l, nil
}

// soakPlot draws both offloaders' RSS over time on a logarithmic scale, with tierd's
// goal and the naive offloader's ceiling.
func soakPlot(s *bench.SoakResult) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("soak: %d workers compacting and offloading %.0f MB IndexFiles, pool %s", s.Workers, float64(s.FileSize)/1e6, bench.FormatSize(s.Pool))
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = "RSS, MiB (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	end := s.Tierd.Secs
	runs := []*bench.SoakRun{&s.Tierd}
	if s.Naive != nil {
		runs = append(runs, s.Naive)
		end = max(end, s.Naive.Secs)
	}
	for i, run := range runs {
		var xys plotter.XYs
		for _, x := range run.Samples {
			xys = append(xys, plotter.XY{X: x.Secs, Y: bench.MiB(x.RSS)})
		}
		if len(xys) < 2 {
			continue
		}
		l, err := lineOf(xys, plotutil.Color(i), false)
		if err != nil {
			return nil, err
		}
		p.Add(l)
		label := "tierd"
		if run.Name == "naive" {
			label = "naive offloader (a fresh buffer per file, kept)"
			if run.Stopped != "" {
				label += ", stopped at its ceiling"
			}
		}
		p.Legend.Add(label, l)
	}
	goal, err := lineOf(plotter.XYs{{X: 0, Y: bench.MiB(s.Pool + bench.RSSAllowance)}, {X: end, Y: bench.MiB(s.Pool + bench.RSSAllowance)}}, color.RGBA{R: 200, A: 255}, true)
	if err != nil {
		return nil, err
	}
	p.Add(goal)
	p.Legend.Add("tierd's goal: pool + 48 MiB", goal)
	if s.Naive != nil {
		c, err := lineOf(plotter.XYs{{X: 0, Y: bench.MiB(s.Ceiling)}, {X: end, Y: bench.MiB(s.Ceiling)}}, color.Gray{Y: 128}, true)
		if err != nil {
			return nil, err
		}
		p.Add(c)
		p.Legend.Add("naive offloader's ceiling", c)
	}
	p.Y.Min = 8
	p.Y.Max = max(p.Y.Max*2, 1024)
	return p, nil
}

// soakTierdPlot draws tierd's RSS over rounds on a linear scale with the fitted slope and
// the goal.
func soakTierdPlot(s *bench.SoakResult) (*plot.Plot, error) {
	t := s.Tierd
	p := plot.New()
	p.Title.Text = fmt.Sprintf("soak: tierd's RSS over %.0f rounds (slope %.3f MiB/round from round %.0f)", t.Rounds, t.Slope, t.FitFrom)
	p.X.Label.Text = "rounds finished"
	p.Y.Label.Text = "RSS, MiB"
	p.Y.Min = 0
	var xys plotter.XYs
	var sx, sy float64
	var n int
	for _, x := range t.Samples {
		xys = append(xys, plotter.XY{X: x.Rounds, Y: bench.MiB(x.RSS)})
		if x.Rounds >= t.FitFrom {
			sx, sy, n = sx+x.Rounds, sy+bench.MiB(x.RSS), n+1
		}
	}
	l, err := lineOf(xys, plotutil.Color(0), false)
	if err != nil {
		return nil, err
	}
	l.StepStyle = plotter.NoStep
	p.Add(l)
	p.Legend.Add("tierd RSS (sampled every "+fmt.Sprint(s.Interval)+" s)", l)
	if t.SlopeOK && n > 0 {
		mx, my := sx/float64(n), sy/float64(n)
		fit, err := lineOf(plotter.XYs{{X: t.FitFrom, Y: my + t.Slope*(t.FitFrom-mx)}, {X: t.Rounds, Y: my + t.Slope*(t.Rounds-mx)}}, color.RGBA{B: 160, A: 255}, true)
		if err != nil {
			return nil, err
		}
		p.Add(fit)
		p.Legend.Add("least-squares fit", fit)
	}
	lim := bench.MiB(s.Pool + bench.RSSAllowance)
	goal, err := lineOf(plotter.XYs{{X: 0, Y: lim}, {X: t.Rounds, Y: lim}}, color.RGBA{R: 200, A: 255}, true)
	if err != nil {
		return nil, err
	}
	p.Add(goal)
	p.Legend.Add("goal: pool + 48 MiB", goal)
	p.Y.Max = max(p.Y.Max, lim) * 1.3
	p.Legend.Top, p.Legend.Left = false, false
	return p, nil
}
