package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCatalogCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "catalog", Short: "Maintain the catalog"}
	var tier string
	var asJSON bool
	rebuild := &cobra.Command{
		Use:   "rebuild --tier T",
		Short: "Rebuild the catalog from a tier's marker objects",
		Long: `Read every marker object of this node on the tier (<node>/_tierd/markers/...), check the
object each one names (size and CRC-32C by Stat), and record it in the catalog. A
replacement host with an empty state_dir gets the full picture back this way; run it once
per tier. Markers whose object is missing or differs are reported and skipped. Needs the
catalog: stop the daemon first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tier == "" {
				return usagef("--tier is required")
			}
			a, err := openApp(cmd.Context(), g, true)
			if err != nil {
				return err
			}
			defer a.close()
			t, err := a.tier(tier)
			if err != nil {
				return err
			}
			n, skipped, err := a.cat.Rebuild(cmd.Context(), tier, t.Backend)
			if err != nil {
				return err
			}
			if asJSON {
				reasons := make([]map[string]string, 0, len(skipped))
				for _, s := range skipped {
					reasons = append(reasons, map[string]string{"marker": string(s.Marker), "reason": s.Reason.Error()})
				}
				return printJSON(map[string]any{"tier": tier, "restored": n, "skipped": reasons})
			}
			fmt.Fprintf(stdout, "tier %s: %d records restored from markers, %d markers skipped\n", tier, n, len(skipped))
			for _, s := range skipped {
				fmt.Fprintf(stdout, "  skipped %s: %v\n", s.Marker, s.Reason)
			}
			return nil
		},
	}
	rebuild.Flags().StringVar(&tier, "tier", "", "tier to read markers from (required)")
	rebuild.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(rebuild)
	return cmd
}
