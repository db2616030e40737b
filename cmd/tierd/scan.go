package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/daemon"
)

func newScanCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Dry run: what is sealed, what is not and why, and what each tier would get now",
		Long: `Dry run: what is sealed, what is not and why, and what each tier would get now. Exits
1 when a source cannot be scanned (its path is missing or does not look like its layout:
the report says why and what to change). The report is streamed as it is made (a store of
a million files is never held whole): per source its files not sealed yet and skipped,
then a summary line; per tier what would move, wait and expire, then a summary line.
--json prints {"sources": [{"name", "path", "unsealed", "skipped", "sealed", "error"}],
"tiers": [{"name", "present", "paused", "move", "later", "expire"}], "delete_local"};
arrays are never null. Scanning records what it saw of the local files in the catalog
(sealing needs two scans), as the daemon does; it changes nothing on the tiers or in the
broker's directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openReader(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer a.close()
			if a.cat == nil {
				return fmt.Errorf("scan needs the catalog, which a running tierd holds: see its /status, or stop it")
			}
			d, err := a.newDaemon(cmd.Context())
			if err != nil {
				return err
			}
			// The report is streamed (a store of a million files is never held whole).
			var failed func() []string
			var out interface {
				daemon.ScanOutput
				finish() error
			}
			if asJSON {
				o := newJSONScanOut(stdout)
				out, failed = o, func() []string { return o.failed }
			} else {
				o := newTextScanOut(stdout)
				out, failed = o, func() []string { return o.failed }
			}
			if err := d.ScanTo(cmd.Context(), out); err != nil {
				return err
			}
			if err := out.finish(); err != nil {
				return err
			}
			if f := failed(); len(f) > 0 {
				return fmt.Errorf("source %s could not be scanned (see its error above)", strings.Join(f, ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
