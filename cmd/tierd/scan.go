package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newScanCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Dry run: what is sealed, what is not and why, and what each tier would get now",
		Long: `Dry run: what is sealed, what is not and why, and what each tier would get now. Exits
1 when a source cannot be scanned (its path is missing or does not look like its layout:
the report says why and what to change).`,
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
			rep, err := d.Scan(cmd.Context())
			if err != nil {
				return err
			}
			var failed []string
			for _, s := range rep.Sources {
				if s.Error != "" {
					failed = append(failed, s.Name)
				}
			}
			if len(failed) > 0 {
				err = fmt.Errorf("source %s could not be scanned (see its error above)", strings.Join(failed, ", "))
			}
			if asJSON {
				return errors.Join(printJSON(rep), err)
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			for _, s := range rep.Sources {
				fmt.Fprintf(w, "source %s (%s): %d sealed, %d not sealed, %d skipped, %d changed since offload\n", s.Name, s.Root, len(s.Sealed), len(s.Unsealed), len(s.Skipped), len(s.Changed))
				if s.Error != "" {
					fmt.Fprintf(w, "  error: %s\n", s.Error)
				}
				for _, c := range s.Changed {
					fmt.Fprintf(w, "  changed\t%s\t%s\n", c.Rel, c.Why)
				}
				for _, p := range s.Unsealed {
					fmt.Fprintf(w, "  not sealed\t%s\t%s\n", p.Rel, p.Why)
				}
				for _, sk := range s.Skipped {
					fmt.Fprintf(w, "  skipped\t%s\t%s\n", sk.Path, sk.Reason)
				}
			}
			for _, t := range rep.Tiers {
				state := ""
				if t.Paused {
					state = " (paused: filesystem too full)"
				}
				fmt.Fprintf(w, "tier %s%s: %d to move now, %d later, %d to expire, %d already there\n", t.Name, state, len(t.Move), len(t.Later), len(t.Expire), t.Present)
				for _, p := range t.Move {
					fmt.Fprintf(w, "  move\t%s\n", p)
				}
				for _, l := range t.Later {
					fmt.Fprintf(w, "  later\t%s\tdue %s\n", l.Path, l.Due.Format(time.RFC3339))
				}
				for _, e := range t.Expire {
					fmt.Fprintf(w, "  expire\t%s\n", e)
				}
			}
			if len(rep.DeleteLocal) > 0 {
				fmt.Fprintf(w, "local: %d to delete (local.delete_after; every required tier holds a verified copy)\n", len(rep.DeleteLocal))
				for _, p := range rep.DeleteLocal {
					fmt.Fprintf(w, "  delete\t%s\n", p)
				}
			}
			return errors.Join(w.Flush(), err)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
