package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/config/configtest"
	"github.com/aero2/aero2/server"
)

// TestDocsSnippetsPassCheck: every YAML block of README.md, docs/*.md and
// examples/*/*.md passes `aero2 check`, so the documentation cannot drift
// from what Aero2 accepts.
//
// For writers of the docs, the rules are:
//
//   - Every fenced block names its language (```yaml, ```sh, …), so that
//     no YAML block escapes the check unnamed.
//   - A ```yaml block is a complete configuration, checked as it is.
//   - A block that shows part of one says so in an HTML comment on the
//     line before it, and the test completes it:
//     <!-- check: fragment --> adds the top-level keys a minimal
//     configuration needs and the block lacks (server.public_url,
//     secrets, an identity provider); <!-- check: fragment under KEY -->
//     first puts the block (list entries, say) under KEY:.
//   - <!-- check: not a configuration --> marks YAML that is not Aero2's
//     (a compose file); it must still parse.
//
// The test supplies a value for every ${VAR}, and generated certificates
// and keys for every *_file, so that the docs may name real-looking paths.
// Problems are reported at the line of the Markdown file.
func TestDocsSnippetsPassCheck(t *testing.T) {
	files := []string{"../README.md"}
	for _, g := range []string{"../docs/*.md", "../examples/*/*.md"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	n := 0
	for _, f := range files {
		blocks, err := yamlBlocks(f)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, b := range blocks {
			n++
			t.Run(fmt.Sprintf("%s:%d", strings.TrimPrefix(f, "../"), b.line), func(t *testing.T) {
				if err := b.check(t); err != nil {
					t.Error(err)
				}
			})
		}
	}
	if n < 8 {
		t.Fatalf("found only %d YAML blocks in the docs; is the extraction broken?", n)
	}
}

// docBlock is one fenced YAML block.
type docBlock struct {
	file string
	line int    // of the block's first line in file
	text string // the block, without its fences
	mode string // "", "fragment", "fragment under KEY", "not a configuration"
}

var checkMarker = regexp.MustCompile(`^<!--\s*check:\s*(.*?)\s*-->$`)

// yamlBlocks reads the fenced blocks of a Markdown file: the YAML ones,
// with the marker before each. An opening fence without a language is an
// error.
func yamlBlocks(file string) ([]docBlock, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []docBlock
	var cur *docBlock
	var body strings.Builder
	prev := ""
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur != nil && trimmed == "```":
			cur.text = body.String()
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		case strings.HasPrefix(trimmed, "```"):
			lang := strings.TrimPrefix(trimmed, "```")
			if lang == "" {
				return nil, fmt.Errorf("%s:%d: a fenced block without a language: write ```yaml, ```sh, …", file, ln)
			}
			if lang != "yaml" && lang != "yml" {
				for sc.Scan() { // to the end of this block
					if ln++; strings.TrimSpace(sc.Text()) == "```" {
						break
					}
				}
				break
			}
			cur = &docBlock{file: file, line: ln + 1}
			if m := checkMarker.FindStringSubmatch(strings.TrimSpace(prev)); m != nil {
				cur.mode = m[1]
			}
			body.Reset()
		}
		prev = line
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: a yaml block that never ends", file, cur.line-1)
	}
	return out, sc.Err()
}

// placeholder is what every ${VAR} of the docs expands to: long enough
// for a secret.
const placeholder = "docs-test-value-0123456789abcdef0123456789"

// docEnv expands a doc's ${VAR}: a database URL variable to a URL (with
// the placeholder as its password), everything else to the placeholder.
func docEnv(name string) (string, bool) {
	if strings.Contains(name, "DATABASE_URL") || strings.HasSuffix(name, "_DSN") {
		return "postgres://aero2:" + placeholder + "@db:5432/aero2?sslmode=verify-full", true
	}
	return placeholder, true
}

func (b docBlock) check(t *testing.T) error {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(b.text), &doc); err != nil {
		return fmt.Errorf("%s:%d: not YAML: %v", b.file, b.line, err)
	}
	text, offset := b.text, 0
	switch {
	case b.mode == "not a configuration":
		return nil
	case b.mode == "" || b.mode == "fragment":
	case strings.HasPrefix(b.mode, "fragment under "):
		key := strings.TrimPrefix(b.mode, "fragment under ")
		text = key + ":\n" + indent(text)
		offset = 1
		if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
			return fmt.Errorf("%s:%d: under %s: not YAML: %v", b.file, b.line, key, err)
		}
	default:
		return fmt.Errorf("%s:%d: unknown marker <!-- check: %s -->: use fragment, fragment under KEY or not a configuration", b.file, b.line-2, b.mode)
	}
	text = withTestFiles(t, text, &doc)
	if strings.HasPrefix(b.mode, "fragment") {
		text += completion(&doc)
	}
	cfg, err := config.Parse(b.file, []byte(text), docEnv)
	if err == nil {
		err = server.Check(context.Background(), cfg, nil)
	}
	var ps config.Problems
	if errors.As(err, &ps) {
		// At the Markdown file's lines, for whoever fixes the docs.
		for i := range ps {
			if ps[i].Pos.Line > offset {
				ps[i].Pos.Line += b.line - 1 - offset
				if offset > 0 && ps[i].Pos.Col > 2 {
					ps[i].Pos.Col -= 2 // the block's own indentation
				}
			}
		}
		return ps
	}
	return err
}

func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "")
}

// completion is the top-level keys a fragment lacks for a minimal
// configuration. A key the fragment has is left as it wrote it: the
// fragment must then be complete there.
func completion(doc *yaml.Node) string {
	has := map[string]bool{}
	if len(doc.Content) > 0 && doc.Content[0].Kind == yaml.MappingNode {
		m := doc.Content[0]
		for i := 0; i < len(m.Content); i += 2 {
			has[m.Content[i].Value] = true
		}
	}
	var b strings.Builder
	b.WriteString("\n# completed by the docs test\n")
	if !has["secrets"] {
		fmt.Fprintf(&b, "secrets: {cookie_keys: [%q], storage_key: %q}\n", placeholder, placeholder)
	}
	if !has["applications"] {
		if !has["server"] {
			b.WriteString("server: {public_url: \"https://auth.example.com\"}\n")
		}
		if !has["identity_providers"] {
			b.WriteString("identity_providers: [{id: docs-sso, type: oidc, config: {issuer: \"https://sso.example.com\", client_id: aero2, client_secret: docs-secret}}]\n")
		}
	}
	return b.String()
}

// withTestFiles points every non-empty *_file of the block at a generated
// file of its kind (one key pair per mapping, whose certificate is also a
// CA bundle), in place, so that line numbers stay.
func withTestFiles(t *testing.T, text string, doc *yaml.Node) string {
	lines := strings.Split(text, "\n")
	dir := t.TempDir()
	pairs := 0
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			var cert, key string
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if !strings.HasSuffix(k.Value, "_file") || v.Kind != yaml.ScalarNode || v.Value == "" {
					continue
				}
				if cert == "" {
					pairs++
					cert, key = configtest.KeyPair(t, dir, fmt.Sprintf("pair%d", pairs))
				}
				path := cert
				if k.Value == "key_file" {
					path = key
				}
				l := lines[v.Line-1]
				col := len(string([]rune(l)[:v.Column-1]))
				lines[v.Line-1] = l[:col] + strings.Replace(l[col:], v.Value, path, 1)
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(doc)
	return strings.Join(lines, "\n")
}
