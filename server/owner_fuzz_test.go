package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aero2/aero2/config"
	"github.com/aero2/aero2/store/memory"
	"github.com/aero2/aero2/web"
)

// ownerConfig has every kind of host the owner decision knows: an issuer
// at the root of its host with routes without `host` and further `hosts`,
// an issuer with a path on the same host, a sidecar whose issuer is at
// /.aero2, exact route hosts with and without a port, and a wildcard.
const ownerConfig = `
insecure_dev: true
store: {type: memory}
secrets:
  cookie_keys: ["fuzz-cookie-key-0123456789abcdef-0123"]
  storage_key: "fuzz-storage-key-0123456789abcdef-012"
applications:
  - name: main
    issuer: https://auth.example.com
    identity_providers: [{id: dev, type: dev, config: {users: [{username: alice}]}}]
    hosts: [alias.example.com, "alias.example.com:8443"]
    routes:
      - {path: /app, upstream: "http://127.0.0.1:9"}
      - {path: /fa}
      - {host: app.example.com, upstream: "http://127.0.0.1:9"}
      - {host: "app.example.com:8443", path: /admin, upstream: "http://127.0.0.1:9"}
      - {host: "*.preview.example.com", upstream: "http://127.0.0.1:9"}
  - name: shop
    issuer: https://auth.example.com/shop
    identity_providers: [{id: dev, type: dev, config: {users: [{username: alice}]}}]
  - name: legacy
    issuer: https://legacy.example.com/.aero2
    identity_providers: [{id: dev, type: dev, config: {users: [{username: alice}]}}]
    upstream: "http://127.0.0.1:9"
`

// Every host the configuration names; every other host is misdirected.
var (
	ownerExactHosts = []string{"auth.example.com", "alias.example.com", "alias.example.com:8443", "app.example.com", "app.example.com:8443", "legacy.example.com"}
	ownerRootIssuer = "auth.example.com"
	ownerPathIssuer = map[string][]string{"auth.example.com": {"/shop"}, "legacy.example.com": {"/.aero2"}}
)

