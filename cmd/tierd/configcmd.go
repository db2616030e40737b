package main

import (
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
partition directory instead of the log.dir), with the fix. Exits 2 if anything is wrong.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g)
			if err != nil {
				return err
			}
			if err := checkSourcePaths(g.configPath, cfg); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: ok\n", g.configPath)
			return printJSON(cfg)
		},
	})
	return cmd
}

// checkSourcePaths reports every source whose path does not look like its layout
// (source.Recognize) as a configuration problem of file.
func checkSourcePaths(file string, cfg *config.Config) error {
	var problems []config.Problem
	for i, s := range cfg.Sources {
		if err := source.Recognize(string(s.Layout), s.Path); err != nil {
			problems = append(problems, config.Problem{Path: fmt.Sprintf("sources[%d].path", i), Msg: err.Error()})
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &config.Error{File: file, Problems: problems}
}
