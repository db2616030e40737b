package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/compactor"
	"github.com/tierd/tierd/localfile"
	"github.com/tierd/tierd/posix"
	"github.com/tierd/tierd/s3"
	"github.com/tierd/tierd/segment"
)

// S3Target is an S3 endpoint and bucket a child uploads to.
type S3Target struct {
	Endpoint  string `json:"endpoint"`
	Region    string `json:"region"`
	Bucket    string `json:"bucket"`
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	CAFile    string `json:"ca_file,omitempty"`
}

// node is the node name of every key the benchmarks write to S3.
const node = "bench"

func (t S3Target) config(driver, prefix string, partSize int64) s3.Config {
	return s3.Config{
		Driver: driver, Endpoint: t.Endpoint, Region: t.Region, Bucket: t.Bucket, Prefix: prefix,
		PathStyle: true, AccessKey: t.AccessKey, SecretKey: t.SecretKey, CAFile: t.CAFile, PartSize: partSize,
	}
}

// childJob is the operation a child process measures. Op selects it; the other fields are
// its parameters.
type childJob struct {
	Op string `json:"op"` // posix-copy, compact, s3-upload, soak, naive

	Src     string   `json:"src"`
	TierDir string   `json:"tier_dir,omitempty"`
	Keys    []string `json:"keys,omitempty"` // one per concurrent copy or upload
	Mode    string   `json:"mode,omitempty"` // posix write mode

	Pool    int64 `json:"pool"`
	BufSize int64 `json:"buf_size"`

	// compact, soak
	Slots      int `json:"slots,omitempty"`
	Items      int `json:"items,omitempty"`
	MaxBuffers int `json:"max_buffers,omitempty"`

	// s3-upload, soak, naive
	S3       S3Target `json:"s3"`
	Driver   string   `json:"driver,omitempty"`
	Prefix   string   `json:"prefix,omitempty"`
	PartSize int64    `json:"part_size,omitempty"`

	// soak, naive
	Workers  int           `json:"workers,omitempty"`
	Jobs     int           `json:"jobs,omitempty"`
	Ceiling  int64         `json:"ceiling,omitempty"`  // naive: stop before holding more
	Deadline time.Duration `json:"deadline,omitempty"` // stop taking jobs after this long
}

// childResult is what a child reports besides its usage, which the parent measures.
type childResult struct {
	BytesRead int64             `json:"bytes_read,omitempty"` // s3-upload: bytes read from the source
	Compact   *compactor.Result `json:"compact,omitempty"`
	Jobs      int               `json:"jobs,omitempty"` // soak, naive: jobs finished
	Stopped   string            `json:"stopped,omitempty"`
	Kept      int64             `json:"kept,omitempty"` // naive: bytes of buffers kept
	PoolWaits int64             `json:"pool_waits,omitempty"`
	PeakRSS   int64             `json:"peak_rss"` // the child's VmHWM as it exits
}

func (j childJob) run(ctx context.Context, event func(childEvent)) (childResult, error) {
	if j.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, j.Deadline)
		defer cancel()
	}
	switch j.Op {
	case "posix-copy":
		return j.posixCopy(ctx)
	case "compact":
		return j.compact(ctx)
	case "s3-upload":
		return j.s3Upload(ctx)
	case "soak":
		return j.soak(ctx, event)
	case "naive":
		return j.naive(ctx, event)
	}
	return childResult{}, fmt.Errorf("unknown operation %q", j.Op)
}

func (j childJob) pool() (*bufpool.Pool, error) {
	return bufpool.New(bufpool.Config{Budget: j.Pool, BufferSize: j.BufSize})
}

// posixTier opens the job's posix tier and its pool.
func (j childJob) posixTier() (*posix.Backend, *bufpool.Pool, error) {
	tier, err := posix.New(posix.Config{Path: j.TierDir, WriteMode: posix.Mode(j.Mode)}, nil)
	if err != nil {
		return nil, nil, err
	}
	pool, err := j.pool()
	return tier, pool, err
}

