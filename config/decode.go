package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// The decoder walks a yaml.Node tree against the Config structs, field by field, so that it
// can report every problem of a document in one pass (yaml.v3's own decoder stops at the
// first type error and knows nothing of paths). Keys come from the yaml struct tags. A
// pointer-to-struct field tagged `yaml:",inline" when:"type=s3"` contributes its keys to
// the enclosing mapping, allowed only when the field whose key is "type" holds "s3".

// scalarParser is implemented by the value types (Size, Duration, ...).
type scalarParser interface{ parseScalar(string) error }

var scalarParserType = reflect.TypeFor[scalarParser]()

// maxNodes bounds the work on one document: aliases can make a small document refer to the
// same nodes many times over.
const maxNodes = 100_000

type decoder struct {
	lookupEnv func(string) (string, bool)
	problems  []Problem
	lines     map[string]int // path -> line of its key (or list item)
	nodes     int            // nodes visited
}

func (d *decoder) add(path string, line int, format string, args ...any) {
	d.problems = append(d.problems, Problem{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// resolve follows aliases and counts the visit; it returns nil once the budget is spent.
func (d *decoder) resolve(path string, n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 64 {
			d.add(path, n.Line, "alias chain too long")
			return nil
		}
		n = n.Alias
	}
	if n == nil || d.nodes >= maxNodes {
		return nil
	}
	d.nodes++
	if d.nodes == maxNodes {
		d.add("", n.Line, "document too large or too deeply aliased: stopped after %d nodes", maxNodes)
		return nil
	}
	return n
}

// decode stores n into v, which is addressable. A null node leaves v as it is (its default).
func (d *decoder) decode(path string, n *yaml.Node, v reflect.Value) {
	n = d.resolve(path, n)
	if n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") {
		return
	}
	switch {
	case reflect.PointerTo(v.Type()).Implements(scalarParserType):
		d.scalar(path, n, v)
	case v.Kind() == reflect.Struct:
		d.mapping(path, n, v)
	case v.Kind() == reflect.Slice:
		d.sequence(path, n, v)
	case v.Kind() == reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(path, n, p.Elem())
		v.Set(p)
	default:
		d.scalar(path, n, v)
	}
}

// what names the YAML a Go type expects, for messages.
func what(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Size]():
		return "a size"
	case reflect.TypeFor[Duration]():
		return "a duration"
	case reflect.TypeFor[Percent]():
		return "a percentage"
	case reflect.TypeFor[Rate]():
		return "a rate"
	}
	switch t.Kind() {
	case reflect.Struct:
		return "a mapping"
	case reflect.Slice:
		return "a list"
	case reflect.Int:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	}
	return "a string"
}

// kindOf names what a node is, for messages.
func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a scalar"
}

func (d *decoder) scalar(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.add(path, n.Line, "expected %s, got %s", what(v.Type()), kindOf(n))
		return
	}
	s, err := expandEnv(n.Value, d.lookupEnv)
	if err != nil {
		d.add(path, n.Line, "%v", err)
		return
	}
	from := ""
	if s != n.Value {
		from = fmt.Sprintf(" (expanded from %q)", truncate(n.Value, 80))
	} else if n.ShortTag() == "!!int" {
		// YAML integers may be written 0x10, 0o17 or 1_000: hand the parsers decimal.
		if i, err := strconv.ParseInt(s, 0, 64); err == nil {
			s = strconv.FormatInt(i, 10)
		}
	}
	if p, ok := v.Addr().Interface().(scalarParser); ok {
		if err := p.parseScalar(s); err != nil {
			d.add(path, n.Line, "%v%s", err, from)
		}
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v.OverflowInt(i) {
			d.add(path, n.Line, "%q is not an integer%s", truncate(s, 80), from)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		switch s {
		case "true", "True", "TRUE":
			v.SetBool(true)
		case "false", "False", "FALSE":
			v.SetBool(false)
		default:
			d.add(path, n.Line, "%q is not true or false%s", truncate(s, 80), from)
		}
	default:
		panic(fmt.Sprintf("BUG: config field %s has unsupported type %s", path, v.Type()))
	}
}

