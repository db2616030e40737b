package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newLsCmd(g *globals) *cobra.Command {
	var tier string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List what the catalog says is on each tier",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openReader(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer a.close()
			if tier != "" {
				if _, err := a.tier(tier); err != nil {
					return err
				}
			}
			recs, err := a.records(cmd.Context(), tier)
			if err != nil {
				return err
			}
			if asJSON {
				if recs == nil {
					return printJSON([]any{})
				}
				return printJSON(recs)
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "TIER\tKEY\tSIZE\tCRC32C\tOFFLOADED")
			var total int64
			for _, r := range recs {
				fmt.Fprintf(w, "%s\t%s\t%d\t%08x\t%s\n", r.Tier, r.Key, r.Size, r.CRC32C, r.OffloadedAt.Local().Format(time.DateTime))
				total += r.Size
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%d objects, %s\n", len(recs), humanBytes(total))
			return nil
		},
	}
	cmd.Flags().StringVar(&tier, "tier", "", "only this tier")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
