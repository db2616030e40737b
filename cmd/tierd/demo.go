package main

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

//go:embed demo.yaml
var demoConfig string

// demoStoreCommand generates the store the demo config fits (demo.yaml's geometry); make
// demo runs it before tierd demo.
const demoStoreCommand = "go run ./devtools/cmd/brokersim rocketmq --dir DIR/store --topics 2 --queues 2 --messages 20000 " +
	"--commitlog-size 1MiB --cq-size 60000 --index-slots 1000 --index-items 4000 --body-size 256 --preallocate-next"

func newDemoCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Offload a small generated RocketMQ store to a local posix tier, show what moved",
		Long: `Offload the RocketMQ store in DIR/store to a local posix tier: write DIR/tierd.yaml (the
embedded demo config: one posix tier in DIR/tier, state in DIR/state), run one pass of
the daemon, and list what moved where. Then try the other commands on the same config,
e.g. tierd -c DIR/tierd.yaml verify.

DIR/store is made by the broker simulator with the demo config's file sizes; make demo
runs it first:

  ` + demoStoreCommand,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return usageError{err}
			}
			store := filepath.Join(abs, "store")
			if fi, err := os.Stat(filepath.Join(store, "commitlog")); err != nil || !fi.IsDir() {
				return usagef("%s holds no RocketMQ store: generate one with\n  %s\n(make demo does)", store, strings.ReplaceAll(demoStoreCommand, "DIR", dir))
			}
			for _, name := range []string{"tierd.yaml", "state", "tier"} {
				if _, err := os.Lstat(filepath.Join(abs, name)); !errors.Is(err, fs.ErrNotExist) {
					return usagef("%s already exists: the demo runs once per directory; remove %s and generate the store again (make demo does both)", filepath.Join(abs, name), abs)
				}
			}
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
				fmt.Fprintf(stdout, "  %-48s -> %s (%s)\n", filepath.Join(store, r.Rel), r.Key, humanBytes(r.Size))
			}
			fmt.Fprintf(stdout, "active files stayed where they are. Next:\n  tierd -c %s ls\n  tierd -c %s verify\n  tierd -c %s scan\n", cfgPath, cfgPath, cfgPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "tierd-demo", "directory holding the generated store (DIR/store)")
	return cmd
}
