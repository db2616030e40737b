package tierd_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the module path every package of the repository starts with.
const module = "github.com/tierd/tierd"

// layers gives every product package of the repository its layer (ARCHITECTURE.md draws
// the same map). A package's non-test files may import only packages of a lower layer:
//
//	cmd -> daemon -> source, compactor, catalog -> tiers (posix, s3), their wrappers
//	(codec, throttle) and localfile -> segment, index, record -> bufpool, config and the
//	runtime helpers
//
// Within a layer the numbers order the few arrows that exist (index reads record; the
// posix tier reads its objects with localfile). A new package must be added here, at the
// layer its imports and its importers say, and to ARCHITECTURE.md.
var layers = map[string]int{
	"bufpool":             10,
	"config":              10,
	"internal/buildinfo":  10,
	"internal/failpoint":  10,
	"internal/pacing":     10,
	"record":              20,
	"segment":             20,
	"index":               21,
	"segment/segmenttest": 22,
	"internal/throttle":   25,
	"codec":               30,
	"localfile":           30,
	"s3":                  30,
	"posix":               31,
	"catalog":             40,
	"compactor":           40,
	"source":              40,
	"daemon":              50,
	"cmd/":                60, // every command
	"reliability":         70, // tests of the whole, nothing imports them
	"deploy":              70,
}

// devtools is the folder of development tools (benchmarks, the bench report, the broker
// simulator, the MinIO harness). They may import any product package but a command; no
// product package imports them outside its _test.go files.
const devtools = "devtools/"

// pkgImports is what `go list -json` says about one package.
type pkgImports struct {
	ImportPath   string
	Imports      []string // of its non-test files
	TestImports  []string // of its _test.go files in the package
	XTestImports []string // of its _test.go files in package X_test
}

// layerOf returns rel's layer and whether the table knows rel (a path relative to the
// module, "" for the module's root).
func layerOf(rel string) (int, bool) {
	if l, ok := layers[rel]; ok {
		return l, true
	}
	for prefix, l := range layers {
		if strings.HasSuffix(prefix, "/") && strings.HasPrefix(rel, prefix) {
			return l, true
		}
	}
	return 0, false
}

// violations returns every forbidden arrow of pkgs, one line each, sorted.
func violations(pkgs []pkgImports) []string {
	var out []string
	for _, p := range pkgs {
		from, ok := strings.CutPrefix(p.ImportPath, module+"/")
		if !ok {
			if p.ImportPath == module {
				from = "" // the module's root: this test
			} else {
				continue
			}
		}
		isDev := strings.HasPrefix(from, devtools)
		fromLayer, known := layerOf(from)
		if !known && !isDev && from != "" {
			out = append(out, fmt.Sprintf("%s: a package the layer table does not know: add it to layers in arch_test.go and to ARCHITECTURE.md", from))
			continue
		}
		check := func(imps []string, test bool) {
			for _, imp := range imps {
				to, ok := strings.CutPrefix(imp, module+"/")
				if !ok {
					continue
				}
				what := "imports"
				if test {
					what = "imports in a _test.go file"
				}
				switch {
				case strings.HasPrefix(to, "cmd/"):
					out = append(out, fmt.Sprintf("%s %s %s: nothing imports a command", from, what, to))
				case test:
					// Tests may use any package but a command: tiers' tests use the
					// conformance suite, product tests use the dev tools.
				case strings.HasPrefix(to, devtools):
					if !isDev {
						out = append(out, fmt.Sprintf("%s imports %s: a product package never imports a dev tool outside its _test.go files", from, to))
					}
				case isDev:
					// A dev tool may import any product package but a command.
				default:
					toLayer, known := layerOf(to)
					switch {
					case !known:
						out = append(out, fmt.Sprintf("%s imports %s, a package the layer table does not know", from, to))
					case toLayer >= fromLayer:
						out = append(out, fmt.Sprintf("%s (layer %d) imports %s (layer %d): arrows only go down (see ARCHITECTURE.md)", from, fromLayer, to, toLayer))
					}
				}
			}
		}
		check(p.Imports, false)
		check(p.TestImports, true)
		check(p.XTestImports, true)
	}
	slices.Sort(out)
	return out
}

// listPackages runs `go list -json ./...` in the module's root.
func listPackages(t *testing.T) []pkgImports {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []pkgImports
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkgImports
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < len(layers) {
		t.Fatalf("go list found %d packages, fewer than the layer table's %d", len(pkgs), len(layers))
	}
	return pkgs
}

// TestImportArrows fails on any import that goes against the package map.
func TestImportArrows(t *testing.T) {
	for _, v := range violations(listPackages(t)) {
		t.Error(v)
	}
}

// TestImportArrowsCatches shows that every rule fires: a synthetic graph with one
// forbidden arrow of each kind, and the real shapes that are allowed.
func TestImportArrowsCatches(t *testing.T) {
	m := func(rel string) string { return module + "/" + rel }
	graph := []pkgImports{
		// Allowed: down the layers, a dev tool importing product code, tests using
		// the dev tools and the conformance suite.
		{ImportPath: m("cmd/tierd"), Imports: []string{m("daemon"), m("posix"), m("s3"), "fmt"}},
		{ImportPath: m("daemon"), Imports: []string{m("source"), m("localfile"), m("segment")}, XTestImports: []string{m("posix"), m("devtools/brokersim")}},
		{ImportPath: m("posix"), Imports: []string{m("localfile"), m("segment")}, TestImports: []string{m("segment/segmenttest")}},
		{ImportPath: m("devtools/bench"), Imports: []string{m("posix"), m("s3"), m("compactor"), m("devtools/miniotest")}},
		// Forbidden.
		{ImportPath: m("posix"), Imports: []string{m("daemon")}},             // a tier importing the daemon
		{ImportPath: m("segment"), Imports: []string{m("source")}},           // up a layer
		{ImportPath: m("localfile"), Imports: []string{m("posix")}},          // sideways, the wrong way
		{ImportPath: m("compactor"), Imports: []string{m("devtools/bench")}}, // product -> dev tool
		{ImportPath: m("devtools/bench"), Imports: []string{m("cmd/tierd")}}, // anything -> cmd
		{ImportPath: m("s3"), XTestImports: []string{m("cmd/tierd")}},        // even from a test
		{ImportPath: m("newpkg"), Imports: []string{m("segment")}},           // not in the table
		{ImportPath: m("catalog"), Imports: []string{m("unknownpkg")}},       // importing one not in the table
	}
	got := violations(graph)
	want := []string{
		"catalog imports unknownpkg, a package the layer table does not know",
		"compactor imports devtools/bench: a product package never imports a dev tool outside its _test.go files",
		"devtools/bench imports cmd/tierd: nothing imports a command",
		"localfile (layer 30) imports posix (layer 31): arrows only go down (see ARCHITECTURE.md)",
		"newpkg: a package the layer table does not know: add it to layers in arch_test.go and to ARCHITECTURE.md",
		"posix (layer 31) imports daemon (layer 50): arrows only go down (see ARCHITECTURE.md)",
		"s3 imports in a _test.go file cmd/tierd: nothing imports a command",
		"segment (layer 20) imports source (layer 40): arrows only go down (see ARCHITECTURE.md)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
