package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/config"
	"github.com/tierd/tierd/source"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check a config file, or print the annotated example"}
	cmd.AddCommand(&cobra.Command{
		Use:   "example",
		Short: "Print a config file with every key, its default and what it does",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := stdout.Write(config.Example)
			return err
		},
	}, &cobra.Command{
		Use:   "check",
		Short: "Validate the config file (every problem is listed with its field path); print the effective config",
		Long: `Validate the config file and print the effective config. Every problem is listed with
its field path, and so is every source whose path does not look like its layout (missing,
unreadable, a RocketMQ store's parent, a Kafka log.dir under a rocketmq source, one Kafka
partition directory instead of the log.dir), with the fix, and every source setting the
files disagree with (a RocketMQ store's commit-log, consume-queue or IndexFile sizes),
with the value that fits them. Exits 2 if anything is wrong.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g)
			if err != nil {
				return err
			}
			if err := checkSourcePaths(cmd.Context(), g.configPath, cfg); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: ok\n", g.configPath)
			return printJSON(cfg)
		},
	})
	return cmd
}

// checkSourcePaths reports every source whose path does not look like its layout
// (source.Recognize), and every source setting its files disagree with (a scan's skips
// that name an option: the file sizes of a RocketMQ store, with the value that fits), as
// a configuration problem of file.
func checkSourcePaths(ctx context.Context, file string, cfg *config.Config) error {
	var problems []config.Problem
	for i, s := range cfg.Sources {
		if err := source.Recognize(string(s.Layout), s.Path); err != nil {
			problems = append(problems, config.Problem{Path: fmt.Sprintf("sources[%d].path", i), Msg: err.Error()})
			continue
		}
		problems = append(problems, sourceSettingProblems(ctx, i, s)...)
	}
	if len(problems) == 0 {
		return nil
	}
	return &config.Error{File: file, Problems: problems}
}

// sourceSettingProblems scans source s (the i-th) and reports, per setting, the files
// that disagree with it: how many, and the first one's reason, which says what fits.
func sourceSettingProblems(ctx context.Context, i int, s config.Source) []config.Problem {
	src, err := buildSource(s)
	if err != nil {
		return []config.Problem{{Path: fmt.Sprintf("sources[%d]", i), Msg: err.Error()}}
	}
	res, err := src.Layout.Scan(ctx, src.Root)
	if err != nil {
		return []config.Problem{{Path: fmt.Sprintf("sources[%d].path", i), Msg: err.Error()}}
	}
	var order []string
	first, count := map[string]source.Skipped{}, map[string]int{}
	for _, sk := range res.Skipped {
		if sk.Option == "" {
			continue
		}
		if count[sk.Option] == 0 {
			order = append(order, sk.Option)
			first[sk.Option] = sk
		}
		count[sk.Option]++
	}
	var problems []config.Problem
	for _, opt := range order {
		sk := first[opt]
		files := "1 file disagrees"
		if n := count[opt]; n > 1 {
			files = fmt.Sprintf("%d files disagree, e.g.", n)
		}
		problems = append(problems, config.Problem{Path: fmt.Sprintf("sources[%d].%s", i, opt), Msg: fmt.Sprintf("%s %s: %s", files, sk.Path, sk.Reason)})
	}
	return problems
}
