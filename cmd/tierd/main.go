// Command tierd is the tiered-storage offload sidecar: `tierd run` is the daemon, the other
// subcommands inspect and operate on what it did. See `tierd --help` and the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/internal/buildinfo"

	"github.com/tierd/tierd/config"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the operation failed
	exitUsage  = 2 // bad usage or configuration
	// exitUnreadable: verify could not read some objects (the store failed), but found no
	// object whose bytes differ from its record.
	exitUnreadable = 3
)

// unreadableError is verify's outcome when objects could not be read but none differed.
type unreadableError struct{ err error }

func (e unreadableError) Error() string { return e.err.Error() }
func (e unreadableError) Unwrap() error { return e.err }

// usageError marks errors that are the caller's: bad flags, arguments or config.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes the CLI and maps the outcome to an exit code.
func run(ctx context.Context, args []string) int {
	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(logOutput, "tierd:", err)
	var ue usageError
	var ce *config.Error
	if errors.As(err, &ue) || errors.As(err, &ce) || isCobraUsage(err) {
		return exitUsage
	}
	var re unreadableError
	if errors.As(err, &re) {
		return exitUnreadable
	}
	return exitFailed
}

// isCobraUsage recognises cobra's own argument and flag errors, which it does not type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument", "accepts ", "requires at least", "required flag"} {
		if len(msg) >= len(p) && contains(msg, p) {
			return true
		}
	}
	return false
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// globals are the persistent flags.
type globals struct {
	configPath string
	logLevel   string
	logFormat  string
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "tierd",
		Short: "Offload sealed broker segments to colder tiers with bounded memory",
		Long: `tierd runs next to a RocketMQ or Kafka broker, finds sealed commit-log, consume-queue
and index segments, and moves them to an HDD mount and/or S3-compatible object storage,
with every I/O buffer taken from one fixed pool.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(buildinfo.Get()), // --version
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetOut(stdout) // --version and help go where the commands print
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", defaultConfigPath(), "config file (env TIERD_CONFIG)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "override log.level (debug, info, warn, error)")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "", "override log.format (auto, json, console; auto = console when stderr is a terminal)")
	root.AddCommand(
		newRunCmd(g), newScanCmd(g), newMigrateCmd(g), newRestoreCmd(g), newCatCmd(g), newLsCmd(g),
		newVerifyCmd(g), newReconcileCmd(g), newCatalogCmd(g), newStatusCmd(g), newVersionCmd(), newDemoCmd(), newConfigCmd(g),
		newCompactCmd(g), newQueryCmd(g), newReapCmd(g), newKeygenCmd(), newRekeyCmd(g),
	)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	return root
}

func defaultConfigPath() string {
	if p := os.Getenv("TIERD_CONFIG"); p != "" {
		return p
	}
	return "/etc/tierd/tierd.yaml"
}
