// Package bench measures tierd against its peers on the machine it runs on: the posix
// tier in each write mode against dd, the S3 tier with each driver against mc (and rclone
// when installed), compaction of RocketMQ IndexFiles against dd reading and writing the
// same bytes, a memory soak of the seeds' scenario next to a deliberately naive
// offloader, and tierd's binary over stores of many small files (Scale: scan against find,
// run --once against rsync, an idle daemon's peak RSS and CPU per scan). It is the one source of truth for these measurements: the `go test -bench`
// entry points in posix/, s3/ and compactor/ and the report generator
// (devtools/benchreport, `make bench-report`) call the same functions and get the same
// structured results back.
//
// What it promises about the numbers:
//   - Every measured tierd operation runs in a child process of its own (the running
//     executable again, see MaybeChild), so its peak RSS (the kernel's maxrss, which counts
//     every page the pool touched) and CPU time (user + system) are that operation's alone,
//     measured the way they are for dd, mc and rclone.
//   - Baselines run in the same run on the same files, interleaved with the contenders and
//     in an order rotated every run; figures are medians of the runs, and ratios are taken
//     against the baseline's median from the same run.
//   - Every source read starts cold (the file is dropped from the page cache first), and
//     the page-cache residency of the source and destination (mincore) is measured after
//     every run.
//   - Nothing is left behind: tier copies and uploaded objects are deleted after each
//     measurement; only the generated source files are kept in the bench directory for
//     later runs.
package bench
