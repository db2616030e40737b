package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/catalog"
)

func newLsCmd(g *globals) *cobra.Command {
	var tier string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List what the catalog says is on each tier",
		Long: `List what the catalog says is on each tier: each object's key, the version of its
local file it holds (v2 and later: the broker rewrote the file after it was offloaded,
e.g. Kafka's log cleaner), size, CRC-32C, when it was offloaded, and its state:
"superseded by vN" (a newer version exists; this one expires by the tier's
superseded_retain_for), "merged into REL vN" (Kafka's log cleaner merged the segment into
an earlier one and deleted it; the tiers keep its last version as retention says), or
nothing for a current version. --json prints the records with "version" and "state".`,
		Args: cobra.NoArgs,
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
			// Streamed: a catalog of a million records is never held whole.
			versions, err := a.newVersionView(cmd.Context())
			if err != nil {
				return err
			}
			var js *jsonStream
			var w *tabwriter.Writer
			if asJSON {
				js = newJSONStream(stdout)
				js.open('[')
			} else {
				w = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "TIER\tKEY\tVERSION\tSIZE\tCRC32C\tOFFLOADED\tSTATE")
			}
			var n int
			var total int64
			err = a.walkRecords(cmd.Context(), tier, func(r catalog.Record) error {
				state, err := versions.state(r, a.localExists)
				if err != nil {
					return err
				}
				n++
				total += r.Size
				if js != nil {
					return js.elem(lsEntry{Record: r, Ver: r.Ver(), State: state})
				}
				fmt.Fprintf(w, "%s\t%s\tv%d\t%d\t%08x\t%s\t%s\n", r.Tier, r.Key, r.Ver(), r.Size, r.CRC32C, r.OffloadedAt.Local().Format(time.DateTime), state)
				if n%lsFlushEvery == 0 {
					return w.Flush() // columns are aligned per block of lines
				}
				return nil
			})
			if err != nil {
				return err
			}
			if js != nil {
				js.close(']')
				return js.end()
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%d objects, %s\n", n, humanBytes(total))
			return nil
		},
	}
	cmd.Flags().StringVar(&tier, "tier", "", "only this tier")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// lsFlushEvery is how many lines ls aligns and writes at a time.
const lsFlushEvery = 1000

// lsEntry is one line of ls: a catalog record, its version and what became of it.
type lsEntry struct {
	catalog.Record
	Ver   int    `json:"version"`
	State string `json:"state"`
}
