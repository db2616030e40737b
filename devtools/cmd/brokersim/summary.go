package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/devtools/brokersim"
)

// printSummary prints what a run wrote: counts per file kind, or the summary as JSON.
func printSummary(cmd *cobra.Command, g *globalFlags, dir, what string, files []brokersim.File, sum any) error {
	w := cmd.OutOrStdout()
	if g.json {
		return printJSON(w, sum)
	}
	type count struct{ sealed, active int }
	var kinds []brokersim.FileKind
	counts := map[brokersim.FileKind]*count{}
	for _, f := range files {
		c := counts[f.Kind]
		if c == nil {
			c = &count{}
			counts[f.Kind] = c
			kinds = append(kinds, f.Kind)
		}
		if f.Active {
			c.active++
		} else {
			c.sealed++
		}
	}
	if _, err := fmt.Fprintf(w, "wrote %s to %s\n", what, dir); err != nil {
		return err
	}
	for _, k := range kinds {
		c := counts[k]
		var err error
		if k == brokersim.KindMeta {
			_, err = fmt.Fprintf(w, "  %-16s %d files\n", k, c.sealed)
		} else {
			_, err = fmt.Fprintf(w, "  %-16s %d sealed, %d active\n", k, c.sealed, c.active)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
