package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/config"
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
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: ok\n", g.configPath)
			return printJSON(cfg)
		},
	})
	return cmd
}
