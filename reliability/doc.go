// Package reliability holds tierd's reliability tests: they try to lose data and fail to.
//
// The tests drive the real tierd binary (built once by TestMain) against real tiers — a
// posix directory and a MinIO server (devtools/miniotest) — while devtools/brokersim
// keeps writing a broker store, and they:
//   - kill tierd with SIGKILL at random moments and at named failpoints
//     (internal/failpoint: mid-upload, mid-compaction, between Commit and the catalog
//     write, ...), restart it, and check after every restart and at the end that no
//     sealed segment is lost, no torn object is visible, the catalog agrees with the
//     tiers, nothing local was deleted without a verified copy, and no temp file or
//     incomplete multipart upload is left (TestCrash, -kills N);
//   - stop the object store mid-upload for several retry intervals (TestObjectStoreOutage);
//   - fill a posix tier on a small tmpfs (TestFullTier);
//   - put truncated, empty, wrong-size, random and looping files in the broker directory,
//     and delete or truncate segments while tierd reads them (TestBadInput);
//   - (segments of the mmap tier deleted and truncated under concurrent readers are
//     posix's TestMappedReaderCloseRace and TestMappedReaderTruncated, under -race);
//   - grep every log and --json output for the S3 secret, check where the HTTP endpoint
//     listens, and run against MinIO over TLS with a custom CA (TestSecurity).
//
// Every test prints its seed; `go test ./reliability -run TestCrash -kills 200 -seed S`
// reproduces a run (`make reliability` runs 200 kills). The package has no non-test code.
package reliability
