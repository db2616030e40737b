package s3

import (
	"bytes"
	"hash/crc32"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tierd/tierd/devtools/miniotest"
	"github.com/tierd/tierd/segment"
	"github.com/tierd/tierd/segment/segmenttest"
)

// TestOutage kills MinIO in the middle of a multipart upload and brings it back only
// after the failed job's Abort has failed too (the outage outlasts the client's retries).
// The job, retried as the daemon does, completes; the upload the failed attempt left
// behind is found by Reap (which retries failed aborts) and nothing incomplete remains.
func TestOutage(t *testing.T) {
	srv := miniotest.Start(t)
	pool := newPool(t, 4)
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) {
			cfg := serverConfig(srv, driver)
			cfg.RateLimit = 20 << 20 // 40 MiB take about 2 s: time to pull the plug
			var mu sync.Mutex
			var journal []string
			cfg.OnUpload = func(_ segment.Key, id string) {
				mu.Lock()
				journal = append(journal, id)
				mu.Unlock()
			}
			b := newBackend(t, cfg, pool)
			key := segment.Key("node1/outage/" + driver)
			data := segmenttest.Data(42, 8*testBuf)
			ctx := testCtx(t)

			killed := make(chan struct{})
			go func() { // the outage: kill the server once two parts' worth has been read
				defer close(killed)
				for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
					if b.read.Load() >= 2*testBuf {
						srv.Stop()
						return
					}
				}
				t.Error("upload never got two parts far")
			}()

			var attempts int
			var abortFailed bool
			for attempts = 1; attempts <= 5; attempts++ {
				err := func() error {
					w, err := b.Create(ctx, key, int64(len(data)))
					if err != nil {
						return err
					}
					crc, err := segment.Copy(ctx, w, bytes.NewReader(data), int64(len(data)), pool)
					if err == nil {
						if crc != crc32.Checksum(data, segment.Castagnoli) {
							t.Errorf("attempt %d: CRC %08x", attempts, crc)
						}
						err = w.Commit(ctx)
					}
					if err != nil {
						if aerr := w.Abort(); aerr != nil {
							abortFailed = true
							t.Logf("attempt %d: Abort: %v", attempts, aerr)
						}
					}
					return err
				}()
				if err == nil {
					break
				}
				t.Logf("attempt %d failed: %v", attempts, err)
				<-killed
				if srv.PID() == 0 {
					srv.Restart() // the outage ends
				}
			}
			if attempts == 1 || attempts > 5 {
				t.Fatalf("job finished after %d attempts; want a failure, then success", attempts)
			}
			if !bytes.Equal(readAll(t, b, key), data) {
				t.Fatal("content after retries differs")
			}
			if info, err := b.Stat(ctx, key); err != nil || info.CRC32C != crc32.Checksum(data, segment.Castagnoli) {
				t.Fatalf("Stat = %+v, %v", info, err)
			}
			mu.Lock()
			nJournal := len(journal)
			mu.Unlock()
			if nJournal < 2 {
				t.Fatalf("journal holds %d upload ids, want one per attempt", nJournal)
			}
			if !abortFailed {
				t.Fatal("the failed attempt's Abort succeeded during the outage")
			}
			if us := uploadsOf(t, b, key); len(us) == 0 {
				t.Fatal("no incomplete upload left by the failed attempt: nothing for Reap to do")
			}
			mcIncomplete := func() string {
				t.Helper()
				out, err := srv.MC("ls", "--incomplete", miniotest.Alias+"/"+srv.Bucket+"/"+b.object(key))
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(string(out))
			}
			if s := mcIncomplete(); s == "" {
				t.Fatal("mc ls --incomplete does not show the failed attempt's upload")
			}
			// The upload is seconds old: only the remembered failed abort can find it (MinIO
			// forgot it in the restart and lists no prefix that is not a whole object name).
			n, err := b.Reap(ctx, time.Hour)
			if err != nil || n < 1 {
				t.Fatalf("Reap = %d, %v; want the failed attempt's upload aborted", n, err)
			}
			if us := uploadsOf(t, b, key); len(us) != 0 {
				t.Fatalf("incomplete uploads after Reap: %v", us)
			}
			if s := mcIncomplete(); s != "" {
				t.Fatalf("after Reap mc ls --incomplete shows:\n%s", s)
			}
		})
	}
}
