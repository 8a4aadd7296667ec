package config

import (
	"encoding"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the strict walk: YAML aliases can make a small file
// describe an exponentially large tree ("billion laughs").
const maxNodes = 100_000

var (
	nodeType        = reflect.TypeFor[yaml.Node]()
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checker walks a YAML tree beside the Go type it will decode into, and
// reports what yaml.v3 reports badly or not at all: unknown or repeated
// keys and values of the wrong kind, each with its line:col. It also
// records where every key is, so that validation can point at it.
type checker struct {
	ps    *problems
	nodes int
	// outer are the mappings around the one being checked, innermost
	// last, for the hint on a key that belongs to one of them.
	outer []mapping
}

// mapping is a struct-typed mapping of the file and its path.
type mapping struct {
	path string
	t    reflect.Type
}

func (c *checker) problem(n *yaml.Node, path, format string, args ...any) {
	c.ps.list = append(c.ps.list, Problem{File: c.ps.file, Path: path, Pos: Pos{n.Line, n.Column}, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	if c.nodes++; c.nodes > maxNodes {
		if c.nodes == maxNodes+1 {
			c.problem(n, path, "document too large or too deeply aliased")
		}
		return
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if _, seen := c.ps.pos[path]; !seen && path != "" {
		// The document itself has no position worth giving: a key
		// missing at the top level is reported without one, rather
		// than at a 1:1 that names another key.
		c.ps.pos[path] = Pos{n.Line, n.Column}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value leaves the zero value
	}
	switch {
	case t == nodeType:
		return // decoded later, by whoever owns it
	case t == durationType:
		switch {
		case n.Kind != yaml.ScalarNode:
			c.problem(n, path, "expected a duration such as 30s, 10m or 12h, got %s", kindName(n))
		case n.ShortTag() == "!!int" && n.Value == "0":
			// A bare 0 is zero in any unit (`rotation_period: 0`, as
			// the docs write it). Other bare numbers stay refused: 10
			// would be ten nanoseconds. The decoder parses durations
			// from strings only, so it gets "0" as one.
			n.Tag = "!!str"
		case n.ShortTag() != "!!str":
			c.problem(n, path, "expected a duration such as 30s, 10m or 12h, got %q", n.Value)
		default:
			if _, err := time.ParseDuration(n.Value); err != nil {
				c.problem(n, path, "expected a duration such as 30s, 10m or 12h, got %q", n.Value)
			}
		}
		return
	case reflect.PointerTo(t).Implements(unmarshalerType), reflect.PointerTo(t).Implements(textUnmarshaler):
		return // the type checks itself when decoded
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.problem(n, path, "expected a mapping (key: value), got %s", kindName(n))
			return
		}
		fields := yamlFields(t)
		c.dropRepeated(n, path)
		c.outer = append(c.outer, mapping{path, t})
		defer func() { c.outer = c.outer[:len(c.outer)-1] }()
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			kpath := joinPath(path, key)
			ft, ok := fields[key]
			if !ok {
				msg := fmt.Sprintf("unknown key %q", key)
				if s := closest(key, fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				} else if hint := c.misplaced(key, t); hint != "" {
					msg += " " + hint
				}
				c.problem(k, kpath, "%s", msg)
				continue
			}
			c.ps.pos[kpath] = Pos{k.Line, k.Column}
			c.check(v, ft, kpath)
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			c.scalar(n, path, "a string")
			return
		}
		if n.Kind != yaml.SequenceNode {
			c.problem(n, path, "expected a list, got %s", kindName(n))
			return
		}
		for i, e := range n.Content {
			c.check(e, t.Elem(), indexPath(path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.problem(n, path, "expected a mapping (key: value), got %s", kindName(n))
			return
		}
		c.dropRepeated(n, path)
		for i := 0; i+1 < len(n.Content); i += 2 {
			kpath := joinPath(path, n.Content[i].Value)
			c.ps.pos[kpath] = Pos{n.Content[i].Line, n.Content[i].Column}
			c.check(n.Content[i+1], t.Elem(), kpath)
		}
	case reflect.String:
		c.scalar(n, path, "a string")
	case reflect.Bool:
		if c.scalar(n, path, "true or false") && n.ShortTag() != "!!bool" {
			c.problem(n, path, "expected true or false, got %q", n.Value)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if c.scalar(n, path, "a whole number") && n.ShortTag() != "!!int" {
			c.problem(n, path, "expected a whole number, got %q", n.Value)
		}
	case reflect.Float32, reflect.Float64:
		if c.scalar(n, path, "a number") && n.ShortTag() != "!!int" && n.ShortTag() != "!!float" {
			c.problem(n, path, "expected a number, got %q", n.Value)
		}
	}
}

// dropRepeated reports every key of mapping n given a second time and
// removes the repetition from the tree. The first one is the one checked
// and used; without the removal, yaml.v3's decoder would refuse the whole
// mapping and validation would report its other keys as missing.
func (c *checker) dropRepeated(n *yaml.Node, path string) {
	seen := map[string]*yaml.Node{}
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if prev, dup := seen[k.Value]; dup && k.Kind == yaml.ScalarNode {
			c.problem(k, joinPath(path, k.Value), "key repeated (first at line %d)", prev.Line)
			continue
		}
		seen[k.Value] = k
		kept = append(kept, k, n.Content[i+1])
	}
	if len(kept) != len(n.Content) {
		n.Content = kept
	}
}

// misplaced explains an unknown key that is a key of a mapping nearby: of
// one inside this one (it needs indenting under that key) or of one
// around it (it is indented too far). In YAML, indentation is structure,
// so a key one level off lands in another mapping; there it is unknown,
// and this says where it belongs.
func (c *checker) misplaced(key string, t reflect.Type) string {
	if under := fieldPaths(key, t); len(under) > 0 {
		return fmt.Sprintf("(it belongs under %s)", strings.Join(under, " or "))
	}
	for i := len(c.outer) - 2; i >= 0; i-- {
		o := c.outer[i]
		if _, ok := yamlFields(o.t)[key]; ok {
			where := "at the top level"
			if o.path != "" {
				where = "in " + o.path
			}
			return fmt.Sprintf("(it belongs %s: indent it less)", where)
		}
	}
	return ""
}

// fieldPaths names the mappings inside t, one or two levels down, that
// have key: "policy", "routes[].policy". Only the nearest level counts.
func fieldPaths(key string, t reflect.Type) []string {
	type mapType struct {
		label string
		t     reflect.Type
	}
	level := []mapType{{"", t}}
	for range 2 {
		var next []mapType
		var found []string
		for _, m := range level {
			fields := yamlFields(m.t)
			for _, name := range slices.Sorted(maps.Keys(fields)) {
				ft := structOf(fields[name])
				if ft == nil {
					continue
				}
				label := joinPath(m.label, name)
				if fields[name].Kind() == reflect.Slice {
					label += "[]"
				}
				if _, ok := yamlFields(ft)[key]; ok {
					found = append(found, label)
				}
				next = append(next, mapType{label, ft})
			}
		}
		if len(found) > 0 {
			return found
		}
		level = next
	}
	return nil
}

// structOf is the struct type a field holds as a mapping or as a list of
// mappings; nil for anything else (scalars, maps, nodes, durations).
func structOf(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == nodeType || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	return t
}

// scalar reports a non-scalar where a scalar belongs.
func (c *checker) scalar(n *yaml.Node, path, want string) bool {
	if n.Kind != yaml.ScalarNode {
		c.problem(n, path, "expected %s, got %s", want, kindName(n))
		return false
	}
	return true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// yamlFields maps a struct's YAML keys to field types, following inline
// (embedded) structs as yaml.v3 does.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// closest suggests the known key nearest to a misspelt one, if it is close.
func closest(key string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for k := range fields {
		if d := editDistance(key, k); d < bestD || (d == bestD && best != "" && k < best) {
			best, bestD = k, d
		}
	}
	if bestD > 2 {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
