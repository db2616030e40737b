package source

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrWrongLayout is wrapped by the error a Layout's Scan returns when its root does not
// look like a directory of that layout (a RocketMQ source pointed at the store's parent
// or at a Kafka log.dir, a Kafka source pointed at one partition directory). Such a scan
// finds no segment: without the error the mistake would look like an idle broker.
var ErrWrongLayout = errors.New("source path does not look like its layout")

// MismatchError says why a source directory does not look like its layout, and what to
// change.
type MismatchError struct {
	Layout string // the configured layout
	Root   string // the configured path, absolute
	Why    string // what was found instead
	Fix    string // the change that would make it right
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s is not a %s: %s; fix: %s", e.Root, layoutWhat(e.Layout), e.Why, e.Fix)
}

// Unwrap makes errors.Is(err, ErrWrongLayout) true.
func (e *MismatchError) Unwrap() error { return ErrWrongLayout }

func layoutWhat(layout string) string {
	if layout == LayoutKafka {
		return "Kafka log.dir"
	}
	return "RocketMQ store (storePathRootDir)"
}

// Recognize checks that root looks like a directory of the named layout. It returns nil
// when it does, and also for an empty directory (a broker that has not started yet
// writes nothing). A root that cannot be read gives an error that says what to check; a
// directory of the wrong kind gives a *MismatchError naming the fix. It only lists root
// and, when root looks wrong, its subdirectories: it never reads a file.
//
// A RocketMQ store has at least one of commitlog/, consumequeue/ and index/, or only the
// broker's own files (checkpoint, abort, lock, config/). A Kafka log.dir has
// meta.properties, a *-checkpoint file or a <topic>-<partition> directory.
func Recognize(layout, root string) error {
	abs, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("source path %q: %w", root, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("source path %s does not exist: %w (fix: point path at the broker's %s, or create it)", abs, err, dirWhat(layout))
	case err != nil:
		return fmt.Errorf("source path %s: %w (fix: let tierd's user read it)", abs, err)
	case !fi.IsDir():
		return fmt.Errorf("source path %s is not a directory (fix: point path at the broker's %s)", abs, dirWhat(layout))
	}
	d, err := look(abs)
	if err != nil {
		return fmt.Errorf("source path %s: cannot list: %w (fix: let tierd's user read it)", abs, err)
	}
	mismatch := func(why, fix string) error {
		return &MismatchError{Layout: layout, Root: abs, Why: why, Fix: fix}
	}
	switch layout {
	case LayoutRocketMQ:
		switch {
		case d.rocketMQ() || d.empty():
			return nil
		case d.kafka():
			return mismatch("it is a Kafka log.dir ("+d.kafkaSign()+")", "set layout: kafka")
		case d.partition():
			return mismatch("it is a Kafka partition directory", "set layout: kafka and point path at its parent, "+filepath.Dir(abs))
		case d.offsetFiles > 0 && rocketMQOwned(filepath.Base(abs)):
			return mismatch("it is the store's "+filepath.Base(abs)+"/ directory", "point path at the store root, "+filepath.Dir(abs))
		}
		if sub := d.childWith(abs, (*dirLook).rocketMQ); sub != "" {
			return mismatch("it holds a RocketMQ store in "+filepath.Base(sub)+"/", "point path at "+sub)
		}
		if sub := d.childWith(abs, (*dirLook).kafka); sub != "" {
			return mismatch("it holds a Kafka log.dir in "+filepath.Base(sub)+"/", "set layout: kafka and point path at "+sub)
		}
		return mismatch("no commitlog/, consumequeue/ or index/ directory", "point path at the directory the broker's storePathRootDir names (it holds commitlog/)")
	case LayoutKafka:
		switch {
		case d.partition():
			return mismatch("it is one partition directory ("+filepath.Base(abs)+")", "point path at the log.dir that holds it, "+filepath.Dir(abs))
		case d.kafka() || d.empty():
			return nil
		case d.rocketMQ():
			return mismatch("it is a RocketMQ store (it has "+d.rocketMQSign()+")", "set layout: rocketmq")
		}
		if sub := d.childWith(abs, (*dirLook).kafka); sub != "" {
			return mismatch("it holds a Kafka log.dir in "+filepath.Base(sub)+"/", "point path at "+sub)
		}
		if sub := d.childWith(abs, (*dirLook).rocketMQ); sub != "" {
			return mismatch("it holds a RocketMQ store in "+filepath.Base(sub)+"/", "set layout: rocketmq and point path at "+sub)
		}
		return mismatch("no meta.properties, no checkpoint file and no <topic>-<partition> directory", "point path at a directory of the broker's log.dirs")
	}
	return fmt.Errorf("unknown layout %q (want %q or %q)", layout, LayoutRocketMQ, LayoutKafka)
}

