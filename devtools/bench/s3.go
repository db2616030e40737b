package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/tierd/tierd/devtools/miniotest"
)

// S3Server is the object store the S3 measurements upload to.
type S3Server struct {
	Target S3Target
	// PID returns the server's process id, for its CPU time (0: not measured).
	PID func() int
	// DataDir holds the server's data and nothing else, for page-cache residency of what
	// was uploaded ("": not measured).
	DataDir string
	// MC returns an mc command against the server, whose alias MCAlias reaches it.
	MC      func(args ...string) *exec.Cmd
	MCAlias string
}

// emptyTrash removes the deleted objects MinIO keeps in its data directory's trash
// (.minio.sys/tmp/.trash) until its next purge. The server is the benchmark's own.
func (s S3Server) emptyTrash() error {
	if s.DataDir == "" {
		return nil
	}
	trash, err := filepath.Glob(filepath.Join(s.DataDir, "*", ".minio.sys", "tmp", ".trash", "*"))
	if err != nil {
		return err
	}
	for _, t := range trash {
		if err := os.RemoveAll(t); err != nil {
			return fmt.Errorf("empty MinIO's trash: %w", err)
		}
	}
	return nil
}

// resident returns the page cache held by the bucket's files in the server's data
// directory (MinIO keeps a bucket in a directory of its name under the data directory;
// miniotest makes the data directory inside DataDir). Deleted objects MinIO has yet to
// purge from its trash are not counted.
func (s S3Server) resident() (int64, error) {
	dirs, err := filepath.Glob(filepath.Join(s.DataDir, "*", s.Target.Bucket))
	if err != nil {
		return 0, err
	}
	var total int64
	for _, d := range append(dirs, filepath.Join(s.DataDir, s.Target.Bucket)) {
		n, err := ResidentTree(d)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// MinIO describes a miniotest server whose data lives under dataDir (the DataDir it was
// started with; "" if unknown).
func MinIO(srv *miniotest.Server, dataDir string) S3Server {
	return S3Server{
		Target:  S3Target{Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CAFile: srv.CAFile},
		PID:     srv.PID,
		DataDir: dataDir,
		MC:      srv.MCCommand,
		MCAlias: miniotest.Alias,
	}
}

// S3Drivers are tierd's S3 drivers.
var S3Drivers = []string{"aws", "minio"}

// S3Options configure S3.
type S3Options struct {
	Dir    string
	Server S3Server
	Sizes  []int64 // default 1 GiB and 4 GiB
	Concs  []int   // concurrent uploads; default 1 and 16
	// MaxStored skips the configurations whose uploads would hold more than this many
	// bytes in the store at once (size x concurrency); default 16 GiB.
	MaxStored int64
	Runs      int   // default 3
	Pool      int64 // default DefaultPool
	BufSize   int64 // default DefaultBufSize
	PartSize  int64 // default: the buffer size
	// Rclone is the rclone binary to measure too ("": rclone is not measured).
	Rclone string
	Logf   func(format string, args ...any)
}

// S3Config is the uploads of one size at one concurrency, or why they were skipped.
type S3Config struct {
	Size       int64   `json:"size"`
	Conc       int     `json:"conc"`
	Skipped    string  `json:"skipped,omitempty"`
	Contenders []Runs  `json:"contenders,omitempty"`
	Checks     []Check `json:"checks,omitempty"`
}

// S3Result is what S3 measured.
type S3Result struct {
	Pool     int64      `json:"pool"`
	BufSize  int64      `json:"buf_size"`
	PartSize int64      `json:"part_size"`
	Runs     int        `json:"runs"`
	Configs  []S3Config `json:"configs"`
}

// S3 uploads a cold source file of each size, 1 and 16 at once (to as many keys), with
// tierd's two drivers (a child process each time, reading the source as the daemon does,
// dropping pages behind it) and, interleaved in the same runs, with `mc cp` (and `rclone
// copyto`), one process per upload, all with their defaults. Every run records
// throughput, CPU seconds per GiB of the uploaders and of the server, peak RSS, and the
// page cache the source and the server's data hold afterwards; uploads are deleted after
// every run.
func S3(ctx context.Context, o S3Options) (S3Result, error) {
	logf := logger(o.Logf)
	if len(o.Sizes) == 0 {
		o.Sizes = []int64{1 << 30, 4 << 30}
	}
	if len(o.Concs) == 0 {
		o.Concs = []int{1, 16}
	}
	if o.MaxStored == 0 {
		o.MaxStored = 16 << 30
	}
	o.Runs = max(o.Runs, 1)
	if o.Pool == 0 {
		o.Pool = DefaultPool
	}
	if o.BufSize == 0 {
		o.BufSize = DefaultBufSize
	}
	if o.PartSize == 0 {
		o.PartSize = o.BufSize
	}
	res := S3Result{Pool: o.Pool, BufSize: o.BufSize, PartSize: o.PartSize, Runs: o.Runs}
	srv := o.Server
	const prefix = "bench"
	// clean deletes the uploads, and empties MinIO's trash of them: MinIO purges it only
	// every few minutes and refuses uploads while its drive's free space is under its
	// reserve, which 16 uploads of 1 GiB fill when the last run's are still in the trash.
	clean := func() error {
		out, err := srv.MC("rm", "--recursive", "--force", srv.MCAlias+"/"+srv.Target.Bucket+"/"+prefix+"/").CombinedOutput()
		if err != nil {
			return fmt.Errorf("delete uploads: %w: %s", err, out)
		}
		return srv.emptyTrash()
	}
	defer clean()
	for _, size := range o.Sizes {
		src, err := SourceFile(o.Dir, size)
		if err != nil {
			return res, err
		}
		for _, conc := range o.Concs {
			cfg := S3Config{Size: size, Conc: conc}
			if int64(conc)*size > o.MaxStored {
				cfg.Skipped = fmt.Sprintf("%d uploads of %s would hold %s in the store at once, more than the %s allowed (disk)",
					conc, FormatSize(size), FormatSize(int64(conc)*size), FormatSize(o.MaxStored))
				logf("s3: %s x %d skipped: %s", FormatSize(size), conc, cfg.Skipped)
				res.Configs = append(res.Configs, cfg)
				continue
			}
			logf("s3: %s x %d, %d runs", FormatSize(size), conc, o.Runs)
			measured := func(name string, run func(ctx context.Context) (Usage, error)) contender {
				return contender{name, func(ctx context.Context) (sample, error) {
					var cpu0 float64
					if srv.PID != nil {
						cpu0 = procCPU(srv.PID())
					}
					u, err := run(ctx)
					if err != nil {
						return sample{}, err
					}
					s := sample{u: u}
					if srv.PID != nil {
						s.serverCPU = procCPU(srv.PID()) - cpu0
					}
					s.src, err = Resident(src)
					if err == nil && srv.DataDir != "" {
						s.dst, err = srv.resident()
					}
					if cerr := clean(); err == nil {
						err = cerr
					}
					return s, err
				}}
			}
			var cs []contender
			for _, d := range S3Drivers {
				cs = append(cs, measured("tierd-"+d, func(ctx context.Context) (Usage, error) {
					var keys []string
					for i := range conc {
						keys = append(keys, fmt.Sprintf("tierd-%s-%d", d, i))
					}
					cr, u, err := runChild(ctx, childJob{Op: "s3-upload", Src: src, Keys: keys, Pool: o.Pool, BufSize: o.BufSize,
						S3: srv.Target, Driver: d, Prefix: prefix, PartSize: o.PartSize})
					if err == nil && cr.BytesRead != int64(conc)*size {
						err = fmt.Errorf("read %d bytes of the source for %d bytes of uploads", cr.BytesRead, int64(conc)*size)
					}
					return u, err
				}))
			}
			cs = append(cs, measured("mc", func(ctx context.Context) (Usage, error) {
				var cmds []*exec.Cmd
				for i := range conc {
					cmds = append(cmds, srv.MC("--quiet", "cp", src, fmt.Sprintf("%s/%s/%s/mc-%d", srv.MCAlias, srv.Target.Bucket, prefix, i)))
				}
				return runCmds(ctx, cmds...)
			}))
			if o.Rclone != "" {
				cs = append(cs, measured("rclone", func(ctx context.Context) (Usage, error) {
					var cmds []*exec.Cmd
					for i := range conc {
						c := exec.Command(o.Rclone, "--config", os.DevNull, "copyto", "--s3-no-check-bucket", src,
							fmt.Sprintf("bench:%s/%s/rclone-%d", srv.Target.Bucket, prefix, i))
						c.Env = append(os.Environ(), RcloneEnv(srv.Target)...)
						cmds = append(cmds, c)
					}
					return runCmds(ctx, cmds...)
				}))
			}
			samples, err := interleave(ctx, o.Runs, cs, func() error { return DropCache(src) }, logf)
			if err != nil {
				return res, fmt.Errorf("s3 %s x %d: %w", FormatSize(size), conc, err)
			}
			bytes := int64(conc) * size
			byName := map[string]Runs{}
			for _, c := range cs {
				r := summarize(c.name, bytes, samples[c.name])
				byName[c.name] = r
				cfg.Contenders = append(cfg.Contenders, r)
			}
			mc := byName["mc"]
			what := fmt.Sprintf("%s x %d", FormatSize(size), conc)
			for i := range cfg.Contenders {
				r := &cfg.Contenders[i]
				if r.Name == "mc" {
					continue
				}
				r.Baseline, r.Ratio = "mc", r.MBps.Median/mc.MBps.Median
				if d, ok := strings.CutPrefix(r.Name, "tierd-"); ok {
					key := fmt.Sprintf("s3/%sx%d/%s", FormatSize(size), conc, d)
					cfg.Checks = append(cfg.Checks,
						newCheck(key+"/ratio", fmt.Sprintf("%s: tierd %s / mc throughput", what, d), r.Ratio, ">=", 1.2, "x"),
						newCheck(key+"/cpu", fmt.Sprintf("%s: tierd %s CPU-s per GiB / mc's", what, d), r.CPUPerGiB.Median/mc.CPUPerGiB.Median, "<=", 1, "x"),
						newCheck(key+"/rss", fmt.Sprintf("%s: tierd %s peak RSS (largest run), pool %s + 48 MiB", what, d, FormatSize(o.Pool)),
							MiB(int64(r.MaxRSS.Max())), "<=", MiB(o.Pool+RSSAllowance), "MiB"))
				}
			}
			res.Configs = append(res.Configs, cfg)
		}
	}
	return res, nil
}

// RcloneEnv configures an rclone remote named "bench" for target through the
// environment, with rclone's defaults otherwise.
func RcloneEnv(t S3Target) []string {
	return []string{
		"RCLONE_CONFIG_BENCH_TYPE=s3",
		"RCLONE_CONFIG_BENCH_PROVIDER=Minio",
		"RCLONE_CONFIG_BENCH_ENDPOINT=" + t.Endpoint,
		"RCLONE_CONFIG_BENCH_REGION=" + t.Region,
		"RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=" + t.AccessKey,
		"RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=" + t.SecretKey,
	}
}
