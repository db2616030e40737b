package reliability

import (
	"debug/buildinfo"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	flagKills   = flag.Int("kills", 20, "SIGKILLs TestCrash inflicts on tierd (make reliability: 200)")
	flagOutages = flag.Int("outages", 2, "object-store outages TestObjectStoreOutage inflicts")
	flagSeed    = flag.Uint64("seed", 0, "seed of every random choice (0: from the clock); printed by each test")
	flagRace    = flag.Bool("tierd-race", false, "build the tierd binary with the race detector (slower; any race fails the test)")
)

// tierdBin is the tierd binary TestMain built.
var tierdBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "tierd-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(1)
	}
	tierdBin = filepath.Join(dir, "tierd")
	// The failpoint tag compiles in the hooks the crash tests arm (TIERD_FAILPOINT).
	args := []string{"build", "-tags", "failpoint", "-o", tierdBin}
	if *flagRace {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/tierd/tierd/cmd/tierd")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "reliability: build tierd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	if err := checkFailpointBuild(tierdBin); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "reliability: built tierd in %s (race detector: %t)\n", time.Since(start).Round(time.Millisecond), *flagRace)
	code := m.Run()
	os.RemoveAll(dir)
	fmt.Fprintln(os.Stderr, tally.summary())
	os.Exit(code)
}

// seed returns the seed of one test, derived from -seed (or the clock), and prints how to
// reproduce the run when the test fails.
func seed(t *testing.T) uint64 {
	t.Helper()
	s := *flagSeed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d", s)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce: go test ./reliability -run '^%s$' -kills %d -outages %d -seed %d", t.Name(), *flagKills, *flagOutages, s)
		}
	})
	return s
}

// tally counts what the tests inflicted and found, for the closing summary.
var tally = &counts{fired: map[string]int{}}

type counts struct {
	mu         sync.Mutex
	kills      int            // SIGKILLs survived (followed by a clean recovery)
	fired      map[string]int // kills by failpoint (the rest were at random moments)
	outages    int            // object-store outages survived
	badInputs  int            // bad inputs tried
	lost       int            // sealed segments neither local nor on any tier
	orphans    int            // objects or markers without a record, records without an object
	segments   int            // distinct segments checked on the tiers at the end of a test
	incomplete int            // multipart uploads and temp files left after reconcile and reap
	scenarios  []string       // fault scenarios' and outages' counts (TestFlakyStore, TestLongOutage)
}

func (c *counts) add(f func(c *counts)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

func (c *counts) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var fp []string
	inBatch := 0
	for name, n := range c.fired {
		fp = append(fp, fmt.Sprintf("%s=%d", name, n))
		if strings.HasPrefix(name, "daemon.batch_") {
			inBatch += n
		}
	}
	sort.Strings(fp)
	sum := fmt.Sprintf("reliability: kills survived %d (at failpoints: %s; inside a batch of small segments: %d), outages survived %d, bad inputs tried %d, "+
		"segments checked %d, segments lost %d, orphans left %d, temp files and incomplete uploads left %d",
		c.kills, strings.Join(fp, " "), inBatch, c.outages, c.badInputs, c.segments, c.lost, c.orphans, c.incomplete)
	for _, s := range c.scenarios {
		sum += "\nreliability: " + s
	}
	return sum
}

// checkFailpointBuild makes sure bin was built with the failpoint tag: without it every
// armed failpoint would be ignored and the crash tests would test nothing.
func checkFailpointBuild(bin string) error {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("cannot read the build info of %q: %w", bin, err)
	}
	for _, s := range info.Settings {
		if s.Key == "-tags" && slices.Contains(strings.Split(s.Value, ","), "failpoint") {
			return nil
		}
	}
	return fmt.Errorf("%s was built without -tags failpoint", bin)
}
