//go:build !unix

package source

import "testing"

func mkfifo(t *testing.T, path string) {
	t.Helper()
	t.Skip("named pipes need unix")
}
