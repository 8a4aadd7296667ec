package config

import (
	"fmt"
	"strings"
)

// Pos is a location in the YAML file (1-based; 0 when unknown).
type Pos struct {
	Line, Col int
}

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File string // the file, or "" for in-memory input
	Path string // the key, e.g. "applications[0].clients[1].id"
	Pos  Pos
	Msg  string
}

func (p Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
	} else {
		b.WriteString("config")
	}
	if p.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Pos.Line)
		if p.Pos.Col > 0 {
			fmt.Fprintf(&b, ":%d", p.Pos.Col)
		}
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in one file. It is the error Load and
// Parse return, so that callers can print each on a line of its own.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems with positions looked up by path, and
// notices: what is valid but worth saying (see Config.Notices).
type problems struct {
	file    string
	pos     map[string]Pos
	list    Problems
	notices Problems
}

// notice records msg about path as a notice, not a problem.
func (ps *problems) notice(path, format string, args ...any) {
	ps.notices = append(ps.notices, Problem{File: ps.file, Path: path, Pos: lookupPos(ps.pos, path), Msg: fmt.Sprintf(format, args...)})
}

// at reports msg at path, using the position of path, or of its nearest
// parent that has one (a missing key is reported at its parent).
func (ps *problems) at(path, format string, args ...any) {
	ps.list = append(ps.list, Problem{File: ps.file, Path: path, Pos: lookupPos(ps.pos, path), Msg: fmt.Sprintf(format, args...)})
}

func lookupPos(pos map[string]Pos, path string) Pos {
	for p := path; ; {
		if at, ok := pos[p]; ok {
			return at
		}
		if p == "" {
			return Pos{}
		}
		p = parentPath(p)
	}
}

// parentPath drops the last element of a path: "a.b[2]" → "a.b" → "a" → "".
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}
