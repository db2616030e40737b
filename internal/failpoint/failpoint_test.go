//go:build failpoint

package failpoint

import "testing"

func TestHit(t *testing.T) {
	killed := 0
	kill = func() { killed++ }
	f := func(spec string, hits []string, want int) {
		t.Helper()
		killed = 0
		arm(spec)
		for _, h := range hits {
			Hit(h)
		}
		if killed != want {
			t.Fatalf("spec %q, hits %v: killed %d times, want %d", spec, hits, killed, want)
		}
	}
	f("", []string{"a", "a"}, 0)
	f("a", []string{"b", "a", "a"}, 1)
	f("a:3", []string{"a", "a", "b", "a", "a"}, 1)
	f("a:3", []string{"a", "a"}, 0)
	f("a:0", []string{"a"}, 0)
	f("a:x", []string{"a"}, 0)
	arm("")
}
