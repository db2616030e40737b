package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/catalog"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/source"
)

// Daemon runs the offload loop. Create it with New; call Run or RunOnce once.
type Daemon struct {
	cfg     Config
	log     *zap.Logger
	m       *metrics
	sources map[string]*sourceState
	tiers   []*tierState
	started time.Time

	workers chan struct{} // one token per running job
	wake    chan struct{} // a job finished: plan again

	mu       sync.Mutex
	running  map[jobID]due        // jobs started and not yet recorded
	retry    map[jobID]retryState // jobs that failed: when to try again
	skipped  map[string]string    // path -> reason already logged (log once)
	ready    bool
	stopping bool
	httpAddr string
	oneShot  bool             // RunOnce: a job is tried once per pass
	intents  map[jobID]uint64 // journal entries of running jobs, for NoteUpload
	reaping  atomic.Bool      // maintenance runs (maintain)
	scans    int              // scans made (by the one goroutine that scans)
	// unsettled are the previous run's journaled intents not settled yet, and
	// unreconciled the tiers a crash left to reconcile (settlePending works on both).
	unsettled    map[uint64]catalog.Intent
	unreconciled map[string]bool
}

type jobID struct {
	tier string
	key  segment.Key
}

type retryState struct {
	failures int
	next     time.Time
	err      error
}

type sourceState struct {
	Source
	lastScan time.Time
	sealed   int // sealed files at the last scan
	pending  int // files not sealed yet
	skipped  int // files skipped as foreign or corrupt
	scanErr  error
}

type tierState struct {
	Tier
	slots chan struct{} // Concurrency tokens

	mu        sync.Mutex
	paused    bool
	usedRatio float64
	failing   bool // the last attempt failed for a reason of the tier's
	expired   int64
	lastErr   string
	lastErrAt time.Time
	due       int
	oldestDue time.Time
	segments  int64
	bytes     int64
	inFlight  int
	cleaned   bool       // Cleanup ran once in this run
	fence     fenceState // the node's lease on the tier (Fence != nil)
}

// New checks cfg and builds a Daemon.
func New(cfg Config) (*Daemon, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("daemon config: %w", err)
	}
	d := &Daemon{
		cfg:     cfg,
		log:     cfg.Log.Named("daemon"),
		sources: map[string]*sourceState{},
		workers: make(chan struct{}, cfg.Workers),
		wake:    make(chan struct{}, 1),
		running: map[jobID]due{},
		retry:   map[jobID]retryState{},
		skipped: map[string]string{},
		intents: map[jobID]uint64{},

		unsettled:    map[uint64]catalog.Intent{},
		unreconciled: map[string]bool{},
	}
	d.m = newMetrics(d, cfg.Pool)
	for _, s := range cfg.Sources {
		if s.SealGrace < 0 {
			return nil, fmt.Errorf("source %s: seal_grace %v is negative", s.Name, s.SealGrace)
		}
		if d.sources[s.Name] != nil {
			return nil, fmt.Errorf("source %q defined twice", s.Name)
		}
		d.sources[s.Name] = &sourceState{Source: s}
	}
	for _, t := range cfg.Tiers {
		d.tiers = append(d.tiers, &tierState{Tier: t, slots: make(chan struct{}, t.Concurrency)})
	}
	d.m.initSeries(d.tiers, sortedKeys(d.sources))
	return d, nil
}

