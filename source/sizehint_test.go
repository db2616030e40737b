package source

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tierd/tierd/devtools/realdata"
)

// TestSizeHintsOnRealStores: scanned with the broker's default sizes, the real RocketMQ
// stores' files are skipped with the setting that fits them — R1's commit-log files are
// named 8,192 apart (commitlog_file_size: 8KiB), its consume-queue files 200 apart
// (consumequeue_file_size: 200B), R2's IndexFiles are 8,440 bytes (index_hash_slots: 100,
// index_items: 400) — and with those settings nothing is skipped for its size.
func TestSizeHintsOnRealStores(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		set   string
		wants []string // every size skip contains one of them, and each is seen
		fixed LayoutOptions
	}{
		{"rocketmq/r1/store", []string{
			`set commitlog_file_size: 8KiB for source "real"`,
			`set consumequeue_file_size: 200B for source "real"`,
		}, LayoutOptions{CommitLogFileSize: 8192, ConsumeQueueFileSize: 200}},
		{"rocketmq/r2/store", []string{
			`its 8440 bytes fit index_hash_slots: 100 and index_items: 400 (4 items a slot, as the broker's defaults): set them for source "real"`,
		}, LayoutOptions{IndexHashSlots: 100, IndexItems: 400}},
	} {
		root := realdata.Copy(t, c.set, filepath.Join(t.TempDir(), "store"))
		l, err := NewLayout(LayoutRocketMQ, LayoutOptions{Source: "real"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := l.Scan(ctx, root)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, sk := range res.Skipped {
			if !strings.Contains(sk.Reason, "size") && !strings.Contains(sk.Reason, "not a multiple") {
				continue
			}
			t.Logf("%s: %s", filepath.Base(sk.Path), sk.Reason)
			found := false
			for _, w := range c.wants {
				if strings.Contains(sk.Reason, w) {
					seen[w], found = true, true
				}
			}
			if !found {
				t.Errorf("%s: %s: no setting suggested", c.set, sk.Reason)
			}
		}
		for _, w := range c.wants {
			if !seen[w] {
				t.Errorf("%s: no skip says %q", c.set, w)
			}
		}
		c.fixed.Source = "real"
		l, err = NewLayout(LayoutRocketMQ, c.fixed)
		if err != nil {
			t.Fatal(err)
		}
		if res, err = l.Scan(ctx, root); err != nil {
			t.Fatal(err)
		}
		for _, sk := range res.Skipped {
			if strings.Contains(sk.Reason, "want") || strings.Contains(sk.Reason, "not a multiple") {
				t.Errorf("%s with the suggested settings: %s skipped: %s", c.set, sk.Path, sk.Reason)
			}
		}
	}
}
