package reliability

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/devtools/brokersim"
	"github.com/tierd/tierd/devtools/miniotest"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/s3"
	"github.com/tierd/tierd/segment"
)

// The store geometry every world's broker and tierd's source agree on: small files, so
// that many segments seal in a short test.
const (
	node          = "rel-node"
	commitLogSize = 256 << 10
	// sealGrace is the source's seal_grace: a file younger than this is not sealed yet.
	sealGrace  = 300 * time.Millisecond
	cqSize     = 6000 // 300 entries
	indexSlots = 64
	indexItems = 512
)

// reporter is what the checks report violations to.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// tierConf describes one tier of a world.
type tierConf struct {
	name string
	s3   bool   // an S3 tier on the world's MinIO (else posix)
	path string // posix: the tier's root (default <world>/<name>)
	yaml string // more keys of the tier, e.g. "write_mode: mmap, offload_after: 0s"
	// endpoint is where tierd reaches an S3 tier (default the world's MinIO; a fault
	// proxy, say); the checks always go to MinIO itself.
	endpoint string
}

// worldConf describes a world: a broker store, tiers, and tierd's config.
type worldConf struct {
	name         string
	tiers        []tierConf
	deleteAfter  string            // local.delete_after ("" = never)
	memory       string            // memory: (default: 2 buffers of 5 MiB with an S3 tier, else 4 of 256 KiB)
	retry        string            // retry: (default initial 50ms, max 500ms)
	sources      string            // more sources (YAML list items); name them in otherSources too
	otherSources map[string]string // more sources' paths by name
	workers      int               // default 4
	extra        string            // more top-level YAML
	logLevel     string            // log.level (default info)
	defaultHTTP  bool              // leave http out of the config: tierd listens where it does by default
	// commitLogSize and bodySize shape the store (default commitLogSize and 256 bytes).
	commitLogSize int64
	bodySize      int
}

// world is one broker store offloaded by one tierd installation to its tiers.
type world struct {
	t        *testing.T
	r        reporter // where checks report what they find (t, or a recorder in TestChecksCatchDamage)
	conf     worldConf
	dir      string
	store    string
	state    string
	cfg      string
	addr     string // http.listen
	srv      *miniotest.Server
	prefix   string // S3 key prefix of this world
	tiers    []*worldTier
	env      []string
	logs     string
	procs    []*proc
	sealed   *sealedSet
	stopSim  context.CancelFunc
	simDone  chan error
	simFiles []brokersim.File
	clSize   int64 // commit-log file size
	// brokerDeleted lists segments the test deleted as a broker would: not tierd's doing.
	brokerDeleted map[string]bool
	// otherSources maps the names of the sources in worldConf.sources to their paths.
	otherSources map[string]string
}

// worldTier is a tier of a world with a backend the checks inspect it through.
type worldTier struct {
	tierConf
	b segment.Backend
}

