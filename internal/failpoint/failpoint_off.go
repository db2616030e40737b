//go:build !failpoint

package failpoint

// Enabled says the binary was built with the failpoint tag.
const Enabled = false

// Hit does nothing: failpoints are compiled in only with the build tag failpoint.
func Hit(string) {}
