// Command hitter reaches one failpoint; TestBuilds builds it with and without the tag.
package main

import "github.com/tierd/tierd/internal/failpoint"

func main() { failpoint.Hit("hitter.main") }
