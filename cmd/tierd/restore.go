package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/daemon"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/segment"
)

func newRestoreCmd(g *globals) *cobra.Command {
	var to, tier string
	var force, whole bool
	cmd := &cobra.Command{
		Use:   "restore KEY --to DIR",
		Short: "Copy an object from a tier back to a local directory, verified by CRC-32C",
		Long: `Copy the object KEY (as "tierd ls" prints it) from a tier to DIR/<path of the segment in
its source>, e.g. KEY broker-a/rmq/commitlog/00000000000000000000 with --to /data/store
writes /data/store/commitlog/00000000000000000000. The file appears atomically, fsynced,
after its CRC-32C matched the tier's. Keys that would escape DIR are refused, and an
existing file is only replaced with --force. Without --tier, the first tier that holds
the key is used.

With --segment, KEY is any file of a Kafka segment (its .log, say), and every file of
that segment the tiers hold is restored: the .log, .index, .timeindex, .txnindex and the
producer snapshots within it, each in the newest version the tiers hold. Every object is
found and every target checked before the first file is written, and files written
before a failure are removed again: the segment comes back whole or not at all.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usagef("--to is required")
			}
			key, rel, err := parseUserKey(args[0])
			if err != nil {
				return err
			}
			if whole {
				return restoreSegment(cmd.Context(), g, key, to, tier, force)
			}
			dst, err := segment.LocalPath(to, rel)
			if err != nil {
				return usagef("refusing to restore %s: %v", key, err)
			}
			if _, err := os.Lstat(dst); err == nil && !force {
				return usagef("%s exists; use --force to replace it", dst)
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
			crc, err := restoreObject(cmd.Context(), a, t, info, to, rel)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s:%s -> %s (%s, crc32c %08x)\n", t.Name, key, filepath.Clean(dst), humanBytes(info.Size), crc)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "directory to restore into (required)")
	cmd.Flags().StringVar(&tier, "tier", "", "tier to read from (default: the first that holds the key)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing file")
	cmd.Flags().BoolVar(&whole, "segment", false, "restore every file of the Kafka segment KEY belongs to")
	return cmd
}

// parseUserKey validates a key typed by a user and returns its path within its source.
func parseUserKey(s string) (segment.Key, string, error) {
	key, err := segment.ParseKey(s)
	if err != nil {
		return "", "", usagef("refusing key: %v", err)
	}
	_, _, rel, compacted, err := segment.ParseObjectKey(key)
	if err != nil {
		return "", "", usagef("refusing key %q: %v", s, err)
	}
	if compacted {
		rel += segment.CompactedSuffix
	}
	return key, rel, nil
}

// findObject finds the tier holding key (the named one, or the first that has it).
func (a *app) findObject(ctx context.Context, key segment.Key, tier string) (daemon.Tier, segment.Info, error) {
	tiers := a.tiers
	if tier != "" {
		t, err := a.tier(tier)
		if err != nil {
			return t, segment.Info{}, err
		}
		tiers = []daemon.Tier{t}
	}
	for _, t := range tiers {
		info, err := t.Backend.Stat(ctx, key)
		if errors.Is(err, segment.ErrNotFound) {
			continue
		}
		if err != nil {
			return t, info, fmt.Errorf("stat %s on %s: %w", key, t.Name, err)
		}
		return t, info, nil
	}
	return daemon.Tier{}, segment.Info{}, fmt.Errorf("%s: %w on any tier", key, segment.ErrNotFound)
}

// restoreObject copies an object into dir/rel through a posix writer (temp file, fsync,
// rename, fsync of the directory) and checks its CRC-32C against the tier's.
func restoreObject(ctx context.Context, a *app, t daemon.Tier, info segment.Info, dir, rel string) (uint32, error) {
	r, err := t.Backend.Open(ctx, info.Key)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	local, err := posix.New(posix.Config{Path: dir, WriteMode: posix.Buffered}, a.log.Named("restore"))
	if err != nil {
		return 0, err
	}
	w, err := local.Create(ctx, segment.Key(rel), info.Size)
	if err != nil {
		return 0, err
	}
	crc, err := segment.Copy(ctx, w, r, info.Size, a.pool)
	if err == nil && crc != info.CRC32C {
		err = fmt.Errorf("CRC-32C of the bytes read (%08x) differs from the tier's (%08x): not restored", crc, info.CRC32C)
	}
	if err == nil {
		err = w.Commit(ctx)
	}
	if err != nil {
		_ = w.Abort()
		return 0, fmt.Errorf("restore %s: %w", info.Key, err)
	}
	return crc, nil
}
