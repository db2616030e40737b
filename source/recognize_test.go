package source

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecognize points each layout at the fixtures in ../testdata/brokers, right and
// wrong, and checks the verdict and the fix the error names.
func TestRecognize(t *testing.T) {
	brokers, err := filepath.Abs(filepath.Join("..", "testdata", "brokers"))
	if err != nil {
		t.Fatal(err)
	}
	kafkaDir := filepath.Join(brokers, "kafka")
	store := filepath.Join(brokers, "rocketmq", "store")
	empty := t.TempDir()
	f := func(layout, root string, want ...string) {
		t.Helper()
		err := Recognize(layout, root)
		if len(want) == 0 {
			if err != nil {
				t.Fatalf("Recognize(%s, %s) = %v, want nil", layout, root, err)
			}
			return
		}
		if err == nil {
			t.Fatalf("Recognize(%s, %s) = nil, want an error containing %q", layout, root, want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("Recognize(%s, %s) = %v\nwant it to contain %q", layout, root, err, w)
			}
		}
	}
	f(LayoutRocketMQ, store)
	f(LayoutKafka, kafkaDir)
	f(LayoutRocketMQ, empty)
	f(LayoutKafka, empty)

	f(LayoutRocketMQ, filepath.Dir(store), "holds a RocketMQ store in store/", "fix: point path at "+store)
	f(LayoutRocketMQ, kafkaDir, "is a Kafka log.dir", "fix: set layout: kafka")
	f(LayoutRocketMQ, filepath.Join(store, "commitlog"), "the store's commitlog/ directory", "fix: point path at the store root, "+store)
	f(LayoutRocketMQ, filepath.Join(kafkaDir, "orders-0"), "Kafka partition directory", "fix: set layout: kafka and point path at its parent, "+kafkaDir)
	f(LayoutKafka, filepath.Join(kafkaDir, "orders-0"), "one partition directory (orders-0)", "fix: point path at the log.dir that holds it, "+kafkaDir)
	f(LayoutKafka, store, "is a RocketMQ store", "fix: set layout: rocketmq")
	f(LayoutKafka, brokers, "holds a Kafka log.dir in kafka/", "fix: point path at "+kafkaDir)
	f(LayoutKafka, filepath.Join(brokers, "rocketmq"), "holds a RocketMQ store in store/", "set layout: rocketmq and point path at "+store)

	// Something else entirely.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f(LayoutRocketMQ, other, "no commitlog/, consumequeue/ or index/ directory", "fix: point path at the directory the broker's storePathRootDir names")
	f(LayoutKafka, other, "no meta.properties, no checkpoint file and no <topic>-<partition> directory")
	f(LayoutKafka, filepath.Join(other, "notes.txt"), "is not a directory")
	f(LayoutKafka, filepath.Join(other, "missing"), "does not exist", "fix: point path at the broker's log.dir")

	err = Recognize(LayoutKafka, store)
	var me *MismatchError
	if !errors.Is(err, ErrWrongLayout) || !errors.As(err, &me) || me.Layout != LayoutKafka || me.Root != store {
		t.Fatalf("Recognize error %#v: want a *MismatchError wrapping ErrWrongLayout", err)
	}
	l, err := NewLayout(LayoutRocketMQ, LayoutOptions{Source: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := l.Scan(context.Background(), kafkaDir); !errors.Is(err, ErrWrongLayout) {
		t.Fatalf("rocketmq Scan of a Kafka log.dir = %+v, %v; want ErrWrongLayout", res, err)
	}
	if err := Recognize(LayoutKafka, filepath.Join(other, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing path: %v does not wrap fs.ErrNotExist", err)
	}
}

// TestKafkaGroups: the files of a Kafka segment share its group; a producer snapshot
// joins the segment its offset falls in; RocketMQ files are units by themselves.
func TestKafkaGroups(t *testing.T) {
	spec := treeSpec{opts: LayoutOptions{Source: "s"}, lines: []string{
		"x: file t-0/00000000000000000003.snapshot 10",
		"x: file t-0/00000000000000000005.log 100",
		"x: file t-0/00000000000000000005.index 8",
		"x: file t-0/00000000000000000005.timeindex 12",
		"x: file t-0/00000000000000000005.txnindex 34",
		"x: file t-0/00000000000000000005.snapshot 10",
		"x: file t-0/00000000000000000007.snapshot 10",
		"x: file t-0/00000000000000000010.log 100",
		"x: file t-0/00000000000000000010.snapshot 10",
	}}
	root := spec.build(t)
	l, err := NewLayout(LayoutKafka, spec.opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Scan(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range res.Candidates() {
		got = append(got, c.Rel+"="+c.GroupName())
	}
	want := []string{
		"t-0/00000000000000000003.snapshot=t-0/00000000000000000003.snapshot",
		"t-0/00000000000000000005.log=t-0/00000000000000000005",
		"t-0/00000000000000000005.index=t-0/00000000000000000005",
		"t-0/00000000000000000005.timeindex=t-0/00000000000000000005",
		"t-0/00000000000000000005.txnindex=t-0/00000000000000000005",
		"t-0/00000000000000000005.snapshot=t-0/00000000000000000005",
		"t-0/00000000000000000007.snapshot=t-0/00000000000000000005",
		"t-0/00000000000000000010.log=t-0/00000000000000000010",
		"t-0/00000000000000000010.snapshot=t-0/00000000000000000010",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("groups:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
