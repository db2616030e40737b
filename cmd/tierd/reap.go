package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newReapCmd(g *globals) *cobra.Command {
	var tier string
	var olderThan time.Duration
	cmd := &cobra.Command{
		Use:   "reap",
		Short: "Remove leftovers of interrupted writes: incomplete multipart uploads, temp files",
		Long: `Abort the incomplete S3 multipart uploads under this node's prefix and remove the posix
tiers' temp files, when older than --older-than (default: each S3 tier's reap_after; any
age for posix temp files). The daemon does the same at start. Safe while the daemon runs
only with an --older-than longer than any upload can take.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openReader(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer a.close()
			tiers := a.tiers
			if tier != "" {
				t, err := a.tier(tier)
				if err != nil {
					return err
				}
				tiers = tiers[:0:0]
				tiers = append(tiers, t)
			}
			for _, t := range tiers {
				if t.Cleanup == nil {
					continue
				}
				age := t.CleanupAge
				if cmd.Flags().Changed("older-than") {
					age = olderThan
				}
				n, err := t.Cleanup(cmd.Context(), age)
				if err != nil {
					return fmt.Errorf("tier %s: %w", t.Name, err)
				}
				fmt.Fprintf(stdout, "tier %s: %d leftovers older than %s removed\n", t.Name, n, age)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tier, "tier", "", "only this tier")
	cmd.Flags().DurationVar(&olderThan, "older-than", 0, "minimum age of what is removed (default: the tier's reap_after)")
	return cmd
}
