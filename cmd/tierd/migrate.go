package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/tierd/tierd/daemon"
	"github.com/tierd/tierd/segment"
)

func newMigrateCmd(g *globals) *cobra.Command {
	var tier string
	cmd := &cobra.Command{
		Use:   "migrate PATH... --tier T",
		Short: "Offload chosen segments to a tier now (journaled and verified like the daemon's jobs)",
		Long: `Offload the given local segment files to a tier now, whatever offload_after says.
Each file must be a segment of a configured source that the broker has finished writing;
active files are refused. Segments already on the tier are left alone. A progress bar
is shown when stderr is a terminal. Needs the catalog: stop the daemon first.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, paths []string) error {
			if tier == "" {
				return usagef("--tier is required")
			}
			a, err := openApp(cmd.Context(), g, true)
			if err != nil {
				return err
			}
			defer a.close()
			if _, err := a.tier(tier); err != nil {
				return err
			}
			d, err := a.newDaemon(cmd.Context())
			if err != nil {
				return err
			}
			var segs []segment.Segment
			for _, p := range paths {
				seg, err := d.Resolve(cmd.Context(), p)
				if err != nil {
					return usageError{err}
				}
				segs = append(segs, seg)
			}
			if err := d.Begin(cmd.Context()); err != nil {
				return err
			}
			var progress *mpb.Progress
			if isTerminal(os.Stderr) {
				progress = mpb.NewWithContext(cmd.Context(), mpb.WithOutput(os.Stderr), mpb.WithWidth(40))
			}
			var failed []error
			for _, seg := range segs {
				var report func(int64)
				var bar *mpb.Bar
				if progress != nil {
					bar = progress.AddBar(seg.Size,
						mpb.PrependDecorators(decor.Name(seg.Rel, decor.WCSyncSpaceR)),
						mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"), decor.Name("  "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")))
					report = bar.IncrInt64
				}
				rec, err := d.Migrate(cmd.Context(), seg, tier, report)
				if bar != nil {
					if err != nil {
						bar.Abort(false)
					} else {
						bar.SetTotal(-1, true)
					}
				}
				switch {
				case errors.Is(err, daemon.ErrAlreadyThere):
					fmt.Fprintf(stdout, "%s: already on %s as %s\n", seg.Path, tier, rec.Key)
				case err != nil:
					failed = append(failed, fmt.Errorf("%s: %w", seg.Path, err))
				default:
					fmt.Fprintf(stdout, "%s -> %s:%s (%s, crc32c %08x)\n", seg.Path, tier, rec.Key, humanBytes(rec.Size), rec.CRC32C)
				}
			}
			if progress != nil {
				progress.Wait()
			}
			if err := d.End(); err != nil {
				failed = append(failed, err)
			}
			return errors.Join(failed...)
		},
	}
	cmd.Flags().StringVar(&tier, "tier", "", "tier to offload to (required)")
	return cmd
}
