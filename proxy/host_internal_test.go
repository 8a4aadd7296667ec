package proxy

import (
	"testing"

	"github.com/aero2/aero2/config"
)

// TestHostRules: which hosts a route serves, and the origin a sign-in on
// it returns to. A route without `host` serves its application's hosts
// (the issuer's and `hosts`) only; a host without a port means the
// default port; a wildcard matches one or more labels, never the bare
// domain; and no host a route does not serve ever becomes an origin.
func TestHostRules(t *testing.T) {
	ap := &appProxy{scheme: "https", hostless: []hostRule{newHostRule("https", "auth.example.com"), newHostRule("https", "legacy.internal:8443"), newHostRule("https", "*.dev.example.com")}}
	route := func(host, path string) *Route {
		r := &Route{app: ap, hosts: ap.hostless, hostless: host == ""}
		if host != "" {
			r.hosts = []hostRule{newHostRule("https", host)}
		}
		var err error
		if r.segments, r.folded, err = compilePath(path); err != nil {
			t.Fatal(err)
		}
		return r
	}
	routes := []*Route{
		route("", "/"),
		route("app.example.com", "/"),
		route("App.Example.com:8443", "/admin"),
		route("*.preview.example.com", "/"),
		route("*.preview.example.com:8443", "/x"),
	}
	ap.routes = routes
	tb := newTable(routes)
	for _, tc := range []struct {
		host  string
		path  string
		route int // -1: none
	}{
		{"auth.example.com", "/app", 0},
		{"legacy.internal:8443", "/", 0},
		{"legacy.internal", "/", -1}, // the listed port only
		{"a.dev.example.com", "/", 0},
		{"dev.example.com", "/", -1},
		{"evil.example", "/", -1},
		{"auth.example.com:8443", "/", -1},
		{"app.example.com", "/admin", 1},
		{"app.example.com:8443", "/admin", 2},
		{"app.example.com:8443", "/other", -1}, // no fallback to the port-less host
		{"app.example.com:9999", "/", -1},
		{"a.preview.example.com", "/", 3},
		{"a.b.preview.example.com", "/x", 3},
		{"preview.example.com", "/", -1},
		{"a.preview.example.com:8443", "/x", 4},
		{"a.preview.example.com:8443", "/", -1},
		{"a.preview.example.com:9999", "/x", -1},
		{"", "/", -1},
	} {
		host := config.NormalizeHost(tc.host)
		got := tb.choose(host, tc.path).route
		var want *Route
		if tc.route >= 0 {
			want = routes[tc.route]
		}
		if got != want {
			t.Errorf("match(%q, %q) = route %v, want %d", tc.host, tc.path, indexOf(routes, got), tc.route)
		}
		if served := tb.serves(host); served != (tc.route >= 0 || host == "app.example.com:8443" || host == "a.preview.example.com:8443") {
			t.Errorf("serves(%q) = %v", tc.host, served)
		}
		origin := ""
		if got != nil {
			origin = "https://" + host
		}
		if got != nil && got.origin(host) != origin {
			t.Errorf("origin on %q = %q", tc.host, got.origin(host))
		}
		if o := ap.origin(host); o != "" && !tb.serves(host) {
			t.Errorf("the application gives host %q, which no route serves, the origin %q", tc.host, o)
		}
	}
	// No route gives an origin for a host it does not serve.
	for _, r := range routes {
		for _, h := range []string{"evil.example", "auth.example.com:1", "preview.example.com", "app.example.com:9999"} {
			if o := r.origin(h); o != "" {
				t.Errorf("route %v gives %q the origin %q", indexOf(routes, r), h, o)
			}
		}
	}
}

func indexOf(rs []*Route, r *Route) int {
	for i, x := range rs {
		if x == r {
			return i
		}
	}
	return -1
}

var originSink string

// TestExactHostOriginIsMadeOnce: on a route's exact host, the origin a
// session is checked against on every request with a cookie is the one
// made when the configuration was loaded; a wildcard's is joined from the
// request's host, which only a host the rule matches gets.
func TestExactHostOriginIsMadeOnce(t *testing.T) {
	ap := &appProxy{scheme: "https"}
	exact := &Route{app: ap, hosts: []hostRule{newHostRule("https", "App.Example.com:8443")}}
	wild := &Route{app: ap, hosts: []hostRule{newHostRule("https", "*.preview.example.com")}}
	if n := testing.AllocsPerRun(100, func() { originSink = exact.origin("app.example.com:8443") }); n != 0 {
		t.Errorf("an exact host's origin: %v allocations, want 0", n)
	}
	for _, tc := range []struct {
		r          *Route
		host, want string
	}{
		{exact, "app.example.com:8443", "https://app.example.com:8443"},
		{exact, "app.example.com", ""},
		{exact, "app.example.com:8443.evil", ""},
		{exact, "evil.app.example.com:8443", ""},
		{wild, "a.preview.example.com", "https://a.preview.example.com"},
		{wild, "preview.example.com", ""},
		{wild, "a.preview.example.com.evil", ""},
	} {
		if got := tc.r.origin(tc.host); got != tc.want {
			t.Errorf("origin(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}
