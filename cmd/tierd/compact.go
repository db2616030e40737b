package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"go.uber.org/zap"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/compactor"
	"github.com/tierd/tierd/config"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/localfile"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/segment"
)

// compactReport is what `tierd compact --json` prints.
type compactReport struct {
	Input        string  `json:"input"`
	Output       string  `json:"output"`
	Items        int     `json:"items"`
	Bits         int     `json:"bits"`
	RecordBytes  int     `json:"record_bytes"`
	Size         int64   `json:"size"`
	CRC32C       string  `json:"crc32c"`
	BytesPerItem float64 `json:"bytes_per_item,omitempty"`
	InputSize    int64   `json:"input_size"`
	InputCRC32C  string  `json:"input_crc32c"`
	Passes       int     `json:"passes"`
	Seconds      float64 `json:"seconds"`
}

func newCompactCmd(g *globals) *cobra.Command {
	var out string
	var slots, items int
	var force, asJSON bool
	cmd := &cobra.Command{
		Use:   "compact INDEXFILE -o OUT",
		Short: "Compact a RocketMQ IndexFile into tierd's compacted index format (index/FORMAT.md)",
		Long: `Compact a sealed RocketMQ IndexFile into a local file in tierd's compacted index
format, as the daemon does before offloading one. OUT appears atomically (temp file, fsync,
rename) and is refused if it exists, unless --force. The IndexFile's geometry (--slots,
--items: the broker's maxHashSlotNum and maxIndexNum, which the file does not record)
defaults to that of the config's rocketmq source whose path holds the file
(index_hash_slots, index_items). A file that no source holds needs --slots and --items,
unless its size is that of the broker's defaults (5,000,000 and 20,000,000). A file
whose size does not fit the geometry is refused with the geometry its size and contents
fit, when an obvious one does, and the YAML or flags that say so. The buffer pool is the
config's (memory) or 64 MiB of 8 MiB buffers. A progress bar is shown when stderr is a
terminal.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("-o OUT is required")
			}
			if slots < 0 || items < 0 {
				return usagef("--slots and --items must not be negative")
			}
			cfg, err := optionalConfig(cmd, g)
			if err != nil {
				return err
			}
			geo := compactGeometry(cfg, g.configPath, args[0], slots, items)
			slots, items = geo.Slots, geo.Items
			outPath, err := filepath.Abs(out)
			if err != nil {
				return usagef("-o %s: %v", out, err)
			}
			if _, err := os.Lstat(outPath); err == nil && !force {
				return usagef("%s exists; use --force to replace it", outPath)
			}
			key, err := segment.ParseKey(filepath.Base(outPath))
			if err != nil {
				return usagef("-o %s: %v", out, err)
			}
			logCfg, memCfg := config.Log{Level: "warn", Format: "console"}, config.Memory{BufferPool: 64 * config.MiB, BufferSize: 8 * config.MiB}
			if cfg != nil {
				logCfg, memCfg = cfg.Log, cfg.Memory
			}
			log, err := newLogger(logCfg)
			if err != nil {
				return err
			}
			defer log.Sync()
			pool, err := bufpool.New(bufpool.Config{Budget: memCfg.BufferPool.Int64(), BufferSize: memCfg.BufferSize.Int64(), Lock: memCfg.Lock})
			if err != nil {
				return fmt.Errorf("memory: %w", err)
			}
			defer pool.Close()
			src, err := localfile.Open(cmd.Context(), args[0], localfile.ReadOptions{Direct: true, DropAtClose: true})
			if errors.Is(err, fs.ErrNotExist) {
				return usagef("%s does not exist", args[0])
			}
			if err != nil {
				return fmt.Errorf("open %s: %w", args[0], err)
			}
			defer src.Close()
			if err := geo.check(src, src.Size()); err != nil {
				return err
			}
			dst, err := posix.New(posix.Config{Path: filepath.Dir(outPath), WriteMode: posix.Direct}, log.Named("compact"))
			if err != nil {
				return err
			}
			var bar *mpb.Bar
			var progress *mpb.Progress
			if isTerminal(os.Stderr) {
				progress = mpb.NewWithContext(cmd.Context(), mpb.WithOutput(os.Stderr), mpb.WithWidth(40))
				bar = progress.AddBar(src.Size(),
					mpb.PrependDecorators(decor.Name(filepath.Base(args[0]), decor.WCSyncSpaceR)),
					mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f read"), decor.Name("  "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")))
			}
			var w segment.Writer
			start := time.Now()
			res, err := compactor.Compact(cmd.Context(), src, src.Size(), compactor.Options{
				Slots: slots, Items: items, Pool: pool, MaxBuffers: pool.Capacity(),
				Progress: func(done, total int64) {
					if bar != nil {
						bar.SetTotal(total, false)
						bar.SetCurrent(done)
					}
				},
			}, func(size int64) (segment.Writer, error) {
				var err error
				w, err = dst.Create(cmd.Context(), key, size)
				return w, err
			})
			if err == nil {
				err = w.Commit(cmd.Context())
			}
			if bar != nil {
				if err != nil {
					bar.Abort(false)
				} else {
					bar.SetTotal(-1, true)
				}
				progress.Wait()
			}
			if err != nil {
				if w != nil {
					_ = w.Abort()
				}
				if errors.Is(err, index.ErrCorruptIndex) {
					return usagef("%s is not an IndexFile of %d slots and %d items (--slots, --items): %v", args[0], slots, items, err)
				}
				return fmt.Errorf("compact %s: %w", args[0], err)
			}
			if err := pool.Check(); err != nil {
				log.Error("BUG: pool buffers not released", zap.Error(err))
			}
			rep := compactReport{
				Input: args[0], Output: outPath, Items: res.Entries, Bits: res.Header.Bits, RecordBytes: res.Header.RecordSize(),
				Size: res.Size, CRC32C: fmt.Sprintf("%08x", res.CRC32C), InputSize: res.LocalSize, InputCRC32C: fmt.Sprintf("%08x", res.LocalCRC32C),
				Passes: res.Passes, Seconds: time.Since(start).Seconds(),
			}
			if res.Entries > 0 {
				rep.BytesPerItem = float64(res.Size) / float64(res.Entries)
			}
			if asJSON {
				return printJSON(rep)
			}
			fmt.Fprintf(stdout, "%s -> %s: %d items, %s (%.2f B/item; %d buckets, %d-byte records), %d passes in %.2fs, crc32c %s\n",
				args[0], outPath, rep.Items, humanBytes(rep.Size), rep.BytesPerItem, res.Header.Buckets(), rep.RecordBytes, rep.Passes, rep.Seconds, rep.CRC32C)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "compacted file to write (required)")
	cmd.Flags().IntVar(&slots, "slots", 0, "the IndexFile's hash slots, maxHashSlotNum (default: config, else 5000000)")
	cmd.Flags().IntVar(&items, "items", 0, "the IndexFile's items, maxIndexNum (default: config, else 20000000)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing OUT")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// optionalConfig loads the config file for commands that can do without one: a missing
// file at the default path means none; a file given explicitly (--config, TIERD_CONFIG)
// must load.
func optionalConfig(cmd *cobra.Command, g *globals) (*config.Config, error) {
	explicit := cmd.Flags().Changed("config") || os.Getenv("TIERD_CONFIG") != ""
	if _, err := os.Stat(g.configPath); errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil, nil
	}
	return loadConfig(g)
}

// indexGeometry is the geometry compact uses for an IndexFile, and where it comes from.
type indexGeometry struct {
	index.Geometry
	path   string         // the IndexFile, as given
	source *config.Source // the rocketmq source whose path holds it, or nil
	index  int            // the source's index in the config
	flags  bool           // --slots or --items was given
	file   string         // the config file
}

// compactGeometry picks the geometry for the IndexFile at path: --slots/--items, else
// the config's rocketmq source whose path holds the file (the deepest, should sources
// nest), else the broker's defaults (which check then accepts only for a file of their
// size).
func compactGeometry(cfg *config.Config, cfgFile, path string, slots, items int) indexGeometry {
	g := indexGeometry{path: path, flags: slots > 0 || items > 0, file: cfgFile}
	if cfg != nil {
		g.source, g.index = holdingSource(cfg, path)
	}
	if g.source != nil {
		slots, items = orDefault(slots, g.source.RocketMQ.IndexHashSlots), orDefault(items, g.source.RocketMQ.IndexItems)
	}
	g.Slots, g.Items = orDefault(slots, index.DefaultIndexSlots), orDefault(items, index.DefaultIndexItems)
	return g
}

// holdingSource returns the rocketmq source of cfg whose path holds the file at path (the
// deepest one), and its index; nil if none does. Paths are compared absolute, with
// symbolic links resolved where they can be.
func holdingSource(cfg *config.Config, path string) (*config.Source, int) {
	resolve := func(p string) string {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return real
		}
		return p
	}
	file := resolve(path)
	var best *config.Source
	bestAt, bestLen := -1, -1
	for i := range cfg.Sources {
		s := &cfg.Sources[i]
		if s.RocketMQ == nil {
			continue
		}
		root := resolve(s.Path)
		rel, err := filepath.Rel(root, file)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		if len(root) > bestLen {
			best, bestAt, bestLen = s, i, len(root)
		}
	}
	return best, bestAt
}

// check refuses a file whose size does not fit the geometry, or that no source holds
// when no flag gave its geometry and its size is not the defaults', with the geometry its
// size and contents fit (index.GuessGeometry) and what to write to say so.
func (g indexGeometry) check(r io.ReaderAt, size int64) error {
	want := index.IndexFileSize(g.Slots, g.Items)
	if size == want {
		return nil
	}
	guesses, err := index.GuessGeometry(r, size)
	if err != nil {
		return fmt.Errorf("compact %s: %w", g.path, err)
	}
	fit := fmt.Sprintf("no obvious geometry fits its size (40 + 4 x slots + 20 x items = %d): check the broker's maxHashSlotNum and maxIndexNum", size)
	if len(guesses) > 0 {
		var alts []string
		for _, x := range guesses {
			alts = append(alts, fmt.Sprintf("%d slots and %d items", x.Slots, x.Items))
		}
		fit = "its size and contents fit " + strings.Join(alts, ", or ")
	}
	flags := "pass --slots S --items I"
	yaml := "index_hash_slots: S and index_items: I"
	if len(guesses) > 0 {
		flags = fmt.Sprintf("pass --slots %d --items %d", guesses[0].Slots, guesses[0].Items)
		yaml = fmt.Sprintf("index_hash_slots: %d and index_items: %d", guesses[0].Slots, guesses[0].Items)
	}
	switch {
	case g.flags:
		return usagef("%s is %d bytes, but --slots %d --items %d make %d (40 + 4 x slots + 20 x items): %s: %s",
			g.path, size, g.Slots, g.Items, want, fit, flags)
	case g.source != nil:
		return usagef("%s is %d bytes, but source %q has index_hash_slots %d and index_items %d, which make %d (40 + 4 x slots + 20 x items): %s: set %s in sources[%d] (%s) of %s, or %s",
			g.path, size, g.source.Name, g.Slots, g.Items, want, fit, yaml, g.index, g.source.Name, g.file, flags)
	}
	return usagef("%s is in no rocketmq source's path and is %d bytes, not the %d of the broker's default geometry (%d slots, %d items): give its geometry with --slots and --items (the broker's maxHashSlotNum and maxIndexNum): %s: %s",
		g.path, size, want, g.Slots, g.Items, fit, flags)
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
