package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/config"
)

var update = flag.Bool("update", false, "rewrite the generated sections of README.md")

// TestREADME keeps the README's configuration and CLI references identical to the
// embedded example config and the commands' own help. `go test ./cmd/tierd -run README
// -update` rewrites them.
func TestREADME(t *testing.T) {
	const path = "../../README.md"
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := replaceSection(t, readme, "CONFIG", "```yaml\n"+string(config.Example)+"```\n")
	got = replaceSection(t, got, "CLI", cliReference(newRoot()))
	if bytes.Equal(got, readme) {
		return
	}
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("README.md's generated sections are stale: run go test ./cmd/tierd -run README -update")
}

func replaceSection(t *testing.T, doc []byte, name, body string) []byte {
	t.Helper()
	begin, end := "<!-- BEGIN "+name+" (generated) -->\n", "<!-- END "+name+" -->"
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("README.md has no %s section markers", name)
	}
	var b bytes.Buffer
	b.Write(doc[:i+len(begin)])
	b.WriteString(body)
	b.Write(doc[j:])
	return b.Bytes()
}

// cliReference renders every visible subcommand: usage, description and flags.
func cliReference(root *cobra.Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Global flags:\n\n```\n%s```\n\n", root.PersistentFlags().FlagUsages())
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			if sub.Runnable() {
				title := strings.TrimPrefix(sub.CommandPath(), "tierd ")
				if args := strings.TrimSpace(strings.TrimPrefix(sub.Use, sub.Name())); args != "" {
					title += " " + args
				}
				fmt.Fprintf(&b, "### `%s`\n\n", title)
				desc := sub.Long
				if desc == "" {
					desc = sub.Short + "."
				}
				fmt.Fprintf(&b, "%s\n\n", desc)
				if fl := sub.LocalFlags().FlagUsages(); fl != "" {
					fmt.Fprintf(&b, "```\n%s```\n\n", fl)
				}
			}
			walk(sub)
		}
	}
	walk(root)
	return b.String()
}