// closePool checks that every buffer came back and releases the pool.
func closePool(p *bufpool.Pool, err *error) {
	if cerr := p.Check(); cerr != nil && *err == nil {
		*err = cerr
	}
	_ = p.Close()
}

// parallel runs fn(0..n-1) at once and returns the first error.
func parallel(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// CopyToTier is what an offload of a raw segment does: open the cold source without
// polluting the page cache (O_DIRECT for a direct-mode tier, else pages dropped behind the
// reader), stream it into the tier through the pool, commit.
func CopyToTier(ctx context.Context, tier segment.Backend, direct bool, pool *bufpool.Pool, src string, key segment.Key) error {
	r, err := localfile.Open(ctx, src, localfile.ReadOptions{Direct: direct})
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer r.Close()
	w, err := tier.Create(ctx, key, r.Size())
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	if _, err := segment.Copy(ctx, w, r, r.Size(), pool); err != nil {
		_ = w.Abort()
		return fmt.Errorf("copy %s to %s: %w", src, key, err)
	}
	if err := w.Commit(ctx); err != nil {
		_ = w.Abort()
		return fmt.Errorf("commit %s: %w", key, err)
	}
	return nil
}

func (j childJob) posixCopy(ctx context.Context) (res childResult, err error) {
	tier, pool, err := j.posixTier()
	if err != nil {
		return res, err
	}
	defer closePool(pool, &err)
	err = parallel(len(j.Keys), func(i int) error {
		return CopyToTier(ctx, tier, tier.Mode() == posix.Direct, pool, j.Src, segment.Key(j.Keys[i]))
	})
	res.PoolWaits = int64(pool.Stats().Waits)
	return res, err
}

// CompactToTier is what an offload of a sealed IndexFile does: open it keeping what it
// reads in the page cache until the end (later passes read from memory), compact it into
// the tier, commit.
func CompactToTier(ctx context.Context, tier segment.Backend, pool *bufpool.Pool, src string, key segment.Key, opts compactor.Options) (compactor.Result, error) {
	r, err := localfile.Open(ctx, src, localfile.ReadOptions{Direct: true, DropAtClose: true})
	if err != nil {
		return compactor.Result{}, fmt.Errorf("open %s: %w", src, err)
	}
	defer r.Close()
	opts.Pool = pool
	var w segment.Writer
	res, err := compactor.Compact(ctx, r, r.Size(), opts, func(size int64) (segment.Writer, error) {
		var err error
		w, err = tier.Create(ctx, key, size)
		return w, err
	})
	if err == nil {
		err = w.Commit(ctx)
	}
	if err != nil {
		if w != nil {
			_ = w.Abort()
		}
		return res, fmt.Errorf("compact %s to %s: %w", src, key, err)
	}
	return res, nil
}

func (j childJob) compact(ctx context.Context) (res childResult, err error) {
	tier, pool, err := j.posixTier()
	if err != nil {
		return res, err
	}
	defer closePool(pool, &err)
	cr, err := CompactToTier(ctx, tier, pool, j.Src, segment.Key(j.Keys[0]), compactor.Options{Slots: j.Slots, Items: j.Items, MaxBuffers: j.MaxBuffers})
	res.Compact = &cr
	return res, err
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r  io.ReaderAt
	n  int64
	mu sync.Mutex
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.mu.Lock()
	c.n += int64(n)
	c.mu.Unlock()
	return n, err
}

func (j childJob) s3Upload(ctx context.Context) (res childResult, err error) {
	pool, err := j.pool()
	if err != nil {
		return res, err
	}
	defer closePool(pool, &err)
	tier, err := s3.New(ctx, j.S3.config(j.Driver, j.Prefix, j.PartSize), node, pool, zap.NewNop())
	if err != nil {
		return res, err
	}
	var read int64
	var mu sync.Mutex
	err = parallel(len(j.Keys), func(i int) error {
		// One reader per upload, as the daemon opens one per job (read_mode fadvise).
		r, err := localfile.Open(ctx, j.Src, localfile.ReadOptions{})
		if err != nil {
			return err
		}
		defer r.Close()
		cr := &countingReaderAt{r: r}
		key := segment.Key(node + "/" + j.Keys[i])
		w, err := tier.Create(ctx, key, r.Size())
		if err != nil {
			return err
		}
		if _, err := segment.Copy(ctx, w, cr, r.Size(), pool); err != nil {
			_ = w.Abort()
			return fmt.Errorf("upload %s: %w", key, err)
		}
		if err := w.Commit(ctx); err != nil {
			_ = w.Abort()
			return fmt.Errorf("commit %s: %w", key, err)
		}
		mu.Lock()
		read += cr.n
		mu.Unlock()
		return nil
	})
	res.BytesRead = read
	res.PoolWaits = int64(pool.Stats().Waits)
	return res, err
}

// jobQueue hands out job numbers 0..n-1 to workers until n or ctx ends, and reports each
// finished job.
type jobQueue struct {
	mu    sync.Mutex
	next  int
	done  int
	n     int
	start time.Time
	event func(childEvent)
}

func (q *jobQueue) take(ctx context.Context) (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.next >= q.n || ctx.Err() != nil {
		return 0, false
	}
	q.next++
	return q.next - 1, true
}

// finished returns the jobs finished so far.
func (q *jobQueue) finished() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.done
}