var ownerServer = sync.OnceValues(func() (*Server, error) {
	cfg, err := config.Parse("fuzz.yaml", []byte(ownerConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err
	}
	st := memory.New()
	return build(context.Background(), cfg, st, Options{Logger: slog.New(slog.DiscardHandler), Connectors: Connectors()})
})

func configuredHost(h string) bool {
	for _, e := range ownerExactHosts {
		if h == e {
			return true
		}
	}
	// *.preview.example.com: one or more labels, the default port only.
	const suffix = ".preview.example.com"
	return !strings.Contains(h, ":") && len(h) > len(suffix) && strings.HasSuffix(h, suffix)
}

// FuzzOwner holds the owner decision to its rules for any host and path:
// a host the configuration does not name gets nothing but the health
// endpoints, the static assets and forward-auth; a path an issuer keeps
// never goes to a route; a route is only ever chosen for a host it serves
// (so a sign-in's origin is always a configured one); the decision does
// not depend on the Host's letter case. Run it longer by hand:
//
//	go test -run '^$' -fuzz '^FuzzOwner$' -fuzztime 5m ./server/
func FuzzOwner(f *testing.F) {
	s, err := ownerServer()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][2]string{
		{"auth.example.com", "/"}, {"auth.example.com", "/login"}, {"auth.example.com", "/LOGIN"},
		{"auth.example.com", "/oauth2/token"}, {"auth.example.com", "/OAuth2/../token"}, {"auth.example.com", "/app/x"},
		{"auth.example.com", "/.aero2/callback"}, {"auth.example.com", "/.aero2"}, {"auth.example.com", "/.aero2/nope"},
		{"auth.example.com", "/shop"}, {"auth.example.com", "/SHOP/login"}, {"auth.example.com", "/shopping"},
		{"Auth.Example.COM.:443", "/account"}, {"auth.example.com:8443", "/app"}, {"evil.example", "/app"},
		{"evil.example", "/.aero2/start"}, {"evil.example", "/.aero2/forward-auth"}, {"evil.example", "/healthz"},
		{"evil.example", "/.aero2/static/aero2.css"}, {"", "/app"}, {"[::1]:8080", "/"}, {"localhost:8080", "/login"},
		{"legacy.example.com", "/login"}, {"legacy.example.com", "/.aero2/login"}, {"legacy.example.com", "/.aero2/callback"},
		{"legacy.example.com", "/.aero2/"}, {"app.example.com", "/login"}, {"app.example.com:8443", "/admin"},
		{"app.example.com:8443", "/other"}, {"a.preview.example.com", "/x"}, {"preview.example.com", "/x"},
		{"a.preview.example.com:8443", "/x"}, {"alias.example.com", "/app"}, {"alias.example.com", "/login"},
		{"auth.example.com@evil.example", "/app"}, {"auth.example.com/x", "/app"}, {"auth.example.com", "/public/..;/admin"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, rawHost, escaped string) {
		path, err := url.PathUnescape(escaped)
		if err != nil {
			return // net/http refuses such a request before any handler
		}
		o := s.owner(rawHost, path, escaped)
		if again := s.owner(rawHost, path, escaped); again.kind != o.kind || again.app != o.app || again.choice.Route() != o.choice.Route() {
			t.Fatalf("owner(%q, %q) is not deterministic: %+v then %+v", rawHost, path, o, again)
		}
		if up := s.owner(strings.ToUpper(rawHost), path, escaped); up.kind != o.kind {
			t.Fatalf("owner(%q, %q) = %v, but %v for the upper-case host", rawHost, path, o.kind, up.kind)
		}
		host := config.NormalizeHost(rawHost)
		anyHost := path == "/healthz" || path == "/readyz" || strings.HasPrefix(path, web.StaticPrefix) ||
			path == "/.aero2/forward-auth" || strings.HasPrefix(path, "/.aero2/forward-auth/")
		if anyHost {
			if o.kind != ownHealth && o.kind != ownStatic && o.kind != ownProxy {
				t.Fatalf("owner(%q, %q) = %v, want a host-independent answer", rawHost, path, o.kind)
			}
			return
		}
		if !configuredHost(host) {
			if o.kind != ownMisdirected {
				t.Fatalf("owner(%q, %q) = %+v for a host the configuration does not name", rawHost, path, o)
			}
			return
		}
		if o.kind == ownMisdirected {
			t.Fatalf("owner(%q, %q): a configured host misdirected", rawHost, path)
		}
		if o.kind == ownRoute {
			if rt := o.choice.Route(); rt != nil && !rt.Serves(host) {
				t.Fatalf("owner(%q, %q) chose a route that does not serve %q", rawHost, path, host)
			}
			if host == ownerRootIssuer && config.IssuerOwns(path) {
				t.Fatalf("owner(%q, %q): the root issuer's own path went to a route", rawHost, path)
			}
			for _, base := range ownerPathIssuer[host] {
				if config.UnderPath(path, base) {
					t.Fatalf("owner(%q, %q): the path issuer %s's path went to a route", rawHost, path, base)
				}
			}
			if config.UnderPath(path, "/.aero2") {
				t.Fatalf("owner(%q, %q): the reserved prefix went to a route", rawHost, path)
			}
		}
		if o.kind == ownApp && o.app.host != host {
			t.Fatalf("owner(%q, %q): application %s on another host", rawHost, path, o.app.name)
		}
	})
}

// BenchmarkOwner measures the decision for a proxied request on the
// issuer's host, against the lookup in one application's ServeMux that
// the server made on every such request before (application.owns), in
// the same run:
//
//	go test -run '^$' -bench 'Owner|MuxLookup' ./server/
func BenchmarkOwner(b *testing.B) {
	s, err := ownerServer()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if o := s.owner("auth.example.com", "/app/reports", "/app/reports"); o.kind != ownRoute || o.choice.Route() == nil {
			b.Fatal(o)
		}
	}
}

func BenchmarkMuxLookup(b *testing.B) {
	s, err := ownerServer()
	if err != nil {
		b.Fatal(err)
	}
	r, _ := http.NewRequest("GET", "https://auth.example.com/app/reports", nil)
	mux := s.app("main").mux
	for b.Loop() {
		if _, pattern := mux.Handler(r); pattern != "" {
			b.Fatal(pattern)
		}
	}
}
