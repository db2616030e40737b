// Package failpoint lets the crash tests kill tierd at a named point of its pipeline
// (between Commit and the catalog write, say), which random kills hit only by luck.
//
// Failpoints exist only in a binary built with the build tag failpoint (go build -tags
// failpoint; the reliability tests build tierd so). There it is armed by the environment
// variable TIERD_FAILPOINT=name[:n]: the n-th time (default the first) the process reaches
// Hit(name), it sends itself SIGKILL — no deferred calls, no flushing, exactly like a
// crash; unarmed, Hit costs one load of a bool. In every other build (releases, go test
// without the tag) Hit is an empty function the compiler removes, nothing reads the
// environment variable, and a release binary cannot be killed through it.
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

// EnvVar is the variable that arms a failpoint in a binary built with -tags failpoint.
const EnvVar = "TIERD_FAILPOINT"