func dirWhat(layout string) string {
	if layout == LayoutKafka {
		return "log.dir"
	}
	return "store (storePathRootDir)"
}

// rocketMQOwned reports whether name is one of the directories a RocketMQ store owns.
func rocketMQOwned(name string) bool {
	return name == "commitlog" || name == "consumequeue" || name == "index"
}

// dirLook is what Recognize saw in one directory listing.
type dirLook struct {
	entries     int
	dirs        []string // subdirectory names
	owned       []string // commitlog, consumequeue, index (directories)
	rmqFiles    int      // checkpoint, abort, lock, config/
	kafkaFiles  []string // meta.properties, *-checkpoint, bootstrap.checkpoint
	partitions  int      // <topic>-<partition> subdirectories
	kafkaSeg    int      // <20 digits>.log/.index/... files, leader-epoch-checkpoint, partition.metadata
	offsetFiles int      // files named by 20 digits (RocketMQ commit log or consume queue files)
}

// look lists dir (hidden entries left out) and classifies its entries.
func look(dir string) (*dirLook, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	d := &dirLook{}
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") || name == "lost+found" {
			continue
		}
		d.entries++
		isDir := de.IsDir()
		if de.Type()&fs.ModeSymlink != 0 {
			if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.IsDir() {
				isDir = true
			}
		}
		switch {
		case isDir && rocketMQOwned(name):
			d.owned = append(d.owned, name)
		case name == "checkpoint" || name == "abort" || name == "lock" || (isDir && name == "config"):
			d.rmqFiles++
		case !isDir && (name == "meta.properties" || strings.HasSuffix(name, "-checkpoint") || name == "bootstrap.checkpoint"):
			if name == "leader-epoch-checkpoint" {
				d.kafkaSeg++
			} else {
				d.kafkaFiles = append(d.kafkaFiles, name)
			}
		case !isDir && name == "partition.metadata":
			d.kafkaSeg++
		case !isDir:
			if _, _, ok := parseKafkaFile(name); ok {
				d.kafkaSeg++
			} else if _, ok := parseDigits(name, 20); ok {
				d.offsetFiles++
			}
		}
		if isDir {
			d.dirs = append(d.dirs, name)
			if _, _, ok := parsePartitionDir(name); ok && !hasAnySuffix(name, kafkaBusyDirSuffixes) {
				d.partitions++
			}
		}
	}
	return d, nil
}

func (d *dirLook) empty() bool { return d.entries == 0 }

// rocketMQ: an owned directory, or nothing but the broker's own files.
func (d *dirLook) rocketMQ() bool {
	return len(d.owned) > 0 || (d.rmqFiles > 0 && d.rmqFiles == d.entries)
}

func (d *dirLook) rocketMQSign() string {
	if len(d.owned) > 0 {
		return strings.Join(d.owned, "/, ") + "/"
	}
	return "checkpoint, abort or lock"
}

// kafka: the log.dir's own files, or partition directories. A partition directory's own
// files (a Kafka source pointed one level too deep) do not count.
func (d *dirLook) kafka() bool {
	return (len(d.kafkaFiles) > 0 || d.partitions > 0) && d.kafkaSeg == 0
}

func (d *dirLook) kafkaSign() string {
	if len(d.kafkaFiles) > 0 {
		return "it has " + d.kafkaFiles[0]
	}
	return "it has <topic>-<partition> directories"
}

// partition: segment files or a partition's own files directly inside.
func (d *dirLook) partition() bool { return d.kafkaSeg > 0 }

// childWith returns the first subdirectory of dir (in name order) that is, by is, or "".
// At most the first 64 subdirectories are looked at.
func (d *dirLook) childWith(dir string, is func(*dirLook) bool) string {
	for i, name := range d.dirs {
		if i == 64 {
			break
		}
		sub := filepath.Join(dir, name)
		if c, err := look(sub); err == nil && !c.empty() && is(c) {
			return sub
		}
	}
	return ""
}
