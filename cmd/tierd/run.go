package main

import (
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tierd/tierd/internal/buildinfo"
)

func newRunCmd(g *globals) *cobra.Command {
	var once bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: offload sealed segments as they become due",
		Long: `Run the daemon. It scans the sources every scan_interval, offloads sealed segments
to each tier once offload_after has passed, and serves /healthz, /readyz, /status and
/metrics on http.listen. SIGTERM or SIGINT stops it: no new jobs start, jobs in flight
get shutdown_timeout to finish, and it exits 0.

With --once it makes one full pass (scanning twice, as sealing needs) and exits: 0 when
every sealed segment due on a tier is there, 1 otherwise.`,
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
			if once {
				return d.RunOnce(cmd.Context())
			}
			a.log.Info("tierd starting", zap.String("version", buildinfo.Get().Version), zap.String("commit", buildinfo.Get().CommitLabel()), zap.String("node", a.cfg.Node),
				zap.Int("sources", len(a.srcs)), zap.Int("tiers", len(a.tiers)),
				zap.Int64("buffer_pool", a.cfg.Memory.BufferPool.Int64()), zap.Int64("buffer_size", a.cfg.Memory.BufferSize.Int64()))
			err = d.Run(cmd.Context())
			a.log.Info("tierd stopped", zap.Error(err))
			return err
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "make one pass and exit")
	return cmd
}
