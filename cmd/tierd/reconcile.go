package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newReconcileCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Settle interrupted jobs and check the catalog against the tiers",
		Long: `Finish or roll back jobs a crash interrupted (from the intent journal), remove leftovers
of interrupted writes (posix temp files; S3 incomplete uploads older than reap_after),
and check every catalog record against its tier by Stat: records whose object is
missing or differs are dropped so the segment is offloaded again. Needs the catalog:
stop the daemon first (the daemon does this itself when it starts after a crash).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openApp(cmd.Context(), g, true)
			if err != nil {
				return err
			}
			defer a.close()
			d, err := a.newDaemon(cmd.Context())
			if err != nil {
				return err
			}
			if err := d.Begin(cmd.Context()); err != nil {
				return err
			}
			rep, err := d.Reconcile(cmd.Context())
			if err != nil {
				return err
			}
			if err := d.End(); err != nil {
				return err
			}
			if asJSON {
				return printJSON(rep)
			}
			fmt.Fprintf(stdout, "%d records checked, %d dropped\n", rep.Checked, len(rep.Dropped))
			for _, k := range rep.Dropped {
				fmt.Fprintf(stdout, "  dropped %s\n", k)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
