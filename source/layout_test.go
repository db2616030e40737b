package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tierd/tierd/segment"
)

func TestNewLayoutErrors(t *testing.T) {
	f := func(name string, opts LayoutOptions, want ...string) {
		t.Helper()
		l, err := NewLayout(name, opts)
		if err == nil {
			t.Fatalf("NewLayout(%q, %+v) = %v, want an error", name, opts, l)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("NewLayout(%q, %+v) = %v; want it to contain %q", name, opts, err, w)
			}
		}
	}
	ok := LayoutOptions{Source: "s"}
	f("rocketmq5", ok, `unknown layout "rocketmq5"`)
	f("", ok, "unknown layout")
	f(LayoutKafka, LayoutOptions{}, "source: empty name")
	f(LayoutRocketMQ, LayoutOptions{Source: "_x"}, "reserved")
	f(LayoutRocketMQ, LayoutOptions{Source: "s", CommitLogFileSize: -1}, "commitlog_file_size: -1")
	f(LayoutRocketMQ, LayoutOptions{Source: "s", IndexItems: 1 << 31}, "index_items: 2147483648")
	f(LayoutRocketMQ, LayoutOptions{Source: "s", ConsumeQueueFileSize: 6_000_001},
		"consumequeue_file_size: 6000001 is not a multiple of 20 (the broker rounds it up to 6000020)")
	// Every problem is reported at once.
	f(LayoutRocketMQ, LayoutOptions{Source: "", IndexHashSlots: -5, ConsumeQueueFileSize: 7},
		"source: empty name", "index_hash_slots: -5", "consumequeue_file_size: 7")
}

func TestNewLayoutNames(t *testing.T) {
	for _, name := range []string{LayoutRocketMQ, LayoutKafka} {
		l, err := NewLayout(name, LayoutOptions{Source: "s"})
		if err != nil || l.Name() != name {
			t.Fatalf("NewLayout(%q) = %v, %v", name, l, err)
		}
	}
}

func TestScanRootErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{LayoutRocketMQ, LayoutKafka} {
		l, err := NewLayout(name, LayoutOptions{Source: "s"})
		if err != nil {
			t.Fatal(err)
		}
		f := func(root string, want error, wantText string) {
			t.Helper()
			_, err := l.Scan(context.Background(), root)
			if err == nil || (want != nil && !errors.Is(err, want)) || !strings.Contains(err.Error(), wantText) {
				t.Fatalf("%s: Scan(%q) = %v; want %v containing %q", name, root, err, want, wantText)
			}
		}
		f(filepath.Join(dir, "missing"), os.ErrNotExist, "missing")
		f(file, nil, "not a directory")
	}
}

func TestScanCanceled(t *testing.T) {
	spec := treeSpec{opts: LayoutOptions{Source: "s", ConsumeQueueFileSize: 20}, lines: []string{
		"x: file consumequeue/T/0/00000000000000000000 20",
		"x: file t-0/00000000000000000000.log 1",
	}}
	root := spec.build(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, name := range []string{LayoutRocketMQ, LayoutKafka} {
		l, err := NewLayout(name, spec.opts)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := l.Scan(ctx, root); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: Scan with a canceled context = %+v, %v", name, res, err)
		}
	}
}

// TestScanRelativeRoot checks that a relative root is made absolute.
func TestScanRelativeRoot(t *testing.T) {
	spec := treeSpec{opts: LayoutOptions{Source: "s"}, lines: []string{
		"x: file t-0/00000000000000000000.log 1",
		"x: file t-0/00000000000000000001.log 1",
	}}
	root := spec.build(t)
	t.Chdir(filepath.Dir(root))
	l, err := NewLayout(LayoutKafka, spec.opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Scan(context.Background(), "root")
	if err != nil {
		t.Fatal(err)
	}
	checkScan(t, res, root, "s")
	if got := render(res); !strings.Contains(got, "closed t-0/00000000000000000000.log") {
		t.Fatalf("scan of a relative root:\n%s", got)
	}
}

func TestParsePartitionDir(t *testing.T) {
	f := func(name, topic string, partition int32, ok bool) {
		t.Helper()
		gt, gp, gok := parsePartitionDir(name)
		if gt != topic || gp != partition || gok != ok {
			t.Fatalf("parsePartitionDir(%q) = %q %d %v; want %q %d %v", name, gt, gp, gok, topic, partition, ok)
		}
	}
	f("orders-0", "orders", 0, true)
	f("my-topic.v2-12", "my-topic.v2", 12, true)
	f("a-b-c-7", "a-b-c", 7, true)
	f("__consumer_offsets-49", "__consumer_offsets", 49, true)
	f(".x-1", ".x", 1, true)
	f("t-2147483647", "t", 2147483647, true)
	f("t-2147483648", "", 0, false)
	f("t-01", "", 0, false)
	f("t--1", "t-", 1, true)
	f("t-", "", 0, false)
	f("-0", "", 0, false)
	f("t", "", 0, false)
	f("t-x", "", 0, false)
	f("..-0", "", 0, false)
	f("a b-0", "", 0, false)
	f(strings.Repeat("t", 250)+"-0", "", 0, false)
}

func TestParseNames(t *testing.T) {
	digits := func(s string, n int, want int64, ok bool) {
		t.Helper()
		got, gok := parseDigits(s, n)
		if got != want || gok != ok {
			t.Fatalf("parseDigits(%q, %d) = %d %v; want %d %v", s, n, got, gok, want, ok)
		}
	}
	digits("00000000001073741824", 20, 1073741824, true)
	digits("09223372036854775807", 20, 9223372036854775807, true)
	digits("09223372036854775808", 20, 0, false)
	digits("99999999999999999999", 20, 0, false)
	digits("0000000000000000000", 20, 0, false)
	digits("0000000000000000000x", 20, 0, false)
	digits("-0000000000000000001", 20, 0, false)

	index := func(name string, ok bool) {
		t.Helper()
		if got := validIndexName(name); got != ok {
			t.Fatalf("validIndexName(%q) = %v", name, got)
		}
	}
	index("20240229235959999", true)
	index("20230229000000000", false) // not a leap year
	index("20241301000000000", false)
	index("20240101246000000", false)
	index("2024010100000000", false)
	index("202401010000000000", false)

	topic := func(name string, ok bool) {
		t.Helper()
		if got := validRocketMQTopic(name); got != ok {
			t.Fatalf("validRocketMQTopic(%q) = %v", name, got)
		}
	}
	topic("TopicA", true)
	topic("%RETRY%group_1", true)
	topic("%DLQ%g-1", true)
	topic("rmq_sys|x", true)
	topic(strings.Repeat("t", 127), true)
	topic(strings.Repeat("t", 128), false)
	topic("", false)
	topic("a.b", false)
	topic("a b", false)
}

// FuzzParsePartitionDir checks the partition-directory parser on any name: no panic, and
// an accepted name is exactly "<topic>-<partition>".
func FuzzParsePartitionDir(f *testing.F) {
	for _, s := range []string{"orders-0", "my-topic.v2-12", "t-01", "t-2147483648", "-0", "..-1", "x.abc-delete"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		topic, partition, ok := parsePartitionDir(name)
		if !ok {
			return
		}
		if got := topic + "-" + strconv.Itoa(int(partition)); got != name || !validKafkaTopic(topic) || partition < 0 {
			t.Fatalf("%q parsed to %q %d", name, topic, partition)
		}
		if _, err := segment.ObjectKey("n", "s", name+"/"+offsetName(0)+".log"); err != nil {
			t.Fatalf("accepted partition dir %q makes no key: %v", name, err)
		}
	})
}
