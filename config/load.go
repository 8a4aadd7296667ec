package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxFileSize bounds what Load reads; a configuration is a few kilobytes.
const maxFileSize = 4 << 20

// Load reads, expands, decodes, defaults and validates the file at path.
// Every problem is reported at once as Problems.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, os.LookupEnv)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in the problem
		}
		return nil, Problems{{File: path, Msg: err.Error()}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, Problems{{File: path, Msg: err.Error()}}
	}
	if len(data) > maxFileSize {
		return nil, Problems{{File: path, Msg: fmt.Sprintf("file larger than %d bytes", maxFileSize)}}
	}
	return data, nil
}

// Parse is Load for bytes already read; file names them in problems and
// getenv resolves ${VAR} (os.LookupEnv in production).
func Parse(file string, data []byte, getenv func(string) (string, bool)) (*Config, error) {
	ps := &problems{file: file, pos: map[string]Pos{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Problems{syntaxProblem(file, data, err)}
	}
	cfg := &Config{File: file}
	if doc.Kind != 0 {
		oneLineScalars(&doc, strings.Split(string(data), "\n"), ps)
		expandEnv(&doc, getenv, "", ps)
		(&checker{ps: ps}).check(&doc, reflect.TypeFor[Config](), "")
		if err := doc.Decode(cfg); err != nil && len(ps.list) == 0 {
			return nil, decodeProblems(file, err)
		}
		// With problems already found, the decoder's own type errors
		// repeat them without columns; what it could decode still gets
		// validated below, so that one run reports everything.
	}
	structural := len(ps.list)
	cfg.File = file
	cfg.positions = ps.pos
	cfg.applyDefaults()
	cfg.validate(ps)
	if len(ps.list) > 0 {
		return nil, dropShadowed(ps.list, structural)
	}
	cfg.Notices = ps.notices
	return cfg, nil
}

// dropShadowed removes validation problems (those after the first n) about
// a key that already has a structural problem, lies inside one, or holds
// one directly: a value of the wrong type need not also be reported as
// missing, nor a list whose entry is wrong as empty.
func dropShadowed(list Problems, n int) Problems {
	out := list[:n:n]
	for _, p := range list[n:] {
		shadowed := false
		for _, s := range list[:n] {
			if p.Path == s.Path || strings.HasPrefix(p.Path, s.Path+".") || strings.HasPrefix(p.Path, s.Path+"[") ||
				p.Path == parentPath(s.Path) && p.Path != "" {
				shadowed = true
				break
			}
		}
		if !shadowed {
			out = append(out, p)
		}
	}
	return out
}

var yamlLine = regexp.MustCompile(`line (\d+)(?:, column (\d+))?: (.*)`)

// syntaxProblem turns a yaml.v3 syntax error ("yaml: line 3: …") into a
// Problem with a position. yaml.v3 gives the line where the enclosing
// block began (often a line or two before the mistake) and no column, so
// the position comes from a second parser that points at the offending
// token (see locateSyntaxError); yaml.v3's own line is the fallback.
func syntaxProblem(file string, data []byte, err error) Problem {
	if p, ok := locateSyntaxError(data); ok {
		p.File = file
		return p
	}
	return yamlProblem(file, err)
}

// yamlProblem is a yaml.v3 error with the line (and column) it names.
func yamlProblem(file string, err error) Problem {
	p := Problem{File: file, Msg: err.Error()}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		p.Pos.Line, _ = strconv.Atoi(m[1])
		p.Pos.Col, _ = strconv.Atoi(m[2])
		p.Msg = "invalid YAML: " + m[3]
	}
	return p
}

// decodeProblems converts what yaml.v3's decoder still finds after the
// strict check (rare: values the check cannot see, such as an int that
// overflows) into Problems.
func decodeProblems(file string, err error) Problems {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Problems{yamlProblem(file, err)}
	}
	out := make(Problems, 0, len(te.Errors))
	for _, e := range te.Errors {
		out = append(out, yamlProblem(file, errors.New(e)))
	}
	return out
}

// Decode strictly decodes a sub-tree that a package other than config owns,
// such as an identity provider's `config:`, into v. path is the sub-tree's
// location (e.g. IdentityProvider.Path + ".config") and names it in
// problems. The returned error is Problems.
func (c *Config) Decode(n *yaml.Node, path string, v any) error {
	ps := &problems{file: c.File, pos: map[string]Pos{}}
	if n.Kind == 0 {
		return nil // absent: leave v at its zero value
	}
	(&checker{ps: ps}).check(n, reflect.TypeOf(v), path)
	if len(ps.list) > 0 {
		return ps.list
	}
	if err := n.Decode(v); err != nil {
		return decodeProblems(c.File, err)
	}
	for k, p := range ps.pos {
		c.positions[k] = p
	}
	return nil
}

// Problem builds a Problem at path (a key such as
// "identity_providers[0].config.users[1].email"), positioned where that key,
// or its nearest parent, stands in the file. Packages that validate their
// own sub-trees report through it.
func (c *Config) Problem(path, format string, args ...any) Problem {
	return Problem{File: c.File, Path: path, Pos: lookupPos(c.positions, path), Msg: fmt.Sprintf(format, args...)}
}
