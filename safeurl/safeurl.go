// Package safeurl decides which addresses a browser may be sent to after
// signing in. Federation's post-login redirects and the proxy's return
// paths both use it, so the rule that stops open redirects is written once.
package safeurl

import (
	"net/url"
	"strings"
)

// MaxLen bounds a redirect target: an authorize request with all its
// parameters fits easily.
const MaxLen = 4096

// Plain reports whether target is non-empty, within MaxLen, and free of
// what browsers rewrite before parsing: they treat '\' as '/' and drop
// tabs and newlines inside URLs, so "/\evil.example" and "/\t/evil.example"
// mean "//evil.example".
func Plain(target string) bool {
	if target == "" || len(target) > MaxLen {
		return false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// LocalPath reports whether target is a path on the current origin that no
// browser can read as another one: it starts with a single '/' ("//host"
// is scheme-relative) and has no scheme, host, user info or opaque part.
func LocalPath(target string) bool {
	if !Plain(target) || !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") {
		return false
	}
	u, err := url.Parse(target)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == ""
}
