// Package failpoint lets the crash tests kill tierd at a named point of its pipeline
// (between Commit and the catalog write, say), which random kills hit only by luck.
//
// It is armed by the environment variable TIERD_FAILPOINT=name[:n]: the n-th time (default
// the first) the process reaches Hit(name), it sends itself SIGKILL — no deferred calls,
// no flushing, exactly like a crash. Unarmed, Hit costs one load of a bool.
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// EnvVar is the variable that arms a failpoint.
const EnvVar = "TIERD_FAILPOINT"

var (
	armed  bool
	target string
	nth    int64
	hits   atomic.Int64
)

func init() { arm(os.Getenv(EnvVar)) }

func arm(spec string) {
	armed, target, nth = false, "", 1
	hits.Store(0)
	if spec == "" {
		return
	}
	name, count, found := strings.Cut(spec, ":")
	if found {
		n, err := strconv.ParseInt(count, 10, 64)
		if err != nil || n < 1 {
			return
		}
		nth = n
	}
	armed, target = true, name
}

// kill ends the process the way a crash would; tests replace it.
var kill = func() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is delivered before this returns in practice
}

// Hit marks that the process reached the point name.
func Hit(name string) {
	if !armed || name != target {
		return
	}
	if hits.Add(1) == nth {
		kill()
	}
}
