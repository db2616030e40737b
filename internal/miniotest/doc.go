// Package miniotest runs a real MinIO server for tests: on loopback, on a free port, with
// its data in the test's temporary directory, a bucket made, and the server stopped at
// cleanup. Stop and Restart (same port and data) let tests simulate outages; TLS with a
// generated CA is optional. It also runs the MinIO client (mc) against the server.
//
// The server binary is $TIERD_MINIO_BIN, else "minio" on PATH, else $(go env
// GOPATH)/bin/minio (the Makefile's `make test` installs it there). Without one, tests
// are skipped — except under CI=true, where a missing server fails them.
package miniotest
