package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/codec"
	"github.com/tierd/tierd/config"
	"github.com/tierd/tierd/daemon"
	"github.com/tierd/tierd/internal/buildinfo"
	"github.com/tierd/tierd/internal/pacing"
	"github.com/tierd/tierd/internal/throttle"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/s3"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/source"
)

// app is a loaded configuration with the objects built from it. Everything a subcommand
// needs is built here, in one place, with an explicit switch per tier type.
type app struct {
	cfg  *config.Config
	log  *zap.Logger
	pool *bufpool.Pool
	// codecs serves every tier with compression or encryption; nil if none has either.
	codecs *codec.Codecs
	// codecTiers are those tiers' codec wrappers, by tier name (for rekey).
	codecTiers map[string]*codec.Backend
	tiers      []daemon.Tier
	srcs       []daemon.Source
	cat        *catalog.Catalog

	uploads uploadHook
}

// uploadHook forwards S3 upload ids to the daemon once it exists (tiers are built first).
type uploadHook struct {
	mu sync.Mutex
	fn func(tier string, key segment.Key, uploadID string)
}

func (h *uploadHook) notify(tier string, key segment.Key, id string) {
	h.mu.Lock()
	fn := h.fn
	h.mu.Unlock()
	if fn != nil {
		fn(tier, key, id)
	}
}

// loadConfig reads and validates the config file; problems are usage errors (exit 2).
func loadConfig(g *globals) (*config.Config, error) {
	cfg, err := config.Load(g.configPath)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, usageError{err}
	}
	if g.logLevel != "" {
		cfg.Log.Level = g.logLevel
	}
	if g.logFormat != "" {
		if !slices.Contains([]string{"auto", "json", "console"}, g.logFormat) {
			return nil, usagef("--log-format %q: want auto, json or console", g.logFormat)
		}
		cfg.Log.Format = g.logFormat
	}
	return cfg, nil
}

// newLogger builds the zap logger log: configures, writing to logOutput.
func newLogger(c config.Log) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, usagef("log level %q: %v", c.Level, err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	if logFormat(c.Format, logOutput) == "console" {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	} else {
		encoder = zapcore.NewJSONEncoder(enc)
	}
	core := dropEmpty{zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(logOutput)), level)}
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(logOutput)))), nil
}

// openApp builds the pool, tiers and sources. withCatalog also opens the catalog (which
// locks state_dir: only one process at a time).
func openApp(ctx context.Context, g *globals, withCatalog bool) (*app, error) {
	cfg, err := loadConfig(g)
	if err != nil {
		return nil, err
	}
	log, err := newLogger(cfg.Log)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()
	a.pool, err = bufpool.New(bufpool.Config{Budget: cfg.Memory.BufferPool.Int64(), BufferSize: cfg.Memory.BufferSize.Int64(), Lock: cfg.Memory.Lock})
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	for _, s := range cfg.Sources {
		src, err := buildSource(s)
		if err != nil {
			return nil, err
		}
		a.srcs = append(a.srcs, src)
	}
	if withCatalog {
		a.cat, err = catalog.Open(cfg.StateDir, cfg.Node, log)
		if err != nil {
			return nil, err
		}
	}
	for _, t := range cfg.Tiers {
		tier, err := a.buildTier(ctx, t)
		if err != nil {
			return nil, err
		}
		a.tiers = append(a.tiers, tier)
	}
	ok = true
	return a, nil
}

func buildSource(s config.Source) (daemon.Source, error) {
	opts := source.LayoutOptions{Source: s.Name}
	if r := s.RocketMQ; r != nil {
		opts.CommitLogFileSize = r.CommitLogFileSize.Int64()
		opts.ConsumeQueueFileSize = r.ConsumeQueueFileSize.Int64()
		opts.IndexHashSlots = int64(r.IndexHashSlots)
		opts.IndexItems = int64(r.IndexItems)
	}
	layout, err := source.NewLayout(string(s.Layout), opts)
	if err != nil {
		return daemon.Source{}, usagef("source %s: %v", s.Name, err)
	}
	root, err := filepath.Abs(s.Path)
	if err != nil {
		return daemon.Source{}, usagef("source %s: %v", s.Name, err)
	}
	src := daemon.Source{Name: s.Name, Root: root, Layout: layout, SealGrace: s.SealGrace.Std(), ReadDirect: s.ReadMode == config.ReadDirect}
	if r := s.RocketMQ; r != nil {
		src.IndexSlots, src.IndexItems = r.IndexHashSlots, r.IndexItems
	}
	return src, nil
}

