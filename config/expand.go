package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// expandEnv replaces ${VAR} and ${VAR:-default} in every scalar value of
// the tree (never in keys), so that secrets come from the environment.
// "$$" is a literal "$". Expansion happens on parsed scalars, so a value
// from the environment can never add YAML structure (no injection of keys
// through a variable).
func expandEnv(n *yaml.Node, getenv func(string) (string, bool), path string, ps *problems) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandEnv(c, getenv, path, ps)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandEnv(n.Content[i+1], getenv, joinPath(path, n.Content[i].Value), ps)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandEnv(c, getenv, indexPath(path, i), ps)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		v, err := expandString(n.Value, getenv)
		if err != nil {
			ps.list = append(ps.list, Problem{File: ps.file, Path: path, Pos: Pos{n.Line, n.Column}, Msg: err.Error()})
			return
		}
		if v != n.Value {
			n.Value = v
			// A plain scalar's type was resolved from its text before
			// expansion ("${PORT}" is a string); resolve it again from
			// the expanded text so `port: ${PORT}` can be an int.
			if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 && n.Tag == "!!str" {
				n.Tag = ""
			}
		}
	}
}

// expandString expands one value. An unset variable without a default is
// an error: it is almost always a missing secret.
func expandString(s string, getenv func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q (write $$ for a literal $)", s)
		}
		expr := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid environment variable name %q in ${%s}", name, expr)
		}
		v, ok := getenv(name)
		switch {
		case ok:
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} for an optional value)", name, name)
		}
		i += 2 + end
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
