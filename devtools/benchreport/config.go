package main

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tierd/tierd/devtools/bench"
	"github.com/tierd/tierd/index"
)

// config is what a report measures. A mode sets every field; flags change single ones.
type config struct {
	Mode     string   `json:"mode"`
	Sections []string `json:"sections"`

	PosixSizes []int64 `json:"posix_sizes"`
	PosixRuns  int     `json:"posix_runs"`

	RSSSize  int64   `json:"rss_size"`
	RSSPools []int64 `json:"rss_pools"`
	RSSConcs []int   `json:"rss_concs"`

	S3Sizes     []int64 `json:"s3_sizes"`
	S3Concs     []int   `json:"s3_concs"`
	S3MaxStored int64   `json:"s3_max_stored"`
	S3Runs      int     `json:"s3_runs"`

	Slots       int   `json:"slots"`
	Items       int   `json:"items"`
	Fills       []int `json:"fills"`
	CompactRuns int   `json:"compact_runs"`

	SoakRounds   int           `json:"soak_rounds"`
	SoakWorkers  int           `json:"soak_workers"`
	SoakDeadline time.Duration `json:"soak_deadline"`
	NaiveCeiling int64         `json:"naive_ceiling"`

	ScaleStores   []bench.ScaleStore `json:"scale_stores"`
	ScaleRuns     int                `json:"scale_runs"`
	ScaleBudget   time.Duration      `json:"scale_budget"`   // bounds run --once and rsync each
	ScaleInterval time.Duration      `json:"scale_interval"` // the idle daemon's scan_interval
	ScaleDaemon   time.Duration      `json:"scale_daemon"`   // bounds the idle daemon
}

var allSections = []string{"posix", "rss", "compaction", "s3", "soak", "scale"}

// preset returns the configuration of a mode: quick (about 5 minutes here: small files,
// few runs and soak rounds, 1/10-size IndexFiles), default (the sizes, under an
// hour on 2 cores) or full (more runs, and 16 concurrent 4 GiB uploads where the disk
// allows).
func preset(mode string) (config, error) {
	c := config{
		Mode: mode, Sections: allSections,
		PosixSizes: []int64{1 << 30, 4 << 30}, PosixRuns: 5,
		RSSSize: 1 << 30, RSSPools: []int64{16 << 20, 64 << 20}, RSSConcs: []int{1, 16},
		S3Sizes: []int64{1 << 30, 4 << 30}, S3Concs: []int{1, 16}, S3MaxStored: 16 << 30, S3Runs: 3,
		Slots: index.DefaultIndexSlots, Items: index.DefaultIndexItems, Fills: []int{1, 50, 100}, CompactRuns: 5,
		// 30 soak rounds (about 19 minutes here) leave room for the scale section in the hour.
		SoakRounds: 30, SoakWorkers: 8, SoakDeadline: 45 * time.Minute, NaiveCeiling: 6 << 30,
		ScaleStores: bench.DefaultScaleStores, ScaleRuns: 3, ScaleBudget: 90 * time.Second, ScaleInterval: 3 * time.Second, ScaleDaemon: 2 * time.Minute,
	}
	switch mode {
	case "default":
	case "quick":
		c.PosixSizes, c.PosixRuns = []int64{256 << 20}, 3
		c.RSSSize = 64 << 20
		c.S3Sizes, c.S3MaxStored, c.S3Runs = []int64{64 << 20}, 1<<30, 3
		c.Slots, c.Items, c.CompactRuns = index.DefaultIndexSlots/10, index.DefaultIndexItems/10, 3
		c.SoakRounds, c.SoakDeadline, c.NaiveCeiling = 10, 5*time.Minute, 2<<30
		c.ScaleStores = []bench.ScaleStore{
			{Layout: "kafka", Topics: 1, Partitions: 50, Segments: 7}, {Layout: "kafka", Topics: 1, Partitions: 300, Segments: 7},
			{Layout: "rocketmq", Topics: 2, Queues: 64, Messages: 5000},
		}
		c.ScaleRuns, c.ScaleBudget, c.ScaleInterval, c.ScaleDaemon = 1, 30*time.Second, time.Second, time.Minute
	case "full":
		c.PosixRuns, c.S3Runs, c.CompactRuns, c.ScaleRuns = 9, 5, 9, 5
		c.SoakRounds = 50
		c.ScaleBudget, c.ScaleDaemon = 10*time.Minute, 10*time.Minute
		c.S3MaxStored = 64 << 30
		c.SoakDeadline = time.Hour
	default:
		return c, fmt.Errorf("mode %q is not one of quick, default, full", mode)
	}
	return c, nil
}

// flagValue adapts a parse function to flag.Value.
type flagValue struct {
	show func() string
	set  func(string) error
}

func (f flagValue) String() string {
	if f.show == nil {
		return ""
	}
	return f.show()
}
func (f flagValue) Set(s string) error { return f.set(s) }