// Run starts the daemon and runs until ctx is done (SIGTERM): then it stops taking work,
// lets in-flight jobs finish within ShutdownTimeout (aborting them after that), records
// a clean exit and returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	stopHTTP, err := d.serveHTTP()
	if err != nil {
		return err
	}
	defer stopHTTP()
	stopFences := d.startFences(ctx)
	defer stopFences()
	if err := d.start(ctx); err != nil {
		return err
	}
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	var jobs sync.WaitGroup
	ticker := time.NewTicker(d.cfg.ScanInterval)
	defer ticker.Stop()
	reap := time.NewTicker(reapEvery * d.cfg.ScanInterval)
	defer reap.Stop()
	d.maintain(ctx, &jobs, true)
	if d.cfg.Scrub.Every > 0 {
		jobs.Add(1)
		go func() {
			defer jobs.Done()
			d.scrubLoop(ctx)
		}()
	}
	d.scan(ctx)
	for ctx.Err() == nil {
		d.dispatch(ctx, jobCtx, &jobs)
		select {
		case <-ctx.Done():
		case <-ticker.C:
			d.scan(ctx)
			d.maintain(ctx, &jobs, false)
		case <-reap.C:
			d.maintain(ctx, &jobs, true)
		case <-d.wake:
			d.maintain(ctx, &jobs, false)
		}
	}
	return d.shutdown(&jobs, cancelJobs, stopFences)
}

// reapEvery is how many scan intervals pass between the cleanups of a running daemon.
const reapEvery = 10

// maintain runs, in the background and one at a time, what the tiers need besides jobs:
// the previous run's recovery where it is still pending (settlePending), the first
// cleanup of each tier that could not be cleaned at start (its lease was not ours yet),
// and, when reap is set, the periodic cleanup of every tier whose leftovers can be told
// from a running job's by their age (CleanupAge > 0: an S3 tier's incomplete uploads
// older than reap_after, and the uploads whose abort failed, e.g. during an outage,
// which nothing else would retry until the next start). A tier whose lease is not ours
// is left alone.
func (d *Daemon) maintain(ctx context.Context, jobs *sync.WaitGroup, reap bool) {
	if !reap && !d.maintenanceDue() {
		return
	}
	if !d.reaping.CompareAndSwap(false, true) {
		return
	}
	jobs.Add(1)
	go func() {
		defer jobs.Done()
		defer d.reaping.Store(false)
		if d.settlePending(ctx) == 0 {
			d.wakeUp() // segments held back by an unsettled intent may go now
		}
		for _, t := range d.tiers {
			t.mu.Lock()
			first := !t.cleaned
			t.mu.Unlock()
			if (!reap && !first) || ctx.Err() != nil {
				continue
			}
			d.cleanup(ctx, t)
		}
	}()
}

// maintenanceDue reports whether maintain has work besides the periodic cleanup.
func (d *Daemon) maintenanceDue() bool {
	d.mu.Lock()
	pending := len(d.unsettled) + len(d.unreconciled)
	d.mu.Unlock()
	if pending > 0 {
		return true
	}
	now := d.cfg.Now()
	for _, t := range d.tiers {
		t.mu.Lock()
		cleaned := t.cleaned
		t.mu.Unlock()
		if !cleaned && t.Cleanup != nil && t.CleanupAge > 0 && !t.fenced(now) {
			return true
		}
	}
	return false
}

// cleanup removes t's leftovers of interrupted writes (Tier.Cleanup with its
// CleanupAge), unless t's lease is not ours.
func (d *Daemon) cleanup(ctx context.Context, t *tierState) {
	if t.Cleanup == nil || t.fenced(d.cfg.Now()) {
		return
	}
	n, err := t.Cleanup(ctx, t.CleanupAge)
	switch {
	case err != nil && ctx.Err() == nil:
		d.log.Warn("clean up interrupted writes", zap.String("tier", t.Name), zap.Error(err))
	case err == nil && n > 0:
		d.log.Info("cleaned up interrupted writes", zap.String("tier", t.Name), zap.Int("count", n))
	}
	if err == nil {
		t.mu.Lock()
		t.cleaned = true
		t.mu.Unlock()
	}
}

