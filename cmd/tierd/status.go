package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/daemon"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Ask the running daemon (at http.listen) how it is doing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g)
			if err != nil {
				return err
			}
			if cfg.HTTP.Listen == "" {
				return usagef("http.listen is off in %s, so there is no daemon to ask", g.configPath)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+cfg.HTTP.Listen+"/status", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("no tierd answering at %s: %w", cfg.HTTP.Listen, err)
			}
			defer resp.Body.Close()
			var st daemon.Status
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
				return fmt.Errorf("status from %s: %w", cfg.HTTP.Listen, err)
			}
			if asJSON {
				return printJSON(st)
			}
			ready := "ready"
			if !st.Ready {
				ready = "NOT READY"
			}
			fmt.Fprintf(stdout, "node %s, tierd %s, up %s, %s\n", st.Node, st.Version, time.Since(st.Started).Round(time.Second), ready)
			for _, r := range st.Reasons {
				fmt.Fprintf(stdout, "  %s\n", r)
			}
			w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "SOURCE\tSEALED\tNOT SEALED\tSKIPPED\tLAST SCAN")
			for _, s := range st.Sources {
				fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\n", s.Name, s.Sealed, s.Unsealed, s.Skipped, s.LastScan.Local().Format(time.TimeOnly))
			}
			fmt.Fprintln(w, "TIER\tDUE\tLAG\tIN FLIGHT\tOFFLOADED\tSTATE")
			for _, t := range st.Tiers {
				state := "ok"
				switch {
				case t.Paused:
					state = fmt.Sprintf("paused (%.0f%% full)", 100*t.UsedRatio)
				case t.Failing:
					state = "failing: " + t.LastError
				}
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d (%s)\t%s\n", t.Name, t.Due, time.Duration(t.OldestDueSeconds*float64(time.Second)).Round(time.Second),
					t.InFlight, t.Segments, humanBytes(t.Bytes), state)
			}
			fmt.Fprintf(w, "pool\t%d of %d buffers of %s in use, %d waits\n", st.Pool.InUse, st.Pool.Buffers, humanBytes(st.Pool.BufferBytes), st.Pool.Waits)
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
