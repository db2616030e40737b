package main

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/devtools/brokersim"
)

//go:embed demo.yaml
var demoConfig string

func newDemoCmd() *cobra.Command {
	var dir string
	var messages int64
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Generate a small RocketMQ store, offload it to a local posix tier, show what moved",
		Long: `Generate a small RocketMQ store with brokersim in DIR/store, write DIR/tierd.yaml (the
embedded demo config: one posix tier in DIR/tier, state in DIR/state), run one pass of
the daemon, and list what moved where. Then try the other commands on the same config,
e.g. tierd -c DIR/tierd.yaml verify.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return usageError{err}
			}
			if ents, err := os.ReadDir(abs); err == nil && len(ents) > 0 {
				return usagef("%s is not empty: choose another --dir or remove it", abs)
			}
			sum, err := brokersim.RocketMQ(cmd.Context(), brokersim.RocketMQOptions{
				Dir: filepath.Join(abs, "store"), Topics: 2, Queues: 2, Messages: messages,
				CommitLogSize: 1 << 20, CQSize: 60000, IndexSlots: 1000, IndexItems: 4000,
				BodySize: 256, PreallocateNext: true,
			})
			if err != nil {
				return fmt.Errorf("generate store: %w", err)
			}
			fmt.Fprintf(stdout, "brokersim wrote %d messages into %s (%d files)\n", sum.Messages, sum.Dir, len(sum.Files))
			cfgPath := filepath.Join(abs, "tierd.yaml")
			if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(demoConfig, "${DEMO}", abs)), 0o644); err != nil {
				return err
			}
			g := &globals{configPath: cfgPath}
			a, err := openApp(cmd.Context(), g, true)
			if err != nil {
				return err
			}
			d, err := a.newDaemon(cmd.Context())
			if err != nil {
				a.close()
				return err
			}
			err = d.RunOnce(cmd.Context())
			recs, lerr := a.cat.List("")
			a.close()
			if err != nil {
				return err
			}
			if lerr != nil {
				return lerr
			}
			fmt.Fprintf(stdout, "tierd moved %d sealed segments to tier hdd (%s):\n", len(recs), filepath.Join(abs, "tier"))
			for _, r := range recs {
				fmt.Fprintf(stdout, "  %-48s -> %s (%s)\n", filepath.Join(sum.Dir, r.Rel), r.Key, humanBytes(r.Size))
			}
			fmt.Fprintf(stdout, "active files stayed where they are. Next:\n  tierd -c %s ls\n  tierd -c %s verify\n  tierd -c %s scan\n", cfgPath, cfgPath, cfgPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "tierd-demo", "empty directory for the demo")
	cmd.Flags().Int64Var(&messages, "messages", 20000, "messages to generate")
	return cmd
}