// RunOnce makes one full pass: it scans (twice, ScanInterval apart, as sealing needs),
// offloads every sealed segment due on each tier, and returns when all of them are done.
// The error joins every job that failed.
func (d *Daemon) RunOnce(ctx context.Context) error {
	d.oneShot = true
	// A tier whose lease is not ours is left out of the pass (and the pass fails); the
	// others are offloaded. The leases are renewed while the pass runs.
	fenceErr := d.acquireFences(ctx)
	stopFences := d.startFences(ctx)
	defer stopFences()
	if err := d.start(ctx); err != nil {
		return err
	}
	var jobs sync.WaitGroup
	d.scan(ctx)
	select {
	case <-ctx.Done():
	case <-time.After(d.onceSettle()):
	}
	d.scan(ctx)
	errs := []error{fenceErr}
	for ctx.Err() == nil {
		d.settlePending(ctx)
		n := d.dispatch(ctx, ctx, &jobs)
		jobs.Wait()
		if n == 0 {
			break
		}
	}
	// Uploads this pass left behind (an abort that failed, a creation whose reply was
	// lost and that the SDK made again) are aborted before exiting, whatever their age.
	for _, t := range d.tiers {
		if t.CleanupAge > 0 {
			d.cleanup(ctx, t)
		}
	}
	d.mu.Lock()
	for id, r := range d.retry {
		errs = append(errs, fmt.Errorf("%s on %s: %w", id.key, id.tier, r.err))
	}
	for _, in := range d.unsettled {
		errs = append(errs, fmt.Errorf("%s on %s: an interrupted job of the previous run could not be settled (the next run retries)", in.Key, in.Tier))
	}
	for _, name := range sortedKeys(d.sources) {
		s := d.sources[name]
		if s.scanErr != nil {
			errs = append(errs, fmt.Errorf("source %s: %w", s.Name, s.scanErr))
		}
		d.log.Info("pass done", zap.String("source", s.Name), zap.Int("sealed", s.sealed), zap.Int("not_sealed", s.pending), zap.Int("skipped_files", s.skipped))
	}
	d.mu.Unlock()
	for _, t := range d.tiers {
		t.mu.Lock()
		d.log.Info("pass done", zap.String("tier", t.Name), zap.Int64("offloaded", t.segments), zap.Int64("bytes", t.bytes), zap.Int("due_left", t.due))
		t.mu.Unlock()
	}
	errs = slices.DeleteFunc(errs, func(e error) bool { return e == nil })
	slices.SortFunc(errs, func(a, b error) int { return cmpStr(a.Error(), b.Error()) })
	stopFences()
	if err := d.finish(); err != nil {
		errs = append(errs, err)
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// onceSettle is how long RunOnce waits between its two scans: long enough for a file's
// size to be seen stable, short for a one-shot command.
func (d *Daemon) onceSettle() time.Duration { return min(d.cfg.ScanInterval, 2*time.Second) }

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// start records the run (abort marker), reads what a crash left to recover, and cleans
// the leftovers of the tiers that are cleaned at start only (posix temp files, which jobs
// about to start would otherwise write beside). Only local state (the catalog, the state
// directory) can make it fail: recovery and cleanup that need a tier are tried once here
// when oneShot (run --once, one-off commands) and otherwise left to maintain, in the
// background, so that a store that is down or hangs does not keep the daemon from
// starting and offloading to the other tiers.
func (d *Daemon) start(ctx context.Context) error {
	d.started = d.cfg.Now()
	crashed, err := d.cfg.Catalog.StartRun()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if crashed {
		d.log.Warn("the previous run did not exit cleanly (abort marker found): reconciling the catalog with the tiers")
	}
	if err := d.recover(crashed); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	if err := d.indexTiers(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	for _, t := range d.tiers {
		if t.CleanupAge <= 0 || d.oneShot {
			d.cleanup(ctx, t)
		}
	}
	if d.oneShot {
		d.settlePending(ctx)
	}
	d.mu.Lock()
	d.ready = true
	d.mu.Unlock()
	return nil
}

// indexTiers has the catalog's due index cover the configured tiers (rebuilt when they
// changed: one walk over the local state and the records).
func (d *Daemon) indexTiers() error {
	names := make([]string, len(d.tiers))
	for i, t := range d.tiers {
		names[i] = t.Name
	}
	rebuilt, err := d.cfg.Catalog.IndexTiers(names)
	if err == nil && rebuilt {
		d.log.Info("rebuilt the index of due copies for the configured tiers", zap.Strings("tiers", names))
	}
	return err
}

// shutdown waits for in-flight jobs up to ShutdownTimeout, then aborts them.
func (d *Daemon) shutdown(jobs *sync.WaitGroup, cancelJobs context.CancelFunc, stopFences func()) error {
	d.mu.Lock()
	d.stopping = true
	n := len(d.running)
	d.mu.Unlock()
	d.log.Info("stopping: no new jobs; waiting for jobs in flight", zap.Int("jobs", n), zap.Duration("deadline", d.cfg.ShutdownTimeout))
	done := make(chan struct{})
	go func() { jobs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.cfg.ShutdownTimeout):
		d.log.Warn("shutdown deadline reached: aborting jobs in flight")
		cancelJobs()
		<-done
	}
	stopFences() // before finish releases the leases
	return d.finish()
}

// finish records a clean exit, unless a tier's reconcile after a crash is still pending:
// then the abort marker stays, and the next start reconciles again. (Unsettled intents
// stay in the journal either way.)
func (d *Daemon) finish() error {
	d.releaseFences()
	d.mu.Lock()
	unreconciled := sortedKeys(d.unreconciled)
	d.mu.Unlock()
	if len(unreconciled) > 0 {
		d.log.Warn("exiting with tiers not reconciled after the crash: the next start reconciles them", zap.Strings("tiers", unreconciled))
		return nil
	}
	if err := d.cfg.Catalog.CleanExit(); err != nil {
		return fmt.Errorf("record clean exit: %w", err)
	}
	return nil
}

// noteSkipped logs each skipped file once (one clear line), not at every scan.
func (d *Daemon) noteSkipped(s *sourceState, skipped []source.Skipped) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sk := range skipped {
		if d.skipped[sk.Path] == sk.Reason {
			continue
		}
		if len(d.skipped) >= maxSkippedLogged {
			clear(d.skipped) // bounded: a reason may then be logged again
		}
		d.skipped[sk.Path] = sk.Reason
		d.log.Warn("skipping file in broker directory", zap.String("source", s.Name), zap.String("path", sk.Path), zap.String("reason", sk.Reason))
	}
}

// maxSkippedLogged bounds the memory of which skipped files were already logged.
const maxSkippedLogged = 4096

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkTiers updates each guarded tier's fill level and pauses it (an alarm: metric and
// log line) at MaxUsed, before the filesystem can run out of space.
func (d *Daemon) checkTiers() {
	for _, t := range d.tiers {
		d.checkTier(t)
	}
}

// checkTier updates t's fill level and pause (see checkTiers), and reports whether t is
// paused. A batch calls it before each write (daemon/batch.go): a batch may hold more
// than the space left under max_used.
func (d *Daemon) checkTier(t *tierState) bool {
	if t.Usage == nil || t.MaxUsed <= 0 {
		return t.isPaused()
	}
	used, total, err := t.Usage()
	if err != nil || total == 0 {
		d.log.Warn("cannot read tier usage", zap.String("tier", t.Name), zap.Error(err))
		return t.isPaused()
	}
	ratio := float64(used) / float64(total)
	t.mu.Lock()
	was := t.paused
	t.usedRatio = ratio
	t.paused = ratio >= t.MaxUsed
	now := t.paused
	t.mu.Unlock()
	d.m.tierUsed.WithLabelValues(t.Name).Set(ratio)
	d.m.tierPaused.WithLabelValues(t.Name).Set(b2f(now))
	switch {
	case now && !was:
		d.log.Error("tier paused: filesystem too full", zap.String("tier", t.Name), zap.Float64("used", ratio), zap.Float64("max_used", t.MaxUsed))
	case !now && was:
		d.log.Info("tier resumed", zap.String("tier", t.Name), zap.Float64("used", ratio))
	}
	return now
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
