// Package miniotest runs a real MinIO server, for tests and for the benchmark tools: on
// loopback, on a free port, with its data in a directory of its own, a bucket made.
// StartWith(t) ties the server to a test (stopped and removed when the test finishes);
// Launch does the same for a program, which stops it with Close. Stop and Restart (same
// port and data) let tests simulate outages; TLS with a generated CA is optional. It also
// runs the MinIO client (mc) against the server.
//
// The server binary is $TIERD_MINIO_BIN, else "minio" on PATH, else $(go env
// GOPATH)/bin/minio (`make tools` installs it there). Without one, Launch fails with
// ErrNoBinary and StartWith skips its test — except under CI=true, where a missing server
// fails it.
package miniotest