func (d *decoder) sequence(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.add(path, n.Line, "expected a list, got %s", kindOf(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		e := reflect.New(v.Type().Elem())
		if df, ok := e.Interface().(defaulter); ok {
			df.setDefaults()
		}
		d.decode(p, item, e.Elem())
		s = reflect.Append(s, e.Elem())
	}
	v.Set(s)
}

// field is one key of a struct: where it is and, for a variant's key, which variant.
type field struct {
	key     string
	index   []int // into the struct, then (variant) into the pointed-to struct
	variant *variant
}

// variant is a pointer-to-struct field tagged when:"disc=value".
type variant struct {
	index int    // field of the pointer in the struct
	disc  string // key of the discriminator, e.g. "type"
	value string // discriminator value that enables it, e.g. "s3"
}

// fields lists the keys of struct type t, common keys first, in declaration order.
func fields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if !f.IsExported() || tag == "" || tag == "-" {
			continue
		}
		when := f.Tag.Get("when")
		if when == "" {
			out = append(out, field{key: tag, index: []int{i}})
			continue
		}
		disc, value, ok := strings.Cut(when, "=")
		if !ok || tag != ",inline" || f.Type.Kind() != reflect.Pointer {
			panic(fmt.Sprintf("BUG: config field %s.%s: bad when tag", t, f.Name))
		}
		vr := &variant{index: i, disc: disc, value: value}
		et := f.Type.Elem()
		for j := range et.NumField() {
			if k := et.Field(j).Tag.Get("yaml"); k != "" {
				out = append(out, field{key: k, index: []int{i, j}, variant: vr})
			}
		}
	}
	return out
}

// hint helps with an unknown key: a likely typo among the keys allowed here, or else the
// one place in the schema where that key does belong.
func hint(key string, here []string) string {
	if h := suggest(key, here); h != "" {
		return h
	}
	if homes := keyHomes()[key]; len(homes) == 1 {
		if homes[0] == "" {
			return " (it belongs at the top level)"
		}
		return fmt.Sprintf(" (it belongs in %s)", homes[0])
	}
	return ""
}

