package codec

import (
	"context"
	"fmt"
	"testing"

	"go.uber.org/zap"

	"github.com/tierd/tierd/devtools/miniotest"
	"github.com/tierd/tierd/s3"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
)

// TestConformanceS3 runs the segment.Backend suite on the wrapper (zstd and AES) over a
// real MinIO, where compressed objects go up with segment.UnknownSize as multipart
// uploads of whole pool buffers.
func TestConformanceS3(t *testing.T) {
	srv := miniotest.Start(t)
	keys, _ := testKeys(t, "k1")
	pool := testPool(t, s3.MinPartSize, 8)
	codecs := testCodecs(t, pool, s3.MinPartSize, 64<<10)
	n := 0
	segmenttest.Run(t, segmenttest.Harness{
		Pool:  pool,
		Short: testing.Short(),
		New: func(t *testing.T) segment.Backend {
			n++
			inner, err := s3.New(context.Background(), s3.Config{
				Driver: "minio", Endpoint: srv.Endpoint, Region: srv.Region, Bucket: srv.Bucket,
				Prefix: fmt.Sprintf("codec-%d", n), PathStyle: true, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CAFile: srv.CAFile,
			}, "node1", pool, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			return New(inner, Config{Compression: CompressZstd, Keys: keys}, codecs, zap.NewNop())
		},
	})
}
