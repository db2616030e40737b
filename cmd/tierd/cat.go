package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/segment"
)

func newCatCmd(g *globals) *cobra.Command {
	var tier string
	var offset, length int64
	cmd := &cobra.Command{
		Use:   "cat KEY",
		Short: "Write an object (or a range of it) from a tier to stdout",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, _, err := parseUserKey(args[0])
			if err != nil {
				return err
			}
			if offset < 0 {
				return usagef("--offset must not be negative")
			}
			a, err := openReader(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer a.close()
			t, info, err := a.findObject(cmd.Context(), key, tier)
			if err != nil {
				return err
			}
			if offset > info.Size {
				return usagef("--offset %d is past the end of %s (%d bytes)", offset, key, info.Size)
			}
			n := info.Size - offset
			if length >= 0 {
				n = min(n, length)
			}
			r, err := t.Backend.Open(cmd.Context(), key)
			if err != nil {
				return err
			}
			defer r.Close()
			return segment.Stream(cmd.Context(), r, offset, n, a.pool, func(p []byte) error {
				if _, err := stdout.Write(p); err != nil {
					return fmt.Errorf("write stdout: %w", err)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&tier, "tier", "", "tier to read from (default: the first that holds the key)")
	cmd.Flags().Int64Var(&offset, "offset", 0, "first byte")
	cmd.Flags().Int64Var(&length, "length", -1, "number of bytes (default: to the end)")
	return cmd
}
