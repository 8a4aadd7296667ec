package proxy

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/aero2/aero2/pathread"
)

// table finds the route for a host and path. Specificity, most specific
// first: an exact host (with its port, then without), then wildcard hosts
// (the longest suffix first), then routes for any host; within each, the
// longest path prefix (in segments). A host that has routes but none for
// the path falls through to the less specific hosts.
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
		sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].segments) > len(rs[j].segments) })
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
		return len(a.segments) > len(b.segments)
	})
	return t
}

// match returns the route for a normalised host ("name" or "name:port")
// and one reading of a path, or nil.
func (t *table) match(host string, rd pathread.Reading) *Route {
	if rs, ok := t.exact[host]; ok {
		if r := matchPath(rs, rd); r != nil {
			return r
		}
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
		if rs, ok := t.exact[name]; ok {
			if r := matchPath(rs, rd); r != nil {
				return r
			}
		}
	}
	for _, r := range t.wildcards {
		// "*.example.com" matches "a.example.com" and "a.b.example.com",
		// never "example.com" itself.
		suffix := r.host[1:]
		if len(name) > len(suffix) && strings.HasSuffix(name, suffix) && (r.port == "" || r.port == portOf(host)) && r.covers(rd) {
			return r
		}
	}
	return matchPath(t.any, rd)
}

func matchPath(rs []*Route, rd pathread.Reading) *Route {
	for _, r := range rs {
		if r.covers(rd) {
			return r
		}
	}
	return nil
}

// covers reports whether the route's path is a prefix of rd on whole
// segments: exactly, or folded for a case-insensitive reader.
func (r *Route) covers(rd pathread.Reading) bool {
	want := r.segments
	if rd.Reader.Folded {
		want = r.folded
	}
	if len(rd.Segments) < len(want) {
		return false
	}
	for i, s := range want {
		if rd.Segments[i] != s {
			return false
		}
	}
	return true
}

func portOf(host string) string {
	if _, port, err := net.SplitHostPort(host); err == nil {
		return port
	}
	return ""
}

// pathVerdict is what choose decided about a path.
type pathVerdict int

const (
	pathOK       pathVerdict = iota
	pathRedirect             // not canonical: the clean form may be tried instead
	pathBad                  // refuse with 400
)

// pathDecision is the route for a request target, or why there is none.
type pathDecision struct {
	verdict pathVerdict
	// route is, for pathOK, the route that every reading of the path maps
	// to; nil when no route covers it.
	route *Route
	// clean is, for pathRedirect, the path with its dot segments and
	// empty segments removed (still escaped).
	clean string
	// encodedSlash: the path has %2F or %5C (a redirect must not drop or
	// decode them).
	encodedSlash bool
	// reason says, for pathBad, what is wrong, for the log.
	reason string
}

// choose is the one place where a request path meets the route table; the
// proxy and forward-auth both call it. escaped is the path exactly as the
// upstream will receive it (the built-in proxy: the request's escaped path;
// forward-auth: the original URI as the front proxy sent it).
//
// A request is admitted only under a route that every reading of its path
// maps to (pathread: RFC 3986 readers, servlet containers, case-insensitive
// file systems, double decoding). When the readings disagree — one reader
// sees /public, another /admin — the path is refused rather than given the
// "most restrictive" policy: policies have no order (a group list and an
// email list do not contain each other), and each route also chooses an
// upstream, its headers and strip_prefix, which no single choice could
// make right for every reader. Links an application generates never
// disagree; only crafted paths do.
func (t *table) choose(host, escaped string) pathDecision {
	p, err := pathread.Read(escaped)
	if err != nil {
		return pathDecision{verdict: pathBad, reason: err.Error()}
	}
	if !p.Canonical() {
		return pathDecision{verdict: pathRedirect, clean: p.Clean, encodedSlash: p.EncodedSlash}
	}
	first := t.match(host, p.Readings[0])
	for _, rd := range p.Readings[1:] {
		if rt := t.match(host, rd); rt != first {
			return pathDecision{verdict: pathBad, reason: fmt.Sprintf("a %s reads %s (route %s), a %s reads %s (route %s)",
				p.Readings[0].Reader, "/"+strings.Join(p.Readings[0].Segments, "/"), routeName(first),
				rd.Reader, "/"+strings.Join(rd.Segments, "/"), routeName(rt))}
		}
	}
	if first != nil && p.EncodedSlash && !first.allowEncodedSlashes {
		return pathDecision{verdict: pathBad, reason: "encoded slash", encodedSlash: true}
	}
	return pathDecision{verdict: pathOK, route: first, encodedSlash: p.EncodedSlash}
}

func routeName(r *Route) string {
	if r == nil {
		return "none"
	}
	return r.name
}

// serves reports whether any route could be for host: the proxy answers a
// bad path there itself.
func (t *table) serves(host string) bool {
	if len(t.any) > 0 {
		return true
	}
	if _, ok := t.exact[host]; ok {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
		if _, ok := t.exact[name]; ok {
			return true
		}
	}
	for _, r := range t.wildcards {
		if suffix := r.host[1:]; len(name) > len(suffix) && strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// compilePath reads a route's path with the readers requests are read
// with, so that both meet on the same segments. A route path that some
// reader reads differently ("/a;b", "/admin.", "/x:y") could only ever be
// reached by requests that are refused, so it is a mistake.
func compilePath(p string) (segments, folded []string, err error) {
	rp, err := pathread.Read(p)
	if err != nil {
		return nil, nil, err
	}
	if !rp.Canonical() {
		return nil, nil, fmt.Errorf("not a clean path")
	}
	segments = rp.Readings[0].Segments
	folded = make([]string, len(segments))
	for i, seg := range segments {
		folded[i] = pathread.Fold(seg)
	}
	for _, rd := range rp.Readings[1:] {
		want := segments
		if rd.Reader.Folded {
			want = folded
		}
		if !slices.Equal(rd.Segments, want) {
			return nil, nil, fmt.Errorf("a %s reads it as %q", rd.Reader, "/"+strings.Join(rd.Segments, "/"))
		}
	}
	return segments, folded, nil
}

// afterSegments returns what follows the first n segments of a canonical
// escaped path: "" or "/…".
func afterSegments(escaped string, n int) string {
	i := 0
	for ; n > 0 && i < len(escaped); n-- {
		j := strings.IndexByte(escaped[i+1:], '/')
		if j < 0 {
			return ""
		}
		i += 1 + j
	}
	return escaped[i:]
}
