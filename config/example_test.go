package config

import (
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var exampleEnv = envMap(map[string]string{"TIERD_S3_ACCESS_KEY": "AKIAIOSFODNN7EXAMPLE", "TIERD_S3_SECRET_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"})

func TestExample(t *testing.T) {
	c := mustParse(t, string(Example), exampleEnv)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Sources) != 2 || len(c.Tiers) != 2 || c.Tiers[1].S3.SecretKey.Reveal() != "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" {
		t.Fatalf("example: %s", jsonOf(t, c))
	}
	// Without its variables the example names exactly what is missing.
	ps := problems(t, string(Example), noEnv)
	if len(ps) != 2 || ps[0].Path != "tiers[1].access_key" || ps[1].Path != "tiers[1].secret_key" ||
		!strings.Contains(ps[0].Msg, "TIERD_S3_ACCESS_KEY is not set") {
		t.Fatalf("example without env:\n%s", list(ps))
	}
}

// exampleKey is one key of example.yaml.
type exampleKey struct {
	path    string // "tiers[1].bucket"
	generic string // "tiers[].bucket"
	comment string // its line comment
	leaf    bool   // its value is a scalar
}

// exampleKeys lists every key of the example in document order.
func exampleKeys(t *testing.T, root *yaml.Node) []exampleKey {
	t.Helper()
	var out []exampleKey
	var walk func(path, generic string, n *yaml.Node)
	walk = func(path, generic string, n *yaml.Node) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p, g := join(path, k.Value), join(generic, k.Value)
				out = append(out, exampleKey{p, g, k.LineComment + v.LineComment, v.Kind == yaml.ScalarNode})
				walk(p, g, v)
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				walk(path+"["+strconv.Itoa(i)+"]", generic+"[]", item)
			}
		}
	}
	walk("", "", root)
	return out
}

// schemaKeys lists every key the Config structs accept, as "tiers[].bucket".
func schemaKeys(prefix string, t reflect.Type) []string {
	var out []string
	for _, f := range fields(t) {
		p := join(prefix, f.key)
		out = append(out, p)
		ft := t.FieldByIndex(f.index[:1]).Type
		if f.variant != nil {
			ft = ft.Elem().Field(f.index[1]).Type
		}
		switch {
		case ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(scalarParserType):
			out = append(out, schemaKeys(p, ft)...)
		case ft.Kind() == reflect.Slice:
			out = append(out, schemaKeys(p+"[]", ft.Elem())...)
		}
	}
	return out
}

func exampleRoot(t *testing.T) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(Example, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

var defaultRE = regexp.MustCompile(`^# \(([^)]*)\) \S`)

// Every key of the schema appears in the example, and every leaf key there says its
// default: "(default) what it does", "(required) ..." or "(= derived) ...".
func TestExampleDocumentsEveryKey(t *testing.T) {
	keys := exampleKeys(t, exampleRoot(t))
	seen := map[string]bool{}
	for _, k := range keys {
		seen[k.generic] = true
		if k.leaf && !defaultRE.MatchString(k.comment) {
			t.Errorf("example.yaml: %s: comment %q does not start with (default)", k.path, k.comment)
		}
	}
	schema := schemaKeys("", reflect.TypeFor[Config]())
	for _, k := range schema {
		if !seen[k] {
			t.Errorf("example.yaml does not show %s", k)
		}
	}
	for k := range seen {
		if !slices.Contains(schema, k) {
			t.Errorf("example.yaml shows %s, which the schema lacks", k)
		}
	}
}

// The defaults the example states are the defaults Parse applies, and the keys it marks
// required are the ones whose absence is a problem.
func TestExampleDefaults(t *testing.T) {
	root := exampleRoot(t)
	keys := exampleKeys(t, root)
	// Drop every key that has a stated default; what is left must parse, and each dropped
	// key must come back as its stated default.
	stripped := strip(root, func(comment string) bool {
		m := defaultRE.FindStringSubmatch(comment)
		return m != nil && m[1] != "required"
	})
	out, err := yaml.Marshal(stripped)
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, string(out), noEnv)
	checked := 0
	for _, k := range keys {
		m := defaultRE.FindStringSubmatch(k.comment)
		if m == nil || m[1] == "required" || strings.HasPrefix(m[1], "=") {
			continue
		}
		got := valueAt(t, reflect.ValueOf(c).Elem(), k.path)
		want := reflect.New(got.Type())
		var n yaml.Node
		if err := yaml.Unmarshal([]byte("v: "+m[1]), &n); err != nil {
			t.Fatalf("%s: default %q: %v", k.path, m[1], err)
		}
		d := &decoder{lookupEnv: noEnv, lines: map[string]int{}}
		d.decode(k.path, n.Content[0].Content[1], want.Elem())
		if len(d.problems) > 0 {
			t.Errorf("%s: stated default %q does not parse: %v", k.path, m[1], d.problems)
			continue
		}
		if !reflect.DeepEqual(got.Interface(), want.Elem().Interface()) {
			t.Errorf("%s: example says the default is %s; Parse gives %v", k.path, m[1], got.Interface())
		}
		checked++
	}
	if checked < 40 {
		t.Fatalf("only %d defaults checked", checked)
	}

	// Dropping any one required key is a problem at its path.
	for _, k := range keys {
		if m := defaultRE.FindStringSubmatch(k.comment); m == nil || m[1] != "required" {
			continue
		}
		only := strip(exampleRoot(t), func(comment string) bool { return comment == k.comment })
		out, err := yaml.Marshal(only)
		if err != nil {
			t.Fatal(err)
		}
		ps := problems(t, string(out), exampleEnv)
		found := false
		for _, p := range ps {
			found = found || (p.Path == k.path && (p.Msg == "required" || strings.HasPrefix(p.Msg, "required:") || strings.HasPrefix(p.Msg, "at least one")))
		}
		if !found {
			t.Errorf("dropping required %s gives:\n%s", k.path, list(ps))
		}
	}
}

// strip returns a copy of n without comments and without the mapping keys whose line
// comment drop accepts.
func strip(n *yaml.Node, drop func(comment string) bool) *yaml.Node {
	c := *n
	c.Content = nil
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	for i := 0; i < len(n.Content); i++ {
		if n.Kind == yaml.MappingNode {
			k, v := n.Content[i], n.Content[i+1]
			i++
			if drop(k.LineComment + v.LineComment) {
				continue
			}
			c.Content = append(c.Content, strip(k, drop), strip(v, drop))
			continue
		}
		c.Content = append(c.Content, strip(n.Content[i], drop))
	}
	return &c
}

var pathPartRE = regexp.MustCompile(`^([a-z_]+)(?:\[(\d+)\])?$`)

// valueAt returns the field at a path such as "tiers[1].bucket".
func valueAt(t *testing.T, v reflect.Value, path string) reflect.Value {
	t.Helper()
	for part := range strings.SplitSeq(path, ".") {
		m := pathPartRE.FindStringSubmatch(part)
		if m == nil {
			t.Fatalf("bad path %q", path)
		}
		found := false
		for _, f := range fields(v.Type()) {
			if f.key != m[1] {
				continue
			}
			found = true
			if f.variant != nil {
				v = v.Field(f.index[0]).Elem().Field(f.index[1])
			} else {
				v = v.FieldByIndex(f.index)
			}
			break
		}
		if !found {
			t.Fatalf("%s: no field %q", path, m[1])
		}
		if m[2] != "" {
			idx, _ := strconv.Atoi(m[2])
			v = v.Index(idx)
		}
	}
	return v
}
