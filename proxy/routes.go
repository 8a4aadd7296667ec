package proxy

import (
	"net"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
)

// table finds the route for a host and path. Specificity, most specific
// first: an exact host (with its port, then without), then wildcard hosts
// (the longest suffix first), then routes for any host; within each, the
// longest path prefix. A host that has routes but none for the path falls
// through to the less specific hosts.
type table struct {
	exact     map[string][]*Route // "host" or "host:port"
	wildcards []*Route            // sorted by suffix length, then prefix
	any       []*Route
}

func newTable(routes []*Route) *table {
	t := &table{exact: map[string][]*Route{}}
	for _, r := range routes {
		switch {
		case r.host == "":
			t.any = append(t.any, r)
		case strings.HasPrefix(r.host, "*."):
			t.wildcards = append(t.wildcards, r)
		default:
			t.exact[r.host] = append(t.exact[r.host], r)
		}
	}
	byPrefix := func(rs []*Route) {
		sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].prefix) > len(rs[j].prefix) })
	}
	for _, rs := range t.exact {
		byPrefix(rs)
	}
	byPrefix(t.any)
	sort.SliceStable(t.wildcards, func(i, j int) bool {
		a, b := t.wildcards[i], t.wildcards[j]
		if len(a.host) != len(b.host) {
			return len(a.host) > len(b.host)
		}
		return len(a.prefix) > len(b.prefix)
	})
	return t
}

// match returns the route for a normalised host ("name" or "name:port")
// and a canonical path, or nil.
func (t *table) match(host, p string) *Route {
	if rs, ok := t.exact[host]; ok {
		if r := matchPath(rs, p); r != nil {
			return r
		}
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
		if rs, ok := t.exact[name]; ok {
			if r := matchPath(rs, p); r != nil {
				return r
			}
		}
	}
	for _, r := range t.wildcards {
		// "*.example.com" matches "a.example.com" and "a.b.example.com",
		// never "example.com" itself.
		suffix := r.host[1:]
		if len(name) > len(suffix) && strings.HasSuffix(name, suffix) && (r.port == "" || r.port == portOf(host)) && pathMatches(r.prefix, p) {
			return r
		}
	}
	return matchPath(t.any, p)
}

func matchPath(rs []*Route, p string) *Route {
	for _, r := range rs {
		if pathMatches(r.prefix, p) {
			return r
		}
	}
	return nil
}

// pathMatches reports whether prefix ("" for the root, else "/seg/…"
// without a trailing slash) covers p on whole segments, ignoring case: an
// upstream on a case-insensitive file system must not serve /ADMIN through
// a route chosen for /.
func pathMatches(prefix, p string) bool {
	if prefix == "" {
		return true
	}
	if len(p) < len(prefix) || !strings.EqualFold(p[:len(prefix)], prefix) {
		return false
	}
	return len(p) == len(prefix) || p[len(prefix)] == '/'
}

func portOf(host string) string {
	if _, port, err := net.SplitHostPort(host); err == nil {
		return port
	}
	return ""
}

// pathVerdict is what canonicalPath decided.
type pathVerdict int

const (
	pathOK       pathVerdict = iota
	pathRedirect             // not canonical: send the browser to the clean form
	pathBad                  // refuse with 400
)

// canonicalPath checks that the request path means one thing to the proxy
// and to any upstream. Paths that an upstream could read differently from
// the route table — dot segments, "//", '\', a raw '#', control characters,
// '?' or '#' that arrived percent-encoded — are refused or redirected
// before any route is chosen, so "/public/../admin" or "/public%2F..%2Fadmin"
// can never reach /admin through the public route. Encoded slashes are
// judged later, once the route says whether it allows them.
func canonicalPath(r *http.Request) (pathVerdict, string) {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(r.RequestURI, '#') || strings.ContainsRune(r.RequestURI, '\\') {
		return pathBad, ""
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' || c == '?' || c == '#' {
			return pathBad, ""
		}
	}
	if !needsCleaning(p) {
		return pathOK, ""
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	if hasEncodedSlash(r.URL.RawPath) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return pathBad, ""
	}
	u := url.URL{Path: clean, RawQuery: r.URL.RawQuery}
	return pathRedirect, u.RequestURI()
}

// needsCleaning reports "//", "/./" or "/../" anywhere, or a trailing
// "/." or "/..".
func needsCleaning(p string) bool {
	return strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
		strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
}

// hasEncodedSlash reports %2F or %5C (any case) in an escaped path.
func hasEncodedSlash(raw string) bool {
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] == '%' && (raw[i+1] == '2' && (raw[i+2] == 'f' || raw[i+2] == 'F') || raw[i+1] == '5' && (raw[i+2] == 'c' || raw[i+2] == 'C')) {
			return true
		}
	}
	return false
}
