// Package failpoint lets the crash tests kill tierd at a named point of its pipeline
// (between Commit and the catalog write, say), which random kills hit only by luck.
//
// It is armed by the environment variable TIERD_FAILPOINT=name[:n]: the n-th time (default
// the first) the process reaches Hit(name), it sends itself SIGKILL — no deferred calls,
// no flushing, exactly like a crash. Unarmed, Hit costs one load of a bool.
//
// The points, named "<package>.<point>", each one line in the code:
//
//	daemon.created              an offload's tier Writer was created (nothing written yet)
//	daemon.read_chunk           a chunk of the local file was read for a raw copy (n-th read: mid-copy)
//	daemon.committed            the object was committed, not yet verified
//	daemon.verified             the object was verified (size, CRC-32C), its marker not yet written
//	daemon.marked               the marker was written, the catalog record not yet committed
//	daemon.tier_copy_committed  a tier-to-tier copy was committed, not yet verified
//	daemon.tier_copy_marked     a tier-to-tier copy's marker was written, not yet recorded
//	daemon.local_deleted        a local segment was deleted by policy, its directory not yet fsynced
//	daemon.expire_unmarked      an expiring object's marker was deleted, the object not yet
//	daemon.expire_deleted       an expiring object was deleted, its catalog record not yet
//	s3.upload_created           a multipart upload was created, its id not yet journaled
//	s3.upload_journaled         a multipart upload's id was journaled, no part sent yet
//	s3.part_uploaded            a part was uploaded (n-th part: mid-upload)
//	s3.completing               every part is uploaded, CompleteMultipartUpload not yet sent
//	compactor.counted           an IndexFile's counting pass is done, the output not yet created
//	compactor.window_written    a window of compacted output was written to the tier Writer
//	posix.synced                a posix object's temp file is written and fsynced, not yet linked
//	posix.temp_linked           an overwrite's new file is linked under a temp name, not yet renamed
//
// The crash tests (package reliability) arm them one at a time.
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
