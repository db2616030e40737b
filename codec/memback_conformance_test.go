package codec

import (
	"testing"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
)

// TestMemBackendConformance runs the segment.Backend conformance suite on the in-memory
// backend the package's tests use, so that what those tests learn from it holds for a
// real tier.
func TestMemBackendConformance(t *testing.T) {
	pool, err := bufpool.New(bufpool.Config{Budget: 4 << 20, BufferSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	segmenttest.Run(t, segmenttest.Harness{
		Pool: pool,
		New:  func(t *testing.T) segment.Backend { return newMemBackend() },
	})
}
