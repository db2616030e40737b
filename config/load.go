package config

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Example is the annotated reference configuration: every key with its default and a
// one-line comment. It parses and validates once TIERD_S3_ACCESS_KEY and
// TIERD_S3_SECRET_KEY are set.
//
//go:embed example.yaml
var Example []byte

// maxFileSize bounds a configuration file. Anything larger is not a tierd config (a
// segment file given by mistake, say), and is refused before it is parsed.
const maxFileSize = 1 << 20

// Load reads the YAML file at path and parses it as Parse does, with variables from the
// process environment. Problems with the contents come back as an *Error whose File is
// path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("load config: read %s: %w", path, err)
	}
	c, err := Parse(data, os.LookupEnv)
	var e *Error
	if errors.As(err, &e) {
		e.File = path
	}
	return c, err
}

// Parse decodes a YAML configuration strictly, expands ${VAR} and ${VAR:-default} in
// scalar values with lookupEnv (nil: no variables are set), applies defaults and
// validates the result. On any problem it returns a nil Config and an *Error holding
// every problem found, each with its field path and line. It never panics.
func Parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	if len(data) > maxFileSize {
		return nil, newError([]Problem{{Msg: fmt.Sprintf("larger than %d bytes: not a tierd config", maxFileSize)}})
	}
	root, p := parseYAML(data)
	if p != nil {
		return nil, newError([]Problem{*p})
	}
	d := &decoder{lookupEnv: lookupEnv, lines: map[string]int{}}
	c := defaultConfig()
	if root != nil {
		d.lines[""] = root.Line
		d.decode("", root, reflect.ValueOf(c).Elem())
	}
	c.finish()
	problems := d.problems
	// A field with a decoding problem keeps its default or zero value; Validate's opinion
	// of that value would only repeat the problem.
	bad := map[string]bool{}
	for _, p := range problems {
		bad[p.Path] = true
	}
	for _, p := range c.validate(d.lines) {
		if !bad[p.Path] {
			problems = append(problems, p)
		}
	}
	if err := newError(problems); err != nil {
		return nil, err
	}
	return c, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses the first document of data into a node tree, refusing a second
// document. The root is nil for an empty document.
func parseYAML(data []byte) (root *yaml.Node, p *Problem) {
	defer func() {
		// yaml.v3 is meant to return errors, not panic; should a corner of it panic
		// anyway, the input is still only a bad config.
		if r := recover(); r != nil {
			root, p = nil, &Problem{Msg: fmt.Sprintf("yaml: cannot parse: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlProblem(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Problem{Line: next.Line, Msg: "a second YAML document (---): a config is one document"}
	case !errors.Is(err, io.EOF):
		return nil, yamlProblem(err)
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return nil, nil
}

func yamlProblem(err error) *Problem {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Problem{Line: line, Msg: "yaml: " + m[2]}
	}
	return &Problem{Msg: msg}
}
