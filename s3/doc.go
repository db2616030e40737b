// Package s3 is the segment.Backend of S3-compatible object storage (AWS S3, MinIO).
//
// Two drivers speak the protocol — "aws" (aws-sdk-go-v2) and "minio" (minio-go) — behind a
// small internal interface; everything else is shared and written once: key prefixing,
// multipart planning, CRC-32C, rate and concurrency limits, error mapping and the reaper.
//
// What it promises, beyond the segment.Backend contract:
//   - Memory: no upload ever hands an SDK a reader of unknown length, nor lets an SDK buffer
//     parts. Parts pulled by WriteFrom stream straight from the source (an io.SectionReader
//     per part, read exactly once); parts pushed through Write travel in bufpool buffers.
//     The only per-request memory is the SDKs' own small (≤ 64 KiB) copy buffers.
//   - Integrity: every part and every single PUT carries its CRC-32C as a trailing
//     checksum (unsigned payload, so the body is read once), and multipart uploads are
//     created with a FULL_OBJECT CRC-32C that the server checks against the parts at
//     Complete. Stat returns that whole-object CRC-32C; for foreign objects that lack one
//     it computes it by a streamed read.
//   - Visibility: nothing is visible before Commit (CompleteMultipartUpload or the single
//     PUT of a small object). Abort aborts the multipart upload; an abort that fails (server
//     down) is remembered and retried by Reap, which also aborts stale uploads under the
//     node's prefix.
//   - Secrets (access key, secret key, session token) never appear in logs, errors or
//     Config's String form.
package s3