// newWorld sets a world up (no broker yet: see startBroker). srv may be nil when no tier
// is S3.
func newWorld(t *testing.T, srv *miniotest.Server, c worldConf) *world {
	t.Helper()
	dir := t.TempDir()
	w := &world{
		t: t, r: t, conf: c, dir: dir, store: filepath.Join(dir, "store"), state: filepath.Join(dir, "state"),
		cfg: filepath.Join(dir, "tierd.yaml"), addr: freeAddr(t), srv: srv, prefix: "rel/" + c.name,
		logs: logDir(t), sealed: newSealedSet(), brokerDeleted: map[string]bool{},
		otherSources: c.otherSources,
	}
	if err := os.MkdirAll(w.store, 0o755); err != nil {
		t.Fatal(err)
	}
	w.env = tierdEnv()
	hasS3 := false
	var tiers strings.Builder
	for _, tc := range c.tiers {
		wt := &worldTier{tierConf: tc}
		if tc.s3 {
			hasS3 = true
			if srv == nil {
				t.Fatal("BUG: an S3 tier without a MinIO server")
			}
			fmt.Fprintf(&tiers, "  - {name: %s, type: s3, endpoint: %q, bucket: %s, region: %s, prefix: %s,\n"+
				"     access_key: \"${RELIABILITY_S3_ACCESS}\", secret_key: \"${RELIABILITY_S3_SECRET}\", ca_file: %q, %s}\n",
				tc.name, orDefault(tc.endpoint, srv.Endpoint), srv.Bucket, srv.Region, w.prefix, srv.CAFile, tc.yaml)
			b, err := s3.New(context.Background(), s3.Config{
				Driver: "minio", Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket, Prefix: w.prefix,
				PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CAFile: srv.CAFile,
			}, node, inspectPool(t), zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			wt.b = b
		} else {
			if wt.path == "" {
				wt.path = filepath.Join(dir, tc.name)
			}
			fmt.Fprintf(&tiers, "  - {name: %s, type: posix, path: %s, %s}\n", tc.name, wt.path, tc.yaml)
			b, err := posix.New(posix.Config{Path: wt.path, WriteMode: posix.Buffered}, nil)
			if err != nil {
				t.Fatal(err)
			}
			wt.b = b
		}
		w.tiers = append(w.tiers, wt)
	}
	if hasS3 {
		w.env = append(w.env, "RELIABILITY_S3_ACCESS="+srv.AccessKey, "RELIABILITY_S3_SECRET="+srv.SecretKey)
	}
	memory := c.memory
	switch {
	case memory != "":
	case hasS3:
		memory = "{buffer_pool: 10MiB, buffer_size: 5MiB}" // compaction takes both: S3 .tix uploads go multipart
	default:
		memory = "{buffer_pool: 1MiB, buffer_size: 256KiB}"
	}
	retry := c.retry
	if retry == "" {
		retry = "{initial: 50ms, max: 500ms}"
	}
	w.clSize = c.commitLogSize
	if w.clSize == 0 {
		w.clSize = commitLogSize
	}
	workers := c.workers
	if workers == 0 {
		workers = 4
	}
	deleteAfter := c.deleteAfter
	if deleteAfter == "" {
		deleteAfter = "never"
	}
	logLevel := c.logLevel
	if logLevel == "" {
		logLevel = "info"
	}
	httpYAML := fmt.Sprintf("http: {listen: %q}\n", w.addr)
	if c.defaultHTTP {
		httpYAML, w.addr = "", defaultListen
	}
	yaml := fmt.Sprintf(`node: %s
state_dir: %s
memory: %s
workers: %d
scan_interval: 200ms
shutdown_timeout: 10s
retry: %s
sources:
  - {name: src, layout: rocketmq, path: %s, seal_grace: %s, commitlog_file_size: %d,
     consumequeue_file_size: %d, index_hash_slots: %d, index_items: %d}
%stiers:
%slocal: {delete_after: %s}
%slog: {level: %s, format: json}
%s`, node, w.state, memory, workers, retry, w.store, sealGrace, w.clSize, cqSize, indexSlots, indexItems, c.sources, tiers.String(), deleteAfter, httpYAML, logLevel, c.extra)
	if err := os.WriteFile(w.cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.close)
	return w
}

// deletes reports whether the world's config lets tierd delete local files.
func (w *world) deletes() bool { return w.conf.deleteAfter != "" && w.conf.deleteAfter != "never" }

// start starts `tierd run` with extra environment (a failpoint, say).
func (w *world) start(name string, extraEnv ...string) *proc {
	w.t.Helper()
	logPath := filepath.Join(w.logs, fmt.Sprintf("%03d-%s.log", len(w.procs), name))
	p := startTierd(w.t, name, logPath, append(slices.Clone(w.env), extraEnv...), "-c", w.cfg, "run")
	w.procs = append(w.procs, p)
	return p
}

// cli runs a tierd command on the world's config.
func (w *world) cli(args ...string) cliResult {
	w.t.Helper()
	return runCLI(w.t, w.env, append([]string{"-c", w.cfg}, args...)...)
}

// startBroker writes a store with brokersim: an initial burst of messages, then rate
// messages a second until stopBroker (rate 0: it returns when the burst is written). It
// records the size and CRC-32C of every segment as soon as a newer one of its sequence
// exists (brokersim never touches it again), so that the checks know what a deleted
// local file held.
func (w *world) startBroker(seed uint64, initial int64, rate float64) {
	w.t.Helper()
	body := w.conf.bodySize
	if body == 0 {
		body = 256
	}
	opts := brokersim.RocketMQOptions{
		Dir: w.store, Topics: 1, Queues: 2, Messages: initial, CommitLogSize: w.clSize, CQSize: cqSize,
		IndexSlots: indexSlots, IndexItems: indexItems, BodySize: body, Seed: seed, Rate: rate,
	}
	if rate == 0 {
		sum, err := brokersim.RocketMQ(context.Background(), opts)
		if err != nil {
			w.t.Fatalf("brokersim: %v", err)
		}
		w.simFiles = sum.Files
		w.sealed.scan(w.store)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stopSim = cancel
	w.simDone = make(chan error, 1)
	go func() {
		sum, err := brokersim.RocketMQ(ctx, opts)
		w.simFiles = sum.Files
		w.simDone <- err
	}()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for ctx.Err() == nil {
			w.sealed.scan(w.store)
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	stop := w.stopSim
	w.stopSim = func() {
		stop()
		<-watchDone
	}
}

// stopBroker stops the broker and records the segments it sealed last.
func (w *world) stopBroker() {
	w.t.Helper()
	if w.stopSim == nil {
		return
	}
	w.stopSim()
	w.stopSim = nil
	// brokersim's summary stats every file it wrote: the ones tierd deleted are missing.
	if err := <-w.simDone; err != nil && err != context.Canceled && !(w.deletes() && errors.Is(err, fs.ErrNotExist)) {
		w.t.Fatalf("brokersim: %v", err)
	}
	w.sealed.scan(w.store)
}

// close stops what the world runs and fails the test if any tierd log shows a panic, a
// broken invariant or a data race.
func (w *world) close() {
	if w.stopSim != nil {
		w.stopSim()
		<-w.simDone
	}
	for _, p := range w.procs {
		if !p.exited() {
			p.kill()
		}
		log := p.log()
		for _, bad := range []string{"panic:", "BUG:", "DATA RACE", "fatal error:"} {
			if strings.Contains(log, bad) {
				w.t.Errorf("world %s: %s logged %q:\n%s", w.conf.name, p.name, bad, p.tail())
				break
			}
		}
	}
}

// sealedSet remembers the size and CRC-32C of each sealed segment of a store, by path
// relative to the store.
type sealedSet struct {
	mu    sync.Mutex
	files map[string]fileSum
}

type fileSum struct {
	size int64
	crc  uint32
}

func newSealedSet() *sealedSet { return &sealedSet{files: map[string]fileSum{}} }

// scan records every segment of the store that has a newer one in its directory and is
// not recorded yet.
func (s *sealedSet) scan(store string) {
	dirs := []string{"commitlog", "index"}
	queues, _ := filepath.Glob(filepath.Join(store, "consumequeue", "*", "*"))
	for _, q := range queues {
		rel, _ := filepath.Rel(store, q)
		dirs = append(dirs, filepath.ToSlash(rel))
	}
	for _, d := range dirs {
		entries, err := os.ReadDir(filepath.Join(store, d))
		if err != nil {
			continue
		}
		var names []string
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
		slices.Sort(names)
		for _, name := range names[:max(len(names)-1, 0)] {
			rel := d + "/" + name
			s.mu.Lock()
			_, known := s.files[rel]
			s.mu.Unlock()
			if known {
				continue
			}
			sum, err := sumFile(filepath.Join(store, rel))
			if err != nil {
				continue // deleted meanwhile: a check will notice if it was never seen
			}
			s.mu.Lock()
			s.files[rel] = sum
			s.mu.Unlock()
		}
	}
}

func (s *sealedSet) get(rel string) (fileSum, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[rel]
	return f, ok
}

func (s *sealedSet) all() map[string]fileSum {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]fileSum, len(s.files))
	for k, v := range s.files {
		out[k] = v
	}
	return out
}

func sumFile(path string) (fileSum, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return fileSum{}, err
	}
	return fileSum{int64(len(b)), crc32.Checksum(b, segment.Castagnoli)}, nil
}

var (
	poolOnce sync.Once
	pool     *bufpool.Pool
	poolErr  error
)

// inspectPool is the buffer pool the checks read objects through (S3's minimum part
// size forces 5 MiB buffers).
func inspectPool(t *testing.T) *bufpool.Pool {
	poolOnce.Do(func() { pool, poolErr = bufpool.New(bufpool.Config{Budget: 10 << 20, BufferSize: 5 << 20}) })
	if poolErr != nil {
		t.Fatal(poolErr)
	}
	return pool
}
