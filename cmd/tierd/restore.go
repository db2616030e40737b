package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/compactor"
	"github.com/tierd/tierd/config"
	"github.com/tierd/tierd/daemon"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/segment"
)

func newRestoreCmd(g *globals) *cobra.Command {
	var to, tier string
	var force, whole bool
	var slots, items int
	cmd := &cobra.Command{
		Use:   "restore KEY --to DIR",
		Short: "Copy an object from a tier back to a local directory, verified by CRC-32C",
		Long: `Copy the object KEY (as "tierd ls" prints it) from a tier to DIR/<path of the segment in
its source>, e.g. KEY broker-a/rmq/commitlog/00000000000000000000 with --to /data/store
writes /data/store/commitlog/00000000000000000000. The file appears atomically, fsynced,
after its CRC-32C matched the tier's. Keys that would escape DIR are refused, and an
existing file is only replaced with --force. Without --tier, the first tier that holds
the key is used.

A compacted RocketMQ IndexFile (a key ending in .tix) is rehydrated: tierd writes the
IndexFile it was made from, under its own name (KEY without .tix), which answers every
lookup of the broker exactly as the original did (same items, same order, same header;
not the same bytes). Its geometry (maxHashSlotNum, maxIndexNum) is --slots/--items, else
the index_hash_slots/index_items of the config's source the key names, else the original
file's, which the compacted index records. It takes the buffer pool, 4 bytes a slot
(20 MB at the default 5,000,000 slots) and at most 2 MiB of memory, and reads the
compacted index 1 + 2 x ceil(items / window) times, the window being 349,525 items per
8 MiB pool buffer but one; an object on a tier other than posix is first copied into an
unlinked temp file under DIR, which nothing can leave behind.

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
			if slots < 0 || items < 0 {
				return usagef("--slots and --items must not be negative")
			}
			key, rel, err := parseUserKey(args[0])
			if err != nil {
				return err
			}
			if whole {
				if slots > 0 || items > 0 {
					return usagef("--slots and --items apply to compacted IndexFiles (keys ending in %s), not to --segment", segment.CompactedSuffix)
				}
				return restoreSegment(cmd.Context(), g, key, to, tier, force)
			}
			rel, compacted := strings.CutSuffix(rel, segment.CompactedSuffix)
			if !compacted && (slots > 0 || items > 0) {
				return usagef("--slots and --items apply to compacted IndexFiles (keys ending in %s) only", segment.CompactedSuffix)
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
			if compacted {
				return rehydrateObject(cmd.Context(), a, t, info, to, rel, slots, items)
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
	cmd.Flags().IntVar(&slots, "slots", 0, "rehydrated IndexFile's hash slots, maxHashSlotNum (.tix keys; default: the source's config, else the original's)")
	cmd.Flags().IntVar(&items, "items", 0, "rehydrated IndexFile's items, maxIndexNum (.tix keys; default: the source's config, else the original's)")
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

// rehydrateObject writes the RocketMQ IndexFile the compacted index info stands for into
// dir/rel through a posix writer (temp file, fsync, rename, fsync of the directory). A
// posix tier's object is read in place; any other tier's is first copied, its CRC-32C
// checked against the tier's, into an unlinked temp file under dir (nothing is left
// behind, even by a crash), as rehydration reads the object many times.
func rehydrateObject(ctx context.Context, a *app, t daemon.Tier, info segment.Info, dir, rel string, slots, items int) error {
	obj, err := t.Backend.Open(ctx, info.Key)
	if err != nil {
		return err
	}
	defer obj.Close()
	var src io.ReaderAt = obj
	if t.Type != "posix" {
		f, err := localCopy(ctx, a, obj, info, dir)
		if err != nil {
			return fmt.Errorf("restore %s: %w", info.Key, err)
		}
		defer f.Close()
		src = f
	}
	tx, err := index.OpenTix(src, info.Size)
	if err != nil {
		return fmt.Errorf("restore %s: %w", info.Key, err)
	}
	h := tx.Header()
	from := "the original's"
	if slots == 0 && items == 0 {
		_, source, _, _, _ := segment.ParseObjectKey(info.Key)
		if r := rocketMQSource(a.cfg, source); r != nil {
			slots, items, from = r.IndexHashSlots, r.IndexItems, fmt.Sprintf("source %s's config", source)
		}
	} else {
		from = "--slots/--items"
	}
	slots, items = orDefault(slots, h.SourceSlots), orDefault(items, h.SourceItems)
	local, err := posix.New(posix.Config{Path: dir, WriteMode: posix.Buffered}, a.log.Named("restore"))
	if err != nil {
		return err
	}
	var w segment.Writer
	res, err := compactor.Rehydrate(ctx, src, info.Size, compactor.RehydrateOptions{Slots: slots, Items: items, Pool: a.pool, MaxBuffers: a.pool.Capacity()},
		func(size int64) (segment.Writer, error) {
			w, err = local.Create(ctx, segment.Key(rel), size)
			return w, err
		})
	if err == nil {
		err = w.Commit(ctx)
	}
	if err != nil {
		if w != nil {
			_ = w.Abort()
		}
		if errors.Is(err, compactor.ErrGeometry) {
			return usagef("cannot restore %s with %d slots and %d items (%s): %v; the original had --slots %d --items %d", info.Key, slots, items, from, err, h.SourceSlots, h.SourceItems)
		}
		return fmt.Errorf("restore %s: %w", info.Key, err)
	}
	dst := filepath.Join(dir, filepath.FromSlash(rel))
	fmt.Fprintf(stdout, "%s:%s -> %s (rehydrated IndexFile: %d items, %d slots x %d items from %s, %s, crc32c %08x, %d passes in %.2fs)\n",
		t.Name, info.Key, dst, res.Entries, slots, items, from, humanBytes(res.Size), res.CRC32C, res.Passes, res.Time.Seconds())
	// The original's mtime, as the catalog recorded it: restored into the broker's store,
	// the file is then the version the tiers hold, not a change to offload again.
	if mtime, err := recordedModTime(ctx, a, t.Name, info.Key); err != nil {
		a.log.Warn("cannot read the catalog: the rehydrated file keeps the time it was written", zap.Error(err))
	} else if !mtime.IsZero() {
		if err := os.Chtimes(dst, mtime, mtime); err != nil {
			return fmt.Errorf("restore %s: set mtime: %w", info.Key, err)
		}
	}
	if slots != h.SourceSlots || items != h.SourceItems {
		fmt.Fprintf(stdout, "note: the original IndexFile had %d slots x %d items; the rehydrated one has the geometry of %s\n", h.SourceSlots, h.SourceItems, from)
	}
	return nil
}

// localCopy copies the object r into an unlinked temp file under dir, checking its
// CRC-32C against info's, through pool buffers (segment.Copy).
func localCopy(ctx context.Context, a *app, r segment.Reader, info segment.Info, dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create %q: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".tierd-tmp-rehydrate-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a temp file in %q: %w", dir, err)
	}
	// Unlinked at once: the data lives while f is open, and a crash leaves nothing.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot unlink %q: %w", f.Name(), err)
	}
	crc, err := segment.Copy(ctx, tempFile{f}, r, info.Size, a.pool)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("copy %s into %q: %w", info.Key, f.Name(), err)
	}
	if crc != info.CRC32C {
		f.Close()
		return nil, fmt.Errorf("CRC-32C of the bytes read (%08x) differs from the tier's (%08x): not restored", crc, info.CRC32C)
	}
	return f, nil
}

// recordedModTime returns the local file's mtime the catalog records for key on tier,
// zero if it has no record.
func recordedModTime(ctx context.Context, a *app, tier string, key segment.Key) (time.Time, error) {
	var mtime time.Time
	errFound := errors.New("found")
	err := a.walkRecords(ctx, tier, func(r catalog.Record) error {
		if r.Key != key {
			return nil
		}
		mtime = r.SegmentModTime
		return errFound
	})
	if err != nil && !errors.Is(err, errFound) {
		return time.Time{}, err
	}
	return mtime, nil
}

// tempFile is an unlinked temp file as a segment.Writer: there is nothing to commit or
// abort (closing it frees it).
type tempFile struct{ *os.File }

func (tempFile) Commit(context.Context) error { return nil }
func (tempFile) Abort() error                 { return nil }

// rocketMQSource returns the settings of the config's rocketmq source named name, or nil.
func rocketMQSource(cfg *config.Config, name string) *config.RocketMQSource {
	if cfg == nil {
		return nil
	}
	for _, s := range cfg.Sources {
		if s.Name == name {
			return s.RocketMQ
		}
	}
	return nil
}
