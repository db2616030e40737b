package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/internal/buildinfo"
)

var timeNow = time.Now

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, the commit it was built from and the Go version",
		Long: `Print tierd's version, the VCS commit it was built from ("-modified" when the tree had
uncommitted changes; "unknown" for a build without VCS information, e.g. go run), and the
Go version, as --version does. --json prints {"version", "commit", "modified",
"commit_time", "go_version", "os", "arch"}; commit_time is RFC 3339 or "" when unknown.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Get()
			if asJSON {
				return printJSON(info)
			}
			_, err := fmt.Fprintln(stdout, versionLine(info))
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// versionLine is the one-line version: "tierd v1.2.3 (commit 0123abcd…, go1.26.0, linux/amd64)".
func versionLine(i buildinfo.Info) string {
	return fmt.Sprintf("tierd %s (commit %s, %s, %s/%s)", i.Version, i.CommitLabel(), i.GoVersion, i.OS, i.Arch)
}
