package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// smallFS mounts a filesystem of size bytes at a new directory — a size-limited tmpfs,
// or, where that is refused, a loop-mounted ext4 image — and unmounts it when t ends. It
// skips t, saying why, where neither can be mounted (not root, no mount(8), a container
// without the capability).
func smallFS(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	umount := func() {
		for range 50 {
			if err := unix.Unmount(dir, 0); err == nil || err == unix.EINVAL {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		_ = unix.Unmount(dir, unix.MNT_DETACH)
	}
	tmpfsErr := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size))
	if tmpfsErr == nil {
		t.Cleanup(umount)
		return dir
	}
	img := filepath.Join(t.TempDir(), "tier.img")
	out, err := exec.Command("sh", "-c", fmt.Sprintf("truncate -s %d %s && mkfs.ext4 -q -m 0 %s && mount -o loop %s %s", size, img, img, img, dir)).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a small filesystem here: tmpfs: %v; loop ext4: %v: %s", tmpfsErr, err, out)
	}
	t.Cleanup(umount)
	return dir
}

// fillTo writes a ballast file on the filesystem of dir until exactly free bytes are
// left (as fallocate counts them), and returns its path.
func fillTo(t *testing.T, dir string, free int64) string {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	avail := int64(st.Bavail) * st.Bsize
	if avail <= free {
		t.Fatalf("%s has %d bytes free, cannot leave %d", dir, avail, free)
	}
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, avail-free); err != nil {
		t.Fatal(err)
	}
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if got := int64(st.Bavail) * st.Bsize; got != free {
		t.Fatalf("ballast left %d bytes free, want %d", got, free)
	}
	return path
}

func usedRatio(t *testing.T, dir string) float64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	used := float64(st.Blocks - st.Bfree)
	return used / (used + float64(st.Bavail))
}

const enospc = "no space left on device"

