//go:build failpoint

package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Enabled says the binary was built with the failpoint tag.
const Enabled = true

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
