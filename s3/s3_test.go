package s3

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/devtools/miniotest"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
)

var drivers = []string{"aws", "minio"}

const testBuf = MinPartSize // the smallest pool buffer the backend accepts

func newPool(t testing.TB, buffers int) *bufpool.Pool {
	t.Helper()
	p, err := bufpool.New(bufpool.Config{Budget: int64(buffers) * testBuf, BufferSize: testBuf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Check(); err != nil {
			t.Error(err)
		}
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

var prefixes atomic.Int64

// serverConfig is a Config for srv with a prefix of its own.
func serverConfig(srv *miniotest.Server, driver string) Config {
	return Config{
		Driver: driver, Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket,
		Prefix:    fmt.Sprintf("tier-%d", prefixes.Add(1)),
		PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CAFile: srv.CAFile,
	}
}

func newBackend(t testing.TB, cfg Config, pool *bufpool.Pool) *Backend {
	t.Helper()
	var log *zap.Logger
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
	} else {
		log = zap.NewNop()
	}
	b, err := New(context.Background(), cfg, "node1", pool, log)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestConformance runs the segment.Backend suite against a real MinIO with each driver.
func TestConformance(t *testing.T) {
	srv := miniotest.Start(t)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			pool := newPool(t, 8)
			segmenttest.Run(t, segmenttest.Harness{
				Pool:  pool,
				Short: testing.Short(),
				New: func(t *testing.T) segment.Backend {
					return newBackend(t, serverConfig(srv, driver), pool)
				},
			})
		})
	}
}