func (q *jobQueue) finish() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.done++
	if q.event != nil {
		q.event(childEvent{Jobs: q.done, Secs: time.Since(q.start).Seconds()})
	}
}

// soak is tierd in the seeds' scenario: Workers workers share one pool and compact the
// IndexFile Src Jobs times in all, job k into the posix tier when k/Workers+k is even and
// into S3 otherwise (every worker alternates between the tiers from round to round), each
// result verified by Stat (size and CRC-32C, as the daemon does) and deleted again.
func (j childJob) soak(ctx context.Context, event func(childEvent)) (res childResult, err error) {
	pool, err := j.pool()
	if err != nil {
		return res, err
	}
	defer closePool(pool, &err)
	ptier, err := posix.New(posix.Config{Path: j.TierDir, WriteMode: posix.Direct}, nil)
	if err != nil {
		return res, err
	}
	stier, err := s3.New(ctx, j.S3.config(j.Driver, j.Prefix, 0), node, pool, zap.NewNop())
	if err != nil {
		return res, err
	}
	q := &jobQueue{n: j.Jobs, start: time.Now(), event: event}
	err = parallel(j.Workers, func(w int) error {
		for {
			k, ok := q.take(ctx)
			if !ok {
				return nil
			}
			var tier segment.Backend = ptier
			if (k/j.Workers+k)%2 == 1 {
				tier = stier
			}
			key := segment.Key(fmt.Sprintf("%s/soak/w%d/%d.tix", node, w, k))
			cr, err := CompactToTier(ctx, tier, pool, j.Src, key, compactor.Options{Slots: j.Slots, Items: j.Items})
			if err != nil {
				return err
			}
			info, err := tier.Stat(ctx, key)
			if err != nil {
				return fmt.Errorf("verify %s: %w", key, err)
			}
			if info.Size != cr.Size || info.CRC32C != cr.CRC32C {
				return fmt.Errorf("verify %s: stored %d bytes CRC %08x, wrote %d bytes CRC %08x", key, info.Size, info.CRC32C, cr.Size, cr.CRC32C)
			}
			if err := tier.Delete(ctx, key); err != nil {
				return err
			}
			q.finish()
		}
	})
	res.Jobs = q.finished()
	if err == nil && res.Jobs < j.Jobs {
		res.Stopped = fmt.Sprintf("deadline of %v reached", j.Deadline)
	}
	res.PoolWaits = int64(pool.Stats().Waits)
	return res, err
}

// fileSize returns the size of path.
func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
