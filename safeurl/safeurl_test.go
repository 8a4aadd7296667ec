package safeurl

import (
	"strings"
	"testing"
)

func TestLocalPath(t *testing.T) {
	for _, ok := range []string{"/", "/dashboard", "/a/b?x=1&y=%2F", "/oauth2/authorize?resume=abc#frag"} {
		if !LocalPath(ok) {
			t.Errorf("LocalPath(%q) refused", ok)
		}
	}
	for _, bad := range []string{
		"", "dashboard", "//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example",
		"https://evil.example", "javascript:alert(1)", "data:text/html,x", "\\\\evil.example",
		"/" + strings.Repeat("a", MaxLen), "/x\x7f", "///evil.example",
	} {
		if LocalPath(bad) {
			t.Errorf("LocalPath(%q) accepted", bad)
		}
	}
}

func TestPlain(t *testing.T) {
	if !Plain("https://app.example.com/x") || Plain("https://app.example.com/\\x") || Plain("") || Plain("a\rb") {
		t.Error("Plain misjudges")
	}
}
