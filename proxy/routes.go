package proxy

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/pathread"
)

// table finds the route for a host and path. Specificity, most specific
// first: an exact host, then wildcard hosts (the longest suffix first),
// then routes without a host on their application's hosts; within each,
// the longest path prefix (in segments). A host that has routes but none
// for the path falls through to the less specific ones. A host no route
// names is served by none: a route without `host` serves its
// application's hosts, never whatever Host a client sends.
type table struct {
	exact     map[string][]*Route // by normalised host[:port]
	wildcards []hostRoute         // by suffix length, then prefix
	// hostless are the routes without `host`, by each exact host of their
	// application; hostlessWild those for its wildcard hosts.
	hostless     map[string][]*Route
	hostlessWild []hostRoute
}

// hostRoute is a route under one of its wildcard hosts.
type hostRoute struct {
	host hostRule
	*Route
}

func newTable(routes []*Route) *table {
	t := &table{exact: map[string][]*Route{}, hostless: map[string][]*Route{}}
	for _, r := range routes {
		exact, wild := t.exact, &t.wildcards
		if r.hostless {
			exact, wild = t.hostless, &t.hostlessWild
		}
		for _, hr := range r.hosts {
			if hr.wild {
				*wild = append(*wild, hostRoute{hr, r})
			} else {
				exact[hr.name] = append(exact[hr.name], r)
			}
		}
	}
	byPrefix := func(rs []*Route) {
		sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].segments) > len(rs[j].segments) })
	}
	for _, rs := range t.exact {
		byPrefix(rs)
	}
	for _, rs := range t.hostless {
		byPrefix(rs)
	}
	for _, ws := range [][]hostRoute{t.wildcards, t.hostlessWild} {
		sort.SliceStable(ws, func(i, j int) bool {
			a, b := ws[i], ws[j]
			if len(a.host.name) != len(b.host.name) {
				return len(a.host.name) > len(b.host.name)
			}
			return len(a.segments) > len(b.segments)
		})
	}
	return t
}

// match returns the route for a normalised host ("name" or "name:port")
// and one reading of a path, or nil.
func (t *table) match(host string, rd pathread.Reading) *Route {
	if r := matchPath(t.exact[host], rd); r != nil {
		return r
	}
	for _, w := range t.wildcards {
		if w.host.matches(host) && w.covers(rd) {
			return w.Route
		}
	}
	if r := matchPath(t.hostless[host], rd); r != nil {
		return r
	}
	for _, w := range t.hostlessWild {
		if w.host.matches(host) && w.covers(rd) {
			return w.Route
		}
	}
	return nil
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

// hostRule is one configured host: exact (a normalised host[:port]), or a
// wildcard "*.example.com[:port]" that matches one or more labels before
// the suffix, never the bare domain. Without a port, either means the
// default port only: a port is part of an origin, and another port of a
// named host is not a host the configuration names.
type hostRule struct {
	name string // the normalised host, or a wildcard's suffix ".example.com"
	port string // a wildcard's port; "" for the default
	wild bool
	// origin is, for an exact host, scheme://name: made once here, not
	// joined on every request with a cookie (Route.origin). "" for a
	// wildcard, whose origin is the request's host.
	origin string
}

// newHostRule is the rule of a configured host h of an application whose
// origins have scheme.
func newHostRule(scheme, h string) hostRule {
	if strings.HasPrefix(h, "*.") {
		name, port := h, ""
		if n, p, err := net.SplitHostPort(h); err == nil {
			name, port = n, p
		}
		name = config.NormalizeHost(name)
		if port == "80" || port == "443" {
			port = ""
		}
		return hostRule{name: name[1:], port: port, wild: true}
	}
	name := config.NormalizeHost(h)
	return hostRule{name: name, origin: scheme + "://" + name}
}

// matches reports whether the rule covers a normalised host.
func (hr hostRule) matches(host string) bool {
	if !hr.wild {
		return host == hr.name
	}
	name, port := host, ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		name, port = h, p
	}
	return port == hr.port && len(name) > len(hr.name) && strings.HasSuffix(name, hr.name)
}

// Serves reports whether the route serves the normalised host.
func (r *Route) Serves(host string) bool {
	for _, hr := range r.hosts {
		if hr.matches(host) {
			return true
		}
	}
	return false
}

// origin is where a sign-in for this route on the normalised host returns
// to, and the origin its session is bound to: the application's scheme
// and a host the route serves. It is "" for a host the route does not
// serve, so that no caller can turn a Host header into an origin.
func (r *Route) origin(host string) string {
	for _, hr := range r.hosts {
		if hr.matches(host) {
			if hr.origin != "" {
				return hr.origin // an exact rule: host is its name
			}
			return r.app.scheme + "://" + host
		}
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

// serves reports whether any route serves the normalised host: the
// proxy answers a bad path there itself.
func (t *table) serves(host string) bool {
	if len(t.exact[host]) > 0 || len(t.hostless[host]) > 0 {
		return true
	}
	for _, ws := range [][]hostRoute{t.wildcards, t.hostlessWild} {
		for _, w := range ws {
			if w.host.matches(host) {
				return true
			}
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