// TestFullTier fills a posix tier on a 16 MiB filesystem: the max_used guard (90%) pauses
// it with the tierd_tier_paused alarm and one log line before anything runs out of
// space, while the other tier takes every segment; then, with the guard at 100% and the
// filesystem filled by hand so that a segment fits but its marker does not, every write
// fails with ENOSPC, nothing partial or unrecorded is left visible, the jobs are retried,
// and once space is freed they all succeed.
func TestFullTier(t *testing.T) {
	s := seed(t)
	ctx := context.Background()
	t.Run("guard", func(t *testing.T) {
		mnt := smallFS(t, 16<<20)
		w := newWorld(t, nil, worldConf{
			name: "full-guard", commitLogSize: 1 << 20, bodySize: 4000,
			tiers: []tierConf{
				{name: "small", path: filepath.Join(mnt, "tier"), yaml: "write_mode: buffered, max_used: 90%, concurrency: 1"},
				{name: "big", yaml: "write_mode: buffered"},
			},
		})
		w.startBroker(s, 6000, 0) // about 24 MiB of commit log
		w.ageSealed(t, 1, time.Minute)
		p := w.start("daemon")
		if !p.waitLog("tier paused: filesystem too full", time.Minute) {
			t.Fatalf("the small tier was never paused (used %.2f):\n%s", usedRatio(t, mnt), p.tail())
		}
		// Let the big tier finish.
		last, lastChange := -1, time.Now()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if n := strings.Count(p.log(), `"msg":"offloaded"`); n != last {
				last, lastChange = n, time.Now()
			} else if time.Since(lastChange) > 2*time.Second {
				break
			}
		}
		_, metrics := httpGet(w.addr, "/metrics")
		if !strings.Contains(metrics, `tierd_tier_paused{tier="small"} 1`) || !strings.Contains(metrics, `tierd_tier_paused{tier="big"} 0`) {
			t.Errorf("alarm metric: %s", grepLines(metrics, "tierd_tier_paused"))
		}
		_, status := httpGet(w.addr, "/readyz")
		t.Logf("/readyz: %s; small tier %.1f%% used", strings.TrimSpace(status), 100*usedRatio(t, mnt))
		if r := usedRatio(t, mnt); r < 0.9 || r >= 1 {
			t.Errorf("small tier %.3f used: want paused at 90%%, before it is full", r)
		}
		if n := strings.Count(p.log(), "tier paused: filesystem too full"); n != 1 {
			t.Errorf("%d pause lines, want one", n)
		}
		if strings.Contains(p.log(), enospc) {
			t.Errorf("the guard did not prevent ENOSPC:\n%s", grepLines(p.log(), enospc))
		}
		if code := p.term(30 * time.Second); code != 0 {
			t.Fatalf("exit %d after SIGTERM:\n%s", code, p.tail())
		}
		recs := w.checkStopped(ctx)
		perTier := map[string]int{}
		for _, r := range recs {
			perTier[r.Tier]++
		}
		sealed := len(w.sealed.all())
		if perTier["big"] < sealed-1 || perTier["small"] == 0 || perTier["small"] >= perTier["big"] {
			t.Errorf("records per tier %v for %d sealed segments: want the big tier to take all, the small one part", perTier, sealed)
		}
	})
	t.Run("enospc", func(t *testing.T) {
		mnt := smallFS(t, 8<<20)
		w := newWorld(t, nil, worldConf{
			name: "full-enospc", commitLogSize: 1 << 20, bodySize: 4000,
			tiers: []tierConf{
				{name: "small", path: filepath.Join(mnt, "tier"), yaml: "write_mode: mmap, max_used: 100%, concurrency: 1"},
				{name: "big", yaml: "write_mode: buffered"},
			},
		})
		w.startBroker(s, 2000, 0) // about 8 MiB of commit log
		// Commit-log files only: each needs exactly 1 MiB on the tier, then a page for its marker.
		for _, d := range []string{"consumequeue", "index"} {
			if err := os.RemoveAll(filepath.Join(w.store, d)); err != nil {
				t.Fatal(err)
			}
		}
		for rel := range w.sealed.all() {
			if !strings.HasPrefix(rel, "commitlog/") {
				w.brokerDeleted[rel] = true
			}
		}
		w.ageSealed(t, 1, time.Minute)
		if err := os.MkdirAll(filepath.Join(mnt, "tier", node, "_tierd", "markers", "src", "commitlog"), 0o755); err != nil {
			t.Fatal(err)
		}
		// Room for a segment but not its marker (ENOSPC after the object was committed),
		// then not even for the segment (ENOSPC when its space is reserved).
		for _, c := range []struct {
			free int64
			want string
		}{{1 << 20, "write marker"}, {512 << 10, "fallocate 1048576 bytes"}} {
			ballast := fillTo(t, mnt, c.free)
			p := w.start("full")
			failures := func() int {
				n := 0
				for _, l := range strings.Split(p.log(), "\n") {
					if strings.Contains(l, enospc) && strings.Contains(l, c.want) && strings.Contains(l, `"tier":"small"`) {
						n++
					}
				}
				return n
			}
			if !p.waitFor(time.Minute, func() bool { return failures() >= 4 }) { // retried
				t.Fatalf("%d bytes free: no ENOSPC failures (%s):\n%s", c.free, c.want, p.tail())
			}
			time.Sleep(500 * time.Millisecond)
			if code := p.term(30 * time.Second); code != 0 {
				t.Fatalf("exit %d after SIGTERM:\n%s", code, p.tail())
			}
			t.Logf("%d bytes free: %d failures, e.g.:\n%s", c.free, failures(), firstLines(grepLines(p.log(), enospc), 2))
			recs := w.checkStopped(ctx) // nothing partial or unrecorded on the small tier
			onBig := 0
			for _, r := range recs {
				if r.Tier == "small" {
					t.Errorf("%s recorded on the full tier", r.Key)
				} else {
					onBig++
				}
			}
			if onBig == 0 {
				t.Errorf("the big tier got nothing while the small one was full")
			}
			if err := os.Remove(ballast); err != nil {
				t.Fatal(err)
			}
		}
		if res := w.cli("run", "--once"); res.code != 0 {
			t.Fatalf("run --once after space was freed: exit %d:\n%s", res.code, res.errOut)
		}
		recs := w.checkStopped(ctx)
		perTier := map[string]int{}
		for _, r := range recs {
			perTier[r.Tier]++
		}
		if perTier["small"] == 0 || perTier["small"] != perTier["big"] {
			t.Errorf("after space was freed, records per tier %v: want the small tier to catch up", perTier)
		}
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
