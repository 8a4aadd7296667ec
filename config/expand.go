package config

import (
	"errors"
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
	eachValue(n, path, func(n *yaml.Node, path string) {
		if !strings.Contains(n.Value, "$") {
			return
		}
		v, err := expandString(n.Value, getenv)
		if err != nil {
			msg := err.Error()
			var unset *unsetError
			if errors.As(err, &unset) {
				msg = unset.explain(path)
			}
			ps.list = append(ps.list, Problem{File: ps.file, Path: path, Pos: Pos{n.Line, n.Column}, Msg: msg})
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
	})
}

// eachValue calls fn for every scalar value of the tree (not keys) with
// its path, such as "routes[0].policy.allowed_groups[1]". Aliases are not
// followed: the value they name is visited where it is written.
func eachValue(n *yaml.Node, path string, fn func(n *yaml.Node, path string)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			eachValue(c, path, fn)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			eachValue(n.Content[i+1], joinPath(path, n.Content[i].Value), fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			eachValue(c, indexPath(path, i), fn)
		}
	case yaml.ScalarNode:
		fn(n, path)
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
			return "", &unsetError{name}
		}
		i += 2 + end
	}
	return b.String(), nil
}

// unsetError is a ${VAR} without a default whose variable is not set.
type unsetError struct{ name string }

func (e *unsetError) Error() string {
	return fmt.Sprintf("environment variable %s is not set (use ${%s:-default} for an optional value)", e.name, e.name)
}

// explain says what to set the variable to, for the key at path: a secret
// of Aero2's own is made up (and the hint says how); a client secret at an
// identity provider is the one the provider issued.
func (e *unsetError) explain(path string) string {
	last := path[strings.LastIndexByte(path, '.')+1:]
	switch {
	case strings.HasPrefix(path, "secrets."),
		last == "secret" && strings.Contains(path, "clients["):
		return fmt.Sprintf("environment variable %s is not set: set it to a new random secret (%s)", e.name, generateHint)
	case last == "client_secret" && strings.Contains(path, ".config."):
		return fmt.Sprintf("environment variable %s is not set: set it to the client secret the identity provider issued when Aero2 was registered there", e.name)
	}
	return e.Error()
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
