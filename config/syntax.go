package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	goccy "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
	"gopkg.in/yaml.v3"
)

// locateSyntaxError finds where a document that yaml.v3 refused goes
// wrong, with goccy/go-yaml's parser, whose errors carry the offending
// token's line and column. It answers false when that parser finds no
// syntax error with a position (the two disagree on a few corner cases;
// yaml.v3's own message is then the best there is).
func locateSyntaxError(data []byte) (Problem, bool) {
	_, err := goccyparser.ParseBytes(data, 0)
	var se *goccy.SyntaxError
	if !errors.As(err, &se) || se.Token == nil || se.Token.Position == nil {
		return Problem{}, false
	}
	t := se.Token
	p := Problem{Pos: Pos{t.Position.Line, t.Position.Column}, Msg: "invalid YAML: " + se.Message}
	// "a:\n  b: 1\n    c: 2": the key c, indented deeper than b, makes b's
	// value a plain scalar "1 c" that goes on over two lines, and the
	// colon after it is the error. The mistake is the line of that colon,
	// not the value's first line.
	if next := t.Next; next != nil && next.Type == token.MappingValueType && next.Position.Line > t.Position.Line &&
		strings.Contains(se.Message, "mapping value is not allowed") {
		p.Pos = Pos{next.Position.Line, firstColumn(data, next.Position.Line)}
		p.Msg = "invalid YAML: this key is indented more than the key above it"
		return p, true
	}
	if strings.Contains(se.Message, "not allowed in this context") {
		p.Msg += " (is this line indented like the keys it belongs with?)"
	}
	return p, true
}

// firstColumn is the 1-based column of the first character on line that
// is not a space.
func firstColumn(data []byte, line int) int {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return 0
	}
	l := lines[line-1]
	return utf8.RuneCountInString(l[:len(l)-len(strings.TrimLeft(l, " "))]) + 1
}

// oneLineScalars reports every plain (unquoted) value that goes on over
// several lines. YAML folds such a value into one with spaces, so a line
// indented one step too far silently joins the value above it:
//
//	allowed_groups:
//	  - admins
//	   - ops        # the one group "admins - ops"
//
// No key of Aero2's takes text over several lines, so the fold is always
// a mistake; quoting, or a | or > block, still allows it on purpose. lines
// are the file's, to compare each value with the line it starts on.
func oneLineScalars(doc *yaml.Node, lines []string, ps *problems) {
	// Columns count runes. Each line's rune offsets are found once, the
	// first time a value on it is checked, and each check reads only the
	// value's own bytes: a long flow line ([{...}, {...}, ...]) would
	// otherwise cost the whole line per value on it.
	starts := map[int][]int{}
	eachValue(doc, "", func(n *yaml.Node, path string) {
		if n.Style != 0 || n.Line < 1 || n.Line > len(lines) {
			return
		}
		line := lines[n.Line-1]
		off, ok := starts[n.Line]
		if !ok {
			for i := range line {
				off = append(off, i)
			}
			starts[n.Line] = off
		}
		if n.Column < 1 || n.Column > len(off) {
			return
		}
		if !startsWithValue(line[off[n.Column-1]:], n.Value) {
			ps.list = append(ps.list, Problem{File: ps.file, Path: path, Pos: Pos{n.Line, n.Column},
				Msg: fmt.Sprintf("this value goes on over several lines and reads %q: is a line below it indented too far? (quote a value that is meant to, or use > for text on several lines)", truncateValue(n.Value))})
		}
	})
}

// startsWithValue reports whether a plain scalar that starts text (at
// its node's column) reads value on this line: after its anchor and tag,
// if any (&a value, !!str value, in either order), the line goes on with
// the whole value. A value folded from several lines never does.
func startsWithValue(text, value string) bool {
	for range 2 {
		if text == "" || (text[0] != '&' && text[0] != '!') {
			break
		}
		end := strings.IndexAny(text, " \t")
		if end < 0 {
			return value == ""
		}
		text = strings.TrimLeft(text[end:], " \t")
	}
	return strings.HasPrefix(text, value)
}

func truncateValue(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