func (a *app) buildTier(ctx context.Context, t config.Tier) (daemon.Tier, error) {
	tier := daemon.Tier{Name: t.Name, Type: string(t.Type), OffloadAfter: t.OffloadAfter.Std(), Concurrency: t.Concurrency,
		RetainFor: orZero(t.RetainFor), MaxBytes: t.MaxBytes.Int64(), SupersededRetainFor: t.SupersededRetainFor.Std()}
	if t.SupersededRetainFor.IsNever() {
		tier.SupersededRetainFor = -1
	}
	switch t.Type {
	case config.TierPosix:
		be, err := posix.New(posix.Config{Path: t.Posix.Path, WriteMode: posix.Mode(t.Posix.WriteMode)}, a.log.Named("posix").With(zap.String("tier", t.Name)))
		if err != nil {
			return tier, fmt.Errorf("tier %s: %w", t.Name, err)
		}
		tier.Backend = be
		tier.MaxUsed = t.Posix.MaxUsed.Fraction()
		tier.Usage = be.Usage
		tier.Cleanup = be.CleanTemp
		tier.CleanupAge = 0 // temp files of a dead process: any age
		if !t.RateLimit.IsUnlimited() {
			tier.Backend = throttle.Backend(be, throttle.NewRateLimiter(int64(t.RateLimit)))
		}
	case config.TierS3:
		c := t.S3
		name := t.Name
		be, err := s3.New(ctx, s3.Config{
			Driver: string(c.Driver), Endpoint: c.Endpoint, Region: c.Region, Bucket: c.Bucket, Prefix: c.Prefix,
			PathStyle: c.UsePathStyle(), AccessKey: c.AccessKey.Reveal(), SecretKey: c.SecretKey.Reveal(),
			SessionToken: c.SessionToken.Reveal(), CAFile: c.CAFile, SSE: string(c.SSE), SSEKMSKeyID: c.SSEKMSKeyID,
			PartSize: c.PartSize.Int64(), PartConcurrency: c.PartConcurrency, ReapAfter: c.ReapAfter.Std(),
			RateLimit: rateOrZero(t.RateLimit), Concurrency: t.Concurrency,
			RequestTimeout: c.RequestTimeout.Std(), MinTransferRate: int64(c.MinTransferRate),
			OnUpload: func(key segment.Key, id string) { a.uploads.notify(name, key, id) },
		}, a.cfg.Node, a.pool, a.log.Named("s3").With(zap.String("tier", t.Name)))
		if err != nil {
			return tier, fmt.Errorf("tier %s: %w", t.Name, err)
		}
		tier.Backend = be
		tier.Cleanup = be.Reap
		tier.CleanupAge = c.ReapAfter.Std()
		tier.AbortUpload = be.AbortUpload
		if a.cat != nil {
			holder, err := a.holder()
			if err != nil {
				return tier, err
			}
			tier.Fence = be.Lease(a.cfg.Node, holder, s3.DefaultLeaseTTL)
		}
	default:
		return tier, usagef("tier %s: unknown type %q", t.Name, t.Type)
	}
	if t.Codec() {
		be, err := a.wrapCodec(t, tier.Backend)
		if err != nil {
			return tier, err
		}
		tier.Backend = be
	}
	return tier, nil
}

// wrapCodec wraps a tier's backend in package codec: every command reads and writes the
// tier's objects through it, so they all see the plaintext.
func (a *app) wrapCodec(t config.Tier, inner segment.Backend) (*codec.Backend, error) {
	if a.codecs == nil {
		m := a.cfg.Memory
		c, err := codec.NewCodecs(codec.CodecsConfig{Encoders: m.Codecs, Decoders: m.Codecs, Pool: a.pool})
		if err != nil {
			return nil, fmt.Errorf("memory.codecs: %w", err)
		}
		a.codecs = c
		a.codecTiers = map[string]*codec.Backend{}
	}
	cfg := codec.Config{Compression: codec.CompressNone}
	if t.Compression == config.CompressionZstd {
		cfg.Compression = codec.CompressZstd
	}
	if f := t.Encryption.KeyFile; f != "" {
		keys, err := codec.LoadKeyFile(f)
		if err != nil {
			return nil, usagef("tier %s: encryption.key_file: %v", t.Name, err)
		}
		cfg.Keys = keys
		if fi, err := os.Stat(f); err == nil && fi.Mode().Perm()&0o077 != 0 {
			a.log.Warn("key file is readable by other users: chmod 600 it", zap.String("tier", t.Name), zap.String("key_file", f), zap.Stringer("mode", fi.Mode().Perm()))
		}
	}
	be := codec.New(inner, cfg, a.codecs, a.log.Named("codec").With(zap.String("tier", t.Name)))
	a.codecTiers[t.Name] = be
	return be, nil
}

// holder names this installation as a lease holder: its state_dir's instance id, and
// the host for people reading the lease.
func (a *app) holder() (string, error) {
	id, err := a.cat.InstanceID()
	if err != nil {
		return "", err
	}
	host, _ := os.Hostname()
	return id + "@" + host, nil
}

