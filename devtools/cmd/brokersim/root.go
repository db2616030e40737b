package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// usageError marks bad flags or options: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// globalFlags are shared by every subcommand.
type globalFlags struct {
	json    bool
	verbose bool
}

func newRootCmd() *cobra.Command {
	var g globalFlags
	root := &cobra.Command{
		Use:   "brokersim",
		Short: "Write realistic RocketMQ stores and Kafka log dirs",
		Long: `brokersim writes broker data directories in the brokers' own formats: a RocketMQ
store (commit log, consume queues, IndexFiles, checkpoint, abort, config) or Kafka log
dirs (segments with offset and time indexes, checkpoints). Files are rolled and
preallocated as the brokers do; the last file of each sequence stays active. With --rate
it keeps appending (continuous mode) until --duration passes or SIGINT/SIGTERM.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q (want rocketmq or kafka)", args[0])}
			}
			return cmd.Help()
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print the summary as JSON")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log every file roll")
	root.AddCommand(newRocketMQCmd(&g), newKafkaCmd(&g))
	return root
}

// newLogger logs to stderr: info, or debug with --verbose.
func newLogger(g *globalFlags, w io.Writer) *zap.Logger {
	level := zapcore.InfoLevel
	if g.verbose {
		level = zapcore.DebugLevel
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout(time.TimeOnly)
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), level)
	return zap.New(core)
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