// keyHomes maps each key of the schema to where it may appear ("memory", "tiers[]").
var keyHomes = sync.OnceValue(func() map[string][]string {
	homes := map[string][]string{}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for _, f := range fields(t) {
			homes[f.key] = append(homes[f.key], prefix)
			ft := t.FieldByIndex(f.index[:1]).Type
			if f.variant != nil {
				ft = ft.Elem().Field(f.index[1]).Type
			}
			switch {
			case ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(scalarParserType):
				walk(join(prefix, f.key), ft)
			case ft.Kind() == reflect.Slice:
				walk(join(prefix, f.key)+"[]", ft.Elem())
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
	for k, v := range homes {
		homes[k] = slices.Compact(v)
	}
	return homes
})

// oneofOf returns the allowed values of the field whose key is key, or nil.
func oneofOf(t reflect.Type, key string) []string {
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("yaml") == key && f.Tag.Get("oneof") != "" {
			return strings.Split(f.Tag.Get("oneof"), "|")
		}
	}
	return nil
}

type pair struct {
	key      string
	keyLine  int
	val      *yaml.Node
	resolved bool
}

// pairs returns the key/value pairs of mapping n, merge keys (<<) applied, reporting
// duplicate and non-string keys.
func (d *decoder) pairs(path string, n *yaml.Node, depth int) []pair {
	var out []pair
	first := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := d.resolve(path, n.Content[i]), n.Content[i+1]
		switch {
		case k == nil:
			return out
		case k.Kind != yaml.ScalarNode:
			d.add(path, k.Line, "keys must be strings, got %s", kindOf(k))
			continue
		case k.ShortTag() == "!!merge":
			merges = append(merges, val)
			continue
		}
		if line, dup := first[k.Value]; dup {
			d.add(join(path, k.Value), k.Line, "duplicate key (first at line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		out = append(out, pair{key: k.Value, keyLine: k.Line, val: val})
	}
	for _, m := range merges {
		m = d.resolve(path, m)
		if m == nil {
			return out
		}
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, src := range srcs {
			src = d.resolve(path, src)
			if src == nil {
				return out
			}
			if src.Kind != yaml.MappingNode || depth >= 8 {
				d.add(path, src.Line, "<< must merge a mapping or a list of mappings (at most 8 deep)")
				continue
			}
			for _, p := range d.pairs(path, src, depth+1) {
				if _, ok := first[p.key]; !ok { // explicit keys and earlier merges win
					first[p.key] = p.keyLine
					out = append(out, p)
				}
			}
		}
	}
	return out
}

func (d *decoder) mapping(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.add(path, n.Line, "expected a mapping, got %s", kindOf(n))
		return
	}
	fs := fields(v.Type())
	byKey := make(map[string]*field, len(fs))
	keys := make([]string, 0, len(fs))
	for i := range fs {
		byKey[fs[i].key] = &fs[i]
		keys = append(keys, fs[i].key)
	}
	ps := d.pairs(path, n, 0)
	// Discriminators first: they decide which variant keys are allowed.
	for i := range ps {
		f := byKey[ps[i].key]
		if f == nil || f.variant != nil || !isDiscriminator(fs, f.key) {
			continue
		}
		d.lines[join(path, f.key)] = ps[i].keyLine
		d.decode(join(path, f.key), ps[i].val, v.FieldByIndex(f.index))
		ps[i].resolved = true
	}
	scratch := map[*variant]reflect.Value{}
	for _, p := range ps {
		if p.resolved {
			continue
		}
		fp := join(path, p.key)
		f := byKey[p.key]
		if f == nil {
			d.add(fp, p.keyLine, "unknown key%s", hint(p.key, keys))
			continue
		}
		d.lines[fp] = p.keyLine
		if f.variant == nil {
			d.decode(fp, p.val, v.FieldByIndex(f.index))
			continue
		}
		target, ok := d.variantValue(v, f.variant, scratch)
		if !ok {
			d.add(fp, p.keyLine, "only for %s %s", f.variant.disc, f.variant.value)
			continue
		}
		d.decode(fp, p.val, target.Field(f.index[1]))
	}
	// The active variant exists even when none of its keys were given, so that Validate
	// reports its required keys.
	for i := range fs {
		if vr := fs[i].variant; vr != nil && discValue(v, vr) == vr.value {
			d.variantValue(v, vr, scratch)
		}
	}
}

func isDiscriminator(fs []field, key string) bool {
	for _, f := range fs {
		if f.variant != nil && f.variant.disc == key {
			return true
		}
	}
	return false
}

func discValue(v reflect.Value, vr *variant) string {
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("yaml") == vr.disc {
			return v.Field(i).String()
		}
	}
	panic(fmt.Sprintf("BUG: %s has no discriminator %q", v.Type(), vr.disc))
}

// variantValue returns the struct that keys of variant vr decode into: the real one
// (allocated with defaults on first use) when the discriminator selects vr; a scratch one
// when the discriminator is missing or invalid (so type errors in its keys still show, and
// Validate reports the discriminator); ok false when the discriminator selects another
// variant.
func (d *decoder) variantValue(v reflect.Value, vr *variant, scratch map[*variant]reflect.Value) (reflect.Value, bool) {
	disc := discValue(v, vr)
	ptr := v.Field(vr.index)
	if disc == vr.value {
		if ptr.IsNil() {
			ptr.Set(newWithDefaults(ptr.Type().Elem()))
		}
		return ptr.Elem(), true
	}
	for _, known := range oneofOf(v.Type(), vr.disc) {
		if disc == known {
			return reflect.Value{}, false
		}
	}
	s, ok := scratch[vr]
	if !ok {
		s = newWithDefaults(ptr.Type().Elem())
		scratch[vr] = s
	}
	return s.Elem(), true
}

func newWithDefaults(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	if df, ok := p.Interface().(defaulter); ok {
		df.setDefaults()
	}
	return p
}
