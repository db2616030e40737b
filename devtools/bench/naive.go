package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// naive is the deliberately naive offloader the soak runs next to tierd: the RocketMQ bug
// (a per-thread cached direct buffer the size of each upload) transplanted to Go. Every
// job reads the whole IndexFile into a fresh []byte of its size, writes those bytes to
// the posix tier (one write, fsync) or to S3 (one PutObject from the buffer, minio-go),
// and the worker keeps the buffer in its own slice, as the JDK kept RocketMQ's. Jobs
// alternate between the tiers as tierd's do. It stops, and says so, when another buffer
// would take what it holds past Ceiling.
func (j childJob) naive(ctx context.Context, event func(childEvent)) (res childResult, err error) {
	size, err := fileSize(j.Src)
	if err != nil {
		return res, err
	}
	u, err := url.Parse(j.S3.Endpoint)
	if err != nil {
		return res, fmt.Errorf("endpoint %q: %w", j.S3.Endpoint, err)
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds: credentials.NewStaticV4(j.S3.AccessKey, j.S3.SecretKey, ""), Secure: u.Scheme == "https", Region: j.S3.Region,
	})
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		held    int64
		stopped string
	)
	kept := make([][][]byte, j.Workers) // per worker: every buffer it ever made
	q := &jobQueue{n: j.Jobs, start: time.Now(), event: event}
	err = parallel(j.Workers, func(w int) error {
		for {
			k, ok := q.take(ctx)
			if !ok {
				return nil
			}
			mu.Lock()
			if held+size > j.Ceiling {
				if stopped == "" {
					stopped = fmt.Sprintf("stopped after %d jobs: holding %s, one more buffer of %s would pass the %s ceiling",
						q.finished(), FormatSize(held), FormatSize(size), FormatSize(j.Ceiling))
				}
				mu.Unlock()
				cancel()
				return nil
			}
			held += size
			mu.Unlock()
			buf := make([]byte, size)
			kept[w] = append(kept[w], buf)
			if err := readWhole(j.Src, buf); err != nil {
				return err
			}
			var err error
			if (k/j.Workers+k)%2 == 0 {
				err = naiveWriteFile(filepath.Join(j.TierDir, fmt.Sprintf("naive-w%d-%d", w, k)), buf)
			} else {
				obj := fmt.Sprintf("%s/%s/naive/w%d/%d", j.Prefix, node, w, k)
				if _, err = client.PutObject(ctx, j.S3.Bucket, obj, bytes.NewReader(buf), size, minio.PutObjectOptions{}); err == nil {
					err = client.RemoveObject(context.Background(), j.S3.Bucket, obj, minio.RemoveObjectOptions{})
				}
			}
			if err != nil {
				mu.Lock()
				byCeiling := stopped != ""
				mu.Unlock()
				if byCeiling && ctx.Err() != nil {
					return nil // cancelled by the ceiling
				}
				return fmt.Errorf("naive job %d: %w", k, err)
			}
			q.finish()
		}
	})
	res.Jobs, res.Kept = q.finished(), held
	mu.Lock()
	res.Stopped = stopped
	mu.Unlock()
	if res.Stopped == "" && res.Jobs < j.Jobs {
		res.Stopped = fmt.Sprintf("deadline of %v reached", j.Deadline)
	}
	runtime.KeepAlive(kept) // the buffers live to the end, as leaked ones would
	return res, err
}

func readWhole(path string, buf []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.ReadFull(f, buf)
	return err
}

func naiveWriteFile(path string, buf []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer f.Close()
	if _, err := f.Write(buf); err != nil {
		return err
	}
	return f.Sync()
}