// overrides registers a flag for every field of config and returns a function applying
// those that were set to c.
func overrides(fs *flag.FlagSet) func(c *config) error {
	var sets []func(c *config) error
	add := func(name, usage string, apply func(c *config, v string) error) {
		fs.Var(flagValue{set: func(v string) error {
			sets = append(sets, func(c *config) error {
				if err := apply(c, v); err != nil {
					return fmt.Errorf("-%s: %w", name, err)
				}
				return nil
			})
			return nil
		}}, name, usage)
	}
	sizes := func(dst func(c *config) *[]int64) func(c *config, v string) error {
		return func(c *config, v string) (err error) { *dst(c), err = bench.ParseSizes(v); return err }
	}
	size := func(dst func(c *config) *int64) func(c *config, v string) error {
		return func(c *config, v string) (err error) { *dst(c), err = bench.ParseSize(v); return err }
	}
	ints := func(dst func(c *config) *[]int, lo int) func(c *config, v string) error {
		return func(c *config, v string) error {
			var out []int
			for f := range strings.SplitSeq(v, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(f))
				if err != nil || n < lo {
					return fmt.Errorf("bad number %q (want %d or more)", f, lo)
				}
				out = append(out, n)
			}
			*dst(c) = out
			return nil
		}
	}
	num := func(dst func(c *config) *int, lo int) func(c *config, v string) error {
		return func(c *config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < lo {
				return fmt.Errorf("bad number %q (want %d or more)", v, lo)
			}
			*dst(c) = n
			return nil
		}
	}
	add("sections", "comma-separated sections to run: "+strings.Join(allSections, ","), func(c *config, v string) error {
		var out []string
		for s := range strings.SplitSeq(v, ",") {
			if !slices.Contains(allSections, s) {
				return fmt.Errorf("unknown section %q (want some of %s)", s, strings.Join(allSections, ","))
			}
			out = append(out, s)
		}
		c.Sections = out
		return nil
	})
	add("runs", "runs of every measurement (posix, s3, compaction)", func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("bad number %q", v)
		}
		c.PosixRuns, c.S3Runs, c.CompactRuns = n, n, n
		return nil
	})
	add("posix-sizes", "posix copy sizes, e.g. 1GiB,4GiB", sizes(func(c *config) *[]int64 { return &c.PosixSizes }))
	add("posix-runs", "posix copy runs", num(func(c *config) *int { return &c.PosixRuns }, 1))
	add("rss-size", "file size of the concurrent-copy RSS runs", size(func(c *config) *int64 { return &c.RSSSize }))
	add("rss-concs", "concurrent copies of the RSS runs, e.g. 1,16", ints(func(c *config) *[]int { return &c.RSSConcs }, 1))
	add("s3-sizes", "S3 upload sizes", sizes(func(c *config) *[]int64 { return &c.S3Sizes }))
	add("s3-concs", "concurrent S3 uploads, e.g. 1,16", ints(func(c *config) *[]int { return &c.S3Concs }, 1))
	add("s3-max-stored", "skip S3 configurations storing more than this at once", size(func(c *config) *int64 { return &c.S3MaxStored }))
	add("s3-runs", "S3 runs", num(func(c *config) *int { return &c.S3Runs }, 1))
	add("slots", "IndexFile hash slots (compaction and soak)", num(func(c *config) *int { return &c.Slots }, 1))
	add("items", "IndexFile items (compaction and soak)", num(func(c *config) *int { return &c.Items }, 2))
	add("fills", "IndexFile fills in percent, e.g. 1,50,100", ints(func(c *config) *[]int { return &c.Fills }, 0))
	add("compact-runs", "compaction runs", num(func(c *config) *int { return &c.CompactRuns }, 1))
	add("soak-rounds", "soak rounds", num(func(c *config) *int { return &c.SoakRounds }, 1))
	add("soak-workers", "soak workers", num(func(c *config) *int { return &c.SoakWorkers }, 1))
	add("soak-deadline", "longest tierd soak", func(c *config, v string) (err error) { c.SoakDeadline, err = time.ParseDuration(v); return err })
	add("naive-ceiling", "memory the naive offloader may hold before it is stopped", size(func(c *config) *int64 { return &c.NaiveCeiling }))
	dur := func(dst func(c *config) *time.Duration) func(c *config, v string) error {
		return func(c *config, v string) (err error) {
			d, err := time.ParseDuration(v)
			if err == nil && d <= 0 {
				err = fmt.Errorf("%v is not positive", d)
			}
			*dst(c) = d
			return err
		}
	}
	add("scale-stores", "scale stores, e.g. kafka:1x500x7,rocketmq:10x1024x250000 (kafka:TOPICSxPARTITIONSxSEGMENTS, rocketmq:TOPICSxQUEUESxMESSAGES)", func(c *config, v string) error {
		var out []bench.ScaleStore
		for f := range strings.SplitSeq(v, ",") {
			st, err := bench.ParseScaleStore(strings.TrimSpace(f))
			if err != nil {
				return err
			}
			out = append(out, st)
		}
		c.ScaleStores = out
		return nil
	})
	add("scale-runs", "scan and find runs per scale store", num(func(c *config) *int { return &c.ScaleRuns }, 1))
	add("scale-budget", "longest run --once and rsync of a scale store (each is stopped then and its rate taken over what it copied)", dur(func(c *config) *time.Duration { return &c.ScaleBudget }))
	add("scale-interval", "scan_interval of the idle daemon of the scale section", dur(func(c *config) *time.Duration { return &c.ScaleInterval }))
	add("scale-daemon", "longest life of the idle daemon of the scale section", dur(func(c *config) *time.Duration { return &c.ScaleDaemon }))
	return func(c *config) error {
		for _, s := range sets {
			if err := s(c); err != nil {
				return err
			}
		}
		for _, f := range c.Fills {
			if f > 100 {
				return fmt.Errorf("-fills: %d%% is more than 100%%", f)
			}
		}
		return nil
	}
}

func (c config) has(section string) bool { return slices.Contains(c.Sections, section) }