// orZero maps "never" to 0, which the daemon reads as "no limit".
func orZero(d config.Duration) time.Duration {
	if d.IsNever() {
		return 0
	}
	return d.Std()
}

func rateOrZero(r config.Rate) int64 {
	if r.IsUnlimited() {
		return 0
	}
	return int64(r)
}

// daemonConfig assembles the daemon's configuration.
func (a *app) daemonConfig() daemon.Config {
	c := a.cfg
	return daemon.Config{
		Node: c.Node, Sources: a.srcs, Tiers: a.tiers, Catalog: a.cat, Pool: a.pool,
		Workers: c.Workers, ScanInterval: c.ScanInterval.Std(), ShutdownTimeout: c.ShutdownTimeout.Std(),
		Backoff: daemon.Backoff{Initial: c.Retry.Initial.Std(), Max: c.Retry.Max.Std()},
		Listen:  c.HTTP.Listen, Version: buildinfo.Get().Version, Log: a.log,
		LocalDelete:      !c.Local.DeleteAfter.IsNever(),
		LocalDeleteAfter: orZero(c.Local.DeleteAfter),
		Scrub:            daemon.Scrub{Every: orZero(c.Scrub.Every), Rate: rateOrZero(c.Scrub.Rate)},
	}
}

// startPacer starts adaptive pacing if pacing.disk_busy is set, on pacing.device or the
// device holding the first source, until ctx ends. It returns nil when pacing is off.
func (a *app) startPacer(ctx context.Context) (*pacing.Pacer, error) {
	c := a.cfg.Pacing
	if c.DiskBusy.Fraction() <= 0 {
		return nil, nil
	}
	dev := c.Device
	if dev == "" {
		var err error
		if dev, err = pacing.DeviceOf(a.srcs[0].Root, ""); err != nil {
			return nil, usageError{err}
		}
	}
	p, err := pacing.New(pacing.Config{Device: dev, Busy: c.DiskBusy.Fraction(), Log: a.log.Named("pacing")})
	if err != nil {
		return nil, usageError{err}
	}
	go p.Run(ctx)
	return p, nil
}

// newDaemon builds the daemon (with adaptive pacing until ctx ends, if configured) and
// routes S3 upload ids into its journal.
func (a *app) newDaemon(ctx context.Context) (*daemon.Daemon, error) {
	cfg := a.daemonConfig()
	p, err := a.startPacer(ctx)
	if err != nil {
		return nil, err
	}
	if p != nil {
		cfg.Pacer = p
	}
	d, err := daemon.New(cfg)
	if err != nil {
		return nil, err
	}
	a.uploads.mu.Lock()
	a.uploads.fn = d.NoteUpload
	a.uploads.mu.Unlock()
	return d, nil
}

func (a *app) tier(name string) (daemon.Tier, error) {
	for _, t := range a.tiers {
		if t.Name == name {
			return t, nil
		}
	}
	var names []string
	for _, t := range a.tiers {
		names = append(names, t.Name)
	}
	return daemon.Tier{}, usagef("no tier %q (configured: %s)", name, strings.Join(names, ", "))
}

func (a *app) close() {
	if a.cat != nil {
		a.cat.Close()
	}
	if a.codecs != nil {
		if err := a.codecs.Close(); err != nil {
			a.log.Error("BUG: codec buffers not released", zap.Error(err))
		}
	}
	if a.pool != nil {
		if err := a.pool.Check(); err != nil {
			a.log.Error("BUG: pool buffers not released", zap.Error(err))
		}
		_ = a.pool.Close()
	}
	if a.log != nil {
		_ = a.log.Sync()
	}
}

// Where output goes (tests replace them): data to stdout; logs and errors to stderr.
var (
	stdout    io.Writer = os.Stdout
	logOutput io.Writer = os.Stderr
)

// logFormat resolves log.format: auto is console when the log goes to a terminal, else
// json (for a collector).
func logFormat(format string, out io.Writer) string {
	if format != "auto" && format != "" {
		return format
	}
	if f, ok := out.(*os.File); ok && isTerminal(f) {
		return "console"
	}
	return "json"
}

// dropEmpty leaves out fields whose value is an empty string (a `"why":""` on every
// offload line says nothing), whatever component logs them.
type dropEmpty struct{ zapcore.Core }

func (c dropEmpty) With(fields []zapcore.Field) zapcore.Core {
	return dropEmpty{c.Core.With(nonEmpty(fields))}
}

func (c dropEmpty) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c dropEmpty) Write(e zapcore.Entry, fields []zapcore.Field) error {
	return c.Core.Write(e, nonEmpty(fields))
}

func nonEmpty(fields []zapcore.Field) []zapcore.Field {
	out := fields[:0:0]
	for _, f := range fields {
		if f.Type == zapcore.StringType && f.String == "" {
			continue
		}
		out = append(out, f)
	}
	return out
}
